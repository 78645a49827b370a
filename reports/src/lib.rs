//! Reads loadgen run files (schema in [`run`]) and never measures anything itself: the HTML
//! report of one run ([`html`]), the comparison of two ([`compare`]), the index of many
//! ([`index`]) and the CI gate ([`gate`]).

pub mod chart;
pub mod compare;
pub mod diagnose;
pub mod escape;
pub mod gate;
pub mod html;
pub mod index;
pub mod run;
pub mod stats;
#[cfg(any(test, feature = "testing"))]
pub mod synthetic;

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
