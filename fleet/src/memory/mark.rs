//! The durable mark: a small file (`<gitdir>/mcpfleet/durable`) in which the owner publishes,
//! after every group commit and before acknowledging it, how far the WAL is durable. Server
//! processes read it at the start of each memory call and catch their views up from the WAL
//! ([`super::wal::Tail`]) — so a write is visible on every server from the moment it is
//! durable, and no process is woken for writes it is not reading.
//!
//! The mark is a hint rebuilt at every open, never fsynced: the WAL itself is what is durable.
//! It is written with one `pwrite` and read with one `pread` through the page cache; a check
//! word detects the (rare) read that overlaps a write, which is then retried.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::FileExt as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::wal::Position;

/// The file's name in the owner's state directory.
pub(crate) const FILE: &str = "durable";
const WORDS: usize = 5;
const BYTES: usize = WORDS * 8;
/// Mixed into the check word so a zeroed or foreign file never reads as a mark.
const MAGIC: u64 = 0x6d63_7066_6c65_6574;
/// Reads overlapping a write retried before giving up.
const READ_TRIES: usize = 1000;

/// How far the log is durable, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The last durable (acknowledged or about to be) version.
    pub version: u64,
    /// Where the record after it will start.
    pub position: Position,
    /// Wall-clock µs (see [`super::view::wall_us`]) when it became durable.
    pub at_us: u64,
}

impl Mark {
    fn encode(&self) -> [u8; BYTES] {
        let fields = [
            self.version,
            self.position.segment,
            self.position.offset,
            self.at_us,
        ];
        let [version, segment, offset, at_us] = fields;
        let words = [version, segment, offset, at_us, check(fields)];
        let mut out = [0; BYTES];
        for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    fn decode(bytes: &[u8; BYTES]) -> Option<Mark> {
        let mut words = [0u64; WORDS];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0; 8];
            b.copy_from_slice(chunk);
            *w = u64::from_le_bytes(b);
        }
        let [version, segment, offset, at_us, sum] = words;
        (sum == check([version, segment, offset, at_us])).then_some(Mark {
            version,
            position: Position { segment, offset },
            at_us,
        })
    }
}

fn check(fields: [u64; WORDS - 1]) -> u64 {
    let mut h = MAGIC;
    for w in fields {
        h = (h ^ w).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    }
    h
}

/// Why the mark could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("cannot read the durable mark {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the durable mark {path} is not one the owner wrote (damaged or foreign)")]
    Invalid { path: PathBuf },
}

/// The owner's side: publishes marks.
pub(crate) struct MarkWriter {
    file: File,
}

impl MarkWriter {
    /// Creates (or takes over) the mark at `path` and publishes `first`.
    pub fn create(path: &Path, first: Mark) -> io::Result<MarkWriter> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let writer = MarkWriter { file };
        writer.publish(first)?;
        Ok(writer)
    }

    /// Publishes `mark` to every reader: one write into the page cache.
    pub fn publish(&self, mark: Mark) -> io::Result<()> {
        self.file.write_all_at(&mark.encode(), 0)
    }
}

/// A follower's side: reads the newest mark.
#[derive(Debug)]
pub struct MarkReader {
    path: PathBuf,
    file: File,
}

impl MarkReader {
    /// Opens the mark the owner publishes at `path`.
    pub fn open(path: &Path) -> Result<MarkReader, MarkError> {
        let file = File::open(path).map_err(|source| MarkError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(MarkReader {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The newest mark; a read that overlapped a write is retried.
    pub fn read(&self) -> Result<Mark, MarkError> {
        let mut bytes = [0; BYTES];
        for _ in 0..READ_TRIES {
            self.file
                .read_exact_at(&mut bytes, 0)
                .map_err(|source| MarkError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if let Some(mark) = Mark::decode(&bytes) {
                return Ok(mark);
            }
            std::thread::yield_now();
        }
        Err(MarkError::Invalid {
            path: self.path.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn mark(v: u64) -> Mark {
        Mark {
            version: v,
            position: Position {
                segment: 1,
                offset: v * 100,
            },
            at_us: 1_700_000_000_000_000 + v,
        }
    }

    #[test]
    fn readers_see_the_newest_mark_and_refuse_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let writer = MarkWriter::create(&path, mark(0)).unwrap();
        let reader = MarkReader::open(&path).unwrap();
        assert_eq!(reader.read().unwrap(), mark(0));
        writer.publish(mark(7)).unwrap();
        assert_eq!(reader.read().unwrap(), mark(7));
        // A stale mark from an earlier owner is simply overwritten at the next open.
        drop(writer);
        let _writer = MarkWriter::create(&path, mark(3)).unwrap();
        assert_eq!(reader.read().unwrap(), mark(3));
        // Damage (or a file that is not a mark) is refused, not misread.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[9] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(reader.read(), Err(MarkError::Invalid { .. })));
        std::fs::write(&path, [0u8; BYTES]).unwrap();
        assert!(matches!(reader.read(), Err(MarkError::Invalid { .. })));
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(reader.read(), Err(MarkError::Io { .. })));
    }

    #[test]
    fn concurrent_reads_never_see_a_mix_of_two_marks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let writer = MarkWriter::create(&path, mark(0)).unwrap();
        let reader = MarkReader::open(&path).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for v in 1..=20_000 {
                    writer.publish(mark(v)).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let mut last = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let m = reader.read().unwrap();
                assert_eq!(m, mark(m.version), "a torn read got through");
                assert!(m.version >= last, "marks went back");
                last = m.version;
            }
        });
        assert_eq!(reader.read().unwrap(), mark(20_000));
    }
}
