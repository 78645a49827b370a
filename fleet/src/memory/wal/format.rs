//! The log's framing and files: a record is `len`, `crc32`, JSON payload; segments are named
//! by their first version; a [`Position`] is a segment and an offset in it.

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::memory::op::Record;

/// Largest payload a record may have; anything bigger in a header is damage.
pub(super) const MAX_RECORD_BYTES: u32 = 64 << 20;
/// Bytes before a payload: its length and its CRC-32.
pub(super) const HEADER: usize = 8;
/// File name ending of a segment.
pub(super) const SUFFIX: &str = ".wal";

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

pub(super) fn segment_name(first_version: u64) -> String {
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

/// Parses one record at `buf[at..]`: Ok(Some((record, next offset))), Ok(None) at the end,
/// Err(reason) if damaged.
pub(super) fn parse_at(buf: &[u8], at: usize) -> Result<Option<(Record, usize)>, String> {
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
