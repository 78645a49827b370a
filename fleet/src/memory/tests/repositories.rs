//! Repositories the store did not write itself: foreign and damaged ones are refused untouched,
//! clones are backups that open restores, and verify catches trees edited outside the owner.

use std::{fs, path::Path, process::Command};

use git2::{Repository, Signature};

use super::support::*;
use crate::memory::*;

#[test]
fn foreign_and_damaged_repositories_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // A file, not a directory.
    let file = dir.path().join("file");
    fs::write(&file, "data").unwrap();
    assert!(matches!(
        Store::open(&file, quick()),
        Err(OpenError::NotARepository { .. })
    ));
    assert_eq!(fs::read_to_string(&file).unwrap(), "data");
    // Someone else's repository with history.
    let other = dir.path().join("other");
    let repo = Repository::init_bare(&other).unwrap();
    let sig = Signature::now("me", "me@example.com").unwrap();
    let mut tb = repo.treebuilder(None).unwrap();
    tb.insert(
        "meta.json",
        repo.blob(br#"{"format":"else"}"#).unwrap(),
        0o100644,
    )
    .unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let c = repo.commit(None, &sig, &sig, "mine", &tree, &[]).unwrap();
    repo.reference("refs/heads/main", c, true, "").unwrap();
    let err = Store::open(&other, quick()).unwrap_err();
    assert!(matches!(err, OpenError::NotOurs { .. }), "{err}");
    assert_eq!(repo.refname_to_id("refs/heads/main").unwrap(), c);
    // One of ours whose head commit is gone (objects deleted).
    let ours = dir.path().join("ours");
    Store::open(&ours, quick()).unwrap().close().unwrap();
    let head = fs::read_to_string(ours.join("refs/heads/main")).unwrap();
    for e in fs::read_dir(ours.join("objects/pack")).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    let err = Store::open(&ours, quick()).unwrap_err();
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
    assert_eq!(
        fs::read_to_string(ours.join("refs/heads/main")).unwrap(),
        head
    );
    assert!(matches!(verify(&ours), Err(OpenError::Corrupt { .. })));
}

#[tokio::test]
async fn clones_are_backups_that_open_restores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory");
    let store = Store::open(&path, quick()).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a", "b/c", ".d"]))
        .await
        .unwrap();
    h.write("srv-2", 1, relate("a", "b/c")).await.unwrap();
    let live = view_graph(h.view());
    store.close().unwrap();

    // A bare clone through libgit2 and a clone with a work tree through git.
    let bare = dir.path().join("bare");
    git2::build::RepoBuilder::new()
        .bare(true)
        .clone(path.to_str().unwrap(), &bare)
        .unwrap();
    let mut clones = vec![bare];
    let worktree = dir.path().join("worktree");
    let cloned = Command::new("git")
        .args(["clone", "-q"])
        .arg(&path)
        .arg(&worktree)
        .status()
        .is_ok_and(|s| s.success());
    if cloned {
        assert!(
            worktree
                .join(layout::Layout::CURRENT.entity_path("b/c"))
                .is_file()
        );
        clones.push(worktree);
    }
    for clone in clones {
        let store = Store::open(&clone, quick()).unwrap();
        let h = store.handle();
        assert_eq!(view_graph(h.view()), live, "{}", clone.display());
        assert_eq!(
            h.write("srv-3", 2, observe("a", "restored"))
                .await
                .unwrap()
                .version,
            3
        );
        store.close().unwrap();
        let report = verify(&clone).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        assert_eq!(report.version, 3);
        git_fsck(&clone);
    }
}

#[tokio::test]
async fn verify_reports_a_tree_edited_outside_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a", "b"])).await.unwrap();
    store.close().unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.commits, 2);
    assert!(report.objects_checked >= 8);

    // Someone edits a's entity file by hand and commits it.
    let a_path = layout::Layout::CURRENT.entity_path("a");
    let repo = Repository::open(dir.path()).unwrap();
    let head = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let tree = head.tree().unwrap();
    let mut file: serde_json::Value = serde_json::from_slice(
        repo.find_blob(tree.get_path(Path::new(&a_path)).unwrap().id())
            .unwrap()
            .content(),
    )
    .unwrap();
    file["entityType"] = "hacked".into();
    let blob = repo.blob(&serde_json::to_vec(&file).unwrap()).unwrap();
    let mut upd = git2::build::TreeUpdateBuilder::new();
    upd.upsert(&a_path, blob, git2::FileMode::Blob);
    let new_tree = repo
        .find_tree(upd.create_updated(&repo, &tree).unwrap())
        .unwrap();
    let sig = Signature::now("intruder", "x@example.com").unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "edit",
        &new_tree,
        &[&head],
    )
    .unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("changes {a_path} but none of its ops touched it"))),
        "{:?}",
        report.problems
    );
    assert!(report.problems.iter().any(|p| p.contains("head tree")));
}
