//! No acknowledged write is lost: restarts, crashes with a torn WAL tail, a second owner,
//! stale git locks, failed WAL writes and refused ops.

use std::{fs, sync::Arc};

use super::support::*;
use crate::memory::*;

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
