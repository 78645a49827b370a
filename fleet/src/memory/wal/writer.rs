//! The owner's side of the log: the open tail segment that batches are appended to and
//! fdatasynced, rotated by size and cut back after a failed append, and the fault injection
//! that makes appends fail like a full disk; and the deletion of segments once git durably
//! holds every record in them. Opening always starts a new segment rather than
//! appending to an old one: a segment recovery found damage in (or an old format-1 segment)
//! then only ever holds what git will hold after the next commit, and is trimmed with it.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};

use super::format::{segment_header, segment_name, segments, sync_dir};

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

pub(super) fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
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
    /// Starts a new segment at `next_version` (recovery has read every record before it;
    /// a segment of that name can only hold a cut-off torn tail, and is started afresh).
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
        let (file, len) = create_segment(dir, next_version)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            file,
            segment: next_version,
            len,
            segment_bytes,
            faults,
        })
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
        let (file, len) = create_segment(&self.dir, first_version)?;
        self.file = file;
        self.segment = first_version;
        self.len = len;
        Ok(())
    }
}

/// Creates (or empties) segment `first` with its header; the header becomes durable with the
/// first batch's `fdatasync`, the directory entry now. Returns the file and its length.
fn create_segment(dir: &Path, first: u64) -> io::Result<(File, u64)> {
    let path = dir.join(segment_name(first));
    // Appending, so that writes after a cut-back start at the file's end.
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    file.set_len(0)?;
    let header = segment_header(first);
    file.write_all(&header)?;
    sync_dir(dir)?;
    Ok((file, header.len() as u64))
}

/// Bytes of every segment in `dir` (0 when it cannot be read: a gauge, not a check).
pub(crate) fn size(dir: &Path) -> u64 {
    segments(dir).map_or(0, |segs| {
        segs.iter()
            .filter_map(|(_, path)| fs::metadata(path).ok())
            .map(|m| m.len())
            .sum()
    })
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
