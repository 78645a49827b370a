//! `verify` on long histories and on commits forged outside the owner. Its cost must grow with
//! the history (the bytes of the objects it reads), not with history x graph: a history with
//! 8x the ops and entities in the same number of commits must cost well under the 64x a
//! re-read of the entities directory per looked-up file costs. And reading each directory
//! once must not hide damage: a file that differs from what its commit's ops produce, files
//! removed, added or changed in mode by no op, and objects missing from the repository are
//! each reported.

use std::{fs, path::Path, sync::Arc, time::Instant};

use git2::{FileMode, Oid, Repository, Signature, build::TreeUpdateBuilder};

use super::support::*;
use crate::memory::{
    layout::{self, Layout, Meta},
    *,
};

/// CPU time of this thread in ns (the scheduler's account, so other processes on a busy
/// machine barely move it); wall time where the kernel does not keep it.
fn thread_cpu_ns(wall: Instant) -> u128 {
    fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u128>().ok())
        .filter(|&ns| ns > 0)
        .unwrap_or_else(|| wall.elapsed().as_nanos())
}

/// A repository of `commits` commits of `per_commit` ops each, every op creating a new
/// entity (the sync scenario's writes), built through the store's commit path.
fn history(path: &Path, commits: u64, per_commit: u64) {
    let mut archive = Archive::open(path).unwrap();
    for c in 0..commits {
        let batch: Arc<[Record]> = (0..per_commit)
            .map(|i| {
                let version = c * per_commit + i + 1;
                Record {
                    effect: None,
                    deps: Default::default(),
                    version,
                    server: format!("srv-{}", version % 5),
                    seen: version - 1,
                    time_ms: 1_780_000_000_000,
                    hlc: 0,
                    op: create(&[&format!("probe-{version}")]),
                }
            })
            .collect();
        archive.append(batch).unwrap();
        archive.commit().unwrap();
    }
}

/// The least CPU time of `runs` verifications of a sound repository.
fn verify_cpu_ns(path: &Path, runs: usize) -> u128 {
    (0..runs)
        .map(|_| {
            let wall = Instant::now();
            let start = thread_cpu_ns(wall);
            let report = verify(path).unwrap();
            let spent = thread_cpu_ns(wall) - start;
            assert!(report.is_ok(), "{:?}", report.problems);
            spent
        })
        .min()
        .unwrap()
}

#[test]
fn verify_costs_what_the_history_holds_not_history_times_entities() {
    let dir = tempfile::tempdir().unwrap();
    let (small, large) = (dir.path().join("small"), dir.path().join("large"));
    history(&small, 20, 25);
    history(&large, 20, 200);
    let small_ns = verify_cpu_ns(&small, 3);
    let large_ns = verify_cpu_ns(&large, 2);
    let ratio = large_ns as f64 / small_ns.max(1) as f64;
    eprintln!("verify: 500 ops {small_ns} ns, 4000 ops {large_ns} ns, ratio {ratio:.1}");
    // Linear: ~8x (the objects hold 8x the bytes). One load of the entities directory per
    // looked-up file: ~64x.
    assert!(ratio < 24.0, "8x the history cost {ratio:.1}x");
}

/// A file a forged commit sets (content and mode) or removes (None).
pub(super) type Change<'a> = (&'a str, Option<(&'a [u8], FileMode)>);

/// Commits on top of `main` what the owner would for `records` (their `ops.jsonl` and
/// `meta.json`) with `files` set to a blob and mode, or removed (None).
pub(super) fn forge(repo: &Repository, records: &[Record], files: &[Change<'_>]) -> Oid {
    let head = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let mut upd = TreeUpdateBuilder::new();
    let mut ops = Vec::new();
    for r in records {
        serde_json::to_writer(&mut ops, r).unwrap();
        ops.push(b'\n');
    }
    let version = records.last().map_or(0, |r| r.version);
    let meta = layout::pretty(&Meta::new(version));
    upd.upsert("ops.jsonl", repo.blob(&ops).unwrap(), FileMode::Blob);
    upd.upsert("meta.json", repo.blob(&meta).unwrap(), FileMode::Blob);
    for (path, file) in files {
        match file {
            Some((bytes, mode)) => upd.upsert(*path, repo.blob(bytes).unwrap(), *mode),
            None => upd.remove(*path),
        };
    }
    let tree = repo
        .find_tree(upd.create_updated(repo, &head.tree().unwrap()).unwrap())
        .unwrap();
    let sig = Signature::now("community-0001", "x@example.com").unwrap();
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "forged",
        &tree,
        &[&head],
    )
    .unwrap()
}

pub(super) fn record(version: u64, op: Op) -> Record {
    Record {
        effect: None,
        deps: Default::default(),
        version,
        server: "community-0001".into(),
        seen: version - 1,
        hlc: 0,
        time_ms: 1_780_000_000_000,
        op,
    }
}

/// A store at version 2: entities `a` and `b`, a relation from `a` to `b`.
pub(super) async fn two_entities(path: &Path) -> Repository {
    let store = Store::open(path, quick()).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a", "b"])).await.unwrap();
    h.write("srv-1", 1, relate("a", "b")).await.unwrap();
    store.close().unwrap();
    Repository::open(path).unwrap()
}

/// The entity file of `name` as the owner writes it after `op` at version 3.
pub(super) fn entity_after(path: &Path, op: &Op, name: &str) -> Vec<u8> {
    let mut g = head_graph(path);
    g.apply(op, 3, 2).unwrap();
    layout::pretty(&g.entity_file(name).unwrap())
}

fn remove_loose(repo: &Repository, id: Oid) {
    let hex = id.to_string();
    fs::remove_file(repo.path().join("objects").join(&hex[..2]).join(&hex[2..])).unwrap();
}

pub(super) fn problems(path: &Path) -> Vec<String> {
    let report = verify(path).unwrap();
    assert!(!report.is_ok());
    report.problems
}

pub(super) fn assert_reported(problems: &[String], needles: &[&str]) {
    assert!(
        problems
            .iter()
            .any(|p| needles.iter().all(|n| p.contains(n))),
        "no problem with {needles:?} in {problems:?}"
    );
}

#[tokio::test]
async fn verify_reports_files_that_differ_from_their_ops() {
    let dir = tempfile::tempdir().unwrap();
    let repo = two_entities(dir.path()).await;
    // The op adds an observation to `a`; a's entity file stays as it was.
    forge(&repo, &[record(3, observe("a", "lost"))], &[]);
    let found = problems(dir.path());
    let a = Layout::CURRENT.entity_path("a");
    assert_reported(
        &found,
        &[&format!("{a} is not what the commit's ops produce")],
    );
}

#[tokio::test]
async fn verify_reports_files_changed_removed_or_added_by_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let repo = two_entities(dir.path()).await;
    let op = observe("b", "seen");
    let b = entity_after(dir.path(), &op, "b");
    let a = entity_after(dir.path(), &op, "a");
    let [a_path, b_path, rel_path] = [
        Layout::CURRENT.entity_path("a"),
        Layout::CURRENT.entity_path("b"),
        Layout::CURRENT.relation_path("a"),
    ];
    forge(
        &repo,
        &[record(3, op)],
        &[
            (&b_path, Some((&b, FileMode::Blob))),
            (&a_path, Some((&a, FileMode::BlobExecutable))),
            (&rel_path, None),
            ("extra/notes.txt", Some((b"hello", FileMode::Blob))),
        ],
    );
    let found = problems(dir.path());
    for p in [a_path.as_str(), &rel_path, "extra/notes.txt"] {
        assert_reported(
            &found,
            &[&format!("changes {p} but none of its ops touched it")],
        );
    }
    assert!(!found.iter().any(|p| p.contains(&b_path)), "{found:?}");
}

#[tokio::test]
async fn verify_reports_missing_objects_of_touched_files() {
    let dir = tempfile::tempdir().unwrap();
    let repo = two_entities(dir.path()).await;
    let op = observe("a", "gone");
    let a = entity_after(dir.path(), &op, "a");
    let a_path = Layout::CURRENT.entity_path("a");
    let commit = forge(
        &repo,
        &[record(3, op)],
        &[(&a_path, Some((&a, FileMode::Blob)))],
    );
    let entities = repo
        .find_commit(commit)
        .unwrap()
        .tree()
        .unwrap()
        .get_name("entities")
        .unwrap()
        .id();
    let blob = repo.blob(&a).unwrap();

    // The blob of the touched file is gone.
    remove_loose(&repo, blob);
    let found = problems(dir.path());
    assert_reported(&found, &[&a_path, &blob.to_string(), "unreadable"]);
    assert_reported(&found, &["commit", &format!("{a_path} is unreadable")]);

    // The whole entities directory of the commit is gone.
    remove_loose(&repo, entities);
    let found = problems(dir.path());
    assert_reported(&found, &["entities (", "unreadable"]);
    assert_reported(&found, &["commit", &a_path]);
}
