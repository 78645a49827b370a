//! Where a server's 2025-11-25 sessions live, so that an idle one costs a few hundred bytes
//! instead of rmcp's resident machinery. rmcp keeps every session as a worker task, a service
//! task and half a dozen channels whose first block holds 32 messages whatever their capacity
//! (~94 kB of heap per session, measured with `session-bytes`), for as long as the session
//! lives; one client opening sessions in a loop turned that into hundreds of MB. Here a
//! session stays resident only while in use and for `session_resident` after; then its worker
//! is closed and what it needs to come back (the client's `initialize` parameters) waits in a
//! [`Book`] entry (`session_book`) until `session_idle` has passed since its last use. A request to such a
//! session is served as before: rmcp finds it in the book (its `SessionStore`) and replays the
//! handshake on a fresh worker. The book also counts the sessions a server holds, resident or
//! not, for the `max_sessions` cap and `/healthz`.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use futures::{Stream, StreamExt};
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::{
        WorkerTransport,
        streamable_http_server::{
            RestoreOutcome, SessionId, SessionManager,
            session::{
                EventStore, ServerSseMessage,
                local::{LocalSessionManager, LocalSessionManagerError, LocalSessionWorker},
            },
        },
    },
};

use crate::serve::{
    registry::Counters,
    session_book::{Book, InFlight},
};

/// rmcp's [`LocalSessionManager`] with residency: it tells the [`Book`] about every session's
/// requests and streams, and closes the workers of sessions idle for `session_resident`.
pub struct Sessions {
    local: LocalSessionManager,
    book: Arc<Book>,
}

impl Sessions {
    /// The sessions of one server and their book (to hand rmcp as its `SessionStore`). A
    /// task closes idle workers and forgets expired sessions until the sessions are dropped.
    pub fn new(
        counters: Arc<Counters>,
        resident: Duration,
        idle: Duration,
    ) -> (Arc<Self>, Arc<Book>) {
        let book = Arc::new(Book::new(counters, resident, idle));
        let mut local = LocalSessionManager::default();
        // rmcp's own idle timeout stays as a backstop (e.g. a request that never ends).
        local.session_config.keep_alive = Some(idle);
        let sessions = Arc::new(Self {
            local,
            book: book.clone(),
        });
        let tick =
            (resident.min(idle) / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        tokio::spawn(sweep(Arc::downgrade(&sessions), tick));
        (sessions, book)
    }
}

async fn sweep(sessions: Weak<Sessions>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        for id in sessions.book.sweep() {
            // Closing an unknown session is not an error; nothing else can fail here.
            let _ = sessions.local.close_session(&id).await;
        }
    }
}

impl SessionManager for Sessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.local.create_session().await?;
        self.book.created(&id);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        let _open = self.book.begin(id);
        self.local.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.local.has_session(id).await
    }

    /// The client's DELETE, or rmcp's clean-up after a worker ended: either way the worker is
    /// gone; the entry stays (restorable) until DELETE removes it from the book or it expires.
    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        if self.book.worker_evicted(id) {
            return Ok(());
        }
        self.book.left_memory(id);
        self.local.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let open = self.book.begin(id);
        Ok(held(self.local.create_stream(id, message).await?, open))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.book.touch(id);
        self.local.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let open = self.book.begin(id);
        Ok(held(self.local.create_standalone_stream(id).await?, open))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let open = self.book.begin(id);
        Ok(held(self.local.resume(id, last_event_id).await?, open))
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.book.restored(&id);
        self.local.restore_session(id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.local.event_store()
    }
}

/// `stream`, holding `open` until it is dropped.
fn held<S: Stream<Item = ServerSseMessage> + Send + Sync + 'static>(
    stream: S,
    open: InFlight,
) -> impl Stream<Item = ServerSseMessage> + Send + Sync + 'static {
    stream.map(move |m| {
        let _ = &open;
        m
    })
}
