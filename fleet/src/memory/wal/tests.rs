//! The log on real files: appends read back across rotation, trimming, a torn tail cut at
//! every byte of the last batch, damage to acknowledged records refused (the damaged
//! length, in both formats) with the files left as they were, and every single-bit flip of a
//! small log either recovering every record above the git head or refusing, never fewer.

#![allow(clippy::unwrap_used)]

use std::{fs, ops::RangeInclusive, os::unix::fs::FileExt as _, path::Path, sync::Arc};

use super::{format::SEGMENT_HEADER, recovery::Recovered, *};
use crate::memory::op::{DeleteEntities, Op, Record};

fn record(version: u64) -> Record {
    Record {
        effect: None,
        deps: Default::default(),
        version,
        server: "srv-1".into(),
        seen: version - 1,
        time_ms: 1,
        hlc: 0,
        op: Op::DeleteEntities(DeleteEntities {
            entity_names: vec![format!("e{version}")],
        }),
    }
}

fn batch(versions: RangeInclusive<u64>) -> Vec<u8> {
    let mut buf = Vec::new();
    for v in versions {
        encode(&record(v), &mut buf);
    }
    buf
}

/// Writes `batches` through the owner's writer, rotating at `segment_bytes`.
fn write_log(dir: &Path, batches: &[RangeInclusive<u64>], segment_bytes: u64) {
    let mut wal = Wal::open(dir, *batches[0].start(), segment_bytes, None).unwrap();
    for b in batches {
        wal.append(&closed(b.clone()), *b.start()).unwrap();
    }
}

/// A batch with its end frame, as the owner writes it.
fn closed(versions: RangeInclusive<u64>) -> Vec<u8> {
    let count = u32::try_from(versions.clone().count()).unwrap();
    let first = *versions.start();
    let mut buf = batch(versions);
    end_batch(&mut buf, first, count);
    buf
}

fn versions(r: &Recovered) -> Vec<u64> {
    r.records.iter().map(|r| r.version).collect()
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    segments(dir).unwrap().pop().unwrap().1
}

#[test]
fn appends_rotate_recover_and_trim() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<_> = (1..=10).map(|v| v..=v).collect();
    write_log(dir.path(), &batches, 200);
    assert!(segments(dir.path()).unwrap().len() > 1);
    assert_eq!(
        versions(&recover(dir.path(), 0, false).unwrap()),
        (1..=10).collect::<Vec<_>>()
    );
    let r = recover(dir.path(), 4, false).unwrap();
    assert_eq!(r.records.first().unwrap().version, 5);
    assert!(remove_committed(dir.path(), 6).unwrap() > 0);
    let r = recover(dir.path(), 6, false).unwrap();
    assert_eq!(versions(&r), (7..=10).collect::<Vec<_>>());
    // Git holds only up to 2, but the log now starts later: versions are missing.
    let err = recover(dir.path(), 2, false).unwrap_err();
    assert!(matches!(err, WalError::Damaged { first: 3, .. }), "{err}");
}

#[test]
fn a_torn_tail_is_cut_at_every_byte_of_the_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), &[1..=2, 3..=5], 1 << 20);
    let path = last_segment(dir.path());
    let full = fs::read(&path).unwrap();
    let start = full.len() - closed(3..=5).len();
    for cut in start..full.len() {
        fs::write(&path, &full[..cut]).unwrap();
        let r = recover(dir.path(), 0, true).unwrap();
        assert_eq!(versions(&r), [1, 2], "cut at {cut}");
        assert_eq!(r.torn.is_some(), cut > start, "cut at {cut}");
        assert_eq!(fs::read(&path).unwrap(), full[..start], "cut at {cut}");
    }
    // A file extended but never written (zeros), or junk after whole batches: torn too.
    for tail in [vec![0u8; 4096], b"junk that is not a frame".to_vec()] {
        let mut bytes = full.clone();
        bytes.extend_from_slice(&tail);
        fs::write(&path, &bytes).unwrap();
        let r = recover(dir.path(), 0, true).unwrap();
        assert_eq!(versions(&r), [1, 2, 3, 4, 5]);
        assert_eq!(fs::read(&path).unwrap(), full);
    }
}

#[test]
fn a_damaged_length_with_acknowledged_records_after_it_is_refused_in_both_formats() {
    for v2 in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = if v2 {
            let batches: Vec<_> = (0..30).map(|b| b * 10 + 1..=b * 10 + 10).collect();
            write_log(dir.path(), &batches, 1 << 20);
            last_segment(dir.path())
        } else {
            let mut buf = Vec::new();
            (1..=300).for_each(|v| encode_v1(&record(v), &mut buf));
            let path = dir.path().join(format!("{:020}.wal", 1));
            fs::write(&path, &buf).unwrap();
            path
        };
        // Git holds 1..=100; the length field of record 101, the first one it does not hold.
        let mut bytes = fs::read(&path).unwrap();
        let mut at = if v2 { SEGMENT_HEADER } else { 0 };
        for _ in 0..100 {
            let len_at = if v2 { at + 4 } else { at };
            let len = u32::from_le_bytes(bytes[len_at..len_at + 4].try_into().unwrap());
            at += len as usize + if v2 { 24 } else { 8 };
            // Format 2 closes every tenth record's batch with a 40-byte end frame.
            if v2 && bytes[at] == 2 {
                at += 40;
            }
        }
        let len_at = if v2 { at + 4 } else { at };
        bytes[len_at] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        let err = recover(dir.path(), 100, true).unwrap_err();
        let WalError::Damaged {
            path: p,
            offset,
            first,
            last,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(
            (p, *offset, *first, *last),
            (&path, at as u64, 101, Some(300))
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("at byte {at}")) && msg.contains("101..=300"),
            "{msg}"
        );
        assert!(msg.contains("salvage-wal"), "{msg}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "nothing changed");
    }
}

#[test]
fn a_format_1_torn_tail_is_cut_and_a_damaged_segment_header_only_noted() {
    let dir = tempfile::tempdir().unwrap();
    let mut buf = Vec::new();
    (1..=5).for_each(|v| encode_v1(&record(v), &mut buf));
    let whole = buf.len();
    let mut half = Vec::new();
    encode_v1(&record(6), &mut half);
    buf.extend_from_slice(&half[..half.len() / 2]);
    let v1 = dir.path().join(format!("{:020}.wal", 1));
    fs::write(&v1, &buf).unwrap();
    let r = recover(dir.path(), 0, true).unwrap();
    assert_eq!((versions(&r).len(), r.torn.is_some()), (5, true));
    assert_eq!(fs::metadata(&v1).unwrap().len(), whole as u64);
    // Format 2 after it, its segment header damaged: every frame checks itself.
    write_log(dir.path(), &[6..=7], 1 << 20);
    let v2 = last_segment(dir.path());
    let mut bytes = fs::read(&v2).unwrap();
    bytes[9] ^= 0x04;
    fs::write(&v2, &bytes).unwrap();
    let r = recover(dir.path(), 0, false).unwrap();
    assert_eq!(versions(&r), [1, 2, 3, 4, 5, 6, 7]);
    assert!(r.notes[0].contains("segment header"), "{:?}", r.notes);
}

#[test]
fn every_single_bit_flip_recovers_everything_above_the_head_or_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let batches = [1..=1, 2..=3, 4..=6, 7..=7, 8..=9];
    let first_segment = SEGMENT_HEADER
        + [1..=1, 2..=3, 4..=6]
            .map(|b| closed(b).len())
            .iter()
            .sum::<usize>();
    write_log(dir.path(), &batches, first_segment as u64);
    let files: Vec<_> = segments(dir.path())
        .unwrap()
        .into_iter()
        .map(|(_, p)| (fs::read(&p).unwrap(), p))
        .collect();
    assert_eq!(files.len(), 2);
    let (mut recovered, mut refused, mut noted) = (0, 0, 0);
    for head in [0, 3, 6, 9] {
        for (orig, path) in &files {
            // One byte rewritten in place and back: rewriting whole files is what would cost.
            let file = fs::OpenOptions::new().write(true).open(path).unwrap();
            for bit in 0..orig.len() * 8 {
                let (at, byte) = (bit / 8, orig[bit / 8]);
                file.write_all_at(&[byte ^ (1 << (bit % 8))], at as u64)
                    .unwrap();
                let res = recover(dir.path(), head, false);
                file.write_all_at(&[byte], at as u64).unwrap();
                match res {
                    Ok(r) => {
                        let want: Vec<u64> = (head + 1..=9).collect();
                        let place = format!("head {head}, bit {bit} of {}", path.display());
                        assert_eq!(versions(&r), want, "{place}");
                        recovered += 1;
                        noted += usize::from(!r.notes.is_empty());
                    }
                    Err(WalError::Damaged { .. }) => refused += 1,
                    Err(e) => panic!("head {head}, bit {bit}: {e}"),
                }
            }
            assert_eq!(&fs::read(path).unwrap(), orig);
        }
    }
    assert!(
        recovered > 0 && refused > 0 && noted > 0,
        "{recovered} {refused} {noted}"
    );
}

#[test]
fn a_failed_append_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(WalFaults::new());
    let mut wal = Wal::open(dir.path(), 1, 1 << 20, Some(faults.clone())).unwrap();
    wal.append(&closed(1..=2), 1).unwrap();
    faults.fail_next_appends(1);
    assert!(matches!(
        wal.append(&closed(3..=5), 3),
        Err(AppendError::Failed(_))
    ));
    wal.append(&closed(3..=3), 3).unwrap();
    let r = recover(dir.path(), 0, false).unwrap();
    assert_eq!(versions(&r), [1, 2, 3]);
    assert!(r.torn.is_none());
    faults.fail_next_appends(1);
    faults.fail_truncate(true);
    assert!(matches!(
        wal.append(&closed(4..=4), 4),
        Err(AppendError::Poisoned { .. })
    ));
}
