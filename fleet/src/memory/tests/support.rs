//! What the store tests share: op builders, store options, and readers of a repository's
//! state from outside the store (head graph, ops along `main`, `git fsck`).

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use git2::Repository;

use crate::memory::{test_ops::create_entities, *};

pub(super) const WAIT: Duration = Duration::from_secs(10);

pub(super) fn create(names: &[&str]) -> Op {
    create_entities(names, "service", |n| format!("{n} was created"))
}

pub(super) fn observe(name: &str, text: &str) -> Op {
    Op::AddObservations(AddObservations {
        observations: vec![ObservationAddition {
            entity_name: name.into(),
            contents: vec![text.into()],
        }],
    })
}

pub(super) fn relate(from: &str, to: &str) -> Op {
    Op::CreateRelations(CreateRelations {
        relations: vec![Relation {
            from: from.into(),
            to: to.into(),
            relation_type: "calls".into(),
        }],
    })
}

pub(super) fn quick() -> StoreOptions {
    StoreOptions {
        commit_interval: Duration::from_millis(5),
        ..StoreOptions::default()
    }
}

/// Options under which only the first batch is committed before close: the rest stays in
/// the WAL, as after a crash.
pub(super) fn lazy() -> StoreOptions {
    StoreOptions {
        commit_interval: Duration::from_secs(3600),
        ..StoreOptions::default()
    }
}

pub(super) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

pub(super) fn wal_segments(gitdir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(gitdir.join("mcpfleet/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The graph stored at the head of the repository (loaded from files, not replayed).
pub(super) fn head_graph(path: &Path) -> Graph {
    Archive::open(path).unwrap().graph().clone()
}

pub(super) fn view_graph(view: &View) -> Graph {
    Graph::from_snapshot(view.snapshot()).unwrap()
}

/// Every op in `ops.jsonl` along `main`, by version.
pub(super) fn git_ops(path: &Path) -> BTreeMap<u64, Record> {
    let repo = Repository::open(path).unwrap();
    let mut out = BTreeMap::new();
    let mut next = repo.refname_to_id("refs/heads/main").ok();
    while let Some(oid) = next {
        let c = repo.find_commit(oid).unwrap();
        for r in archive::commit_ops(&repo, &c).unwrap() {
            assert!(
                out.insert(r.version, r).is_none(),
                "version twice in history"
            );
        }
        next = c.parent_id(0).ok();
    }
    out
}

pub(in crate::memory) fn git_fsck(path: &Path) {
    if let Ok(out) = Command::new("git")
        .args(["fsck", "--full", "--strict"])
        .current_dir(path)
        .output()
    {
        assert!(
            out.status.success(),
            "git fsck: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The `meta.json` of `commit`.
pub(super) fn meta_at(repo: &Repository, commit: git2::Oid) -> layout::Meta {
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    let blob = tree.get_name("meta.json").unwrap().to_object(repo).unwrap();
    serde_json::from_slice(blob.as_blob().unwrap().content()).unwrap()
}
