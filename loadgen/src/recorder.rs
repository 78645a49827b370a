//! What a worker measured: a latency histogram of successful requests, errors by class and
//! counts per second. One recorder per worker, merged for progress lines and the result.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::mcp::ErrorClass;

/// Largest latency the histograms hold; slower samples are clamped to it.
pub const MAX_LATENCY_US: u64 = 60_000_000;
/// Requests that completed (or failed) in one second of the measured window, by start time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondCounts {
    pub ok: u64,
    pub errors: u64,
}

/// One call's share of a run: its outcomes and the latency of its successes.
#[derive(Debug, Clone)]
pub struct CallStats {
    pub ok: u64,
    pub errors: u64,
    pub latency_us: Histogram<u64>,
}

impl Default for CallStats {
    fn default() -> Self {
        Self {
            ok: 0,
            errors: 0,
            latency_us: new_histogram(),
        }
    }
}

/// What one worker (or, merged, the whole run) measured. Latency is recorded for successful
/// requests only, in microseconds.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Latency as the user feels it: from the intended send time in the open model (so a stall
    /// delays every request scheduled behind it), from the actual send in the closed loop.
    pub latency_us: Histogram<u64>,
    /// From the actual send to the full response: what the server alone took (uncorrected).
    pub service_us: Histogram<u64>,
    /// From the actual send to the response headers, for successful requests.
    pub ttfb_us: Histogram<u64>,
    /// The same latency split by call (tool name, or method for `tools/list`).
    pub by_call: BTreeMap<String, CallStats>,
    pub ok: u64,
    pub errors: [u64; ErrorClass::ALL.len()],
    pub per_second: Vec<SecondCounts>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latency_us: new_histogram(),
            service_us: new_histogram(),
            ttfb_us: new_histogram(),
            by_call: BTreeMap::new(),
            ok: 0,
            errors: [0; ErrorClass::ALL.len()],
            per_second: Vec::new(),
        }
    }
}

/// 1 µs to 60 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

impl Recorder {
    /// Records one request that started `second` whole seconds into the measured window.
    pub fn record(&mut self, second: usize, elapsed: Duration, outcome: Result<(), ErrorClass>) {
        self.record_open(second, elapsed, elapsed, outcome);
    }

    /// Adds one outcome to its call's statistics (the key is allocated once per call).
    pub fn record_call(&mut self, call: &str, latency: Duration, outcome: Result<(), ErrorClass>) {
        let stats = match self.by_call.get_mut(call) {
            Some(stats) => stats,
            None => self.by_call.entry(call.to_string()).or_default(),
        };
        match outcome {
            Ok(()) => {
                stats.ok += 1;
                let us = u64::try_from(latency.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                stats.latency_us.saturating_record(us);
            }
            Err(_) => stats.errors += 1,
        }
    }

    /// Records the time to the response headers of a successful request.
    pub fn record_ttfb(&mut self, ttfb: Duration) {
        let us = u64::try_from(ttfb.as_micros()).unwrap_or(u64::MAX).max(1);
        self.ttfb_us.saturating_record(us);
    }

    /// Records one request of the open model: `latency` from its intended send time, `service`
    /// from its actual send.
    pub fn record_open(
        &mut self,
        second: usize,
        latency: Duration,
        service: Duration,
        outcome: Result<(), ErrorClass>,
    ) {
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, SecondCounts::default());
        }
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.per_second[second].ok += 1;
                let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
                self.latency_us.saturating_record(us(latency));
                self.service_us.saturating_record(us(service));
            }
            Err(class) => {
                self.errors[class as usize] += 1;
                self.per_second[second].errors += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.ok += other.ok;
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second
                .resize(other.per_second.len(), SecondCounts::default());
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(&other.per_second) {
            mine.ok += theirs.ok;
            mine.errors += theirs.errors;
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.service_us.add(&other.service_us);
        let _ = self.ttfb_us.add(&other.ttfb_us);
        for (call, theirs) in &other.by_call {
            let mine = self.by_call.entry(call.clone()).or_default();
            mine.ok += theirs.ok;
            mine.errors += theirs.errors;
            let _ = mine.latency_us.add(&theirs.latency_us);
        }
    }

    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.error_total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorders_merge() {
        let mut a = Recorder::default();
        a.record(0, Duration::from_micros(100), Ok(()));
        a.record(2, Duration::from_micros(300), Err(ErrorClass::Timeout));
        let mut b = Recorder::default();
        b.record(1, Duration::from_millis(2), Ok(()));
        b.record(1, Duration::from_secs(120), Ok(()));
        a.merge(&b);
        assert_eq!((a.ok, a.error_total(), a.requests()), (3, 1, 4));
        assert_eq!(a.errors[ErrorClass::Timeout as usize], 1);
        assert_eq!(a.per_second[1], SecondCounts { ok: 2, errors: 0 });
        assert_eq!(a.per_second[2], SecondCounts { ok: 0, errors: 1 });
        assert_eq!(a.latency_us.len(), 3);
        assert!(
            a.latency_us.max() >= MAX_LATENCY_US - MAX_LATENCY_US / 1000,
            "clamped"
        );
    }
}
