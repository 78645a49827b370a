//! Reading a repository's state: whether it is ours (its `meta.json`), the graph a commit's
//! tree holds (entity, relation and tombstone files, found where the layout its `meta.json`
//! states puts them) and a commit's `ops.jsonl`.

use std::path::Path;

use git2::{Commit, ErrorCode, ObjectType, Oid, Repository, Tree};

use super::objects::MAIN;
use crate::memory::{
    error::OpenError,
    graph::{Graph, StateError},
    layout::{
        ENTITIES, EntityFile, FORMAT, META, Meta, OPS, RELATIONS, RelationFile, TOMBSTONES,
        TombstoneFile,
    },
    op::Record,
};

/// The tree of commit `head`, or why it cannot be read.
pub(super) fn head_tree(repo: &Repository, head: Oid) -> Result<git2::Tree<'_>, String> {
    let commit = repo
        .find_commit(head)
        .map_err(|e| format!("cannot read commit {head}: {}", e.message()))?;
    commit
        .tree()
        .map_err(|e| format!("cannot read the tree of {head}: {}", e.message()))
}

/// What a located repository holds.
pub(crate) enum Identity {
    /// No refs at all: a new repository to initialise.
    Empty,
    /// One of ours: `refs/heads/main` with a `meta.json` of our format.
    Ours { head: Oid },
}

pub(super) fn read_blob(
    repo: &Repository,
    tree: &Tree<'_>,
    path: &str,
) -> Result<Option<Vec<u8>>, String> {
    match tree.get_path(Path::new(path)) {
        Ok(entry) => {
            let blob = repo
                .find_blob(entry.id())
                .map_err(|e| format!("cannot read {path}: {}", e.message()))?;
            Ok(Some(blob.content().to_vec()))
        }
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {path}: {}", e.message())),
    }
}

/// Reads and checks `meta.json` of a tree: Err(NotOurs reason) or Err(Corrupt reason).
pub(crate) fn read_meta(repo: &Repository, tree: &Tree<'_>) -> Result<Meta, (bool, String)> {
    let bytes = read_blob(repo, tree, META)
        .map_err(|e| (false, e))?
        .ok_or((true, format!("it has no {META}")))?;
    let meta: Meta = serde_json::from_slice(&bytes)
        .map_err(|e| (true, format!("{META} is not an mcpfleet memory's: {e}")))?;
    if meta.format != FORMAT {
        return Err((true, format!("{META} has format {:?}", meta.format)));
    }
    meta.layout().map_err(|e| (true, e))?;
    Ok(meta)
}

/// Decides whether the repository is ours, empty, or neither. Reads only.
pub(crate) fn identify(repo: &Repository, path: &Path) -> Result<Identity, OpenError> {
    let not_ours = |reason: String| OpenError::NotOurs {
        path: path.to_path_buf(),
        reason,
    };
    let corrupt = |reason: String| OpenError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    match repo.find_reference(MAIN) {
        Ok(r) => {
            let head = r
                .target()
                .ok_or_else(|| not_ours(format!("{MAIN} is a symbolic reference")))?;
            let tree = head_tree(repo, head).map_err(corrupt)?;
            read_meta(repo, &tree).map_err(|(ours, reason)| {
                if ours {
                    not_ours(reason)
                } else {
                    corrupt(reason)
                }
            })?;
            Ok(Identity::Ours { head })
        }
        Err(e) if e.code() == ErrorCode::NotFound => {
            let no_refs = repo
                .references()
                .map(|mut refs| refs.next().is_none())
                .map_err(|e| corrupt(format!("cannot list references: {}", e.message())))?;
            if no_refs {
                Ok(Identity::Empty)
            } else {
                Err(not_ours(format!("it has no {MAIN}")))
            }
        }
        Err(e) => Err(corrupt(format!("cannot read {MAIN}: {}", e.message()))),
    }
}

/// Parses every file under `dir` (at any depth), passing its path from the root.
pub(super) fn parse_entries<T: serde::de::DeserializeOwned>(
    repo: &Repository,
    tree: &Tree<'_>,
    dir: &str,
    mut each: impl FnMut(&str, T) -> Result<(), String>,
) -> Result<(), String> {
    let mut stack = match tree.get_path(Path::new(dir)) {
        Ok(entry) => vec![(dir.to_string(), entry.id())],
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {dir}/: {}", e.message())),
    };
    while let Some((path, id)) = stack.pop() {
        let sub = repo
            .find_tree(id)
            .map_err(|e| format!("cannot read {path}/: {}", e.message()))?;
        for entry in sub.iter() {
            let name = entry
                .name()
                .map_err(|_| format!("{path}/ has a non-UTF-8 file name"))?;
            let file = format!("{path}/{name}");
            if entry.kind() == Some(ObjectType::Tree) {
                stack.push((file, entry.id()));
                continue;
            }
            let blob = repo
                .find_blob(entry.id())
                .map_err(|e| format!("cannot read {file}: {}", e.message()))?;
            let value: T = serde_json::from_slice(blob.content())
                .map_err(|e| format!("{file} is not valid: {e}"))?;
            each(&file, value).map_err(|e| format!("{file}: {e}"))?;
        }
    }
    Ok(())
}

/// Checks that the file at `path` is where its content says it belongs (`expected`).
pub(super) fn expect_file(path: &str, expected: &str) -> Result<(), String> {
    if path == expected {
        return Ok(());
    }
    let file = |p: &str| p.rsplit_once('/').map(|(_, f)| f.to_string());
    if file(path) == file(expected) {
        Err(format!("is in the wrong bucket: it belongs in {expected}"))
    } else {
        Err(format!("holds data that belongs in {expected}"))
    }
}

pub(super) fn state(e: StateError) -> String {
    e.0
}

/// Loads the graph (with tags and tombstones) stored in a commit's tree.
pub(crate) fn load_graph(repo: &Repository, tree: &Tree<'_>) -> Result<(Graph, Meta), String> {
    let meta = read_meta(repo, tree).map_err(|(_, e)| e)?;
    let layout = meta.layout()?;
    let mut g = Graph::new();
    parse_entries(repo, tree, ENTITIES, |file, e: EntityFile| {
        expect_file(file, &layout.entity_path(&e.name))?;
        g.insert_entity_file(e).map_err(state)
    })?;
    parse_entries(repo, tree, RELATIONS, |file, rs: Vec<RelationFile>| {
        if rs.is_empty() {
            return Err("is empty".into());
        }
        for r in rs {
            expect_file(file, &layout.relation_path(&r.from))?;
            g.insert_relation_file(r).map_err(state)?;
        }
        Ok(())
    })?;
    parse_entries(repo, tree, TOMBSTONES, |file, t: TombstoneFile| {
        expect_file(file, &layout.tombstone_path(&t.name))?;
        g.insert_tombstone_file(t).map_err(state)
    })?;
    g.set_loaded_version(meta.version).map_err(state)?;
    g.set_loaded_nodes(meta.node.as_deref().unwrap_or(""), &meta.nodes);
    Ok((g, meta))
}

/// Parses a commit's `ops.jsonl`.
pub(crate) fn parse_ops(bytes: &[u8]) -> Result<Vec<Record>, String> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            serde_json::from_slice(line).map_err(|e| format!("{OPS} line {}: {e}", i + 1))
        })
        .collect()
}

/// The records of a commit written elsewhere (another node's): its `ops.jsonl`, refused
/// unread when larger than `max_bytes`, with its `meta.json`.
pub(crate) fn foreign_commit_ops(
    repo: &Repository,
    commit: &Commit<'_>,
    max_bytes: usize,
) -> Result<(Meta, Vec<Record>), String> {
    let tree = commit
        .tree()
        .map_err(|e| format!("cannot read the tree of {}: {}", commit.id(), e.message()))?;
    let meta = read_meta(repo, &tree).map_err(|(_, e)| e)?;
    let Ok(entry) = tree.get_path(Path::new(OPS)) else {
        return Ok((meta, Vec::new()));
    };
    let odb = repo.odb().map_err(|e| e.message().to_string())?;
    let (size, _) = odb
        .read_header(entry.id())
        .map_err(|e| format!("cannot read {OPS}: {}", e.message()))?;
    if size > max_bytes {
        return Err(format!(
            "{OPS} of commit {} is {size} bytes, over the limit of {max_bytes}",
            commit.id()
        ));
    }
    let ops = match read_blob(repo, &tree, OPS)? {
        Some(bytes) => parse_ops(&bytes)?,
        None => Vec::new(),
    };
    Ok((meta, ops))
}

/// The records of a commit (its `ops.jsonl`).
pub(crate) fn commit_ops(repo: &Repository, commit: &Commit<'_>) -> Result<Vec<Record>, String> {
    let tree = commit
        .tree()
        .map_err(|e| format!("cannot read the tree of {}: {}", commit.id(), e.message()))?;
    match read_blob(repo, &tree, OPS)? {
        Some(bytes) => parse_ops(&bytes),
        None => Ok(Vec::new()),
    }
}
