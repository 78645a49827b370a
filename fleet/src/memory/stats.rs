//! Counters the owner and committer keep, so the admin API and benchmarks can report batch
//! sizes and how far git lags behind acknowledgement.

use std::{
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::Instant,
};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Shared cells; updated by the two threads, read by [`super::MemoryHandle::stats`].
#[derive(Debug)]
pub(crate) struct Stats {
    pub acked_version: AtomicU64,
    pub ops_acked: AtomicU64,
    pub ops_rejected: AtomicU64,
    pub batches: AtomicU64,
    pub max_batch: AtomicU64,
    pub wal_failures: AtomicU64,
    pub poisoned: AtomicBool,
    pub committed_version: AtomicU64,
    pub commits: AtomicU64,
    pub committed_ops: AtomicU64,
    pub commit_failures: AtomicU64,
    pub pack_merges: AtomicU64,
    /// Microseconds from acknowledgement to durable commit, one sample per op.
    lag_us: Mutex<Histogram<u64>>,
    /// When the oldest acknowledged write not yet in git was acknowledged, as microseconds
    /// after `base` plus one; 0 when every acknowledged write is committed.
    oldest_uncommitted: AtomicU64,
    base: Instant,
}

impl Stats {
    pub fn new(acked: u64, committed: u64) -> Self {
        Self {
            acked_version: AtomicU64::new(acked),
            ops_acked: AtomicU64::new(0),
            ops_rejected: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            max_batch: AtomicU64::new(0),
            wal_failures: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            committed_version: AtomicU64::new(committed),
            commits: AtomicU64::new(0),
            committed_ops: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            pack_merges: AtomicU64::new(0),
            // 1 us .. 1 h at 3 significant digits.
            lag_us: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("constant histogram bounds are valid"),
            ),
            oldest_uncommitted: AtomicU64::new(0),
            // An hour back, so that a write acknowledged just before (a WAL replay at open)
            // still counts whole.
            base: Instant::now()
                .checked_sub(std::time::Duration::from_secs(3600))
                .unwrap_or_else(Instant::now),
        }
    }

    pub fn set_oldest_uncommitted(&self, acked_at: Option<Instant>) {
        let v = acked_at.map_or(0, |at| {
            u64::try_from(at.saturating_duration_since(self.base).as_micros())
                .unwrap_or(u64::MAX - 1)
                + 1
        });
        self.oldest_uncommitted.store(v, Relaxed);
    }

    /// How long the oldest acknowledged write not yet in git has waited, in milliseconds.
    fn uncommitted_age_ms(&self) -> f64 {
        match self.oldest_uncommitted.load(Relaxed) {
            0 => 0.0,
            v => {
                let at = self.base + std::time::Duration::from_micros(v - 1);
                Instant::now().saturating_duration_since(at).as_secs_f64() * 1000.0
            }
        }
    }

    pub fn batch_acked(&self, version: u64, ops: u64) {
        self.acked_version.store(version, Relaxed);
        self.ops_acked.fetch_add(ops, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.max_batch.fetch_max(ops, Relaxed);
    }

    pub fn record_lag(&self, lag_us: u64, ops: u64) {
        let mut h = self.lag_us.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = h.record_n(lag_us.clamp(1, 3_600_000_000), ops);
    }

    pub fn snapshot(&self, view_version: u64) -> MemoryStats {
        let batches = self.batches.load(Relaxed);
        let ops = self.ops_acked.load(Relaxed);
        let commits = self.commits.load(Relaxed);
        let committed_ops = self.committed_ops.load(Relaxed);
        let h = self.lag_us.lock().unwrap_or_else(PoisonError::into_inner);
        let ms = |us: u64| us as f64 / 1000.0;
        MemoryStats {
            acked_version: self.acked_version.load(Relaxed),
            committed_version: self.committed_version.load(Relaxed),
            view_version,
            ops_acked: ops,
            ops_rejected: self.ops_rejected.load(Relaxed),
            batches,
            max_batch: self.max_batch.load(Relaxed),
            mean_batch: mean(ops, batches),
            wal_failures: self.wal_failures.load(Relaxed),
            poisoned: self.poisoned.load(Relaxed),
            commits,
            mean_commit_ops: mean(committed_ops, commits),
            commit_failures: self.commit_failures.load(Relaxed),
            pack_merges: self.pack_merges.load(Relaxed),
            commit_lag: LagStats {
                samples: h.len(),
                mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
                p50_ms: ms(h.value_at_quantile(0.5)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                max_ms: ms(h.max()),
            },
            wal_bytes: 0,
            uncommitted_age_ms: self.uncommitted_age_ms(),
            node: None,
            peers: Vec::new(),
            nodes: Vec::new(),
        }
    }
}

/// How long acknowledged ops waited for their durable git commit (since this open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LagStats {
    /// Ops measured.
    pub samples: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// A point-in-time picture of the store (counts are since this open).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct MemoryStats {
    /// Newest acknowledged (WAL-durable) version.
    pub acked_version: u64,
    /// Newest version in a durable git commit.
    pub committed_version: u64,
    /// Version of the store's own view.
    pub view_version: u64,
    pub ops_acked: u64,
    /// Ops refused by the graph (e.g. unknown entity).
    pub ops_rejected: u64,
    /// Group commits (one WAL fsync each).
    pub batches: u64,
    pub max_batch: u64,
    pub mean_batch: f64,
    /// Batches the WAL could not take (each writer got an error, nothing applied).
    pub wal_failures: u64,
    /// True once a failure could not be undone: writes are refused until reopen.
    pub poisoned: bool,
    pub commits: u64,
    pub mean_commit_ops: f64,
    /// Commit attempts that failed (retried; the WAL keeps the ops).
    pub commit_failures: u64,
    /// Pack merges done to keep the pack count low.
    pub pack_merges: u64,
    /// Acknowledgement to durable commit.
    pub commit_lag: LagStats,
    /// Bytes of write-ahead log on disk: segments not yet trimmed because git does not hold
    /// all their records (it grows when commits fall behind or fail).
    #[serde(default)]
    pub wal_bytes: u64,
    /// How long the oldest acknowledged write not yet durable in git has waited (0 when every
    /// one is committed): the commit lag now, where `commit_lag` is over the whole run.
    #[serde(default)]
    pub uncommitted_age_ms: f64,
    /// This node's id, when it publishes to peers.
    pub node: Option<String>,
    /// The peer repositories this node publishes to.
    pub peers: Vec<super::replica::PeerStatus>,
    /// The other nodes whose histories the peers hold, and how far each has got.
    #[serde(default)]
    pub nodes: Vec<super::replica::NodeSeen>,
}

/// `total / count`, or 0 when nothing was counted.
fn mean(total: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        total as f64 / count as f64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_oldest_uncommitted_write_ages_until_it_is_committed() {
        let stats = Stats::new(0, 0);
        assert_eq!(stats.snapshot(0).uncommitted_age_ms, 0.0);
        let acked = Instant::now() - Duration::from_millis(1500);
        stats.set_oldest_uncommitted(Some(acked));
        let age = stats.snapshot(0).uncommitted_age_ms;
        assert!((1500.0..60_000.0).contains(&age), "{age}");
        stats.set_oldest_uncommitted(Some(Instant::now()));
        assert!(stats.snapshot(0).uncommitted_age_ms < 1500.0);
        stats.set_oldest_uncommitted(None);
        assert_eq!(stats.snapshot(0).uncommitted_age_ms, 0.0);
    }
}
