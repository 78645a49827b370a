//! The first pass of recovery: one segment's bytes turned into the good frames it holds and
//! the damaged stretches between them. After a frame that is not good, the next good one is
//! searched for byte by byte (a header checksum first, so the search is cheap), because a
//! damaged length must not hide the frames after it: whether any follow is exactly what tells
//! a torn tail from damage to acknowledged records. What the findings mean is decided by
//! [`super::recovery`] across all segments.

use std::path::PathBuf;

use super::format::{
    BatchEnd, END_FRAME, Frame, SEGMENT_HEADER, check_segment_header, parse_frame, parse_v1,
};
use crate::memory::op::Record;

/// What a stretch of a segment is.
#[derive(Debug)]
pub(super) enum Item {
    /// A record frame; `record` is None for format-2 records git holds (not parsed).
    Record {
        version: u64,
        record: Option<Record>,
        at: u64,
    },
    /// A batch-end frame; `crc_ok` says whether the frames since the previous batch end (or
    /// the segment's start) have the checksum it names.
    End {
        end: BatchEnd,
        version: u64,
        at: u64,
        crc_ok: bool,
    },
    /// Bytes `at..end` hold no good frame; `raw` holds them when they are as long as a
    /// batch-end frame (to tell a damaged end frame from a torn write).
    Damage {
        at: u64,
        end: u64,
        reason: String,
        raw: Vec<u8>,
    },
}

impl Item {
    /// Whether the log was known whole up to here when it was written: a batch end, or any
    /// format-1 record (format 1 had no batch ends).
    pub fn closes(&self, v2: bool) -> bool {
        match self {
            Item::End { .. } => true,
            Item::Record { .. } => !v2,
            Item::Damage { .. } => false,
        }
    }

    /// The newest version this good frame speaks for.
    pub fn version(&self) -> Option<u64> {
        match self {
            Item::Record { version, .. } => Some(*version),
            Item::End { version, .. } => Some(*version),
            Item::Damage { .. } => None,
        }
    }
}

/// One segment read.
#[derive(Debug)]
pub(super) struct Segment {
    pub first: u64,
    pub path: PathBuf,
    pub v2: bool,
    pub len: u64,
    pub items: Vec<Item>,
    /// A damaged or incomplete segment header: worth a note, but it loses nothing, since
    /// every frame checks itself and the file name holds the first version too.
    pub header_note: Option<String>,
}

/// Reads `buf`, the bytes of segment `first` at `path`; records at or below `in_git` are
/// only checksummed (format 2).
pub(super) fn scan(first: u64, path: PathBuf, v2: bool, buf: &[u8], in_git: u64) -> Segment {
    let mut seg = Segment {
        first,
        path,
        v2,
        len: buf.len() as u64,
        items: Vec::new(),
        header_note: None,
    };
    let mut at = 0;
    if v2 {
        if let Err(reason) = check_segment_header(buf, first) {
            seg.header_note = Some(reason);
        }
        at = SEGMENT_HEADER.min(buf.len());
    }
    let mut batch_start = at;
    while at < buf.len() {
        match good_at(buf, at, v2, in_git) {
            Ok((frame, version, next)) => {
                let item = match frame {
                    Frame::Record(record) => Item::Record {
                        version,
                        record: Some(record),
                        at: at as u64,
                    },
                    Frame::InGit => Item::Record {
                        version,
                        record: None,
                        at: at as u64,
                    },
                    Frame::End(end) => {
                        let crc_ok = crc32fast::hash(&buf[batch_start..at]) == end.crc;
                        batch_start = next;
                        Item::End {
                            end,
                            version,
                            at: at as u64,
                            crc_ok,
                        }
                    }
                };
                seg.items.push(item);
                at = next;
            }
            Err(reason) => {
                let resume = (at + 1..buf.len())
                    .find(|&o| good_at(buf, o, v2, in_git).is_ok())
                    .unwrap_or(buf.len());
                let raw = if resume - at == END_FRAME {
                    buf[at..resume].to_vec()
                } else {
                    Vec::new()
                };
                seg.items.push(Item::Damage {
                    at: at as u64,
                    end: resume as u64,
                    reason,
                    raw,
                });
                batch_start = resume;
                at = resume;
            }
        }
    }
    seg
}

/// The good frame at `at`, read as format 2 or 1.
fn good_at(buf: &[u8], at: usize, v2: bool, in_git: u64) -> Result<(Frame, u64, usize), String> {
    let parsed = if v2 {
        parse_frame(buf, at, in_git)?
    } else {
        parse_v1(buf, at)?.map(|(record, next)| {
            let version = record.version;
            (Frame::Record(record), version, next)
        })
    };
    parsed.ok_or_else(|| "end of file".to_string())
}
