//! The log's framing and files. Every header carries its own checksum, because a length or a
//! version that cannot be trusted is what turns one flipped bit into a wrong recovery: with a
//! checksummed header a damaged frame is recognised as damage, and the frames after it can be
//! found again by a search, so recovery can tell a torn tail from damage in the middle.
//!
//! Format 2 (segments `<first version:020>.wal2`): a 24-byte segment header (`"MFWL"`, format
//! byte 2, 3 reserved, first version u64, CRC-32 of the 16 bytes before, 4 reserved), then
//! frames, each a 24-byte header (`kind u8` 1 = record / 2 = batch end, 3 reserved, `len u32`,
//! `version u64`, CRC-32 of the payload, CRC-32 of header bytes 0..20) and its payload. A record's
//! payload is the [`Record`] as JSON; every group commit ends with a batch-end frame (payload:
//! first version u64, record count u32, CRC-32 of the batch's record frames), written in the
//! same `fdatasync`, so a batch whose end frame is there was written whole. All integers are
//! little-endian. Format 1 (`.wal`, before batch ends existed) is still read: `len u32`,
//! `crc32 u32` of the payload, JSON.

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::memory::op::Record;

/// Largest payload a record may have; anything bigger in a header is damage.
pub(super) const MAX_RECORD_BYTES: u32 = 64 << 20;
/// Bytes of a format-2 segment header.
pub(super) const SEGMENT_HEADER: usize = 24;
/// Bytes of a format-2 frame header.
pub(super) const FRAME_HEADER: usize = 24;
/// Bytes of a whole batch-end frame.
pub(super) const END_FRAME: usize = FRAME_HEADER + 16;
/// Bytes before a format-1 payload: its length and its CRC-32.
pub(super) const V1_HEADER: usize = 8;
/// File name ending of a format-2 segment, the only kind written.
pub(super) const SUFFIX: &str = ".wal2";
/// File name ending of a format-1 segment, read and then trimmed like any other.
pub(super) const V1_SUFFIX: &str = ".wal";
const MAGIC: &[u8; 4] = b"MFWL";
const FORMAT: u8 = 2;
const KIND_RECORD: u8 = 1;
const KIND_END: u8 = 2;

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn put_frame(out: &mut [u8], start: usize, kind: u8, version: u64) {
    let payload = &out[start + FRAME_HEADER..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    let h = &mut out[start..start + FRAME_HEADER];
    h[0] = kind;
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[8..16].copy_from_slice(&version.to_le_bytes());
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32fast::hash(&h[..20]);
    h[20..24].copy_from_slice(&hcrc.to_le_bytes());
}

/// Appends `record` as a record frame to `out`.
pub(crate) fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    // Records are plain data; serialising them into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, record);
    put_frame(out, start, KIND_RECORD, record.version);
}

/// Closes the batch `buf` holds (exactly the record frames of versions `first..first+count`,
/// encoded by [`encode`]) with its batch-end frame.
pub(crate) fn end_batch(buf: &mut Vec<u8>, first: u64, count: u32) {
    let crc = crc32fast::hash(buf);
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER]);
    buf.extend_from_slice(&first.to_le_bytes());
    buf.extend_from_slice(&count.to_le_bytes());
    buf.extend_from_slice(&crc.to_le_bytes());
    let last = (first + u64::from(count)).saturating_sub(1);
    put_frame(buf, start, KIND_END, last);
}

/// The header a new segment starting at `first` begins with.
pub(super) fn segment_header(first: u64) -> [u8; SEGMENT_HEADER] {
    let mut h = [0; SEGMENT_HEADER];
    h[..4].copy_from_slice(MAGIC);
    h[4] = FORMAT;
    h[8..16].copy_from_slice(&first.to_le_bytes());
    let crc = crc32fast::hash(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a format-2 segment header: Err(reason) if it is not the header of segment `first`.
pub(super) fn check_segment_header(buf: &[u8], first: u64) -> Result<(), String> {
    let Some(h) = buf.get(..SEGMENT_HEADER) else {
        return Err(format!("incomplete segment header ({} bytes)", buf.len()));
    };
    if &h[..4] != MAGIC || crc32fast::hash(&h[..16]) != le32(&h[16..20]) {
        return Err("damaged segment header".into());
    }
    if h[4] != FORMAT {
        return Err(format!(
            "segment format {} (this build reads 1 and 2)",
            h[4]
        ));
    }
    if le64(&h[8..16]) != first {
        return Err(format!("segment header names version {}", le64(&h[8..16])));
    }
    Ok(())
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

/// Segments in `dir` of both formats, oldest first, as (first version, path); a format-1
/// segment sorts before a format-2 one with the same first version.
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name
            .strip_suffix(SUFFIX)
            .or_else(|| name.strip_suffix(V1_SUFFIX))
        else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `path` is a format-2 segment.
pub(super) fn is_v2(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == &SUFFIX[1..])
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A batch-end frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BatchEnd {
    pub first: u64,
    pub count: u32,
    /// CRC-32 of the batch's record frames.
    pub crc: u32,
}

/// A good frame: checksums match and the payload parses.
#[derive(Debug)]
pub(super) enum Frame {
    Record(Record),
    /// A record git already holds: checksums match, its JSON was not parsed (not needed).
    InGit,
    /// Closes the batch ending at the frame's version.
    End(BatchEnd),
}

/// Parses the format-2 frame at `buf[at..]`: Ok(Some((frame, version, next offset))),
/// Ok(None) at the end, Err(reason) if it is not a good frame. Records at or below `in_git`
/// are only checksummed.
pub(super) fn parse_frame(
    buf: &[u8],
    at: usize,
    in_git: u64,
) -> Result<Option<(Frame, u64, usize)>, String> {
    if at == buf.len() {
        return Ok(None);
    }
    let Some(h) = buf.get(at..at + FRAME_HEADER) else {
        return Err("incomplete frame header".into());
    };
    // Kind and reserved bytes first: cheap, and most offsets a resync search tries fail here.
    if !matches!(h[..4], [KIND_RECORD | KIND_END, 0, 0, 0]) {
        return Err(format!("no frame header (kind {})", h[0]));
    }
    if crc32fast::hash(&h[..20]) != le32(&h[20..24]) {
        return Err("frame header checksum mismatch".into());
    }
    let (kind, len, version) = (h[0], le32(&h[4..8]), le64(&h[8..16]));
    if len > MAX_RECORD_BYTES || (kind == KIND_END && len != 16) {
        return Err(format!("implausible frame length {len}"));
    }
    let end = at + FRAME_HEADER + len as usize;
    let Some(payload) = buf.get(at + FRAME_HEADER..end) else {
        return Err("frame runs past the end of the file".into());
    };
    if crc32fast::hash(payload) != le32(&h[16..20]) {
        return Err("payload checksum mismatch".into());
    }
    let frame = match kind {
        KIND_RECORD if version <= in_git => Frame::InGit,
        KIND_RECORD => {
            let record: Record =
                serde_json::from_slice(payload).map_err(|e| format!("unreadable record: {e}"))?;
            if record.version != version {
                return Err(format!("record {} in a frame of {version}", record.version));
            }
            Frame::Record(record)
        }
        _ => Frame::End(BatchEnd {
            first: le64(payload),
            count: le32(&payload[8..12]),
            crc: le32(&payload[12..16]),
        }),
    };
    Ok(Some((frame, version, end)))
}

/// Appends `record` in format-1 framing, as builds before batch ends wrote it (for tests of
/// reading old logs).
#[cfg(test)]
pub(crate) fn encode_v1(record: &Record, out: &mut Vec<u8>) {
    let Ok(payload) = serde_json::to_vec(record) else {
        return;
    };
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Parses one format-1 record at `buf[at..]`: Ok(Some((record, next offset))), Ok(None) at
/// the end, Err(reason) if damaged.
pub(super) fn parse_v1(buf: &[u8], at: usize) -> Result<Option<(Record, usize)>, String> {
    if at == buf.len() {
        return Ok(None);
    }
    let Some(header) = buf.get(at..at + V1_HEADER) else {
        return Err("incomplete record header".into());
    };
    let (len, crc) = (le32(header), le32(&header[4..]));
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(format!("implausible record length {len}"));
    }
    let end = at + V1_HEADER + len as usize;
    let Some(payload) = buf.get(at + V1_HEADER..end) else {
        return Err("record runs past the end of the file".into());
    };
    // A record is a JSON object: a cheap test before the checksum keeps a resync search over
    // a large damaged segment from hashing megabytes at every offset.
    if payload.first() != Some(&b'{') || payload.last() != Some(&b'}') {
        return Err("not a record".into());
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let record: Record =
        serde_json::from_slice(payload).map_err(|e| format!("unreadable record: {e}"))?;
    Ok(Some((record, end)))
}

/// Whether `raw` is the end frame of the batch `first..first + count` but for at most one
/// flipped bit outside its checksums (which are unknown here). A torn write loses whole
/// sectors, it does not flip a bit: such a frame means the batch was written whole.
pub(super) fn near_end_frame(raw: &[u8], first: u64, count: u32) -> bool {
    if raw.len() != END_FRAME {
        return false;
    }
    let mut want = Vec::with_capacity(END_FRAME);
    end_batch(&mut want, first, count);
    let known = |r: std::ops::Range<usize>| {
        raw[r.clone()]
            .iter()
            .zip(&want[r])
            .map(|(a, b)| (a ^ b).count_ones())
            .sum::<u32>()
    };
    known(0..16) + known(FRAME_HEADER..FRAME_HEADER + 12) <= 1
}
