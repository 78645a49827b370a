//! Latency histograms for `/metrics` (the gateway's, and each server's summed by group) and the
//! dashboard, in Prometheus' cumulative-bucket form: fixed bucket bounds, so series of different
//! servers, backends, tools and gateways add up, and lock-free recording, so measuring costs a
//! request a few atomic increments. Quantiles are estimated as Prometheus' `histogram_quantile`
//! does, so the dashboard and a Grafana panel over the same buckets agree.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// Upper bounds of the buckets, in microseconds (`+Inf` is implicit): from a fast local call
/// to the tail a stalled server causes.
pub const BOUNDS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 5_000_000,
];

/// One histogram: per-bucket counts (not cumulative; rendering sums them), the sum and count.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

/// A histogram's values at one moment (also what a server process reports in `/healthz`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub buckets: [u64; BOUNDS_US.len() + 1],
    pub sum_us: u64,
    pub count: u64,
}

impl Histogram {
    pub fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_US.partition_point(|b| *b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }

    /// Sets every value to `s`'s: how a server process's histogram, read from its `/healthz`,
    /// is mirrored in the supervisor.
    pub fn store(&self, s: &Snapshot) {
        for (b, v) in self.buckets.iter().zip(s.buckets) {
            b.store(v, Ordering::Relaxed);
        }
        self.sum_us.store(s.sum_us, Ordering::Relaxed);
        self.count.store(s.count, Ordering::Relaxed);
    }
}

impl Snapshot {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Snapshot) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = a.wrapping_add(b);
        }
        self.sum_us = self.sum_us.wrapping_add(other.sum_us);
        self.count = self.count.wrapping_add(other.count);
    }

    /// What was recorded since `earlier` (a snapshot of the same histogram); a histogram that
    /// went backwards (a new instance) counts from zero.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        if self.count < earlier.count {
            return *self;
        }
        Snapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].saturating_sub(earlier.buckets[i])),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
            count: self.count - earlier.count,
        }
    }

    /// The `q` quantile (0..=1) in microseconds, `None` when empty: linear within the bucket it
    /// falls in, as `histogram_quantile` does; in the `+Inf` bucket, the largest finite bound.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            let upto = below + n;
            if (upto as f64) >= rank && *n > 0 {
                let Some(&upper) = BOUNDS_US.get(i) else {
                    return Some(BOUNDS_US[BOUNDS_US.len() - 1] as f64);
                };
                let lower = if i == 0 { 0 } else { BOUNDS_US[i - 1] };
                let within = (rank - below as f64) / *n as f64;
                return Some(lower as f64 + (upper - lower) as f64 * within);
            }
            below = upto;
        }
        Some(BOUNDS_US[BOUNDS_US.len() - 1] as f64)
    }

    /// Appends the series of one labelled histogram named `name` (without the `_bucket`,
    /// `_sum`, `_count` suffixes; in seconds, as Prometheus names durations). `labels` is
    /// the inside of the braces, e.g. `group="community",tool="echo"`.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            cumulative += n;
            let le = BOUNDS_US
                .get(i)
                .map_or("+Inf".to_string(), |b| format!("{}", *b as f64 / 1e6));
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_into_cumulative_buckets() {
        let h = Histogram::default();
        h.record(Duration::from_micros(80));
        h.record(Duration::from_micros(100));
        h.record(Duration::from_micros(101));
        h.record(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], 2, "80 and 100 µs are <= 0.0001 s");
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[BOUNDS_US.len()], 1, "a minute is only under +Inf");
        let mut out = String::new();
        s.render(&mut out, "x_seconds", "tool=\"echo\"");
        assert!(
            out.contains("x_seconds_bucket{tool=\"echo\",le=\"0.0001\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{tool=\"echo\",le=\"0.00025\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{tool=\"echo\",le=\"+Inf\"} 4\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_count{tool=\"echo\"} 4\n"), "{out}");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn quantiles_interpolate_within_buckets_like_prometheus() {
        let h = Histogram::default();
        assert_eq!(h.snapshot().quantile_us(0.5), None);
        // 100 samples in (1, 2.5] ms: the median is halfway through that bucket.
        for _ in 0..100 {
            h.record(Duration::from_micros(2_000));
        }
        let s = h.snapshot();
        assert_eq!(s.quantile_us(0.5), Some(1_750.0));
        assert_eq!(s.quantile_us(1.0), Some(2_500.0));
        // One slow sample past every bound: p99 stays in the fast bucket, the max is capped.
        h.record(Duration::from_secs(60));
        let s = h.snapshot();
        assert!(s.quantile_us(0.99).unwrap() <= 2_500.0);
        assert_eq!(s.quantile_us(1.0), Some(5_000_000.0));
        // Differences: only what came after.
        let later = {
            h.record(Duration::from_micros(50));
            h.snapshot()
        };
        let d = later.since(&s);
        assert_eq!((d.count, d.buckets[0]), (1, 1));
        assert_eq!(d.quantile_us(0.5), Some(50.0));
        // A restarted instance (counts went down) counts from zero.
        assert_eq!(Snapshot::default().since(&later), Snapshot::default());
        let mut sum = s;
        sum.add(&d);
        assert_eq!(sum, later);
    }
}
