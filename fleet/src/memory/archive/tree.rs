//! The tree of a new commit: the head's tree with every file the commit's ops touched
//! rewritten (or removed) where the layout puts it, plus the commit's `ops.jsonl` and
//! `meta.json`. Only the trees on the path of a changed file are rebuilt; a subtree with no
//! effective change keeps its id unhashed, so a commit's cost follows what it changed. When the
//! head's files follow another layout (a format-1 repository's first commit here), every data
//! file is written afresh in the new layout (the blobs of files the commit's ops did not touch
//! are taken over, not written again) and the old directories are dropped: one commit moves
//! them all, and the history before it stays as it was.

use std::{collections::BTreeMap, path::Path};

use git2::{ObjectType, Oid, Repository, Tree};

use super::objects::{BLOB_MODE, NewObjects, TREE_MODE, TreeUpdates, merge_tree};
use crate::memory::{
    error::ArchiveError,
    graph::{Graph, Touched},
    layout::{self, ENTITIES, Layout, META, Meta, OPS, RELATIONS, TOMBSTONES},
    op::Record,
};

/// Files to set (Some blob) or remove (None), by path relative to one directory.
type Files = Vec<(String, Option<Oid>)>;

/// The subtree `name` of `base`, if it has one.
fn subtree<'r>(
    repo: &'r Repository,
    base: Option<&Tree<'r>>,
    name: &str,
) -> Result<Option<Tree<'r>>, ArchiveError> {
    match base.and_then(|t| t.get_name(name)) {
        Some(e) if e.kind() == Some(ObjectType::Tree) => repo
            .find_tree(e.id())
            .map(Some)
            .map_err(ArchiveError::git("read a tree of the head")),
        _ => Ok(None),
    }
}

/// Writes `base` with `files` applied, recursing into the directories the paths name.
/// Returns the new tree's id (`base`'s own if nothing changed), None if it ends up empty.
fn write_dir(
    repo: &Repository,
    base: Option<&Tree<'_>>,
    files: Files,
    objects: &mut NewObjects,
) -> Result<Option<Oid>, ArchiveError> {
    let mut here = TreeUpdates::new();
    let mut below: BTreeMap<String, Files> = BTreeMap::new();
    for (path, blob) in files {
        match path.split_once('/') {
            Some((dir, rest)) => below
                .entry(dir.to_string())
                .or_default()
                .push((rest.to_string(), blob)),
            // Removing what is not there changes nothing.
            None if blob.is_none() && base.and_then(|t| t.get_name(&path)).is_none() => {}
            None => here.push((path.into_bytes(), false, blob.map(|b| (BLOB_MODE, b)))),
        }
    }
    for (dir, mut files) in below {
        let sub = subtree(repo, base, &dir)?;
        if sub.is_none() {
            files.retain(|(_, blob)| blob.is_some());
        }
        if files.is_empty() {
            continue;
        }
        let id = write_dir(repo, sub.as_ref(), files, objects)?;
        if id != sub.as_ref().map(|t| t.id()) {
            here.push((dir.into_bytes(), true, id.map(|i| (TREE_MODE, i))));
        }
    }
    if here.is_empty() {
        return Ok(base.map(|t| t.id()));
    }
    merge_tree(base, here)
        .map(|bytes| objects.put(ObjectType::Tree, bytes))
        .transpose()
}

/// The head's data directories when a commit changes the layout: files of keys the pending
/// ops did not touch hold what the graph would write, so their blobs are taken over (already
/// in the repository) instead of each being serialised, hashed and packed again.
struct OldFiles<'r> {
    layout: Layout,
    dirs: Vec<(&'static str, Tree<'r>)>,
    touched: Touched,
}

impl OldFiles<'_> {
    fn blob(&self, dir: &str, name: &str) -> Option<Oid> {
        let touched = if dir == RELATIONS {
            &self.touched.relation_sources
        } else {
            &self.touched.entities
        };
        if touched.contains(name) {
            return None;
        }
        let (_, tree) = self.dirs.iter().find(|(d, _)| *d == dir)?;
        let entry = tree
            .get_path(Path::new(&self.layout.file_in_dir(name)))
            .ok()?;
        (entry.kind() == Some(ObjectType::Blob)).then(|| entry.id())
    }
}

/// The data files a commit writes: those of the touched keys or, on a layout change (`old`),
/// every file of the graph.
fn data_files(
    graph: &Graph,
    layout: Layout,
    old: Option<&OldFiles<'_>>,
    objects: &mut NewObjects,
) -> Result<BTreeMap<&'static str, Files>, ArchiveError> {
    let Touched {
        entities,
        relation_sources,
    } = if old.is_some() {
        let s = graph.snapshot();
        Touched {
            entities: s
                .entities
                .into_iter()
                .map(|e| e.name)
                .chain(s.tombstones.into_iter().map(|t| t.name))
                .collect(),
            relation_sources: s.relations.into_iter().map(|r| r.from).collect(),
        }
    } else {
        graph.touched()
    };
    let mut dirs: BTreeMap<&'static str, Files> = BTreeMap::new();
    let mut file = |objects: &mut NewObjects,
                    dir: &'static str,
                    name: &str,
                    bytes: &dyn Fn() -> Option<Vec<u8>>| {
        let blob = match old.and_then(|o| o.blob(dir, name)) {
            Some(id) => Some(id),
            None => bytes()
                .map(|b| objects.put(ObjectType::Blob, b))
                .transpose()?,
        };
        dirs.entry(dir)
            .or_default()
            .push((layout.file_in_dir(name), blob));
        Ok::<_, ArchiveError>(())
    };
    for name in &entities {
        file(objects, ENTITIES, name, &|| {
            graph.entity_file(name).map(|f| layout::pretty(&f))
        })?;
        file(objects, TOMBSTONES, name, &|| {
            graph.tombstone_file(name).map(|f| layout::pretty(&f))
        })?;
    }
    for from in &relation_sources {
        file(objects, RELATIONS, from, &|| {
            let rels = graph.relation_files_from(from);
            (!rels.is_empty()).then(|| layout::pretty(&rels))
        })?;
    }
    Ok(dirs)
}

/// Builds the tree of a commit of `records` on top of `base` (whose files follow
/// `base_layout`), writing files in `layout`. New objects go to `objects`; returns the root
/// tree's id.
pub(super) fn commit_tree(
    repo: &Repository,
    base: &Tree<'_>,
    base_layout: Layout,
    layout: Layout,
    graph: &Graph,
    records: &[&Record],
    objects: &mut NewObjects,
) -> Result<Oid, ArchiveError> {
    let moving = base_layout != layout;
    let old_files = match moving {
        true => {
            let mut dirs = Vec::new();
            for dir in [ENTITIES, RELATIONS, TOMBSTONES] {
                if let Some(t) = subtree(repo, Some(base), dir)? {
                    dirs.push((dir, t));
                }
            }
            Some(OldFiles {
                layout: base_layout,
                dirs,
                touched: graph.touched(),
            })
        }
        false => None,
    };
    let mut dirs = data_files(graph, layout, old_files.as_ref(), objects)?;
    let mut root = TreeUpdates::new();
    for dir in [ENTITIES, RELATIONS, TOMBSTONES] {
        let files = dirs.remove(dir).unwrap_or_default();
        let old = subtree(repo, Some(base), dir)?;
        // A layout change starts each data directory afresh.
        let start = if moving { None } else { old.as_ref() };
        let id = write_dir(repo, start, files, objects)?;
        if id != old.as_ref().map(|t| t.id()) {
            root.push((dir.as_bytes().to_vec(), true, id.map(|i| (TREE_MODE, i))));
        }
    }
    let mut ops = Vec::with_capacity(records.len() * 200);
    for r in records {
        let _ = serde_json::to_writer(&mut ops, r);
        ops.push(b'\n');
    }
    let meta = Meta {
        hlc: records.iter().map(|r| r.hlc).max().filter(|&h| h > 0),
        node: Some(graph.node().to_string()).filter(|n| !n.is_empty()),
        nodes: graph.nodes().map(|(n, v)| (n.to_string(), v)).collect(),
        effects: true,
        ..Meta::of(graph.version(), layout)
    };
    let meta = layout::pretty(&meta);
    for (name, bytes) in [(OPS, ops), (META, meta)] {
        let id = objects.put(ObjectType::Blob, bytes)?;
        root.push((name.as_bytes().to_vec(), false, Some((BLOB_MODE, id))));
    }
    let bytes = merge_tree(Some(base), root).unwrap_or_default();
    objects.put(ObjectType::Tree, bytes)
}
