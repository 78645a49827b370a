//! The book of a server's 2025-11-25 sessions ([`super::sessions`] keeps them): one entry per
//! session, resident or not, with what rmcp needs to restore it (the client's `initialize`
//! parameters, as its `SessionStore`), when it was last used and how many of its requests and
//! streams are open. It decides which resident sessions have idled long enough to leave
//! memory and forgets those idle for `session_idle`, and it is where the server's sessions are
//! counted (resident or not) for the `max_sessions` cap and `/healthz`.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak, atomic::Ordering},
    time::{Duration, Instant},
};

use rmcp::transport::streamable_http_server::{
    SessionId,
    session::{SessionState, SessionStore, SessionStoreError},
};

use crate::serve::registry::Counters;

/// One session the server holds.
struct Entry {
    /// The client's `initialize` parameters, once its handshake succeeded (only then is the
    /// session counted).
    state: Option<SessionState>,
    /// End of the last request or stream, or start of one still open.
    last_used: Instant,
    /// Requests and streams of this session now open.
    in_flight: u32,
    /// Whether rmcp holds a worker for it.
    resident: bool,
}

impl Entry {
    fn new() -> Self {
        Self {
            state: None,
            last_used: Instant::now(),
            in_flight: 0,
            resident: true,
        }
    }
}

/// Every session of one server, resident or not; rmcp's `SessionStore` for them.
pub struct Book {
    entries: Mutex<HashMap<SessionId, Entry>>,
    /// Sessions whose worker this book closed, with how many such workers have yet to end:
    /// the close that rmcp sends when one ends is not the client's.
    evicted: Mutex<HashMap<SessionId, u32>>,
    counters: Arc<Counters>,
    resident: Duration,
    idle: Duration,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Book {
    pub(super) fn new(counters: Arc<Counters>, resident: Duration, idle: Duration) -> Self {
        Self {
            entries: Mutex::default(),
            evicted: Mutex::default(),
            counters,
            resident,
            idle,
        }
    }

    /// A session rmcp just created; counted once its handshake succeeds ([`SessionStore::store`]).
    pub(super) fn created(&self, id: &SessionId) {
        self.entries().insert(id.clone(), Entry::new());
    }

    /// A session rmcp is restoring to memory.
    pub(super) fn restored(&self, id: &SessionId) {
        if let Some(e) = self.entries().get_mut(id) {
            e.resident = true;
            e.last_used = Instant::now();
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<SessionId, Entry>> {
        lock(&self.entries)
    }

    fn uncount(&self, entry: &Entry) {
        if entry.state.is_some() {
            self.counters.open_sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Marks a request or stream of `id` open until the returned guard drops.
    pub(super) fn begin(self: &Arc<Self>, id: &SessionId) -> InFlight {
        if let Some(e) = self.entries().get_mut(id) {
            e.in_flight += 1;
            e.last_used = Instant::now();
        }
        InFlight {
            book: Arc::downgrade(self),
            id: id.clone(),
        }
    }

    /// `id`'s worker is gone; a handshake that never completed leaves nothing to restore.
    pub(super) fn left_memory(&self, id: &SessionId) {
        let mut entries = self.entries();
        match entries.get_mut(id) {
            Some(e) if e.state.is_none() => drop(entries.remove(id)),
            Some(e) => e.resident = false,
            None => {}
        }
    }

    /// Whether this close is rmcp's after a worker the book closed (counted off if so).
    pub(super) fn worker_evicted(&self, id: &SessionId) -> bool {
        let mut evicted = lock(&self.evicted);
        let Some(n) = evicted.get_mut(id) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            evicted.remove(id);
        }
        true
    }

    pub(super) fn touch(&self, id: &SessionId) {
        if let Some(e) = self.entries().get_mut(id) {
            e.last_used = Instant::now();
        }
    }

    /// Which resident sessions to close now; forgets sessions idle for `session_idle` (and
    /// closes their workers if still resident).
    pub(super) fn sweep(&self) -> Vec<SessionId> {
        let mut evict = Vec::new();
        let mut entries = self.entries();
        entries.retain(|id, e| {
            if e.in_flight > 0 || e.state.is_none() {
                return true;
            }
            let idle = e.last_used.elapsed();
            if e.resident && idle >= self.resident.min(self.idle) {
                e.resident = false;
                evict.push(id.clone());
            }
            if idle < self.idle {
                return true;
            }
            self.uncount(e);
            false
        });
        drop(entries);
        let mut evicted = lock(&self.evicted);
        for id in &evict {
            *evicted.entry(id.clone()).or_default() += 1;
        }
        evict
    }
}

impl Drop for Book {
    fn drop(&mut self) {
        let entries = std::mem::take(&mut *self.entries());
        entries.values().for_each(|e| self.uncount(e));
    }
}

/// An open request or stream of a session; dropping it ends it.
pub(super) struct InFlight {
    book: Weak<Book>,
    id: SessionId,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(book) = self.book.upgrade()
            && let Some(e) = book.entries().get_mut(&self.id)
        {
            e.in_flight = e.in_flight.saturating_sub(1);
            e.last_used = Instant::now();
        }
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, SessionStoreError>> + Send + 'a>>;

// The trait is declared with `async_trait`; these are its desugared signatures.
impl SessionStore for Book {
    fn load<'a, 'b, 'c>(&'a self, id: &'b str) -> Boxed<'c, Option<SessionState>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        // A session idle for `session_idle` is gone even before the sweep forgets it.
        let state = self
            .entries()
            .get(id)
            .filter(|e| e.last_used.elapsed() < self.idle)
            .and_then(|e| e.state.clone());
        Box::pin(std::future::ready(Ok(state)))
    }

    fn store<'a, 'b, 'c, 'd>(&'a self, id: &'b str, state: &'c SessionState) -> Boxed<'d, ()>
    where
        'a: 'd,
        'b: 'd,
        'c: 'd,
        Self: 'd,
    {
        let mut entries = self.entries();
        let entry = entries.entry(id.into()).or_insert_with(Entry::new);
        if entry.state.replace(state.clone()).is_none() {
            self.counters.open_sessions.fetch_add(1, Ordering::Relaxed);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn delete<'a, 'b, 'c>(&'a self, id: &'b str) -> Boxed<'c, ()>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        if let Some(e) = self.entries().remove(id) {
            self.uncount(&e);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
