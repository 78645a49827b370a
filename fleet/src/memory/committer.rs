//! The committer: a second OS thread that turns acknowledged batches into git commits without
//! holding up acknowledgements. It coalesces whatever is pending (at most one commit per
//! `commit_interval`; when it lags, one commit takes everything queued up to
//! `max_commit_ops`, which costs less per op, so it catches up), retries failed commits with
//! backoff (the WAL keeps the ops meanwhile), and after each durable commit updates the
//! history index, records the commit lag and trims the WAL (the archive merges packs).

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::Ordering::Relaxed,
        mpsc::{Receiver, RecvTimeoutError, TryRecvError},
    },
    time::{Duration, Instant},
};

use tokio::sync::watch;

use super::archive::{Archive, CommitInfo};
use super::history::HistoryIndex;
use super::owner::Batch;
use super::stats::Stats;
use super::wal;

/// Attempts at the end (after the owner stopped) before leaving the rest to the next open.
const FINAL_ATTEMPTS: u32 = 5;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) struct Committer {
    pub archive: Archive,
    pub rx: Receiver<Batch>,
    pub history: Arc<Mutex<HistoryIndex>>,
    pub stats: Arc<Stats>,
    pub committed: watch::Sender<u64>,
    pub wal_dir: PathBuf,
    pub interval: Duration,
    pub max_commit_ops: usize,
}

struct Loop {
    queue: VecDeque<Batch>,
    /// (last version, acked at, ops) of appended batches not yet durable in git.
    inflight: VecDeque<(u64, Instant, u64)>,
    closed: bool,
    last_commit: Instant,
    failures: u32,
}

impl Committer {
    /// Runs until the owner is gone and everything is committed. `Err` says why some
    /// acknowledged ops were left to the WAL (they are committed by the next open).
    pub fn run(mut self) -> Result<(), String> {
        let mut l = Loop {
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            closed: false,
            last_commit: Instant::now()
                .checked_sub(self.interval)
                .unwrap_or_else(Instant::now),
            failures: 0,
        };
        loop {
            self.fill(&mut l);
            self.publish_oldest(&l);
            let idle = l.queue.is_empty()
                && self.archive.pending_ops() == 0
                && self.archive.durable_version() == self.archive.version();
            if idle {
                if l.closed {
                    return Ok(());
                }
                continue;
            }
            if let Err(e) = self.feed(&mut l) {
                // The stream does not apply to the archive: a bug or a damaged archive. Stop
                // committing; the WAL keeps everything for the next open.
                tracing::error!(error = %e, "memory committer stopped");
                self.stats.commit_failures.fetch_add(1, Relaxed);
                self.discard_rest(&mut l);
                return Err(e);
            }
            match self.archive.commit() {
                Ok(info) => {
                    l.failures = 0;
                    l.last_commit = Instant::now();
                    if let Some(info) = info {
                        self.committed_info(&info);
                    }
                    self.after_durable(&mut l);
                    self.publish_oldest(&l);
                }
                Err(e) => {
                    l.failures += 1;
                    self.stats.commit_failures.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, attempt = l.failures, "git commit failed; will retry (ops are safe in the WAL)");
                    if l.closed && l.failures >= FINAL_ATTEMPTS {
                        return Err(e.to_string());
                    }
                    let backoff =
                        Duration::from_millis(50u64 << l.failures.min(7)).min(MAX_BACKOFF);
                    self.wait(&mut l, Instant::now() + backoff);
                }
            }
        }
    }

    /// Tells the stats when the oldest acknowledged write not yet durable in git was
    /// acknowledged (none when everything is): how far git lags right now.
    fn publish_oldest(&self, l: &Loop) {
        let oldest = l
            .inflight
            .front()
            .map(|&(_, acked_at, _)| acked_at)
            .or_else(|| l.queue.front().map(|b| b.acked_at));
        self.stats.set_oldest_uncommitted(oldest);
    }

    /// Blocks for work when idle, then collects batches until the next commit is due.
    fn fill(&mut self, l: &mut Loop) {
        let idle = l.queue.is_empty()
            && self.archive.pending_ops() == 0
            && self.archive.durable_version() == self.archive.version();
        if idle && !l.closed {
            match self.rx.recv() {
                Ok(b) => l.queue.push_back(b),
                Err(_) => l.closed = true,
            }
        }
        self.wait(l, l.last_commit + self.interval);
    }

    /// Collects batches until `deadline` (or the owner is gone).
    fn wait(&mut self, l: &mut Loop, deadline: Instant) {
        loop {
            if l.closed {
                return;
            }
            let now = Instant::now();
            let got = if now >= deadline {
                match self.rx.try_recv() {
                    Ok(b) => Ok(b),
                    Err(TryRecvError::Empty) => return,
                    Err(TryRecvError::Disconnected) => Err(()),
                }
            } else {
                match self.rx.recv_timeout(deadline - now) {
                    Ok(b) => Ok(b),
                    Err(RecvTimeoutError::Timeout) => return,
                    Err(RecvTimeoutError::Disconnected) => Err(()),
                }
            };
            match got {
                Ok(b) => l.queue.push_back(b),
                Err(()) => l.closed = true,
            }
        }
    }

    /// Appends queued batches to the archive, up to the per-commit cap.
    fn feed(&mut self, l: &mut Loop) -> Result<(), String> {
        while let Some(b) = l.queue.front() {
            let pending = self.archive.pending_ops();
            if pending > 0 && pending + b.records.len() > self.max_commit_ops {
                break;
            }
            let Some(b) = l.queue.pop_front() else { break };
            let last = b.records.last().map_or(0, |r| r.version);
            l.inflight
                .push_back((last, b.acked_at, b.records.len() as u64));
            self.archive.append(b.records).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn committed_info(&self, info: &CommitInfo) {
        self.stats.commits.fetch_add(1, Relaxed);
        if info.merged_packs > 0 {
            self.stats.pack_merges.fetch_add(1, Relaxed);
        }
        self.stats.committed_ops.fetch_add(info.ops as u64, Relaxed);
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.add_commit(info.oid, info.batches.iter().flat_map(|b| b.iter()));
    }

    /// Publishes the durable version, records the commit lag and trims the WAL.
    fn after_durable(&mut self, l: &mut Loop) {
        let durable = self.archive.durable_version();
        if durable <= *self.committed.borrow() {
            return;
        }
        let now = Instant::now();
        while let Some(&(last, acked_at, ops)) = l.inflight.front() {
            if last > durable {
                break;
            }
            let lag = now.duration_since(acked_at);
            self.stats
                .record_lag(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX), ops);
            l.inflight.pop_front();
        }
        self.stats.committed_version.store(durable, Relaxed);
        self.committed.send_replace(durable);
        if let Err(e) = wal::remove_committed(&self.wal_dir, durable) {
            tracing::warn!(error = %e, "cannot trim the WAL (it only grows meanwhile)");
        }
    }

    /// After a fatal error: drop incoming batches (they are in the WAL) until the owner stops.
    fn discard_rest(&mut self, l: &mut Loop) {
        l.queue.clear();
        if !l.closed {
            while self.rx.recv().is_ok() {}
        }
    }
}
