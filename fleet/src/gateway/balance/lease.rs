//! A backend handed out by a pick, counted as one request in flight until the request ends:
//! [`Lease::finish`] feeds the outcome to the member's health state machine and latency
//! estimate (and the pool-wide average); dropping an unfinished lease only releases it.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{member::Member, outcome::Outcome, table::PoolCore};

/// Weight of one success in the pool-wide latency average that stale member estimates relax
/// towards. Small, because it averages samples from every member of the pool.
const POOL_ALPHA: f64 = 0.02;

/// A backend chosen by [`Pool::pick`](super::pool::Pool::pick), counted as one outstanding request until it is
/// finished or dropped. Dropping it without [`Lease::finish`] (the request was cancelled)
/// releases it without counting a success or a failure.
#[must_use = "a lease counts as an outstanding request until finished or dropped"]
pub struct Lease {
    core: Arc<PoolCore>,
    id: Arc<str>,
    uid: u64,
    hint: usize,
    epoch: u64,
    probe: bool,
    finished: bool,
}

impl Lease {
    /// A lease on `member`, found at `hint` in the member table; `probe` when it is a
    /// half-open member's one request.
    pub(super) fn new(core: Arc<PoolCore>, member: &Member, hint: usize, probe: bool) -> Self {
        Self {
            core,
            id: Arc::clone(&member.id),
            uid: member.uid,
            hint,
            epoch: member.epoch,
            probe,
            finished: false,
        }
    }

    /// The chosen backend's server id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// This lease is the one request allowed to a half-open member: its outcome decides
    /// whether the member is re-admitted.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records how the request ended and releases the lease. `latency` is the backend's
    /// response time (used for the EWMA on success only); `now` is when the request ended.
    pub fn finish(mut self, outcome: Outcome, latency: Duration, now: Instant) {
        self.finished = true;
        let config = &self.core.config;
        let mut table = self.core.lock();
        let pool_us = table.pool_ewma_us;
        let Some(m) = table.find_mut(self.uid, self.hint) else {
            return;
        };
        m.outstanding = m.outstanding.saturating_sub(1);
        let current = m.epoch == self.epoch;
        match outcome {
            Outcome::Success => {
                m.successes_total += 1;
                m.latency.record(latency);
                let sample = latency.as_secs_f64() * 1e6;
                let prior = m.latency_us(now, pool_us, config.idle_half_life);
                m.ewma_us = prior + config.alpha() * (sample - prior);
                m.last_sample = Some(m.last_sample.map_or(now, |t| t.max(now)));
                if current {
                    m.consecutive_failures = 0;
                    m.ejections_in_row = 0;
                    if m.ejection.take().is_some() {
                        m.probe_in_flight = false;
                        m.epoch += 1;
                    }
                }
                table.pool_ewma_us = pool_us + POOL_ALPHA * (sample - pool_us);
            }
            Outcome::Failure(kind) => {
                m.failures.bump(kind);
                if current {
                    if m.ejection.is_some() {
                        // The half-open probe failed: out again, for twice as long.
                        m.eject(now, config);
                    } else {
                        m.consecutive_failures = m.consecutive_failures.saturating_add(1);
                        if m.consecutive_failures >= config.threshold(kind) {
                            m.eject(now, config);
                        }
                    }
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut table = self.core.lock();
        if let Some(m) = table.find_mut(self.uid, self.hint) {
            m.outstanding = m.outstanding.saturating_sub(1);
            if self.probe && m.epoch == self.epoch {
                // A cancelled probe decides nothing: let the next request probe.
                m.probe_in_flight = false;
            }
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("probe", &self.probe)
            .finish()
    }
}
