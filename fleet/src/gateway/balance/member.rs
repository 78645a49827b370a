//! One member of a pool: the passive-health state machine (consecutive failures, ejection with
//! a doubling backoff, half-open probing, epochs), its load (outstanding leases) and its
//! latency estimate, which relaxes towards the pool's typical latency while it goes
//! unmeasured. Pure state, no locking: the pool holds its lock while it calls these.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    config::PoolConfig,
    outcome::{FailureCounts, MemberStats, TAKEN_OUT_KEPT},
};
use crate::histogram::Histogram;

/// One backend of the pool: its health (up, ejected, half-open), its load and its latency
/// estimate.
#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: Arc<str>,
    pub(super) uid: u64,
    pub(super) up: bool,
    pub(super) outstanding: u32,
    pub(super) ewma_us: f64,
    /// Time of the last latency sample; `None` until the first, so a fresh member keeps its
    /// seed estimate.
    pub(super) last_sample: Option<Instant>,
    pub(super) consecutive_failures: u32,
    pub(super) ejection: Option<Ejection>,
    /// Ejections since the last success: the exponent of the backoff.
    pub(super) ejections_in_row: u32,
    /// Bumped on every health change; only leases of the current epoch move the health state.
    pub(super) epoch: u64,
    /// A half-open member's one probe lease is out.
    pub(super) probe_in_flight: bool,
    pub(super) successes_total: u64,
    pub(super) failures: FailureCounts,
    pub(super) ejections_total: u64,
    pub(super) taken_out_at_ms: VecDeque<u64>,
    pub(super) latency: Histogram,
}

/// A passive ejection: out of rotation from `since` until `until`, half-open after.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ejection {
    pub(super) since: Instant,
    pub(super) until: Instant,
}

impl Member {
    pub(super) fn new(id: &str, uid: u64, ewma_us: f64) -> Self {
        Self {
            id: Arc::from(id),
            uid,
            up: true,
            outstanding: 0,
            ewma_us,
            last_sample: None,
            consecutive_failures: 0,
            ejection: None,
            ejections_in_row: 0,
            epoch: 0,
            probe_in_flight: false,
            successes_total: 0,
            failures: FailureCounts::default(),
            ejections_total: 0,
            taken_out_at_ms: VecDeque::new(),
            latency: Histogram::default(),
        }
    }

    /// Notes the wall-clock moment the member left rotation.
    pub(super) fn record_taken_out(&mut self) {
        if self.taken_out_at_ms.len() == TAKEN_OUT_KEPT {
            self.taken_out_at_ms.pop_front();
        }
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.taken_out_at_ms.push_back(ms);
    }

    /// May this member take a new lease now?
    pub(super) fn eligible(&self, exclude: &[&str], now: Instant) -> bool {
        if !self.up {
            return false;
        }
        if let Some(e) = &self.ejection
            && (now < e.until || self.probe_in_flight)
        {
            return false;
        }
        !exclude.iter().any(|x| **x == *self.id)
    }

    /// The latency estimate, relaxed towards the pool's typical latency by the time since the
    /// last sample.
    pub(super) fn latency_us(&self, now: Instant, pool_us: f64, half_life: Duration) -> f64 {
        let Some(at) = self.last_sample else {
            return self.ewma_us;
        };
        let idle = now.saturating_duration_since(at);
        if idle.is_zero() || half_life.is_zero() {
            return self.ewma_us;
        }
        let keep = (-(idle.as_secs_f64() / half_life.as_secs_f64())).exp2();
        pool_us + (self.ewma_us - pool_us) * keep
    }

    pub(super) fn cost(&self, now: Instant, pool_us: f64, half_life: Duration) -> f64 {
        (f64::from(self.outstanding) + 1.0) * self.latency_us(now, pool_us, half_life)
    }

    pub(super) fn eject(&mut self, now: Instant, config: &PoolConfig) {
        self.ejections_in_row = self.ejections_in_row.saturating_add(1);
        let until = now + config.backoff(self.ejections_in_row);
        if self.ejection.is_none() && self.up {
            self.record_taken_out();
        }
        self.ejection = Some(Ejection { since: now, until });
        self.consecutive_failures = 0;
        self.probe_in_flight = false;
        self.ejections_total += 1;
        self.epoch += 1;
    }

    pub(super) fn stats(&self) -> MemberStats {
        MemberStats {
            id: self.id.to_string(),
            up: self.up,
            outstanding: self.outstanding,
            ewma_us: self.ewma_us.max(0.0).round() as u64,
            ejected: self.ejection.is_some(),
            ejections_total: self.ejections_total,
            failures_total: self.failures.total(),
            failures: self.failures,
            successes_total: self.successes_total,
            taken_out_at_ms: self.taken_out_at_ms.iter().copied().collect(),
            latency: self.latency.snapshot(),
        }
    }
}
