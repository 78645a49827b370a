//! Store-level tests: restart, crash recovery, locks, failures, foreign repositories, clones,
//! verify, history, and following the store from another view.

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use git2::{Repository, Signature};

use super::{test_ops::create_entities, *};

const WAIT: Duration = Duration::from_secs(10);

fn create(names: &[&str]) -> Op {
    create_entities(names, "service", |n| format!("{n} was created"))
}

fn observe(name: &str, text: &str) -> Op {
    Op::AddObservations(AddObservations {
        observations: vec![ObservationAddition {
            entity_name: name.into(),
            contents: vec![text.into()],
        }],
    })
}

fn relate(from: &str, to: &str) -> Op {
    Op::CreateRelations(CreateRelations {
        relations: vec![Relation {
            from: from.into(),
            to: to.into(),
            relation_type: "calls".into(),
        }],
    })
}

fn quick() -> StoreOptions {
    StoreOptions {
        commit_interval: Duration::from_millis(5),
        ..StoreOptions::default()
    }
}

/// Options under which only the first batch is committed before close: the rest stays in
/// the WAL, as after a crash.
fn lazy() -> StoreOptions {
    StoreOptions {
        commit_interval: Duration::from_secs(3600),
        ..StoreOptions::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
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

fn wal_segments(gitdir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(gitdir.join("mcpfleet/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The graph stored at the head of the repository (loaded from files, not replayed).
fn head_graph(path: &Path) -> Graph {
    Archive::open(path).unwrap().graph().clone()
}

fn view_graph(view: &View) -> Graph {
    Graph::from_snapshot(view.snapshot()).unwrap()
}

/// Every op in `ops.jsonl` along `main`, by version.
fn git_ops(path: &Path) -> BTreeMap<u64, Record> {
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

fn git_fsck(path: &Path) {
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

#[tokio::test]
async fn restart_resumes_with_all_data_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory");
    let store = Store::open(&path, quick()).unwrap();
    let h = store.handle();
    let a = h.write("srv-1", 0, create(&["api", "db"])).await.unwrap();
    assert_eq!(a.version, 1);
    let seen = h.view().version();
    h.write("srv-2", seen, relate("api", "db")).await.unwrap();
    let a = h
        .write("srv-1", seen, observe("db", "runs postgres"))
        .await
        .unwrap();
    assert_eq!(a.version, 3);
    assert_eq!(h.view().version(), 3, "read your writes");
    let before = view_graph(h.view());
    h.wait_committed(3, WAIT).await.unwrap();
    let history = h.history("db", 10);
    assert_eq!(
        history
            .iter()
            .map(|e| e.operation.as_str())
            .collect::<Vec<_>>(),
        ["add_observations", "create_relations", "create_entities"]
    );
    assert!(history.iter().all(|e| e.commit.len() == 40));
    assert_eq!(history[1].server, "srv-2");
    store.close().unwrap();

    assert_eq!(head_graph(&path), before, "head load equals the live state");
    let store = Store::open(&path, quick()).unwrap();
    let h = store.handle();
    assert_eq!(view_graph(h.view()), before);
    assert_eq!(h.history("db", 1)[0].version, 3, "history rebuilt at open");
    let a = h
        .write("srv-3", 3, observe("api", "is public"))
        .await
        .unwrap();
    assert_eq!(a.version, 4, "versions continue");
    store.close().unwrap();
    let report = verify(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(
        (
            report.version,
            report.ops,
            report.entities,
            report.relations
        ),
        (4, 4, 2, 1)
    );
    git_fsck(&path);
}

#[tokio::test]
async fn a_crash_loses_no_acknowledged_write_and_a_torn_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory");
    let crashed = dir.path().join("crashed");
    let store = Store::open(&path, lazy()).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a"])).await.unwrap();
    h.wait_committed(1, WAIT).await.unwrap();
    for i in 0..20 {
        h.write("srv-1", 1, observe("a", &format!("fact {i}")))
            .await
            .unwrap();
    }
    assert_eq!(h.stats().committed_version, 1);
    let live = view_graph(h.view());
    // The disk as a kill -9 would leave it: 20 acknowledged ops only in the WAL.
    copy_dir(&path, &crashed);
    store.close().unwrap();
    // Plus half a record that was being written.
    let seg = wal_segments(&crashed).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let half = bytes[..40].to_vec();
    bytes.extend_from_slice(&half);
    fs::write(&seg, &bytes).unwrap();
    let report = verify(&crashed).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.wal_pending, 20);
    assert_eq!(report.notes.len(), 1, "torn tail noted");

    let store = Store::open(&crashed, quick()).unwrap();
    let h = store.handle();
    assert_eq!(view_graph(h.view()), live);
    h.wait_committed(21, WAIT).await.unwrap();
    let a = h.write("srv-2", 21, observe("a", "after")).await.unwrap();
    assert_eq!(a.version, 22);
    store.close().unwrap();
    assert_eq!(git_ops(&crashed).len(), 22);
    let report = verify(&crashed).unwrap();
    assert!(report.is_ok() && report.notes.is_empty() && report.wal_pending == 0);
    // Committed segments are trimmed once a newer one exists; the rest holds nothing new.
    assert!(wal_segments(&crashed).len() <= 2);
}

#[tokio::test]
async fn a_second_owner_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let err = Store::open(dir.path(), quick()).unwrap_err();
    assert!(matches!(err, OpenError::Owned { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "memory repository {} is already owned by another process (pid {})",
            dir.path().display(),
            std::process::id()
        )
    );
    assert!(matches!(verify(dir.path()), Err(OpenError::Owned { .. })));
    store.close().unwrap();
    Store::open(dir.path(), quick()).unwrap().close().unwrap();
}

#[tokio::test]
async fn stale_git_locks_are_cleared_at_open() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path(), quick()).unwrap().close().unwrap();
    let stale = dir.path().join("refs/heads/main.lock");
    fs::write(&stale, "0000000000000000000000000000000000000000\n").unwrap();
    fs::write(dir.path().join("HEAD.lock"), "junk").unwrap();
    let tmp_pack = dir.path().join("objects/pack/tmp_mcpfleet_1_1.pack");
    fs::write(&tmp_pack, "half a pack").unwrap();
    let orphan = dir
        .path()
        .join(format!("objects/pack/pack-{}.pack", "0".repeat(40)));
    fs::write(&orphan, "a pack whose index was never written").unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    assert!(!stale.exists() && !dir.path().join("HEAD.lock").exists());
    assert!(!tmp_pack.exists() && !orphan.exists());
    let h = store.handle();
    h.write("srv-1", 0, create(&["x"])).await.unwrap();
    h.wait_committed(1, WAIT).await.unwrap();
    store.close().unwrap();
    assert_eq!(git_ops(dir.path()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_wal_write_acknowledges_nothing_and_the_store_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(WalFaults::new());
    let store = Store::open(
        dir.path(),
        StoreOptions {
            wal_faults: Some(faults.clone()),
            ..quick()
        },
    )
    .unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a"])).await.unwrap();
    let before = view_graph(h.view());

    faults.fail_next_appends(1);
    let err = h.write("srv-1", 1, create(&["b"])).await.unwrap_err();
    assert!(matches!(err, WriteError::Storage(_)), "{err}");
    assert_eq!(view_graph(h.view()), before, "nothing applied");
    assert_eq!(h.view().search_nodes("b").entities.len(), 0);
    let ack = h.write("srv-1", 1, create(&["c"])).await.unwrap();
    assert_eq!(ack.version, 2, "the failed write took no version");
    assert_eq!(h.stats().wal_failures, 1);

    // Now the cut-back fails too: poisoned, reads still work, writes refused.
    faults.fail_next_appends(1);
    faults.fail_truncate(true);
    let err = h.write("srv-1", 2, create(&["d"])).await.unwrap_err();
    assert!(matches!(err, WriteError::Poisoned(_)), "{err}");
    faults.fail_truncate(false);
    let err = h.write("srv-1", 2, create(&["e"])).await.unwrap_err();
    assert!(matches!(err, WriteError::Poisoned(_)), "{err}");
    assert!(h.stats().poisoned);
    assert_eq!(h.view().read_graph().entities.len(), 2);
    store.close().unwrap();

    // Reopening recovers from what reached the disk: half a batch is a torn tail.
    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    let names: Vec<String> = h
        .view()
        .read_graph()
        .entities
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(
        h.write("srv-1", 2, create(&["f"])).await.unwrap().version,
        3
    );
    store.close().unwrap();
    assert!(verify(dir.path()).unwrap().is_ok());
}

#[tokio::test]
async fn refused_ops_take_no_version_and_the_race_rule_holds_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a"])).await.unwrap();
    let err = h
        .write("srv-1", 1, observe("ghost", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Entity with name ghost not found");
    let err = h
        .write(
            "srv-1",
            1,
            Op::CreateEntities(CreateEntities {
                entities: vec![Entity {
                    name: String::new(),
                    entity_type: "t".into(),
                    observations: vec![],
                }],
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "entities[0].name: must not be empty");
    assert!(matches!(
        h.write("bad id", 1, create(&["z"])).await,
        Err(WriteError::Invalid(_))
    ));
    // srv-2 saw version 1 and deletes; srv-3 also saw only version 1 and adds: add wins.
    let del = Op::DeleteEntities(DeleteEntities {
        entity_names: vec!["a".into()],
    });
    assert_eq!(h.write("srv-2", 1, del).await.unwrap().version, 2);
    let ack = h
        .write("srv-3", 1, observe("a", "still used"))
        .await
        .unwrap();
    assert_eq!(ack.version, 3);
    let a = h.view().entity("a").unwrap();
    assert_eq!(a.observations, ["still used"]);
    assert_eq!(a.entity_type, "service");
    // A writer that had seen the delete is refused.
    let del = Op::DeleteEntities(DeleteEntities {
        entity_names: vec!["a".into()],
    });
    h.write("srv-2", 3, del).await.unwrap();
    assert!(matches!(
        h.write("srv-3", 4, observe("a", "late")).await,
        Err(WriteError::Rejected(ApplyError::EntityNotFound { .. }))
    ));
    assert_eq!(h.stats().ops_rejected, 2);
    let live = view_graph(h.view());
    store.close().unwrap();
    assert_eq!(
        head_graph(dir.path()),
        live,
        "tags and tombstones survive the archive"
    );
}

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
        assert!(worktree.join("entities/b%2Fc.json").is_file());
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

    // Someone edits entities/a.json by hand and commits it.
    let repo = Repository::open(dir.path()).unwrap();
    let head = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let tree = head.tree().unwrap();
    let mut file: serde_json::Value = serde_json::from_slice(
        repo.find_blob(tree.get_path(Path::new("entities/a.json")).unwrap().id())
            .unwrap()
            .content(),
    )
    .unwrap();
    file["entityType"] = "hacked".into();
    let blob = repo.blob(&serde_json::to_vec(&file).unwrap()).unwrap();
    let mut upd = git2::build::TreeUpdateBuilder::new();
    upd.upsert("entities/a.json", blob, git2::FileMode::Blob);
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
            .any(|p| p.contains("changes entities/a.json but none of its ops touched it")),
        "{:?}",
        report.problems
    );
    assert!(report.problems.iter().any(|p| p.contains("head tree")));
}

/// A follower reads the log up to the owner's durable mark: from a follow point, across WAL
/// segments, to exactly the owner's state.
#[tokio::test]
async fn followers_read_the_log_up_to_the_durable_mark() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        wal_segment_bytes: 300,
        ..lazy()
    };
    let store = Store::open(dir.path(), options).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a"])).await.unwrap();
    let point = h.follow_point();
    let point: FollowPoint = serde_json::from_str(&serde_json::to_string(&point).unwrap()).unwrap();
    let remote = View::from_snapshot(point.snapshot.clone()).unwrap();
    let mut tail = wal::Tail::open(&point.wal_dir, point.position, 1).unwrap();
    let marks = mark::MarkReader::open(&point.mark_path).unwrap();
    let mut last = 0;
    for i in 0..20 {
        last = h
            .write("srv-2", i, create(&[&format!("e{i}")]))
            .await
            .unwrap()
            .version;
    }
    let m = marks.read().unwrap();
    assert_eq!(m.version, last, "the mark is published before the ack");
    assert!(
        m.position.segment > point.position.segment,
        "the writes crossed segments"
    );
    let records = tail.read_to(m.position, m.version).unwrap();
    assert_eq!(records.len(), 20);
    remote.apply_batch_at(&records, m.at_us).unwrap();
    assert_eq!(remote.read_graph(), h.view().read_graph());
    assert_eq!(remote.visible_at(last), Some(m.at_us));
    // Nothing new: nothing read.
    assert!(tail.read_to(m.position, m.version).unwrap().is_empty());
    store.close().unwrap();
}

/// A store served on an abstract socket (as `fleet up` does in process mode) and a server
/// process's memory connected to it.
async fn remote_store(
    options: StoreOptions,
) -> (
    tempfile::TempDir,
    Store,
    tokio_util::sync::CancellationToken,
    remote::RemoteMemory,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let name = remote::socket_name();
    let listener = remote::listen(&name).unwrap();
    tokio::spawn(remote::serve(store.handle(), listener, stop.clone()));
    let r = remote::RemoteMemory::connect(&name, stop.clone())
        .await
        .unwrap();
    (dir, store, stop, r)
}

/// A server process's memory over the real socket: reads see every durable write without
/// anything pushed, a `minVersion` ahead of the log waits for the write that reaches it, and a
/// follower whose log segment was trimmed while idle starts again from a fresh follow point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_memory_follows_the_log_and_resyncs_when_its_segment_is_gone() {
    let (dir, store, stop, r) = remote_store(StoreOptions {
        wal_segment_bytes: 300,
        ..quick()
    })
    .await;
    let h = store.handle();
    let mem = Memory::Remote(r.clone());

    // A write made elsewhere is in the next read here, with no wait asked for.
    let v1 = h.write("srv-1", 0, create(&["a"])).await.unwrap().version;
    assert_eq!(mem.fresh_view().await.version(), v1);
    assert!(mem.fresh_view().await.entity("a").is_some());
    // A write made here is readable here when it returns.
    let v2 = mem.write("srv-2", create(&["b"])).await.unwrap().version;
    assert!(r.view().entity("b").is_some() && r.view().version() >= v2);

    // A minVersion not yet durable waits for the write that reaches it.
    let wanted = v2 + 1;
    let waiter = {
        let mem = mem.clone();
        tokio::spawn(async move { mem.wait_for(wanted, WAIT).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "nothing reached {wanted} yet");
    h.write("srv-1", v2, create(&["c"])).await.unwrap();
    waiter.await.unwrap().unwrap();
    assert!(r.view().entity("c").is_some());
    let err = mem
        .wait_for(wanted + 100, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(err.wanted, wanted + 100);

    // Idle while many writes go by, are committed and their segments trimmed: the next read
    // finds its segment gone, takes a fresh follow point and still sees everything.
    let before = wal::segments(&dir.path().join("mcpfleet/wal")).unwrap();
    let mut last = 0;
    for i in 0..60 {
        last = h
            .write("srv-1", 0, create(&[&format!("x{i}")]))
            .await
            .unwrap()
            .version;
    }
    h.wait_committed(last, WAIT).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while wal::segments(&dir.path().join("mcpfleet/wal"))
        .unwrap()
        .first()
        == before.first()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "segments never trimmed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let view = mem.fresh_view().await;
    assert_eq!(r.follow_points(), 2, "this read took a fresh follow point");
    assert_eq!(view.version(), last);
    assert_eq!(view.read_graph(), h.view().read_graph());
    stop.cancel();
    store.close().unwrap();
}

/// A server process that fell further behind than replaying is worth starts again from a
/// snapshot, and still misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_memory_far_behind_takes_a_snapshot_instead_of_replaying() {
    let (_dir, store, stop, r) = remote_store(quick()).await;
    let h = store.handle();
    let mem = Memory::Remote(r.clone());
    h.write("srv-1", 0, create(&["first"])).await.unwrap();
    assert!(mem.fresh_view().await.entity("first").is_some());
    let points = r.follow_points();
    // More records than the small graph's replay limit (10,000), in a few group commits.
    let writes: Vec<_> = (0..10_050)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move {
                h.write("srv-1", 0, observe("first", &format!("o{i}")))
                    .await
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap().unwrap();
    }
    let view = mem.fresh_view().await;
    assert!(r.follow_points() > points, "started again from a snapshot");
    assert_eq!(view.version(), h.view().version());
    assert_eq!(view.read_graph(), h.view().read_graph());
    stop.cancel();
    store.close().unwrap();
}
