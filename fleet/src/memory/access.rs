//! How a server reaches the fleet's memory: the store itself when it runs in the owner's
//! process (task mode), or through the owner's log and socket (process mode). Both give the
//! same three things: a local view to read, durable writes, and history.

use std::{sync::Arc, time::Duration};

use super::{
    error::{Timeout, WriteError},
    history::HistoryEntry,
    op::Op,
    owner::Ack,
    remote::RemoteMemory,
    store::MemoryHandle,
    view::View,
};

/// A server's access to the shared memory.
#[derive(Debug, Clone)]
pub enum Memory {
    Local(MemoryHandle),
    Remote(RemoteMemory),
}

impl Memory {
    /// The view this server reads from, as it is: call [`Memory::fresh_view`] to read.
    pub fn view(&self) -> &Arc<View> {
        match self {
            Memory::Local(h) => h.view(),
            Memory::Remote(r) => r.view(),
        }
    }

    /// The view holding every write durable when this is called: what a read serves from.
    /// (The store's own view always does; a server process's view catches up from the log.)
    pub async fn fresh_view(&self) -> &Arc<View> {
        match self {
            Memory::Local(h) => h.view(),
            Memory::Remote(r) => {
                r.sync().await;
                r.view()
            }
        }
    }

    /// Waits until this server's view holds `version` (a `minVersion` read), or fails after
    /// `timeout`.
    pub async fn wait_for(&self, version: u64, timeout: Duration) -> Result<(), Timeout> {
        match self {
            Memory::Local(h) => h.view().wait_for(version, timeout).await,
            Memory::Remote(r) => r.wait_for(version, timeout).await,
        }
    }

    /// Writes `op` as `server`, with what this server's view has seen; returns once durable
    /// and visible in this server's view.
    pub async fn write(&self, server: &str, op: Op) -> Result<Ack, WriteError> {
        // Deletes remove what the writer had seen: everything durable when it decided.
        let seen = self.fresh_view().await.version();
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
