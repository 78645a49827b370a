//! Latencies as people read them in tables and text (`850 µs`, `2.35 ms`, `1.20 s`): one
//! format for the report, the comparison, the index, the gate's reports and loadgen's summary.
//! Chart axes label more coarsely (see the chart module's axis labels).

/// A latency for people: `850 µs`, `2.35 ms`, `1.20 s`.
pub fn fmt_micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_latencies() {
        assert_eq!(fmt_micros(850), "850 µs");
        assert_eq!(fmt_micros(2_345), "2.35 ms");
        assert_eq!(fmt_micros(1_200_000), "1.20 s");
    }
}
