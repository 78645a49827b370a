//! Clock stamps survive restarts: a reopened store stamps after the newest stamp it holds,
//! whether that is only in the write-ahead log or only in the head commit's `meta.json`, even
//! when the wall clock is behind it (a clock stepped back, or stamps from a faster node).

use std::{fs, time::SystemTime};

use super::support::*;
use crate::memory::{hlc, *};

fn head_meta_hlc(path: &std::path::Path) -> Option<u64> {
    let repo = git2::Repository::open(path).unwrap();
    let head = repo.refname_to_id("refs/heads/main").unwrap();
    meta_at(&repo, head).hlc
}

#[tokio::test]
async fn stamps_increase_across_restarts_from_the_log_and_from_git() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a"])).await.unwrap();
    h.write("srv-1", 1, observe("a", "x")).await.unwrap();
    h.wait_committed(2, WAIT).await.unwrap();
    store.close().unwrap();
    let ops = git_ops(dir.path());
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(ops[&1].hlc < ops[&2].hlc, "{ops:?}");
    assert!(now_ms.abs_diff(hlc::wall_ms(ops[&2].hlc)) < 60_000);
    assert_eq!(head_meta_hlc(dir.path()), Some(ops[&2].hlc));

    // An op only in the log, stamped an hour ahead of this machine's clock.
    for seg in wal_segments(dir.path()) {
        fs::remove_file(seg).unwrap();
    }
    let ahead = (now_ms + 3_600_000) << 16;
    let mut buf = Vec::new();
    let record = Record {
        effect: None,
        deps: Default::default(),
        version: 3,
        server: "srv-2".into(),
        seen: 2,
        time_ms: now_ms + 3_600_000,
        hlc: ahead,
        op: observe("a", "from the future"),
    };
    wal::encode_v1(&record, &mut buf);
    fs::write(dir.path().join(format!("mcpfleet/wal/{:020}.wal", 3)), &buf).unwrap();

    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    h.write("srv-1", 3, observe("a", "y")).await.unwrap();
    h.wait_committed(4, WAIT).await.unwrap();
    store.close().unwrap();
    let after_log = git_ops(dir.path())[&4].hlc;
    assert!(after_log > ahead, "restored from the log");

    // Now the log is trimmed: only meta.json remembers.
    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    h.write("srv-1", 4, observe("a", "z")).await.unwrap();
    h.wait_committed(5, WAIT).await.unwrap();
    store.close().unwrap();
    let after_meta = git_ops(dir.path())[&5].hlc;
    assert!(after_meta > after_log, "restored from meta.json");
    assert_eq!(head_meta_hlc(dir.path()), Some(after_meta));
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
