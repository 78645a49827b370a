//! The checks of one commit's files against its replayed ops: every file its ops touched
//! holds what they produce, at the path the commit's layout gives it; every other changed
//! file is reported (by where it belongs, if it is a data file in the wrong bucket or
//! directory); a commit that changes the layout must hold exactly the replayed graph.

use std::collections::BTreeSet;

use git2::{Oid, Repository};
use serde::de::DeserializeOwned;

use super::trees::{Dirs, changed_paths};
use crate::memory::{
    archive,
    graph::{Graph, Touched},
    layout::{
        ENTITIES, EntityFile, Layout, META, OPS, README, RELATIONS, RelationFile, TOMBSTONES,
        TombstoneFile,
    },
};

/// What a commit's file checks need to know of it.
#[derive(Clone, Copy)]
pub(super) struct Commit {
    pub oid: Oid,
    /// The root commit (it also writes README.md).
    pub root: bool,
    /// The layout its `meta.json` states.
    pub layout: Layout,
    /// Whether its parent's files follow another layout.
    pub moved: bool,
}

fn compare<'r, T: DeserializeOwned + PartialEq>(
    repo: &'r Repository,
    dirs: &Dirs<'r>,
    commit: Oid,
    path: &str,
    expected: Option<T>,
    problems: &mut Vec<String>,
) {
    match dirs.read::<T>(repo, path) {
        Ok(found) if found == expected => {}
        Ok(_) => problems.push(format!(
            "commit {commit}: {path} is not what the commit's ops produce"
        )),
        Err(e) => problems.push(format!("commit {commit}: {path} is unreadable: {e}")),
    }
}

/// Paths a set of touched keys may change.
fn expected_paths(t: &Touched, layout: Layout) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for n in &t.entities {
        out.insert(layout.entity_path(n));
        out.insert(layout.tombstone_path(n));
    }
    for f in &t.relation_sources {
        out.insert(layout.relation_path(f));
    }
    out
}

/// Where the data file at `path` belongs by its content, if it can be read and that is
/// somewhere else (a file moved to the wrong bucket or directory).
fn misplaced<'r>(
    repo: &'r Repository,
    dirs: &Dirs<'r>,
    path: &str,
    layout: Layout,
) -> Option<String> {
    let value: serde_json::Value = dirs.read(repo, path).ok()??;
    let key = |v: &serde_json::Value, k: &str| v.get(k)?.as_str().map(str::to_string);
    let expected = match path.split_once('/')?.0 {
        ENTITIES => layout.entity_path(&key(&value, "name")?),
        TOMBSTONES => layout.tombstone_path(&key(&value, "name")?),
        RELATIONS => layout.relation_path(&key(value.get(0)?, "from")?),
        _ => return None,
    };
    (expected != path).then_some(expected)
}

/// Checks the files of a commit (`dirs`, its parent's `prev`) whose ops touched `touched`,
/// against `replay`, the graph after its ops; adds what is wrong to `problems`.
pub(super) fn check<'r>(
    repo: &'r Repository,
    prev: Option<&Dirs<'r>>,
    dirs: &Dirs<'r>,
    c: &Commit,
    touched: &Touched,
    replay: &Graph,
    problems: &mut Vec<String>,
) {
    let Commit {
        oid,
        root,
        layout,
        moved,
    } = *c;
    if moved {
        // A layout change rewrites every file: the tree must hold exactly the graph.
        match archive::load_graph(repo, &dirs.root) {
            Ok((loaded, _)) if loaded == *replay => {}
            Ok(_) => problems.push(format!(
                "commit {oid} changes the layout but its files differ from the replay"
            )),
            Err(e) => problems.push(format!("commit {oid}: {e}")),
        }
    } else {
        let allowed = expected_paths(touched, layout);
        match changed_paths(repo, prev, dirs) {
            Ok(paths) => {
                for p in paths {
                    let ours = p == OPS || p == META || (root && p == README);
                    if ours || allowed.contains(&p) {
                        continue;
                    }
                    match misplaced(repo, dirs, &p, layout) {
                        Some(home) => {
                            let file = |p: &str| p.rsplit('/').next().map(str::to_string);
                            let what = if file(&p) == file(&home) {
                                "bucket"
                            } else {
                                "place"
                            };
                            problems.push(format!(
                                "commit {oid}: {p} is in the wrong {what}: it belongs in {home}"
                            ));
                        }
                        None => problems.push(format!(
                            "commit {oid} changes {p} but none of its ops touched it"
                        )),
                    }
                }
            }
            Err(e) => problems.push(format!("commit {oid}: cannot diff: {e}")),
        }
    }
    for n in &touched.entities {
        compare::<EntityFile>(
            repo,
            dirs,
            oid,
            &layout.entity_path(n),
            replay.entity_file(n),
            problems,
        );
        compare::<TombstoneFile>(
            repo,
            dirs,
            oid,
            &layout.tombstone_path(n),
            replay.tombstone_file(n),
            problems,
        );
    }
    for f in &touched.relation_sources {
        let rels = replay.relation_files_from(f);
        compare::<Vec<RelationFile>>(
            repo,
            dirs,
            oid,
            &layout.relation_path(f),
            (!rels.is_empty()).then_some(rels),
            problems,
        );
    }
}
