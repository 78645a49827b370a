//! The fanned-out layout (format 2): a commit rewrites only the trees on the paths of the
//! files it changes, a format-1 repository opens as before and its next commit moves every
//! file (history before it untouched, verify clean across it), and files in the wrong bucket
//! or a format newer than this build are refused with errors that say so.

use std::{collections::HashSet, path::Path, sync::Arc};

use git2::{FileMode, ObjectType, Oid, Repository, build::TreeUpdateBuilder};

use super::support::*;
use super::verifying::{assert_reported, entity_after, forge, problems, record, two_entities};
use crate::memory::{
    layout::{self, FLAT_FORMAT_VERSION, FORMAT_VERSION, Layout, Meta},
    *,
};

fn append(a: &mut Archive, ops: Vec<Op>) {
    let first = a.version() + 1;
    let batch: Arc<[Record]> = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| record(first + i as u64, op))
        .collect();
    a.append(batch).unwrap();
}

/// Every tree id reachable from `tree` (itself included).
fn trees(repo: &Repository, tree: Oid, out: &mut HashSet<Oid>) {
    if !out.insert(tree) {
        return;
    }
    for e in repo.find_tree(tree).unwrap().iter() {
        if e.kind() == Some(ObjectType::Tree) {
            trees(repo, e.id(), out);
        }
    }
}

/// (count, bytes) of the trees of commit `new` that its parent does not have.
fn new_trees(repo: &Repository, new: Oid) -> (usize, usize) {
    let commit = repo.find_commit(new).unwrap();
    let (mut old, mut now) = (HashSet::new(), HashSet::new());
    trees(repo, commit.parent(0).unwrap().tree_id(), &mut old);
    trees(repo, commit.tree_id(), &mut now);
    let odb = repo.odb().unwrap();
    now.difference(&old)
        .map(|id| odb.read_header(*id).unwrap().0)
        .fold((0, 0), |(n, bytes), size| (n + 1, bytes + size))
}

/// Commits one observation to one entity of a graph of 3000 in `layout`; returns the trees
/// (count, bytes) that commit wrote, as git sees them.
fn one_touch(path: &Path, layout: Layout) -> (usize, usize) {
    let mut a = Archive::open(path).unwrap();
    a.set_layout(layout);
    let names: Vec<String> = (0..3000).map(|i| format!("entity-{i:05}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    append(&mut a, vec![create(&refs)]);
    a.commit().unwrap();
    append(&mut a, vec![observe("entity-00042", "touched")]);
    let info = a.commit().unwrap().unwrap();
    let seen = new_trees(&Repository::open(path).unwrap(), info.oid);
    assert_eq!((info.trees_written, info.tree_bytes), seen);
    seen
}

#[test]
fn a_commit_rewrites_the_trees_of_its_buckets_not_one_entry_per_entity() {
    let dir = tempfile::tempdir().unwrap();
    // Root, entities/, one bucket of each level: the entities/ directory has at most 256
    // entries of ~30 bytes, the buckets a dozen and one.
    let (count, bytes) = one_touch(&dir.path().join("fanned"), Layout::CURRENT);
    assert!(count <= 4, "{count} trees written");
    assert!(bytes < 12 * 1024, "{bytes} bytes of trees written");
    // Format 1 rewrites one ~45-byte entry per entity in entities/.
    let (_, flat) = one_touch(&dir.path().join("flat"), Layout::Flat);
    assert!(flat > 3000 * 40, "{flat} bytes of trees in the flat layout");
}

fn has(repo: &Repository, commit: Oid, path: &str) -> bool {
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    tree.get_path(Path::new(path)).is_ok()
}

/// The root commit a format-1 build wrote: README, `meta.json` (format 1, version 0) and an
/// empty `ops.jsonl`.
fn format_1_root(path: &Path) {
    let repo = Repository::init_bare(path).unwrap();
    let mut tb = repo.treebuilder(None).unwrap();
    let meta = layout::pretty(&Meta::of(0, Layout::Flat));
    for (name, bytes) in [
        ("README.md", &b"# mcpfleet shared memory\n"[..]),
        ("meta.json", &meta),
        ("ops.jsonl", b""),
    ] {
        tb.insert(name, repo.blob(bytes).unwrap(), 0o100644)
            .unwrap();
    }
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = git2::Signature::now("mcpfleet-memory", "m@mcpfleet.invalid").unwrap();
    let root = repo.commit(None, &sig, &sig, "init", &tree, &[]).unwrap();
    repo.reference("refs/heads/main", root, true, "").unwrap();
    repo.set_head("refs/heads/main").unwrap();
}

#[tokio::test]
async fn a_format_1_repository_opens_moves_on_its_next_commit_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    // A format-1 root, then two commits by the format-1 commit path.
    format_1_root(path);
    let mut a = Archive::open(path).unwrap();
    assert_eq!(a.head_layout(), Layout::Flat);
    a.set_layout(Layout::Flat);
    append(
        &mut a,
        vec![create(&["a", "b/c", "gone"]), relate("a", "b/c")],
    );
    a.commit().unwrap();
    append(
        &mut a,
        vec![
            observe("a", "before"),
            Op::DeleteEntities(DeleteEntities {
                entity_names: vec!["gone".into()],
            }),
        ],
    );
    let old_head = a.commit().unwrap().unwrap().oid;
    let before = a.graph().clone();
    drop(a);
    let repo = Repository::open(path).unwrap();
    assert_eq!(meta_at(&repo, old_head).format_version, FLAT_FORMAT_VERSION);
    assert!(has(&repo, old_head, "entities/b%2Fc.json"));
    let report = verify(path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);

    // Opens as it was; the next commit moves every file.
    let store = Store::open(path, quick()).unwrap();
    let h = store.handle();
    assert_eq!(view_graph(h.view()), before);
    let v = h.view().version();
    h.write("srv-2", v, observe("a", "after")).await.unwrap();
    store.close().unwrap();
    let head = repo.refname_to_id("refs/heads/main").unwrap();
    let moving = repo.find_commit(head).unwrap();
    assert_eq!(
        moving.parent_id(0).unwrap(),
        old_head,
        "one commit moves it all"
    );
    assert_eq!(meta_at(&repo, head).format_version, FORMAT_VERSION);
    let l = Layout::CURRENT;
    for p in [
        l.entity_path("a"),
        l.entity_path("b/c"),
        l.relation_path("a"),
        l.tombstone_path("gone"),
    ] {
        assert!(has(&repo, head, &p), "{p} missing");
    }
    for p in [
        "entities/a.json",
        "relations/a.json",
        "tombstones/gone.json",
    ] {
        assert!(!has(&repo, head, p), "{p} left behind");
        assert!(has(&repo, old_head, p), "{p} gone from history");
    }
    // The same graph, and what the history's ops replay to.
    let mut replay = Graph::new();
    for r in git_ops(path).values() {
        replay.apply_record(r).unwrap();
    }
    let now = head_graph(path);
    assert_eq!(now, replay);
    assert_eq!(now.entity_file("b/c"), before.entity_file("b/c"));
    let report = verify(path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.commits, 4);
    git_fsck(path);

    // An entity's history spans the move.
    let store = Store::open(path, quick()).unwrap();
    let history = store.handle().history("a", 10);
    store.close().unwrap();
    let commits: HashSet<&str> = history.iter().map(|e| e.commit.as_str()).collect();
    assert_eq!(history.len(), 4, "{history:?}");
    assert!(commits.contains(head.to_string().as_str()));
    assert!(commits.contains(old_head.to_string().as_str()));
}

#[tokio::test]
async fn a_file_in_the_wrong_bucket_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let repo = two_entities(dir.path()).await;
    let b_path = Layout::CURRENT.entity_path("b");
    let wrong = "entities/00/00/b.json";
    assert_ne!(b_path, wrong);
    let b = layout::pretty(&head_graph(dir.path()).entity_file("b").unwrap());
    let op = observe("a", "moved b");
    let a = entity_after(dir.path(), &op, "a");
    forge(
        &repo,
        &[record(3, op)],
        &[
            (
                &Layout::CURRENT.entity_path("a"),
                Some((&a, FileMode::Blob)),
            ),
            (&b_path, None),
            (wrong, Some((&b, FileMode::Blob))),
        ],
    );
    let found = problems(dir.path());
    assert_reported(
        &found,
        &[&format!(
            "{wrong} is in the wrong bucket: it belongs in {b_path}"
        )],
    );
    let err = Store::open(dir.path(), quick()).unwrap_err();
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{wrong}: is in the wrong bucket")),
        "{err}"
    );
}

#[tokio::test]
async fn a_format_newer_than_this_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = two_entities(dir.path()).await;
    let head = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let newer = Meta {
        format_version: FORMAT_VERSION + 1,
        ..Meta::new(2)
    };
    let mut upd = TreeUpdateBuilder::new();
    upd.upsert(
        "meta.json",
        repo.blob(&layout::pretty(&newer)).unwrap(),
        FileMode::Blob,
    );
    let tree = repo
        .find_tree(upd.create_updated(&repo, &head.tree().unwrap()).unwrap())
        .unwrap();
    let sig = git2::Signature::now("later-build", "x@example.com").unwrap();
    repo.commit(Some("refs/heads/main"), &sig, &sig, "v3", &tree, &[&head])
        .unwrap();
    let said = format!(
        "format_version {}, newer than this build",
        FORMAT_VERSION + 1
    );
    for err in [
        Store::open(dir.path(), quick()).unwrap_err(),
        verify(dir.path()).unwrap_err(),
    ] {
        assert!(matches!(err, OpenError::NotOurs { .. }), "{err}");
        assert!(err.to_string().contains(&said), "{err}");
    }
}
