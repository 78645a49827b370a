//! How a server reaches the fleet's memory: the store itself when it runs in the owner's
//! process (task mode), or the owner over its local socket (process mode). Both give the same
//! four things, answered from the one view the owner keeps: reads (optionally after a
//! `minVersion`), the version, durable writes, and history.

use std::time::Duration;

use super::{
    error::WriteError,
    history::HistoryEntry,
    op::Op,
    owner::Ack,
    read::{self, MinVersion, Query, ReadAnswer, ReadError},
    remote::RemoteMemory,
    store::MemoryHandle,
};

/// A server's access to the shared memory.
#[derive(Debug, Clone)]
pub enum Memory {
    Local(MemoryHandle),
    Remote(RemoteMemory),
}

impl Memory {
    /// Answers `query` with everything durable when it is handled, after waiting (at most
    /// `timeout`) for version `min_version.0` if one is given.
    pub async fn read(
        &self,
        query: Query,
        min_version: Option<(MinVersion, Duration)>,
    ) -> Result<ReadAnswer, ReadError> {
        match self {
            Memory::Local(h) => Ok(read::answer(h.view(), &query, min_version).await?),
            Memory::Remote(r) => r.read(query, min_version).await,
        }
    }

    /// The version every write durable so far has reached, and the node the memory belongs
    /// to if it replicates.
    pub async fn version(&self) -> Result<(u64, Option<String>), ReadError> {
        match self {
            Memory::Local(h) => {
                let node = h.view().node();
                Ok((h.view().version(), (!node.is_empty()).then_some(node)))
            }
            Memory::Remote(r) => r.version().await,
        }
    }

    /// Writes `op` as `server` (a server process writes as the server its access proved);
    /// returns once durable and readable through every server. Its deletes remove what was
    /// durable when the owner took it (see the merge semantics).
    pub async fn write(&self, server: &str, op: Op) -> Result<Ack, WriteError> {
        match self {
            Memory::Local(h) => h.write(server, h.view().version(), op).await,
            Memory::Remote(r) => r.write(op).await,
        }
    }

    /// The newest committed ops that named `entity`, newest first, at most `limit`.
    pub async fn history(
        &self,
        entity: &str,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, WriteError> {
        match self {
            Memory::Local(h) => Ok(h.history(entity, limit)),
            Memory::Remote(r) => r.history(entity, limit).await,
        }
    }
}
