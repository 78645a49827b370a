//! [`Tail`]: a follower's reader of the log, for views in other processes, reading records only
//! up to positions the owner has published as durable.

use std::{
    fs::File,
    io,
    os::unix::fs::FileExt as _,
    path::{Path, PathBuf},
};

use super::{
    error::WalError,
    format::{Frame, Position, SEGMENT_HEADER, parse_frame, segment_name},
};
use crate::memory::op::Record;

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
            self.offset = SEGMENT_HEADER as u64;
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
            let (record, next) = match parse_frame(&self.buf, at, 0) {
                Ok(Some((Frame::Record(record), _, next))) => (record, next),
                Ok(Some((Frame::End(_) | Frame::InGit, _, next))) => {
                    at = next;
                    continue;
                }
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

pub(super) fn open_segment(dir: &Path, first_version: u64) -> Result<File, TailError> {
    let path = dir.join(segment_name(first_version));
    File::open(&path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            TailError::Missing { path, source }
        } else {
            TailError::Wal(WalError::Io { path, source })
        }
    })
}
