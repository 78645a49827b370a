//! The write-ahead log: every acknowledged op is in it (fsynced) before its writer hears
//! back, until a durable git commit holds it. Segments live in `<gitdir>/mcpfleet/wal/`,
//! named by the version of their first record; a record is `len: u32 LE`, `crc32: u32 LE`
//! (of the payload), then the payload: the [`Record`] as JSON.
//!
//! Recovery rule: a damaged record at the end of the last segment with nothing valid after
//! it is a torn write that was never acknowledged (the owner acks only after `fdatasync`), so
//! it is cut off. A damaged record followed by a valid one, or in an older segment, is
//! corruption of acknowledged data: opening fails rather than silently dropping it.
//!
//! Server processes follow the log too ([`Tail`]): the owner publishes the [`Position`] up to
//! which it is durable (see [`super::mark`]), and a follower reads records up to there, so
//! nothing is pushed to processes that are not reading.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::FileExt as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};

use serde::{Deserialize, Serialize};

use super::op::Record;

/// Largest payload a record may have; anything bigger in a header is damage.
const MAX_RECORD_BYTES: u32 = 64 << 20;
const HEADER: usize = 8;
const SUFFIX: &str = ".wal";

/// Fault injection for the WAL: makes appends fail the way a full disk does, so tests and
/// drills can check that a failed batch acknowledges nothing and leaves the store serving.
#[derive(Debug, Default)]
pub struct WalFaults {
    fail_appends: AtomicU32,
    fail_truncate: AtomicBool,
}

impl WalFaults {
    /// No faults until told.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` batch appends write part of their bytes and then fail with ENOSPC.
    pub fn fail_next_appends(&self, n: u32) {
        self.fail_appends.store(n, Ordering::SeqCst);
    }

    /// While set, cutting a failed batch back off the WAL fails too (the owner then poisons
    /// itself: it cannot know what the file holds).
    pub fn fail_truncate(&self, on: bool) {
        self.fail_truncate.store(on, Ordering::SeqCst);
    }

    fn take_append_failure(&self) -> bool {
        self.fail_appends
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

/// Appends `record` in WAL framing to `out`.
pub(crate) fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    // Records are plain data; serialising them into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, record);
    let payload = &out[start + HEADER..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A place in the log: the segment (named by its first version) and a byte offset in it.
/// The owner's position after a durable append is where the next record will start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

fn segment_name(first_version: u64) -> String {
    format!("{first_version:020}{SUFFIX}")
}

/// Segments in `dir`, oldest first, as (first version, path).
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Why the WAL cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("cannot read WAL {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("WAL {path} is damaged at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// Parses one record at `buf[at..]`: Ok(Some((record, next offset))), Ok(None) at the end,
/// Err(reason) if damaged.
fn parse_at(buf: &[u8], at: usize) -> Result<Option<(Record, usize)>, String> {
    if at == buf.len() {
        return Ok(None);
    }
    let Some(header) = buf.get(at..at + HEADER) else {
        return Err("incomplete record header".into());
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(format!("implausible record length {len}"));
    }
    let end = at + HEADER + len as usize;
    let Some(payload) = buf.get(at + HEADER..end) else {
        return Err("record runs past the end of the file".into());
    };
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let record: Record =
        serde_json::from_slice(payload).map_err(|e| format!("unreadable record: {e}"))?;
    Ok(Some((record, end)))
}

/// What recovery found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Records with a version above the one asked for, in order.
    pub records: Vec<Record>,
    /// Records at or below it (already in git), counted only.
    pub committed: u64,
    /// A torn tail: (segment, offset, bytes). Cut off when repairing.
    pub torn: Option<(PathBuf, u64, u64)>,
}

/// Reads every segment, checking framing and that versions are consecutive. Records with a
/// version `<= after` are skipped (already committed); the first one above must be
/// `after + 1`. With `repair`, a torn tail is truncated away (and synced).
pub(crate) fn recover(dir: &Path, after: u64, repair: bool) -> Result<Recovered, WalError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WalError::Io { path, source }
    };
    let mut out = Recovered::default();
    let segs = match segments(dir) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut last_version: Option<u64> = None;
    for (i, (first, path)) in segs.iter().enumerate() {
        let is_last = i + 1 == segs.len();
        let buf = fs::read(path).map_err(io_err(path))?;
        let mut at = 0usize;
        let mut first_in_segment = true;
        loop {
            match parse_at(&buf, at) {
                Ok(None) => break,
                Ok(Some((record, next))) => {
                    let corrupt = |reason: String| WalError::Corrupt {
                        path: path.clone(),
                        offset: at as u64,
                        reason,
                    };
                    if first_in_segment && record.version != *first {
                        return Err(corrupt(format!(
                            "segment starts with version {} but is named for {first}",
                            record.version
                        )));
                    }
                    if let Some(prev) = last_version
                        && record.version != prev + 1
                    {
                        return Err(corrupt(format!(
                            "version {} follows {prev}: versions are missing",
                            record.version
                        )));
                    }
                    first_in_segment = false;
                    last_version = Some(record.version);
                    if record.version <= after {
                        out.committed += 1;
                    } else {
                        if out.records.is_empty() && record.version != after + 1 {
                            return Err(corrupt(format!(
                                "the archive ends at version {after} but the log resumes at {}",
                                record.version
                            )));
                        }
                        out.records.push(record);
                    }
                    at = next;
                }
                Err(reason) => {
                    // Torn tail only if this is the last segment and nothing valid follows.
                    if !is_last || next_valid_after(&buf, at) {
                        let context = if is_last {
                            "followed by valid records"
                        } else {
                            "in a segment that newer segments follow"
                        };
                        return Err(WalError::Corrupt {
                            path: path.clone(),
                            offset: at as u64,
                            reason: format!("{reason}, {context}"),
                        });
                    }
                    let bytes = (buf.len() - at) as u64;
                    tracing::warn!(
                        wal = %path.display(),
                        offset = at,
                        bytes,
                        %reason,
                        "cutting a torn record off the WAL tail (it was never acknowledged)"
                    );
                    if repair {
                        let f = OpenOptions::new()
                            .write(true)
                            .open(path)
                            .map_err(io_err(path))?;
                        f.set_len(at as u64).map_err(io_err(path))?;
                        f.sync_all().map_err(io_err(path))?;
                    }
                    out.torn = Some((path.clone(), at as u64, bytes));
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// Whether a valid record can be found right after the damaged one at `at` (only possible
/// when its length field survived).
fn next_valid_after(buf: &[u8], at: usize) -> bool {
    let Some(header) = buf.get(at..at + HEADER) else {
        return false;
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if len == 0 || len > MAX_RECORD_BYTES {
        return false;
    }
    let next = at + HEADER + len as usize;
    next < buf.len() && matches!(parse_at(buf, next), Ok(Some(_)))
}

/// Deletes the segments whose records are all at or below `committed` (durably in git).
/// Returns how many were removed.
pub(crate) fn remove_committed(dir: &Path, committed: u64) -> io::Result<usize> {
    let segs = segments(dir)?;
    let mut removed = 0;
    for pair in segs.windows(2) {
        let (_, path) = &pair[0];
        let (next_first, _) = pair[1];
        if next_first.saturating_sub(1) <= committed {
            fs::remove_file(path)?;
            removed += 1;
        } else {
            break;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Why an append did not become durable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    /// Nothing of the batch remains in the log; the log is as before and usable.
    #[error("the WAL write failed and was rolled back: {0}")]
    Failed(io::Error),
    /// The failed batch could not be cut off again: the log's content is unknown.
    #[error("the WAL write failed ({write}) and cutting it off failed too ({truncate})")]
    Poisoned {
        write: io::Error,
        truncate: io::Error,
    },
}

/// The open tail segment the owner appends to.
pub(crate) struct Wal {
    dir: PathBuf,
    file: File,
    /// First version of the open segment (its name).
    segment: u64,
    len: u64,
    segment_bytes: u64,
    faults: Option<std::sync::Arc<WalFaults>>,
}

impl Wal {
    /// Opens the last segment for appending, or starts one at `next_version` if there is
    /// none or the last one is full.
    pub fn open(
        dir: &Path,
        next_version: u64,
        segment_bytes: u64,
        faults: Option<std::sync::Arc<WalFaults>>,
    ) -> io::Result<Wal> {
        if !dir.is_dir() {
            fs::create_dir_all(dir)?;
            // Make the new directories themselves durable, not only their contents.
            for d in dir.ancestors().skip(1).take(2) {
                sync_dir(d)?;
            }
        }
        let last = segments(dir)?.pop();
        let (segment, path) = match last {
            Some((first, path)) if fs::metadata(&path)?.len() < segment_bytes => (first, path),
            _ => (next_version, dir.join(segment_name(next_version))),
        };
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            file,
            segment,
            len,
            segment_bytes,
            faults,
        })
    }

    /// Where the next record will start: everything before it is durable.
    pub fn position(&self) -> Position {
        Position {
            segment: self.segment,
            offset: self.len,
        }
    }

    /// Writes a batch (records `first_version..`) and syncs it. On error nothing of it stays.
    pub fn append(&mut self, buf: &[u8], first_version: u64) -> Result<(), AppendError> {
        if self.len >= self.segment_bytes {
            self.rotate(first_version).map_err(AppendError::Failed)?;
        }
        match self.write_and_sync(buf) {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(write) => match self.cut_back() {
                Ok(()) => Err(AppendError::Failed(write)),
                Err(truncate) => Err(AppendError::Poisoned { write, truncate }),
            },
        }
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(f) = &self.faults
            && f.take_append_failure()
        {
            // Like a disk filling up halfway through the batch.
            self.file.write_all(&buf[..buf.len() / 2])?;
            return Err(enospc());
        }
        self.file.write_all(buf)?;
        self.file.sync_data()
    }

    fn cut_back(&mut self) -> io::Result<()> {
        if let Some(f) = &self.faults
            && f.fail_truncate.load(Ordering::SeqCst)
        {
            return Err(io::Error::other("injected truncate failure"));
        }
        self.file.set_len(self.len)?;
        self.file.sync_data()
    }

    fn rotate(&mut self, first_version: u64) -> io::Result<()> {
        let path = self.dir.join(segment_name(first_version));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        sync_dir(&self.dir)?;
        self.file = file;
        self.segment = first_version;
        self.len = len;
        Ok(())
    }
}

/// Why a follower could not read the log up to a durable position.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The segment it needs is gone (trimmed after a commit while it was not reading), or was
    /// never there: the follower must start again from a snapshot.
    #[error("WAL segment {path} is gone: {source}")]
    Missing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Wal(#[from] WalError),
}

/// A reader following the log from a position, for views in other processes. It reads only
/// up to positions the owner has published as durable, which never change afterwards (a
/// failed append is cut back beyond them, a torn tail cut off before any is published).
pub struct Tail {
    dir: PathBuf,
    segment: u64,
    file: File,
    offset: u64,
    /// Version of the last record read (the follower's view version).
    version: u64,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail")
            .field("segment", &self.segment)
            .field("offset", &self.offset)
            .field("version", &self.version)
            .finish()
    }
}

impl Tail {
    /// A reader at `at`, where the record after `version` starts.
    pub fn open(dir: &Path, at: Position, version: u64) -> Result<Tail, TailError> {
        let file = open_segment(dir, at.segment)?;
        Ok(Tail {
            dir: dir.to_path_buf(),
            segment: at.segment,
            file,
            offset: at.offset,
            version,
            buf: Vec::new(),
        })
    }

    /// Version of the last record read.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Reads every record after the last one read, up to `to` (the owner's durable position,
    /// the end of record `to_version`), across segment boundaries.
    pub fn read_to(&mut self, to: Position, to_version: u64) -> Result<Vec<Record>, TailError> {
        let mut out = Vec::new();
        while self.version < to_version {
            let end = if self.segment == to.segment {
                to.offset
            } else {
                // An older segment: the owner has moved on, so it ends where the file does.
                self.file
                    .metadata()
                    .map_err(|source| self.io(source))?
                    .len()
            };
            if end > self.offset {
                self.read_range(end, to_version, &mut out)?;
            }
            if self.version >= to_version {
                break;
            }
            if self.segment == to.segment {
                return Err(self.corrupt(format!(
                    "the owner published version {to_version} at this offset, but the log holds only up to {}",
                    self.version
                )));
            }
            // The rest is in the segment the next version starts.
            let next = self.version + 1;
            self.file = open_segment(&self.dir, next)?;
            self.segment = next;
            self.offset = 0;
        }
        Ok(out)
    }

    fn read_range(
        &mut self,
        end: u64,
        to_version: u64,
        out: &mut Vec<Record>,
    ) -> Result<(), TailError> {
        let len = usize::try_from(end - self.offset).unwrap_or(usize::MAX);
        self.buf.resize(len, 0);
        self.file
            .read_exact_at(&mut self.buf, self.offset)
            .map_err(|source| self.io(source))?;
        let mut at = 0;
        while at < self.buf.len() && self.version < to_version {
            let (record, next) = match parse_at(&self.buf, at) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(reason) => return Err(self.corrupt_at(self.offset + at as u64, reason)),
            };
            if record.version != self.version + 1 {
                let reason = format!(
                    "version {} follows {}: versions are missing",
                    record.version, self.version
                );
                return Err(self.corrupt_at(self.offset + at as u64, reason));
            }
            self.version = record.version;
            out.push(record);
            at = next;
        }
        self.offset += at as u64;
        Ok(())
    }

    fn path(&self) -> PathBuf {
        self.dir.join(segment_name(self.segment))
    }

    fn io(&self, source: io::Error) -> TailError {
        TailError::Wal(WalError::Io {
            path: self.path(),
            source,
        })
    }

    fn corrupt(&self, reason: String) -> TailError {
        self.corrupt_at(self.offset, reason)
    }

    fn corrupt_at(&self, offset: u64, reason: String) -> TailError {
        TailError::Wal(WalError::Corrupt {
            path: self.path(),
            offset,
            reason,
        })
    }
}

fn open_segment(dir: &Path, first_version: u64) -> Result<File, TailError> {
    let path = dir.join(segment_name(first_version));
    File::open(&path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            TailError::Missing { path, source }
        } else {
            TailError::Wal(WalError::Io { path, source })
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::memory::op::{DeleteEntities, Op};

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
}
