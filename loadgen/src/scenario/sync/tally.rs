//! What the load recorded, behind one lock (a few thousand writes a second do not contend):
//! histograms of the window and of each second, counts by outcome, and every probe written.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime},
};

use hdrhistogram::Histogram;

use crate::{
    mcp::ErrorClass,
    recorder::{coarse_histogram, new_histogram},
};

/// The plain read (no `minVersion`) beside a write's read-back, which shows what a read costs
/// on the same server at that moment, so the lag can be told from the read's own round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Baseline {
    Read(Duration),
    Failed,
    /// Only every `BASELINE_EVERY`th write takes one.
    NotSampled,
}

/// What the load recorded (behind one lock: a few thousand writes a second do not contend).
pub(super) struct Tally {
    pub(super) ack: Histogram<u64>,
    pub(super) ack_service: Histogram<u64>,
    pub(super) lag: Histogram<u64>,
    /// Lag by the servers' clocks (see [`SyncFigures::server_lag_us`]).
    pub(super) server_lag: Histogram<u64>,
    /// Visible writes whose servers did not report both clocks.
    pub(super) server_lag_unknown: u64,
    pub(super) baseline: Histogram<u64>,
    pub(super) seconds: Vec<SecondTally>,
    /// Writes finished, warm-up included (for the progress line).
    pub(super) done: u64,
    /// Calls made (for CPU per call).
    pub(super) calls: u64,
    pub(super) writes: u64,
    pub(super) acked: u64,
    pub(super) failed: BTreeMap<ErrorClass, u64>,
    pub(super) warmup_writes: u64,
    pub(super) warmup_acked: u64,
    pub(super) visible: u64,
    pub(super) visibility_failures: BTreeMap<String, u64>,
    pub(super) baseline_failures: u64,
    /// Every acknowledged write, warm-up included.
    pub(super) acked_probes: Vec<Probe>,
    /// Every write not acknowledged (for the clean-up).
    pub(super) failed_probes: Vec<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            ack: new_histogram(),
            ack_service: new_histogram(),
            lag: new_histogram(),
            server_lag: new_histogram(),
            server_lag_unknown: 0,
            baseline: new_histogram(),
            seconds: Vec::new(),
            done: 0,
            calls: 0,
            writes: 0,
            acked: 0,
            failed: BTreeMap::new(),
            warmup_writes: 0,
            warmup_acked: 0,
            visible: 0,
            visibility_failures: BTreeMap::new(),
            baseline_failures: 0,
            acked_probes: Vec::new(),
            failed_probes: Vec::new(),
        }
    }
}

/// One second of the window.
pub(super) struct SecondTally {
    pub(super) writes: u64,
    pub(super) acked: u64,
    pub(super) visibility_failures: u64,
    pub(super) ack: Histogram<u32>,
    pub(super) lag: Histogram<u32>,
}

impl Default for SecondTally {
    fn default() -> Self {
        Self {
            writes: 0,
            acked: 0,
            visibility_failures: 0,
            ack: coarse_histogram(),
            lag: coarse_histogram(),
        }
    }
}

/// An acknowledged write.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe {
    pub(super) k: u64,
    /// The version its ack carried.
    pub(super) version: Option<u64>,
    /// The pool index of the server that took it.
    pub(super) writer: usize,
}

impl Tally {
    /// This second's tally (`slot` is `None` for the warm-up).
    pub(super) fn second(&mut self, slot: usize) -> &mut SecondTally {
        if self.seconds.len() <= slot {
            self.seconds.resize_with(slot + 1, SecondTally::default);
        }
        &mut self.seconds[slot]
    }

    pub(super) fn write_failed(&mut self, k: u64, slot: Option<usize>, class: ErrorClass) {
        self.done += 1;
        self.calls += 1;
        self.failed_probes.push(k);
        match slot {
            None => self.warmup_writes += 1,
            Some(s) => {
                self.writes += 1;
                *self.failed.entry(class).or_default() += 1;
                self.second(s).writes += 1;
            }
        }
    }

    pub(super) fn acked(
        &mut self,
        probe: Probe,
        slot: Option<usize>,
        ack: Duration,
        service: Duration,
    ) {
        self.done += 1;
        self.calls += 1;
        self.acked_probes.push(probe);
        match slot {
            None => {
                self.warmup_writes += 1;
                self.warmup_acked += 1;
            }
            Some(s) => {
                self.writes += 1;
                self.acked += 1;
                self.ack.saturating_record(micros(ack));
                self.ack_service.saturating_record(micros(service));
                let second = self.second(s);
                second.writes += 1;
                second.acked += 1;
                second.ack.saturating_record(micros(ack));
            }
        }
    }

    pub(super) fn visible(
        &mut self,
        slot: Option<usize>,
        lag: Duration,
        server_lag: Option<Duration>,
        baseline: Baseline,
    ) {
        self.calls += if baseline == Baseline::NotSampled {
            1
        } else {
            2
        };
        let Some(s) = slot else { return };
        self.visible += 1;
        self.lag.saturating_record(micros(lag));
        match server_lag {
            Some(l) => self.server_lag.saturating_record(micros(l)),
            None => self.server_lag_unknown += 1,
        }
        self.second(s).lag.saturating_record(micros(lag));
        match baseline {
            Baseline::Read(b) => self.baseline.saturating_record(micros(b)),
            Baseline::Failed => self.baseline_failures += 1,
            Baseline::NotSampled => {}
        }
    }

    pub(super) fn not_visible(&mut self, slot: Option<usize>, kind: String) {
        self.calls += 1;
        let Some(s) = slot else { return };
        *self.visibility_failures.entry(kind).or_default() += 1;
        self.second(s).visibility_failures += 1;
    }
}

/// The name of probe `k` of the run tagged `tag`.
pub(super) fn probe_name(tag: &str, k: u64) -> String {
    format!("sync-{tag}-{k}")
}

/// A tag telling this run's probes from any other's: 8 hex digits of the time and process.
pub(super) fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = fastrand::Rng::with_seed(nanos ^ u64::from(std::process::id()).rotate_left(32));
    format!("{:08x}", rng.u32(..))
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A latency in whole microseconds, at least 1 (the histograms' lowest value).
pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsampled_baseline_is_neither_a_read_nor_a_failure() {
        let mut tally = Tally::default();
        let ms = Duration::from_millis(1);
        tally.visible(Some(0), ms, None, Baseline::Read(ms));
        tally.visible(Some(0), ms, None, Baseline::NotSampled);
        tally.visible(Some(0), ms, None, Baseline::Failed);
        assert_eq!(tally.visible, 3);
        assert_eq!(tally.lag.len(), 3);
        assert_eq!(tally.baseline.len(), 1);
        assert_eq!(tally.baseline_failures, 1);
        assert_eq!(tally.calls, 2 + 1 + 2);
    }
}
