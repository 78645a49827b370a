//! The archive's round trips on real repositories: commits load back with their authors,
//! packs merge geometrically, foreign and broken repositories are refused.

#![allow(clippy::unwrap_used)]

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use git2::Repository;

use super::{consolidate::*, objects::*, read::*, writer::*};
use crate::memory::op::{CreateEntities, CreateRelations, DeleteEntities, Entity, Op, Relation};
use crate::memory::{error::OpenError, layout::Layout, op::Record};

fn rec(version: u64, server: &str, op: Op) -> Record {
    Record {
        effect: None,
        deps: Default::default(),
        version,
        server: server.into(),
        seen: version - 1,
        time_ms: 1_700_000_000_000 + version,
        hlc: 0,
        op,
    }
}

fn create(name: &str) -> Op {
    Op::CreateEntities(CreateEntities {
        entities: vec![Entity {
            name: name.into(),
            entity_type: "thing".into(),
            observations: vec![format!("{name} is a thing")],
        }],
    })
}

#[test]
fn commits_load_back_and_describe_their_authors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    let mut a = Archive::open(&path).unwrap();
    assert_eq!(a.version(), 0);
    a.append(Arc::from(vec![
        rec(1, "srv-b", create("a/b")),
        rec(2, "srv-a", create(".hidden")),
        rec(
            3,
            "srv-b",
            Op::CreateRelations(CreateRelations {
                relations: vec![Relation {
                    from: "a/b".into(),
                    to: ".hidden".into(),
                    relation_type: "links".into(),
                }],
            }),
        ),
    ]))
    .unwrap();
    let info = a.commit().unwrap().unwrap();
    assert!(info.durable);
    assert_eq!((info.first_version, info.last_version, info.ops), (1, 3, 3));
    a.append(Arc::from(vec![rec(
        4,
        "srv-a",
        Op::DeleteEntities(DeleteEntities {
            entity_names: vec![".hidden".into()],
        }),
    )]))
    .unwrap();
    a.commit().unwrap().unwrap();
    assert!(a.commit().unwrap().is_none());
    let expected = a.graph().clone();
    drop(a);

    let repo = Repository::open(&path).unwrap();
    let head = repo.find_reference(MAIN).unwrap().peel_to_commit().unwrap();
    let (g, meta) = load_graph(&repo, &head.tree().unwrap()).unwrap();
    assert_eq!(meta.version, 4);
    assert_eq!(g, expected);
    let tree = head.tree().unwrap();
    assert!(
        tree.get_path(Path::new(&Layout::CURRENT.tombstone_path(".hidden")))
            .is_ok()
    );
    assert!(
        tree.get_path(Path::new(&Layout::CURRENT.entity_path(".hidden")))
            .is_err()
    );
    assert!(
        tree.get_path(Path::new("relations")).is_err(),
        "empty dir removed"
    );
    let first = head.parent(0).unwrap();
    assert_eq!(first.author().name().unwrap(), "srv-b");
    assert_eq!(first.committer().name().unwrap(), COMMITTER);
    let msg = first.message().unwrap();
    assert!(
        msg.starts_with("v1..v3: 3 ops from srv-a, srv-b\n"),
        "{msg}"
    );
    assert!(msg.contains("Co-authored-by: srv-a <srv-a@mcpfleet.invalid>"));
    assert_eq!(commit_ops(&repo, &first).unwrap().len(), 3);
    assert!(head.message().unwrap().starts_with("v4: 1 op from srv-a\n"));
    // Every commit is one pack; nothing loose.
    assert_eq!(pack_count(&gitdir_of(&repo)), 3);
}

fn gitdir_of(repo: &Repository) -> PathBuf {
    repo.path().to_path_buf()
}

#[test]
fn packs_are_merged_geometrically() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Archive::open(dir.path()).unwrap();
    for v in 1..=40u64 {
        a.append(Arc::from(vec![rec(v, "srv-a", create(&format!("e{v}")))]))
            .unwrap();
        a.commit().unwrap().unwrap();
        consolidate_packs(a.gitdir(), 8).unwrap();
        assert!(pack_count(a.gitdir()) <= 9);
    }
    // A pack with deltas (as `git gc` leaves) merges too.
    let gc = std::process::Command::new("git")
        .args(["repack", "-adq", "--window=50"])
        .current_dir(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    for v in 41..=50u64 {
        a.append(Arc::from(vec![rec(v, "srv-a", create(&format!("e{v}")))]))
            .unwrap();
        a.commit().unwrap().unwrap();
        consolidate_packs(a.gitdir(), 2).unwrap();
    }
    assert!(pack_count(a.gitdir()) <= 3, "gc ran: {gc}");
    let repo = Repository::open(dir.path()).unwrap();
    let head = repo.find_reference(MAIN).unwrap().peel_to_commit().unwrap();
    let (g, _) = load_graph(&repo, &head.tree().unwrap()).unwrap();
    assert_eq!(g.entity_count(), 50);
    let mut walk = repo.revwalk().unwrap();
    walk.push(head.id()).unwrap();
    assert_eq!(walk.count(), 51);
    drop(a);
    let report = crate::memory::verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    if let Ok(out) = std::process::Command::new("git")
        .args(["fsck", "--full", "--strict"])
        .current_dir(dir.path())
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn foreign_and_broken_repositories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A plain directory with a file in it.
    let plain = dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("notes.txt"), "hello").unwrap();
    assert!(matches!(
        Archive::open(&plain),
        Err(OpenError::NotARepository { .. })
    ));
    assert_eq!(
        fs::read_to_string(plain.join("notes.txt")).unwrap(),
        "hello"
    );
    // Somebody else's repository.
    let other = dir.path().join("other");
    let repo = Repository::init(&other).unwrap();
    let sig = git2::Signature::now("me", "me@example.com").unwrap();
    let mut tb = repo.treebuilder(None).unwrap();
    tb.insert("README", repo.blob(b"mine").unwrap(), 0o100644)
        .unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let c = repo.commit(None, &sig, &sig, "mine", &tree, &[]).unwrap();
    repo.reference(MAIN, c, true, "").unwrap();
    let err = Archive::open(&other).unwrap_err();
    assert!(matches!(err, OpenError::NotOurs { .. }), "{err}");
    assert_eq!(repo.refname_to_id(MAIN).unwrap(), c);
}
