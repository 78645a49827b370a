//! How a server reaches the fleet's memory: the store itself when it runs in the owner's
//! process (task mode), or over the owner's socket (process mode). Both give the same three
//! things: a local view to read, durable writes, and history.

use std::sync::Arc;

use super::{Ack, HistoryEntry, MemoryHandle, Op, View, WriteError, remote::RemoteMemory};

/// A server's access to the shared memory.
#[derive(Debug, Clone)]
pub enum Memory {
    Local(MemoryHandle),
    Remote(RemoteMemory),
}

impl Memory {
    /// The view this server reads from.
    pub fn view(&self) -> &Arc<View> {
        match self {
            Memory::Local(h) => h.view(),
            Memory::Remote(r) => r.view(),
        }
    }

    /// Writes `op` as `server`, with what this server's view has seen; returns once durable
    /// and visible in this server's view.
    pub async fn write(&self, server: &str, op: Op) -> Result<Ack, WriteError> {
        let seen = self.view().version();
        match self {
            Memory::Local(h) => h.write(server, seen, op).await,
            Memory::Remote(r) => r.write(server, seen, op).await,
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
