//! Git objects as bytes: object ids, the set of new objects one commit adds, tree merging in
//! git's order and commit headers, plus the names the archive writes under (its ref, its
//! committer, the e-mail domain of writers). Pure functions, no I/O.

use std::collections::HashSet;

use git2::{ObjectType, Oid, Tree};

use crate::memory::error::ArchiveError;

pub(crate) const MAIN: &str = "refs/heads/main";
pub(super) const COMMITTER: &str = "mcpfleet-memory";
pub(super) const EMAIL_DOMAIN: &str = "mcpfleet.invalid";

/// Git object id of `data` as an object of `kind`: SHA-1 of `<kind> <len>\0<data>`.
pub(super) fn object_id(kind: ObjectType, data: &[u8]) -> Result<Oid, ArchiveError> {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(format!("{} {}\0", kind.str(), data.len()).as_bytes());
    h.update(data);
    let digest: [u8; 20] = h.finalize().into();
    Oid::from_bytes(&digest).map_err(ArchiveError::git("make an object id"))
}

/// The new objects of one commit, each once, with their content. Built here rather than
/// through libgit2: its object writes rescan the pack directory for every new object.
#[derive(Default)]
pub(super) struct NewObjects {
    seen: HashSet<Oid>,
    pub(super) items: Vec<(Oid, ObjectType, Vec<u8>)>,
}

impl NewObjects {
    pub(super) fn put(&mut self, kind: ObjectType, data: Vec<u8>) -> Result<Oid, ArchiveError> {
        let oid = object_id(kind, &data)?;
        if self.seen.insert(oid) {
            self.items.push((oid, kind, data));
        }
        Ok(oid)
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Number of new tree objects and their bytes.
    pub(super) fn trees(&self) -> (usize, usize) {
        self.items
            .iter()
            .filter(|(_, kind, _)| *kind == ObjectType::Tree)
            .fold((0, 0), |(n, bytes), (_, _, data)| {
                (n + 1, bytes + data.len())
            })
    }
}

pub(super) const BLOB_MODE: i32 = 0o100644;
pub(super) const TREE_MODE: i32 = 0o040000;

/// Changes to the entries of one tree: (name, is a tree, Some((mode, id)) to set or None to
/// remove).
pub(super) type TreeUpdates = Vec<(Vec<u8>, bool, Option<(i32, Oid)>)>;

/// Git's tree order: names compared bytewise, a tree's name as if it ended in `/`.
pub(crate) fn git_order(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then_with(|| {
        let next = |s: &[u8], tree: bool| s.get(n).copied().or(tree.then_some(b'/'));
        next(a, a_tree).cmp(&next(b, b_tree))
    })
}

pub(super) fn push_entry(out: &mut Vec<u8>, mode: i32, name: &[u8], oid: Oid) {
    out.extend_from_slice(format!("{mode:o} ").as_bytes());
    out.extend_from_slice(name);
    out.push(0);
    out.extend_from_slice(oid.as_bytes());
}

/// The content of `base` with `updates` applied (a merge of two sorted lists), or None if
/// the tree ends up empty.
pub(super) fn merge_tree(base: Option<&Tree<'_>>, mut updates: TreeUpdates) -> Option<Vec<u8>> {
    updates.sort_by(|a, b| git_order(&a.0, a.1, &b.0, b.1));
    let mut out = Vec::with_capacity(base.map_or(0, |t| t.len() * 48) + updates.len() * 64);
    let mut ups = updates.into_iter().peekable();
    let emit = |out: &mut Vec<u8>, u: (Vec<u8>, bool, Option<(i32, Oid)>)| {
        if let (name, _, Some((mode, oid))) = u {
            push_entry(out, mode, &name, oid);
        }
    };
    for e in base.into_iter().flat_map(|t| t.iter()) {
        let name = e.name_bytes();
        let is_tree = e.kind() == Some(ObjectType::Tree);
        while let Some(u) = ups.next_if(|u| {
            u.0 != name && git_order(&u.0, u.1, name, is_tree) == std::cmp::Ordering::Less
        }) {
            emit(&mut out, u);
        }
        if let Some(u) = ups.next_if(|u| u.0 == name) {
            emit(&mut out, u);
        } else {
            push_entry(&mut out, e.filemode(), name, e.id());
        }
    }
    for u in ups {
        emit(&mut out, u);
    }
    (!out.is_empty()).then_some(out)
}

/// A name usable in a git signature (`<`, `>` and newlines would break the header).
pub(super) fn ident(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "unknown".into() } else { s }
}

/// A commit object's content.
pub(super) fn commit_bytes(
    tree: Oid,
    parent: Option<Oid>,
    author: (&str, u64),
    committer: (&str, u64),
    message: &str,
) -> Vec<u8> {
    let mut s = format!("tree {tree}\n");
    if let Some(p) = parent {
        s.push_str(&format!("parent {p}\n"));
    }
    for (role, (name, ms)) in [("author", author), ("committer", committer)] {
        let name = ident(name);
        s.push_str(&format!(
            "{role} {name} <{}> {} +0000\n",
            email(&name),
            ms / 1000
        ));
    }
    s.push('\n');
    s.push_str(message);
    if !message.ends_with('\n') {
        s.push('\n');
    }
    s.into_bytes()
}

pub(super) fn email(server: &str) -> String {
    format!("{server}@{EMAIL_DOMAIN}")
}
