//! [`RemoteMemory`]: what a server process calls. Every call first brings the local view up to
//! what is durable; writes and history queries go to the owner over the socket.

use std::{
    sync::{Arc, Mutex, atomic::AtomicU64},
    time::Duration,
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{
    client::{CatchUpError, Client, Pending, follower},
    connection::{RemoteError, follow, open},
    protocol::{Up, WRITE_TIMEOUT},
};
use crate::memory::{
    error::{Timeout, WriteError},
    history::HistoryEntry,
    op::Op,
    owner::Ack,
    view::View,
};

/// How long a call waits for a fresh follow point after this process lost its place.
pub(super) const RESYNC_WAIT: Duration = Duration::from_secs(5);

/// A server process's access to the fleet's memory: a local view caught up from the owner's
/// log, and writes and history queries sent to the owner.
#[derive(Clone)]
pub struct RemoteMemory {
    client: Arc<Client>,
}

impl std::fmt::Debug for RemoteMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteMemory")
            .field("socket", &self.client.name)
            .field("view_version", &self.client.view.version())
            .finish()
    }
}

impl RemoteMemory {
    /// Connects to the owner at abstract socket `name` and loads its snapshot; from then on
    /// the view follows the owner's log (reconnecting if dropped) until `stop`.
    pub async fn connect(name: &str, stop: CancellationToken) -> Result<RemoteMemory, RemoteError> {
        let (channel, point) = open(name).await?;
        let protocol = |reason: String| RemoteError::Protocol {
            name: name.to_string(),
            reason,
        };
        let follower = follower(&point).map_err(|e| protocol(e.to_string()))?;
        let view = View::from_snapshot(point.snapshot).map_err(|e| protocol(e.to_string()))?;
        let client = Arc::new(Client {
            name: name.to_string(),
            view: Arc::new(view),
            follower: Mutex::new(Some(follower)),
            follows: watch::Sender::new(0),
            resync_asked: std::sync::atomic::AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            pending: Mutex::default(),
            up: Mutex::default(),
        });
        tokio::spawn(follow(client.clone(), channel, stop));
        Ok(RemoteMemory { client })
    }

    /// How many follow points this process has started from (1 + resyncs and reconnects).
    pub fn follow_points(&self) -> u64 {
        *self.client.follows.borrow() + 1
    }

    /// This process's view as it is (see [`RemoteMemory::sync`] to bring it up to date).
    pub fn view(&self) -> &Arc<View> {
        &self.client.view
    }

    /// Brings the view up to everything durable: what every memory call does first. If this
    /// process lost its place in the log, waits (bounded) for a fresh one; failing that, the
    /// view stays as it was and the problem is logged.
    pub async fn sync(&self) {
        let Err(e) = self.client.catch_up() else {
            return;
        };
        let mut follows = self.client.follows.subscribe();
        match e {
            CatchUpError::Resyncing | CatchUpError::FarBehind { .. } => {
                tracing::debug!(error = %e, "memory view: starting again from a fresh snapshot");
            }
            e => {
                tracing::warn!(error = %e, "memory view: lost the place in the owner's log; asking for a fresh one")
            }
        }
        self.client.resync();
        if tokio::time::timeout(RESYNC_WAIT, follows.changed())
            .await
            .is_err()
        {
            tracing::warn!(
                "memory view: no fresh follow point from the owner; serving the view as it is"
            );
            return;
        }
        if let Err(e) = self.client.catch_up() {
            tracing::warn!(error = %e, "memory view: cannot catch up with the owner's log");
        }
    }

    /// Waits until the view holds `version`, or fails after `timeout`: at once if the version
    /// is durable already, else when the owner says it is.
    pub async fn wait_for(&self, version: u64, timeout: Duration) -> Result<(), Timeout> {
        let view = &self.client.view;
        let timed_out = || Timeout {
            wanted: version,
            current: view.version(),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        self.sync().await;
        if view.version() >= version {
            return Ok(());
        }
        let timeout_ms = u64::try_from(
            deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let wait = |id| Up::Wait {
            id,
            version,
            timeout_ms,
        };
        let Some((id, rx)) = self.client.ask(wait, Pending::Reached) else {
            return Err(timed_out());
        };
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(reached)) if reached >= version => {
                // The owner announces a version only after its durable mark covers it, so
                // reading the log up to the mark now reaches it.
                self.sync().await;
                if view.version() >= version {
                    Ok(())
                } else {
                    Err(timed_out())
                }
            }
            Ok(_) => Err(timed_out()),
            Err(_) => {
                self.client.pending_remove(id);
                Err(timed_out())
            }
        }
    }

    /// Sends a write to the owner; returns once it is durable and in this process's view.
    pub async fn write(&self, server: &str, seen: u64, op: Op) -> Result<Ack, WriteError> {
        op.validate()?;
        let write = |id| Up::Write {
            id,
            server: server.to_string(),
            seen,
            op,
        };
        let Some((id, rx)) = self.client.ask(write, Pending::Write) else {
            return Err(WriteError::Closed);
        };
        let ack = match tokio::time::timeout(WRITE_TIMEOUT, rx).await {
            Ok(Ok(result)) => result?,
            // The connection broke before the answer came: whether the write is durable is
            // unknown, so it is not acknowledged.
            Ok(Err(_)) => return Err(WriteError::Closed),
            Err(_) => {
                self.client.pending_remove(id);
                return Err(WriteError::Storage(format!(
                    "no answer from the fleet's memory within {WRITE_TIMEOUT:?}"
                )));
            }
        };
        // Read-your-writes on this server, as in one process.
        self.wait_for(ack.version, WRITE_TIMEOUT)
            .await
            .map_err(|e| WriteError::Storage(format!("durable, but not yet visible here: {e}")))?;
        Ok(ack)
    }

    /// The newest committed ops that named `entity`, newest first.
    pub async fn history(
        &self,
        entity: &str,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, WriteError> {
        let query = |id| Up::History {
            id,
            entity: entity.to_string(),
            limit,
        };
        let Some((id, rx)) = self.client.ask(query, Pending::History) else {
            return Err(WriteError::Closed);
        };
        match tokio::time::timeout(WRITE_TIMEOUT, rx).await {
            Ok(Ok(entries)) => Ok(entries),
            _ => {
                self.client.pending_remove(id);
                Err(WriteError::Closed)
            }
        }
    }
}
