//! A damaged or old write-ahead log, through the store: damage to acknowledged writes git does
//! not hold refuses the open with the files untouched (and `verify` says so) until the
//! operator salvages; damage in what git holds only warns and goes with the next trim; a
//! format-1 log opens and migrates; rotation and trimming keep a long storm's log short.

use std::{fs, path::Path};

use super::support::*;
use crate::memory::{wal::WalError, *};

/// Format-2 frames of a segment: (offset, kind, version), walking by the length fields.
fn frames(bytes: &[u8]) -> Vec<(usize, u8, u64)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 24 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let version = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        out.push((at, bytes[at], version));
        at += 24 + len;
    }
    out
}

/// Offset of the record frame of `version` in `bytes`.
fn record_at(bytes: &[u8], version: u64) -> usize {
    let found = frames(bytes)
        .into_iter()
        .find(|f| f.1 == 1 && f.2 == version);
    found.unwrap().0
}

fn wal_bytes(gitdir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let files = wal_segments(gitdir).into_iter();
    files.map(|p| (p.clone(), fs::read(&p).unwrap())).collect()
}

/// Waits up to 5 s for `cond`: the committer trims the log just after it publishes a commit.
async fn eventually(cond: impl Fn() -> bool) -> bool {
    for _ in 0..250 {
        if cond() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cond()
}

#[tokio::test]
async fn a_damaged_length_before_acknowledged_writes_refuses_the_open_until_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    let (path, crashed) = (dir.path().join("memory"), dir.path().join("crashed"));
    let store = Store::open(&path, lazy()).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a"])).await.unwrap();
    h.wait_committed(1, WAIT).await.unwrap();
    for i in 0..300 {
        let op = observe("a", &format!("fact {i}"));
        h.write("srv-1", 1, op).await.unwrap();
    }
    // The disk as a kill -9 leaves it: 300 acknowledged writes only in the WAL.
    copy_dir(&path, &crashed);
    store.close().unwrap();
    let seg = wal_segments(&crashed).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let at = record_at(&bytes, 2);
    bytes[at + 4] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    let before = wal_bytes(&crashed);

    let err = Store::open(&crashed, quick()).unwrap_err();
    let OpenError::Wal(WalError::Damaged {
        path: p,
        offset,
        first,
        last,
        head,
        ..
    }) = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (p, *offset, *first, *last, *head),
        (&seg, at as u64, 2, Some(301), 1)
    );
    let msg = err.to_string();
    assert!(
        msg.contains("2..=301") && msg.contains("salvage-wal"),
        "{msg}"
    );
    assert_eq!(wal_bytes(&crashed), before, "nothing changed");
    let report = verify(&crashed).unwrap();
    assert!(!report.is_ok());
    assert!(
        report.problems[0].contains(&format!("at byte {at}")),
        "{:?}",
        report.problems
    );
    assert_eq!(wal_bytes(&crashed), before, "verify changed nothing");

    let salvaged = wal::salvage(&crashed).unwrap().unwrap();
    assert_eq!(salvaged.lost_from, 2);
    let copy = salvaged.quarantine.join(seg.file_name().unwrap());
    assert_eq!(
        fs::read(&copy).unwrap(),
        bytes,
        "the damaged segment is kept aside"
    );
    let store = Store::open(&crashed, quick()).unwrap();
    let h = store.handle();
    assert_eq!(h.view().version(), 1);
    assert_eq!(
        h.write("srv-1", 1, create(&["b"])).await.unwrap().version,
        2
    );
    store.close().unwrap();
    assert!(verify(&crashed).unwrap().is_ok());
    assert!(
        wal::salvage(&crashed).unwrap().is_none(),
        "nothing left to salvage"
    );
}

#[tokio::test]
async fn damage_in_what_git_holds_warns_and_goes_with_the_next_trim() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a"])).await.unwrap();
    for i in 0..4 {
        h.write("srv-1", 1, observe("a", &format!("fact {i}")))
            .await
            .unwrap();
    }
    h.wait_committed(5, WAIT).await.unwrap();
    let live = view_graph(h.view());
    store.close().unwrap();
    let seg = wal_segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let at = record_at(&bytes, 2);
    bytes[at + 30] ^= 0x20;
    fs::write(&seg, &bytes).unwrap();

    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(
        report.notes.iter().any(|n| n.contains("git holds")),
        "{:?}",
        report.notes
    );
    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    assert_eq!(view_graph(h.view()), live);
    assert_eq!(
        h.write("srv-1", 5, create(&["b"])).await.unwrap().version,
        6
    );
    h.wait_committed(6, WAIT).await.unwrap();
    assert!(
        eventually(|| !seg.exists()).await,
        "trimmed after the next commit"
    );
    store.close().unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok() && report.notes.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_format_1_log_opens_and_is_trimmed_after_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create(&["a"])).await.unwrap();
    h.wait_committed(1, WAIT).await.unwrap();
    store.close().unwrap();
    // The log an older build leaves after a crash: version 1 in git, 2..=4 only in the log.
    let wal_dir = dir.path().join("mcpfleet/wal");
    for seg in wal_segments(dir.path()) {
        fs::remove_file(seg).unwrap();
    }
    let mut buf = Vec::new();
    for version in 1..=4 {
        let op = if version == 1 {
            create(&["a"])
        } else {
            observe("a", &format!("old {version}"))
        };
        let seen = version - 1;
        let (server, time_ms) = ("srv-1".to_string(), 1);
        let record = Record {
            effect: None,
            deps: Default::default(),
            version,
            server,
            seen,
            time_ms,
            hlc: 0,
            op,
        };
        wal::encode_v1(&record, &mut buf);
    }
    let v1 = wal_dir.join(format!("{:020}.wal", 1));
    fs::write(&v1, &buf).unwrap();
    assert_eq!(verify(dir.path()).unwrap().wal_pending, 3);

    let store = Store::open(dir.path(), quick()).unwrap();
    let h = store.handle();
    assert_eq!(h.view().version(), 4);
    assert_eq!(h.view().entity("a").unwrap().observations.len(), 4);
    assert_eq!(
        h.write("srv-1", 4, create(&["b"])).await.unwrap().version,
        5
    );
    h.wait_committed(5, WAIT).await.unwrap();
    assert!(
        !v1.exists(),
        "the format-1 segment is trimmed once git holds it"
    );
    let names = wal_segments(dir.path());
    assert!(
        names.iter().all(|p| p.extension().unwrap() == "wal2"),
        "{names:?}"
    );
    store.close().unwrap();
    assert!(verify(dir.path()).unwrap().is_ok());
    assert_eq!(git_ops(dir.path()).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_trimming_leave_a_long_storms_log_a_few_segments_long() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        wal_segment_bytes: 64 << 10,
        ..quick()
    };
    let store = Store::open(dir.path(), options).unwrap();
    let h = store.handle();
    let writers: Vec<_> = (0..50)
        .map(|w| {
            let h = h.clone();
            tokio::spawn(async move {
                let name = format!("e{w}");
                h.write("srv-1", 0, create(&[&name])).await.unwrap();
                for i in 0..399 {
                    let op = observe(&name, &format!("fact {i}"));
                    h.write("srv-1", h.view().version(), op).await.unwrap();
                }
            })
        })
        .collect();
    let mut most = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        most = most.max(wal_segments(dir.path()).len());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    h.wait_committed(20_000, WAIT).await.unwrap();
    eprintln!("at most {most} WAL segments during the storm");
    // During the storm the log holds what git does not hold yet (the commit lag decides
    // how much); once git has caught up, only the segments since its head remain.
    assert!(eventually(|| wal_segments(dir.path()).len() <= 3).await);
    store.close().unwrap();
}
