//! What crosses the memory socket: length-delimited JSON frames, owner to process ([`Down`])
//! and process to owner ([`Up`]), with write errors in a serialisable form, and the timing
//! both sides agree on.

use std::{io, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;
use tokio_util::codec::Framed;

use super::frames::Frames;
use crate::memory::{
    error::{Timeout, WriteError},
    graph::ApplyError,
    history::HistoryEntry,
    op::{InvalidOp, Op},
    owner::Ack,
    read::{Query, ReadAnswer},
};

/// Largest frame a server process reads: a `read_graph` of a large graph is one frame.
pub(super) const MAX_DOWN_FRAME: usize = 1 << 30;

/// Largest frame the owner reads: a write or a query. A write is at most the request
/// body a server accepts (`[server] max_body_bytes`, 1 MiB by default) in JSON once more.
pub(super) const MAX_UP_FRAME: usize = 64 << 20;

/// How long a remote call waits for its answer (a read's own wait is at most this).
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause before each reconnection attempt after the owner dropped this client.
pub(super) const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// Most queued frames sent in one write, either way.
pub(super) const COALESCE_MAX: usize = 64;

/// Owner to server process: answers, each carrying its request's id.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Down {
    Written {
        id: u64,
        result: Result<Ack, WireError>,
    },
    History {
        id: u64,
        entries: Vec<HistoryEntry>,
    },
    Read {
        id: u64,
        result: Result<ReadAnswer, Timeout>,
    },
    Version {
        id: u64,
        version: u64,
    },
}

/// Server process to owner.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Up {
    /// A write; the owner decides what it has seen (everything durable when it takes it).
    Write { id: u64, server: String, op: Op },
    History {
        id: u64,
        entity: String,
        limit: usize,
    },
    /// A read, after waiting until `min_version` is durable if one is given, for at most
    /// `timeout_ms` (the reader's own limit, at most a write's).
    Read {
        id: u64,
        query: Query,
        min_version: Option<u64>,
        timeout_ms: u64,
    },
    /// The version every durable write has reached.
    Version { id: u64 },
}

/// A [`WriteError`] as it crosses the socket.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum WireError {
    Invalid(InvalidOp),
    Rejected(ApplyError),
    Storage(String),
    Poisoned(String),
    Closed,
}

impl From<WriteError> for WireError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(e) => WireError::Invalid(e),
            WriteError::Rejected(e) => WireError::Rejected(e),
            WriteError::Storage(e) => WireError::Storage(e),
            WriteError::Poisoned(e) => WireError::Poisoned(e),
            WriteError::Closed => WireError::Closed,
        }
    }
}

impl From<WireError> for WriteError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Invalid(e) => WriteError::Invalid(e),
            WireError::Rejected(e) => WriteError::Rejected(e),
            WireError::Storage(e) => WriteError::Storage(e),
            WireError::Poisoned(e) => WriteError::Poisoned(e),
            WireError::Closed => WriteError::Closed,
        }
    }
}

pub(super) type Channel = Framed<UnixStream, Frames>;

pub(super) fn encode<T: Serialize>(message: &T) -> io::Result<bytes::Bytes> {
    serde_json::to_vec(message)
        .map(bytes::Bytes::from)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
