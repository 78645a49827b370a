//! The write-ahead log: every acknowledged op is in it (fsynced) before its writer hears
//! back, until a durable git commit holds it. Segments live in `<gitdir>/mcpfleet/wal/`,
//! named by the version of their first record; frames have checksummed headers and every
//! group commit ends with a batch-end frame (see [`format`]).
//!
//! Recovery must never take damage for a torn write: a torn tail (never acknowledged, the
//! owner acks only after `fdatasync`) is cut, damage in versions git holds is skipped, and
//! damage to acknowledged writes git does not hold refuses the open, naming the byte and how
//! to recover (`fleet memory salvage-wal` keeps what is readable, setting the rest aside).
//! Segments git holds are not read and are deleted after each durable commit, so the log
//! stays a few segments long.
//!
//! Its parts: [`format`] is the framing, the segment files and positions, `scan` reads one
//! segment into frames and damage, `recovery` decides what they mean at open, `error` says
//! why it refuses, `salvage` sets damaged segments aside, `writer` is the owner's appending
//! tail segment (with its fault injection) and trims what git holds.

mod error;
mod format;
mod recovery;
mod salvage;
mod scan;
#[cfg(test)]
mod tests;
mod writer;

pub use error::WalError;
pub use format::Position;
pub(crate) use format::{encode, end_batch};
/// The store tests look at which segments exist and write old-format logs.
#[cfg(test)]
pub(crate) use format::{encode_v1, segments};
pub(crate) use recovery::recover;
pub use salvage::{Salvaged, salvage};
pub use writer::WalFaults;
pub(crate) use writer::{AppendError, Wal, remove_committed, size};
