//! The write-ahead log: every acknowledged op is in it (fsynced) before its writer hears
//! back, until a durable git commit holds it. Segments live in `<gitdir>/mcpfleet/wal/`,
//! named by the version of their first record; a record is `len: u32 LE`, `crc32: u32 LE`
//! (of the payload), then the payload: the [`Record`](crate::memory::op::Record) as JSON.
//!
//! Recovery rule: a damaged record at the end of the last segment with nothing valid after
//! it is a torn write that was never acknowledged (the owner acks only after `fdatasync`), so
//! it is cut off. A damaged record followed by a valid one, or in an older segment, is
//! corruption of acknowledged data: opening fails rather than silently dropping it.
//!
//! Its parts: [`format`] is the framing, the segment files and positions, `recovery` reads
//! everything back at open and trims what git holds, `writer` is the owner's appending
//! tail segment (with its fault injection).

mod format;
mod recovery;
#[cfg(test)]
mod tests;
mod writer;

pub use format::Position;
pub(crate) use format::encode;
/// The store tests look at which segments exist.
#[cfg(test)]
pub(crate) use format::segments;
pub use recovery::WalError;
pub(crate) use recovery::{recover, remove_committed};
pub use writer::WalFaults;
pub(crate) use writer::{AppendError, Wal};
