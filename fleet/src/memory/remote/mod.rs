//! The memory across processes: in process mode the supervisor's process owns the store and
//! every server process keeps its own [`View`](crate::memory::view::View), caught up from the owner's write-ahead log.
//!
//! Nothing is pushed per write. The owner publishes how far the WAL is durable in a small
//! shared file (the [durable mark](super::mark)) before acknowledging anything; a server
//! process reads the mark at the start of each memory call and applies the log up to it
//! ([`Tail`](crate::memory::wal::Tail)). So a write is visible on every server from the moment it is durable, and a
//! process pays for following only when it is used, not once per group commit: with hundreds
//! of server processes on two cores, waking every process for every batch was most of the
//! fleet's CPU at 1000 writes/s. A process that fell far behind (more records to replay than
//! its graph holds) starts again from a fresh snapshot instead, and one idle that long lets go
//! of its old log segment.
//!
//! A Unix socket (Linux abstract namespace, so no file to clean up and no path-length limit)
//! carries what the log cannot: length-delimited JSON frames with the follow point (a snapshot
//! and its WAL position) first, then writes and history queries, each with an id its answer
//! carries, and waits for versions not yet durable. A process whose log position is lost (its
//! segment trimmed while it was idle) or not worth replaying asks for a fresh follow point, so
//! a view never misses a record.
//!
//! Its parts: `frames` is the framing (bounded, grown as data arrives), `protocol` what crosses
//! the socket, [`serve`] the owner's side of it,
//! `remote_memory` what a server process calls, `client` that process's place in the log
//! and its requests in flight, `connection` connecting, reconnecting and dispatching the
//! owner's answers.

mod client;
mod connection;
mod frames;
mod protocol;
mod remote_memory;
mod serve;

pub use connection::RemoteError;
pub use remote_memory::RemoteMemory;
pub use serve::{listen, serve, socket_name};
