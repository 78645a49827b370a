//! What the users of a load phase measured: latency histograms of successful requests (overall,
//! per call, per target group and per second), errors by class and counts per second. Users
//! share a few recorders (one per shard, each behind its own lock) rather than one each, so a
//! thousand held connections do not cost a thousand sets of histograms; the shards are merged
//! for progress lines and the result.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;

use crate::mcp::{Aside, Asides, ErrorClass};

/// Largest latency the histograms hold; slower samples are clamped to it.
pub const MAX_LATENCY_US: u64 = 60_000_000;
/// Requests that completed (or failed) in one second of the measured window, by start time,
/// with the latency of the successful ones (2 significant digits: enough for a time series).
#[derive(Debug, Clone)]
pub struct SecondStats {
    pub ok: u64,
    pub errors: u64,
    pub errors_by_class: [u64; ErrorClass::ALL.len()],
    pub latency_us: Histogram<u32>,
}

impl Default for SecondStats {
    fn default() -> Self {
        Self {
            ok: 0,
            errors: 0,
            errors_by_class: [0; ErrorClass::ALL.len()],
            latency_us: coarse_histogram(),
        }
    }
}

/// One call's (or group's, or server's) share of a run: its outcomes and the latency of its
/// successes.
#[derive(Debug, Clone)]
pub struct CallStats<T: hdrhistogram::Counter = u64> {
    pub ok: u64,
    pub errors: u64,
    pub latency_us: Histogram<T>,
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

impl Default for CallStats<u32> {
    fn default() -> Self {
        Self {
            ok: 0,
            errors: 0,
            latency_us: coarse_histogram(),
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
    /// The same latency split by target group (a fleet's profile, or `targets`).
    pub by_group: BTreeMap<String, CallStats>,
    /// The same latency split by target server, at 2 significant digits: a phase may spread
    /// over a thousand servers in every shard, and a heatmap needs no finer p99.
    pub by_server: BTreeMap<String, CallStats<u32>>,
    pub ok: u64,
    pub errors: [u64; ErrorClass::ALL.len()],
    pub per_second: Vec<SecondStats>,
    /// Notifications and server-to-client requests that came with the answers, by kind.
    pub asides: AsideCounts,
}

/// [`Asides`] summed over many calls.
#[derive(Debug, Clone, Default)]
pub struct AsideCounts([u64; Aside::ALL.len()]);

impl AsideCounts {
    pub fn add(&mut self, asides: &Asides) {
        for (kind, n) in asides.iter() {
            self.0[kind as usize] += u64::from(n);
        }
    }

    pub fn merge(&mut self, other: &AsideCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    /// The kinds seen, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (Aside, u64)> + '_ {
        Aside::ALL
            .into_iter()
            .map(|k| (k, self.0[k as usize]))
            .filter(|(_, n)| *n > 0)
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latency_us: new_histogram(),
            service_us: new_histogram(),
            ttfb_us: new_histogram(),
            by_call: BTreeMap::new(),
            by_group: BTreeMap::new(),
            by_server: BTreeMap::new(),
            ok: 0,
            errors: [0; ErrorClass::ALL.len()],
            per_second: Vec::new(),
            asides: AsideCounts::default(),
        }
    }
}

/// 1 µs to 60 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

/// 1 µs to 60 s at 2 significant digits: for the many small histograms (per second, per
/// server), a twelfth of [`new_histogram`]'s memory.
pub fn coarse_histogram<T: hdrhistogram::Counter>() -> Histogram<T> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).expect("constant histogram bounds are valid")
}

impl Recorder {
    /// Records one request that started `second` whole seconds into the measured window, its
    /// latency its service time (the tests' shorthand for [`Recorder::record_open`]).
    #[cfg(test)]
    pub fn record(&mut self, second: usize, elapsed: Duration, outcome: Result<(), ErrorClass>) {
        self.record_open(second, elapsed, elapsed, outcome);
    }

    /// Adds one outcome to its call's statistics (the key is allocated once per call).
    pub fn record_call(&mut self, call: &str, latency: Duration, outcome: Result<(), ErrorClass>) {
        record_keyed(&mut self.by_call, call, latency, outcome);
    }

    /// Adds one outcome to its target group's statistics.
    pub fn record_group(
        &mut self,
        group: &str,
        latency: Duration,
        outcome: Result<(), ErrorClass>,
    ) {
        record_keyed(&mut self.by_group, group, latency, outcome);
    }

    /// Adds one outcome to its target server's statistics.
    pub fn record_server(
        &mut self,
        server: &str,
        latency: Duration,
        outcome: Result<(), ErrorClass>,
    ) {
        record_keyed(&mut self.by_server, server, latency, outcome);
    }

    /// Records the time to the response headers of a successful request.
    pub fn record_ttfb(&mut self, ttfb: Duration) {
        self.ttfb_us.saturating_record(micros(ttfb));
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
            self.per_second
                .resize_with(second + 1, SecondStats::default);
        }
        match outcome {
            Ok(()) => {
                self.ok += 1;
                let this = &mut self.per_second[second];
                this.ok += 1;
                this.latency_us.saturating_record(micros(latency));
                self.latency_us.saturating_record(micros(latency));
                self.service_us.saturating_record(micros(service));
            }
            Err(class) => {
                self.errors[class as usize] += 1;
                let this = &mut self.per_second[second];
                this.errors += 1;
                this.errors_by_class[class as usize] += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.ok += other.ok;
        self.asides.merge(&other.asides);
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second
                .resize_with(other.per_second.len(), SecondStats::default);
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(&other.per_second) {
            mine.ok += theirs.ok;
            mine.errors += theirs.errors;
            for (m, t) in mine.errors_by_class.iter_mut().zip(theirs.errors_by_class) {
                *m += t;
            }
            let _ = mine.latency_us.add(&theirs.latency_us);
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.service_us.add(&other.service_us);
        let _ = self.ttfb_us.add(&other.ttfb_us);
        merge_keyed(&mut self.by_call, &other.by_call);
        merge_keyed(&mut self.by_group, &other.by_group);
        merge_keyed(&mut self.by_server, &other.by_server);
    }

    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.error_total()
    }
}

/// A latency in whole microseconds, at least 1 (the histograms' lowest value).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn record_keyed<T: hdrhistogram::Counter>(
    map: &mut BTreeMap<String, CallStats<T>>,
    key: &str,
    latency: Duration,
    outcome: Result<(), ErrorClass>,
) where
    CallStats<T>: Default,
{
    let stats = match map.get_mut(key) {
        Some(stats) => stats,
        None => map.entry(key.to_string()).or_default(),
    };
    match outcome {
        Ok(()) => {
            stats.ok += 1;
            stats.latency_us.saturating_record(micros(latency));
        }
        Err(_) => stats.errors += 1,
    }
}

fn merge_keyed<T: hdrhistogram::Counter>(
    mine: &mut BTreeMap<String, CallStats<T>>,
    theirs: &BTreeMap<String, CallStats<T>>,
) where
    CallStats<T>: Default,
{
    for (key, theirs) in theirs {
        let mine = mine.entry(key.clone()).or_default();
        mine.ok += theirs.ok;
        mine.errors += theirs.errors;
        // Same bounds on both sides, so adding cannot fail.
        let _ = mine.latency_us.add(&theirs.latency_us);
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
        assert_eq!((a.per_second[1].ok, a.per_second[1].errors), (2, 0));
        assert_eq!(a.per_second[1].latency_us.len(), 2);
        assert_eq!((a.per_second[2].ok, a.per_second[2].errors), (0, 1));
        assert_eq!(
            a.per_second[2].errors_by_class[ErrorClass::Timeout as usize],
            1
        );
        assert_eq!(a.latency_us.len(), 3);
        assert!(
            a.latency_us.max() >= MAX_LATENCY_US - MAX_LATENCY_US / 1000,
            "clamped"
        );
    }
}
