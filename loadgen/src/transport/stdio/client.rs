//! A goose user's (or the health sweep's) handle on the stdio pool: the slot it calls, which
//! is its own process by default or one it shares with other users. Opening waits for that
//! process to be open; a call waits (within the request timeout, and timed) while its process
//! is being restarted.

use std::time::Instant;

use super::pool::StdioHandle;
use crate::mcp::{Call, ErrorClass, Sent, Version};

/// One user's client of a stdio pool.
#[derive(Debug, Clone)]
pub struct StdioClient {
    pool: StdioHandle,
    slot: usize,
}

impl StdioClient {
    /// A client of the pool's next slot, round robin: the users of a phase, which make their
    /// clients one after another, each get their own process while there are enough.
    pub fn new(pool: &StdioHandle) -> Self {
        Self {
            slot: pool.next_slot(),
            pool: pool.clone(),
        }
    }

    /// A client of slot `slot` (modulo the pool's processes).
    #[cfg(test)]
    pub fn of_slot(pool: &StdioHandle, slot: usize) -> Self {
        Self {
            slot: slot % pool.slots(),
            pool: pool.clone(),
        }
    }

    /// The version the process is spoken to in (what its handshake negotiated).
    pub fn version(&self) -> Version {
        self.pool.version().unwrap_or(Version::V2026_07_28)
    }

    /// Waits until this client's process is open (the pool opened it before the run, so
    /// this is quick unless the process is being restarted).
    pub async fn open(&mut self) -> Result<(), ErrorClass> {
        self.pool
            .live(self.slot, self.pool.timeout())
            .await
            .map(|_| ())
    }

    /// Sends one call and waits for its answer. `_id` is not used: a process shared by
    /// several users hands out its own ids, unique on it.
    pub async fn call(&mut self, call: &Call, _id: u64) -> Sent {
        let start = Instant::now();
        let timeout = self.pool.timeout();
        let live = match self.pool.live(self.slot, timeout).await {
            Ok(live) => live,
            Err(class) => return Sent::failed(start.elapsed(), class),
        };
        let waited = start.elapsed();
        let sent = live
            .process
            .call(call, live.version, timeout.saturating_sub(waited))
            .await;
        Sent {
            elapsed: sent.elapsed + waited,
            ..sent
        }
    }

    /// Nothing to end per user: the pool ends the processes when the run ends.
    pub async fn close(&mut self) {}
}
