//! A server process's state behind its `RemoteMemory`: its place in the owner's log (the WAL
//! tail and the durable mark), catching the view up to it or taking a fresh follow point, and
//! the requests waiting for the owner's answers.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::{mpsc, oneshot, watch};

use super::protocol::Up;
use crate::memory::{
    error::{ViewError, WriteError},
    graph::StateError,
    history::HistoryEntry,
    mark::{MarkError, MarkReader},
    owner::Ack,
    store::FollowPoint,
    view::View,
    wal::{Tail, TailError},
};

/// Records a process always replays rather than taking a snapshot, however small its graph.
/// Records a process always replays rather than taking a snapshot, however small its graph.
pub(super) const MIN_REPLAY: u64 = 10_000;

pub(super) enum Pending {
    Write(oneshot::Sender<Result<Ack, WriteError>>),
    History(oneshot::Sender<Vec<HistoryEntry>>),
    Reached(oneshot::Sender<u64>),
}

/// This process's place in the owner's log.
pub(super) struct Follower {
    pub(super) tail: Tail,
    pub(super) mark: MarkReader,
}

/// Why the view could not be caught up from the log.
#[derive(Debug, thiserror::Error)]
pub(super) enum CatchUpError {
    #[error("waiting for a fresh follow point from the owner")]
    Resyncing,
    #[error("{behind} records behind: a fresh snapshot is cheaper than replaying them")]
    FarBehind { behind: u64 },
    #[error(transparent)]
    Mark(#[from] MarkError),
    #[error(transparent)]
    Tail(#[from] TailError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("the owner's snapshot does not load: {0}")]
    Snapshot(#[from] StateError),
}

/// One server process's connection to the owner's memory, shared by its `RemoteMemory`
/// clones and the connection task.
pub(super) struct Client {
    pub(super) name: String,
    pub(super) view: Arc<View>,
    /// `None` while a fresh follow point is awaited.
    pub(super) follower: Mutex<Option<Follower>>,
    /// Bumped whenever a follow point is taken, so calls waiting for one wake.
    pub(super) follows: watch::Sender<u64>,
    /// A fresh follow point has been asked for and not yet taken.
    pub(super) resync_asked: std::sync::atomic::AtomicBool,
    pub(super) next_id: AtomicU64,
    pub(super) pending: Mutex<HashMap<u64, Pending>>,
    /// Frames to the owner; replaced on reconnect.
    pub(super) up: Mutex<Option<mpsc::UnboundedSender<Up>>>,
}

/// A reader of the log and of the mark at `point`.
pub(super) fn follower(point: &FollowPoint) -> Result<Follower, CatchUpError> {
    Ok(Follower {
        tail: Tail::open(&point.wal_dir, point.position, point.snapshot.version)?,
        mark: MarkReader::open(&point.mark_path)?,
    })
}

impl Client {
    /// Applies the log up to the owner's durable mark. On failure this process's place in
    /// the log is dropped (records may have been read but not applied) until a fresh follow
    /// point comes.
    pub(super) fn catch_up(&self) -> Result<(), CatchUpError> {
        let mut guard = self.follower.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(f) = guard.as_mut() else {
            return Err(CatchUpError::Resyncing);
        };
        let result = (|| {
            let mark = f.mark.read()?;
            if mark.version <= f.tail.version() {
                return Ok(());
            }
            if let Some(behind) = self.too_far_behind(f, mark.version) {
                return Err(CatchUpError::FarBehind { behind });
            }
            let records = f.tail.read_to(mark.position, mark.version)?;
            self.view.apply_batch_at(&records, mark.at_us)?;
            Ok(())
        })();
        if result.is_err() {
            *guard = None;
        }
        result
    }

    /// How many records `f` is behind `durable`, if more than are worth replaying: beyond
    /// about twice the graph's size, loading a snapshot costs less.
    pub(super) fn too_far_behind(&self, f: &Follower, durable: u64) -> Option<u64> {
        let behind = durable.saturating_sub(f.tail.version());
        let (entities, relations) = self.view.counts();
        (behind > (2 * (entities + relations) as u64).max(MIN_REPLAY)).then_some(behind)
    }

    /// Lets go of this process's place in the log (and the segment file it holds open) if it
    /// has fallen so far behind that its next call will start from a snapshot anyway.
    pub(super) fn release_if_far_behind(&self) {
        let mut guard = self.follower.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(f) = guard.as_ref() else { return };
        if let Ok(mark) = f.mark.read()
            && self.too_far_behind(f, mark.version).is_some()
        {
            *guard = None;
        }
    }

    /// Starts following again from `point` (a fresh snapshot and its place in the log).
    pub(super) fn take_follow_point(&self, point: FollowPoint) -> Result<(), CatchUpError> {
        // Whether or not it is usable, the request it answers is over.
        self.resync_asked.store(false, Ordering::SeqCst);
        let mut guard = self.follower.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = follower(&point)?;
        // Refused if older than the view (versions never go back); the owner's view moves
        // before its mark, so a snapshot is never behind what a follower has applied.
        self.view.reset(point.snapshot)?;
        *guard = Some(fresh);
        drop(guard);
        self.follows.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Asks the owner for a fresh follow point, unless that is under way (answered on the
    /// connection, or by the next connection's first frame).
    pub(super) fn resync(&self) {
        if !self.resync_asked.swap(true, Ordering::SeqCst) && !self.send(Up::Resync) {
            // No connection now: the reconnection's first frame is the follow point.
            tracing::debug!("memory view: no connection to ask for a follow point on");
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
        if self.send(up(id)) {
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

    pub(super) fn send(&self, up: Up) -> bool {
        let guard = self.up.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().is_some_and(|tx| tx.send(up).is_ok())
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
}
