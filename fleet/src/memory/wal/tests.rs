//! The log on real files: appends read back, torn tails cut, damage refused, rotation,
//! trimming, cut-back after a failed append and followers reading up to durable positions.

#![allow(clippy::unwrap_used)]

use std::{
    fs::{self, OpenOptions},
    io::Write,
    sync::Arc,
};

use super::{format::HEADER, *};
use crate::memory::op::{DeleteEntities, Op, Record};

fn record(version: u64) -> Record {
    Record {
        version,
        server: "srv-1".into(),
        seen: version - 1,
        time_ms: 1,
        op: Op::DeleteEntities(DeleteEntities {
            entity_names: vec![format!("e{version}")],
        }),
    }
}

fn batch(versions: std::ops::RangeInclusive<u64>) -> Vec<u8> {
    let mut buf = Vec::new();
    for v in versions {
        encode(&record(v), &mut buf);
    }
    buf
}

#[test]
fn appends_rotate_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), 1, 200, None).unwrap();
    for v in 1..=10 {
        wal.append(&batch(v..=v), v).unwrap();
    }
    assert!(segments(dir.path()).unwrap().len() > 1);
    let r = recover(dir.path(), 0, false).unwrap();
    assert_eq!(r.records.len(), 10);
    let r = recover(dir.path(), 4, false).unwrap();
    assert_eq!(r.records.first().unwrap().version, 5);
    assert_eq!(r.committed, 4);
    let removed = remove_committed(dir.path(), 6).unwrap();
    assert!(removed > 0);
    let r = recover(dir.path(), 6, false).unwrap();
    assert_eq!(r.records.first().unwrap().version, 7);
    assert_eq!(r.records.len(), 4);
    assert!(matches!(
        recover(dir.path(), 2, false),
        Err(WalError::Corrupt { .. })
    ));
}

#[test]
fn torn_tail_is_cut_and_middle_damage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), 1, 1 << 20, None).unwrap();
    wal.append(&batch(1..=3), 1).unwrap();
    drop(wal);
    let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
    let good = fs::metadata(&path).unwrap().len();
    // A torn write: half a record at the end.
    let half = batch(4..=4);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&half[..half.len() / 2]).unwrap();
    drop(f);
    let r = recover(dir.path(), 0, true).unwrap();
    assert_eq!(r.records.len(), 3);
    assert!(r.torn.is_some());
    assert_eq!(fs::metadata(&path).unwrap().len(), good);
    // Zeros at the tail (a file extended but not written) are torn too.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[0; 100]).unwrap();
    drop(f);
    assert_eq!(recover(dir.path(), 0, true).unwrap().records.len(), 3);
    // A flipped byte in the middle record, with a valid one after it: corruption.
    let mut bytes = fs::read(&path).unwrap();
    let second = batch(1..=1).len();
    bytes[second + HEADER + 3] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        recover(dir.path(), 0, true),
        Err(WalError::Corrupt { .. })
    ));
}

#[test]
fn a_failed_append_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(WalFaults::new());
    let mut wal = Wal::open(dir.path(), 1, 1 << 20, Some(faults.clone())).unwrap();
    wal.append(&batch(1..=2), 1).unwrap();
    faults.fail_next_appends(1);
    assert!(matches!(
        wal.append(&batch(3..=5), 3),
        Err(AppendError::Failed(_))
    ));
    wal.append(&batch(3..=3), 3).unwrap();
    let r = recover(dir.path(), 0, false).unwrap();
    assert_eq!(r.records.len(), 3);
    assert!(r.torn.is_none());
    faults.fail_next_appends(1);
    faults.fail_truncate(true);
    assert!(matches!(
        wal.append(&batch(4..=4), 4),
        Err(AppendError::Poisoned { .. })
    ));
}
