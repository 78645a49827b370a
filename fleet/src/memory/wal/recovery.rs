//! Reading the log back at open: every segment checked for framing and consecutive versions,
//! a torn tail cut off, damage anywhere else refused; and deleting the segments a durable
//! commit holds.

use std::{
    fs::{self, OpenOptions},
    io,
    path::{Path, PathBuf},
};

use super::format::{HEADER, MAX_RECORD_BYTES, parse_at, segments, sync_dir};
use crate::memory::op::Record;

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
pub(super) fn next_valid_after(buf: &[u8], at: usize) -> bool {
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
