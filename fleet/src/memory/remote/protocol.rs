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
    op::{InvalidOp, MAX_OP_BYTES, Op},
    owner::Ack,
    read::{Query, ReadAnswer},
};

/// Largest frame a server process reads: a `read_graph` of a large graph is one frame.
pub(super) const MAX_DOWN_FRAME: usize = 1 << 30;

/// Largest frame the owner reads once a process has proved who it is: a write or a query. A
/// valid op holds at most [`MAX_OP_BYTES`] of text in non-empty strings; JSON writes a byte of
/// text as at most 6 (`\u00XX`) and adds at most 3 per string (quotes, comma), so 9 bytes per
/// text byte, plus keys and brackets per item (well under the extra MiB).
pub(super) const MAX_UP_FRAME: usize = 9 * MAX_OP_BYTES + (1 << 20);

/// Largest frame the owner reads before that: a [`Up::Hello`].
pub(super) const MAX_HELLO_FRAME: usize = 1024;

/// How long a new connection has to say [`Up::Hello`], and a process to hear back: long
/// enough for hundreds of server processes starting at once on two cores.
pub(super) const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a remote call waits for its answer (a read's own wait is at most this).
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause before each reconnection attempt after the owner dropped this client.
pub(super) const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// Most queued frames sent in one write, either way.
pub(super) const COALESCE_MAX: usize = 64;

/// Owner to server process: answers, each carrying its request's id.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Down {
    /// The answer to [`Up::Hello`] when the token is right; a wrong one is answered by closing.
    Welcome,
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
        /// The node the memory belongs to, if it replicates.
        #[serde(default)]
        node: Option<String>,
    },
}

/// Server process to owner.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Up {
    /// The first frame of every connection: the server this process is and the token that
    /// proves it. Nothing else is read, and nothing is sent, before it.
    Hello { server: String, token: String },
    /// A write as the server the connection proved to be; the owner decides what it has seen
    /// (everything durable when it takes it).
    Write { id: u64, op: Op },
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
        /// The node `min_version` is a version of (none: this memory's own).
        #[serde(default)]
        min_version_node: Option<String>,
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
    Unknown(String),
}

impl From<WriteError> for WireError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(e) => WireError::Invalid(e),
            WriteError::Rejected(e) => WireError::Rejected(e),
            WriteError::Storage(e) => WireError::Storage(e),
            WriteError::Poisoned(e) => WireError::Poisoned(e),
            WriteError::Unknown(e) => WireError::Unknown(e),
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
            WireError::Unknown(e) => WriteError::Unknown(e),
            WireError::Closed => WriteError::Closed,
        }
    }
}

pub(super) type Channel = Framed<UnixStream, Frames>;

/// Writes the messages of `queue` to `sink` as they come, coalescing what is queued into one
/// write (at most [`COALESCE_MAX`]), each with a guard dropped once it is written: the
/// writing half of either side, run as a task of its own so that it never stops that side from
/// reading (a large message each way would fill both socket buffers).
pub(super) async fn write_frames<M: Serialize, G>(
    mut sink: futures::stream::SplitSink<Channel, bytes::Bytes>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<(M, G)>,
) -> io::Result<()> {
    use futures::SinkExt as _;
    while let Some((message, guard)) = queue.recv().await {
        sink.feed(encode(&message)?).await?;
        drop(guard);
        for _ in 0..COALESCE_MAX {
            let Ok((message, guard)) = queue.try_recv() else {
                break;
            };
            sink.feed(encode(&message)?).await?;
            drop(guard);
        }
        sink.flush().await?;
    }
    Ok(())
}

pub(super) fn encode<T: Serialize>(message: &T) -> io::Result<bytes::Bytes> {
    serde_json::to_vec(message)
        .map(bytes::Bytes::from)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::memory::op::{CreateEntities, Entity};

    /// The largest valid writes JSON can make (every text byte a control character, written
    /// as `\u00XX`; strings as short as allowed) fit the owner's frame limit: a limit too
    /// tight would refuse valid writes.
    #[test]
    fn the_worst_valid_writes_fit_the_frame_limit() {
        let control = |n: usize| "\u{1}".repeat(n);
        let entities = |count: usize, name: usize, observations: Vec<String>| {
            Op::CreateEntities(CreateEntities {
                entities: (0..count)
                    .map(|_| Entity {
                        name: control(name),
                        entity_type: control(name),
                        observations: observations.clone(),
                    })
                    .collect(),
            })
        };
        let many_short = entities(1000, 512, vec![control(1); 1000]);
        let few_long = entities(255, 1, vec![control(16 * 1024)]);
        for op in [many_short, few_long] {
            op.validate().unwrap();
            let frame = encode(&Up::Write { id: u64::MAX, op }).unwrap();
            assert!(
                frame.len() <= MAX_UP_FRAME,
                "{} bytes > {MAX_UP_FRAME}",
                frame.len()
            );
        }
    }
}
