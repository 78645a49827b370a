//! The trees of one commit as verify reads them: the root and the three data directories
//! (`entities/`, `relations/`, `tombstones/`), each loaded and hash-checked once per distinct
//! tree and then kept (the bucket trees below them are small and read as needed), and the files that differ between two commits found by a merge walk of
//! their trees. Both exist so that verify costs what the history holds, as `git fsck` does:
//! looking a file up by path from the root loads its directory again on every call (libgit2
//! caches no tree over 4 KiB), and with one file per entity that made each looked-up file cost
//! the whole directory, O(ops x entities) in all; a generic tree diff likewise walked every
//! entry of both directories and allocated a delta per change.

use std::cmp::Ordering;

use git2::{ObjectType, Oid, Repository, Tree, TreeEntry};
use serde::de::DeserializeOwned;

use crate::memory::archive::git_order;
use crate::memory::layout::{ENTITIES, RELATIONS, TOMBSTONES};

/// The directories of the layout whose files a commit's ops determine.
const DATA_DIRS: [&str; 3] = [ENTITIES, RELATIONS, TOMBSTONES];

/// One data directory of a commit's tree.
#[derive(Clone)]
enum Dir<'r> {
    Absent,
    Present(Tree<'r>),
    Unreadable(String),
}

/// A commit's root tree and its data directories, each loaded and hash-checked once and then
/// kept: looking a file up is a binary search in entries already parsed. (Looking it up by
/// path from the root instead loads the directory again on every call, since libgit2 caches
/// no tree over 4 KiB: with one file per entity that made verify O(ops x entities).) A
/// directory whose id did not change is taken over from the previous commit unread.
#[derive(Clone)]
pub(super) struct Dirs<'r> {
    pub(super) root: Tree<'r>,
    dirs: [Dir<'r>; 3],
}

impl<'r> Dirs<'r> {
    pub(super) fn load(repo: &'r Repository, root: Tree<'r>, prev: Option<&Dirs<'r>>) -> Dirs<'r> {
        let dirs = std::array::from_fn(|i| {
            let Some(entry) = root.get_name(DATA_DIRS[i]) else {
                return Dir::Absent;
            };
            if entry.kind() != Some(ObjectType::Tree) {
                // Not a directory: it holds no files (check_objects reads it, the walk
                // reports it).
                return Dir::Absent;
            }
            let id = entry.id();
            if let Some(Dir::Present(t)) = prev.map(|p| &p.dirs[i])
                && t.id() == id
            {
                return Dir::Present(t.clone());
            }
            match repo.find_tree(id) {
                Ok(t) => Dir::Present(t),
                Err(e) => Dir::Unreadable(e.message().to_string()),
            }
        });
        Dirs { root, dirs }
    }

    /// A directory tree already loaded, by id.
    pub(super) fn loaded(&self, id: Oid) -> Option<&Tree<'r>> {
        self.dirs.iter().find_map(|d| match d {
            Dir::Present(t) if t.id() == id => Some(t),
            _ => None,
        })
    }

    /// The parsed file at `path` (`<data dir>/<buckets...>/<file>`), None if there is none.
    /// Bucket trees below a data directory are small; only the directory itself is kept.
    pub(super) fn read<T: DeserializeOwned>(
        &self,
        repo: &'r Repository,
        path: &str,
    ) -> Result<Option<T>, String> {
        let (dir, file) = path.split_once('/').unwrap_or(("", path));
        let Some(i) = DATA_DIRS.iter().position(|d| *d == dir) else {
            return Err(format!("{path} is not in a data directory"));
        };
        let mut tree = match &self.dirs[i] {
            Dir::Absent => return Ok(None),
            Dir::Unreadable(e) => return Err(e.clone()),
            Dir::Present(t) => t.clone(),
        };
        let mut parts = file.split('/').peekable();
        while let Some(part) = parts.next() {
            let Some((id, kind)) = tree.get_name(part).map(|e| (e.id(), e.kind())) else {
                return Ok(None);
            };
            if parts.peek().is_some() {
                if kind != Some(ObjectType::Tree) {
                    return Ok(None);
                }
                tree = repo.find_tree(id).map_err(|e| e.message().to_string())?;
                continue;
            }
            let blob = repo.find_blob(id).map_err(|e| e.message().to_string())?;
            return serde_json::from_slice(blob.content())
                .map(Some)
                .map_err(|e| e.to_string());
        }
        Ok(None)
    }
}

/// Paths of the files that differ between two commits (added, removed, other content or
/// mode), as `git diff --name-only` lists them: a merge of the two trees' sorted entries,
/// entering only subtrees whose ids differ, so a commit costs the size of the directories it
/// changed, read from the trees already loaded. An entry that is unmatched on either side
/// (also in a tree that is not sorted) is listed, never skipped.
pub(super) fn changed_paths<'r>(
    repo: &'r Repository,
    old: Option<&Dirs<'r>>,
    new: &Dirs<'r>,
) -> Result<Vec<String>, String> {
    let load = |id: Oid| -> Result<Tree<'r>, String> {
        match new.loaded(id).or_else(|| old.and_then(|o| o.loaded(id))) {
            Some(t) => Ok(t.clone()),
            None => repo.find_tree(id).map_err(|e| e.message().to_string()),
        }
    };
    let mut out = Vec::new();
    let mut work: Vec<(String, Option<Tree<'r>>, Option<Tree<'r>>)> = vec![(
        String::new(),
        old.map(|o| o.root.clone()),
        Some(new.root.clone()),
    )];
    while let Some((prefix, a, b)) = work.pop() {
        let mut a = a.iter().flat_map(|t| t.iter()).peekable();
        let mut b = b.iter().flat_map(|t| t.iter()).peekable();
        let is_tree = |e: &TreeEntry<'_>| e.kind() == Some(ObjectType::Tree);
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(x), Some(y)) => {
                    git_order(x.name_bytes(), is_tree(x), y.name_bytes(), is_tree(y))
                }
            };
            let (x, y) = match order {
                Ordering::Less => (a.next(), None),
                Ordering::Greater => (None, b.next()),
                Ordering::Equal => (a.next(), b.next()),
            };
            if let (Some(x), Some(y)) = (&x, &y)
                && x.id() == y.id()
                && x.filemode() == y.filemode()
            {
                continue;
            }
            let Some(named) = x.as_ref().or(y.as_ref()) else {
                break;
            };
            let name = String::from_utf8_lossy(named.name_bytes());
            let path = if prefix.is_empty() {
                name.into_owned()
            } else {
                format!("{prefix}/{name}")
            };
            let (x_tree, y_tree) = (
                x.as_ref().filter(|e| is_tree(e)),
                y.as_ref().filter(|e| is_tree(e)),
            );
            if x_tree.is_some() || y_tree.is_some() {
                let sub_a = x_tree.map(|e| load(e.id())).transpose()?;
                let sub_b = y_tree.map(|e| load(e.id())).transpose()?;
                work.push((path.clone(), sub_a, sub_b));
            }
            if x.as_ref().is_some_and(|e| !is_tree(e)) || y.as_ref().is_some_and(|e| !is_tree(e)) {
                out.push(path);
            }
        }
    }
    Ok(out)
}
