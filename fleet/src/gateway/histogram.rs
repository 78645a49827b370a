//! Latency histograms for the gateway's `/metrics`, in Prometheus' cumulative-bucket form:
//! fixed bucket bounds, so series of different backends, tools and gateways add up, and
//! lock-free recording, so measuring costs a request a few atomic increments.

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

/// A histogram's values at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
}

impl Snapshot {
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
}
