//! [`RemoteMemory`]: what a server process calls. It holds no copy of the graph: every call is
//! one round trip to the owner over the local socket, answered from the owner's view, so a
//! write costs the same whatever the number of server processes.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    client::{Client, Pending},
    connection::{RemoteError, carry, open},
    protocol::{Up, WRITE_TIMEOUT},
    socket::MemoryAccess,
};
use crate::memory::{
    error::WriteError,
    history::HistoryEntry,
    op::Op,
    owner::Ack,
    read::{MinVersion, Query, ReadAnswer, ReadError},
};

/// A server process's access to the fleet's memory, through the owner's socket.
#[derive(Clone)]
pub struct RemoteMemory {
    client: Arc<Client>,
}

impl std::fmt::Debug for RemoteMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteMemory")
            .field("socket", &self.client.access.socket)
            .field("server", &self.client.access.server)
            .finish()
    }
}

/// Why there is no answer: the connection was lost with the request in flight (its outcome
/// unknown), none was up, or the owner did not answer in time.
enum Unanswered {
    Lost,
    NoConnection,
    TimedOut,
}

impl Unanswered {
    fn describe(&self) -> String {
        match self {
            Unanswered::Lost => "the connection to it was lost before the answer came".into(),
            Unanswered::NoConnection => "no connection to it (reconnecting or gone)".into(),
            Unanswered::TimedOut => format!("no answer within {WRITE_TIMEOUT:?}"),
        }
    }
}

impl RemoteMemory {
    /// Connects to the owner as `access` says (proving which server this is); from then on
    /// calls go to it (reconnecting if dropped) until `stop`.
    pub async fn connect(
        access: MemoryAccess,
        stop: CancellationToken,
    ) -> Result<RemoteMemory, RemoteError> {
        let channel = open(&access).await?;
        let client = Arc::new(Client::new(access));
        // Set before the connection task runs, so a call made at once already has a way out.
        let (up_tx, up_rx) = mpsc::unbounded_channel();
        client.set_up(Some(up_tx));
        tokio::spawn(carry(client.clone(), channel, up_rx, stop));
        Ok(RemoteMemory { client })
    }

    /// Sends `up` and waits (at most `limit`) for its answer.
    async fn call<T>(
        &self,
        up: impl FnOnce(u64) -> Up,
        pending: impl FnOnce(oneshot::Sender<T>) -> Pending,
        limit: Duration,
    ) -> Result<T, Unanswered> {
        let (id, rx) = self
            .client
            .ask(up, pending)
            .ok_or(Unanswered::NoConnection)?;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(Unanswered::Lost),
            Err(_) => {
                self.client.pending_remove(id);
                Err(Unanswered::TimedOut)
            }
        }
    }

    /// Answers `query` from the owner's view, after it holds `min_version` if one is given.
    pub async fn read(
        &self,
        query: Query,
        min_version: Option<(MinVersion, Duration)>,
    ) -> Result<ReadAnswer, ReadError> {
        let wait = min_version
            .as_ref()
            .map(|(_, timeout)| (*timeout).min(WRITE_TIMEOUT));
        let (min_version, min_version_node) = match min_version {
            Some((m, _)) => (Some(m.version), m.node),
            None => (None, None),
        };
        let read = |id| Up::Read {
            id,
            query,
            min_version,
            min_version_node,
            timeout_ms: wait.map_or(0, |w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX)),
        };
        // The owner gives up waiting first, and answers so; beyond that, as long as any call.
        let limit = wait.unwrap_or_default() + WRITE_TIMEOUT;
        match self.call(read, Pending::Read, limit).await {
            Ok(answer) => Ok(answer?),
            Err(e) => Err(ReadError::Unavailable(e.describe())),
        }
    }

    /// The version every durable write has reached, and the memory's node if it replicates.
    pub async fn version(&self) -> Result<(u64, Option<String>), ReadError> {
        self.call(|id| Up::Version { id }, Pending::Version, WRITE_TIMEOUT)
            .await
            .map_err(|e| ReadError::Unavailable(e.describe()))
    }

    /// Sends a write, as the server this process proved to be, to the owner; returns once it
    /// is durable, and so readable through every server (reads are answered from the view the
    /// owner applied it to before answering).
    pub async fn write(&self, op: Op) -> Result<Ack, WriteError> {
        op.validate()?;
        let write = |id| Up::Write { id, op };
        match self.call(write, Pending::Write, WRITE_TIMEOUT).await {
            Ok(result) => result,
            // Never sent: certainly not applied.
            Err(e @ Unanswered::NoConnection) => Err(WriteError::Storage(format!(
                "not sent to the fleet's memory: {}",
                e.describe()
            ))),
            // Sent: whether it became durable is unknown, so it is neither acknowledged nor
            // reported as not applied.
            Err(e) => Err(WriteError::Unknown(format!(
                "the fleet's memory: {}",
                e.describe()
            ))),
        }
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
        self.call(query, Pending::History, WRITE_TIMEOUT)
            .await
            .map_err(|e| WriteError::Storage(format!("the fleet's memory: {}", e.describe())))
    }
}
