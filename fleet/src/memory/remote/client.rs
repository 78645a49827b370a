//! A server process's requests in flight to the owner: each gets a fresh id, waits in the
//! pending map for the answer carrying that id, and fails when the connection it went out on
//! is lost (its outcome then unknown, never reported as done).

use std::{
    collections::HashMap,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::{mpsc, oneshot};

use super::{protocol::Up, socket::MemoryAccess};
use crate::memory::{
    error::{Timeout, WriteError},
    history::HistoryEntry,
    owner::Ack,
    read::ReadAnswer,
};

/// Where the answer to one request goes.
pub(super) enum Pending {
    Write(oneshot::Sender<Result<Ack, WriteError>>),
    History(oneshot::Sender<Vec<HistoryEntry>>),
    Read(oneshot::Sender<Result<ReadAnswer, Timeout>>),
    Version(oneshot::Sender<(u64, Option<String>)>),
}

/// One server process's connection to the owner's memory, shared by its `RemoteMemory`
/// clones and the connection task.
pub(super) struct Client {
    /// How to reach the owner, for messages and reconnection.
    pub(super) access: MemoryAccess,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Frames to the owner; `None` while reconnecting or after the owner is gone.
    up: Mutex<Option<mpsc::UnboundedSender<(Up, ())>>>,
}

impl Client {
    pub(super) fn new(access: MemoryAccess) -> Client {
        Client {
            access,
            next_id: AtomicU64::new(1),
            pending: Mutex::default(),
            up: Mutex::default(),
        }
    }

    /// Sends the request `up(id)` under a fresh id whose answer goes to the returned receiver;
    /// `None` if there is no connection to send it on.
    pub(super) fn ask<T>(
        &self,
        up: impl FnOnce(u64) -> Up,
        pending: impl FnOnce(oneshot::Sender<T>) -> Pending,
    ) -> Option<(u64, oneshot::Receiver<T>)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, pending(tx));
        let sent = {
            let guard = self.up.lock().unwrap_or_else(PoisonError::into_inner);
            guard
                .as_ref()
                .is_some_and(|tx| tx.send((up(id), ())).is_ok())
        };
        if sent {
            Some((id, rx))
        } else {
            self.pending_remove(id);
            None
        }
    }

    pub(super) fn pending_remove(&self, id: u64) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
    }

    /// Where this process's requests go from now on (`None`: nowhere, they fail at once).
    pub(super) fn set_up(&self, up: Option<mpsc::UnboundedSender<(Up, ())>>) {
        *self.up.lock().unwrap_or_else(PoisonError::into_inner) = up;
    }

    /// Fails everything in flight: the connection it was sent on is gone.
    pub(super) fn fail_pending(&self) {
        let drained: Vec<Pending> = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, p)| p)
            .collect();
        drop(drained);
    }

    /// Hands an answer to the request waiting for it (if it still waits).
    pub(super) fn answer(&self, id: u64, deliver: impl FnOnce(Pending)) {
        if let Some(pending) = self.pending_remove(id) {
            deliver(pending);
        }
    }
}
