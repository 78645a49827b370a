//! The charts' axes: how values read as labels (latencies, counts, percent) and where the key
//! points and the top of an axis fall, so every chart labels its axes alike.

/// How the y axis reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YAxis {
    /// Microseconds, labelled as `850 µs` / `2.3 ms`, linear from zero.
    Micros,
    /// Microseconds on a log scale: for spectra and tails.
    MicrosLog,
    /// A plain count or rate, linear from zero.
    Count,
    /// Percent, 0 to 100.
    Percent,
}

/// A latency label for an axis: `850 µs`, `2.3 ms`, `1.2 s`.
pub fn axis_micros(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        let ms = us / 1e3;
        if ms < 10.0 {
            format!("{ms:.1} ms")
        } else {
            format!("{ms:.0} ms")
        }
    } else {
        format!("{:.1} s", us / 1e6)
    }
}

pub(super) fn axis_count(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

pub(super) fn y_label(axis: YAxis, v: f64) -> String {
    match axis {
        YAxis::Micros | YAxis::MicrosLog => axis_micros(v),
        YAxis::Count => axis_count(v),
        YAxis::Percent => format!("{v:.0} %"),
    }
}

pub(super) fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// Key points 1, 2 and 5 times each power of ten within `lo..hi`, for a log axis (plotters
/// picks too few on short log ranges).
pub(super) fn log_keys(lo: f64, hi: f64) -> Vec<f64> {
    let mut keys = Vec::new();
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return keys;
    }
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let k = m * decade;
            if k >= lo && k <= hi {
                keys.push(k);
            }
        }
        decade *= 10.0;
    }
    keys
}

/// Whole-number key points for a linear axis from `lo` to `hi`: multiples of a round step (1,
/// 2 or 5 times a power of ten, at least 1) giving at most about ten labels.
pub(super) fn whole_keys(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Vec::new();
    }
    let wanted = (hi - lo) / 10.0;
    let mut step = 1.0;
    'search: for magnitude in (0..16).map(|e| 10f64.powi(e)) {
        for m in [1.0, 2.0, 5.0] {
            if m * magnitude >= wanted {
                step = m * magnitude;
                break 'search;
            }
        }
    }
    let mut keys = Vec::new();
    let mut k = (lo / step).ceil() * step;
    while k <= hi {
        keys.push(k);
        k += step;
    }
    keys
}

/// A round number at or above `v` (1, 2 or 5 times a power of ten), for a linear axis' top.
pub(super) fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let v = v * 1.05;
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_keys() {
        assert_eq!(log_keys(700.0, 30_000.0), [1e3, 2e3, 5e3, 1e4, 2e4]);
        assert!(log_keys(0.0, 10.0).is_empty());
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(93.0), 100.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(4.0), 5.0);
    }
}
