//! Latency distributions of one histogram: bars over log-spaced buckets and cumulative
//! distributions (CDFs), as the sync section draws its lag, ack and baseline read, and the
//! comparison its base against head.

use plotters::prelude::*;

use super::{
    axis::{axis_count, axis_micros, log_keys, nice_ceiling},
    style::{ChartError, SIZE, Series, draw_lines, fail, frame, legend, mesh, svg},
};

/// Histogram bars over log-spaced latency buckets: `buckets` are `(from µs, to µs, count)`.
pub fn latency_histogram(
    title: &str,
    buckets: &[(f64, f64, u64)],
    color: RGBColor,
) -> Result<String, ChartError> {
    let lo = buckets.first().map_or(1.0, |b| b.0.max(1.0));
    let hi = buckets.last().map_or(10.0, |b| b.1.max(lo * 10.0));
    let peak = buckets.iter().map(|b| b.2).max().unwrap_or(0) as f64;
    svg(SIZE, |root| {
        let mut chart = frame(root, title)
            .build_cartesian_2d(
                (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
                0.0..nice_ceiling(peak),
            )
            .map_err(fail)?;
        mesh(&mut chart)
            .x_desc("latency")
            .y_desc("samples")
            .x_label_formatter(&|v| axis_micros(*v))
            .y_label_formatter(&|v| axis_count(*v))
            .draw()
            .map_err(fail)?;
        chart
            .draw_series(buckets.iter().map(|(a, b, n)| {
                Rectangle::new([(*a, 0.0), (*b, *n as f64)], color.mix(0.8).filled())
            }))
            .map_err(fail)?;
        Ok(())
    })
}

/// `h` counted into about `n` log-spaced buckets between its minimum and maximum, as
/// [`latency_histogram`] draws them.
pub fn log_buckets(h: &hdrhistogram::Histogram<u64>, n: usize) -> Vec<(f64, f64, u64)> {
    if h.is_empty() || n == 0 {
        return Vec::new();
    }
    let lo = (h.min().max(1) as f64) * 0.95;
    let hi = (h.max().max(1) as f64 * 1.05).max(lo * 1.5);
    let ratio = (hi / lo).powf(1.0 / n as f64);
    let mut buckets: Vec<(f64, f64, u64)> = (0..n)
        .map(|k| (lo * ratio.powi(k as i32), lo * ratio.powi(k as i32 + 1), 0))
        .collect();
    for v in h.iter_recorded() {
        let value = v.value_iterated_to().max(1) as f64;
        let k = ((value / lo).ln() / ratio.ln())
            .floor()
            .clamp(0.0, (n - 1) as f64) as usize;
        buckets[k].2 += v.count_at_value();
    }
    buckets
}

/// Cumulative distributions: `points` of each series are `(µs, percent of samples at or
/// below)`, x on a log scale.
pub fn cdf(title: &str, series: &[Series]) -> Result<String, ChartError> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let lo = all()
        .map(|p| p.0)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    let lo = if lo.is_finite() { lo / 1.2 } else { 1.0 };
    let hi = all().map(|p| p.0).fold(lo * 10.0, f64::max) * 1.2;
    svg(SIZE, |root| {
        let mut chart = frame(root, title)
            .build_cartesian_2d(
                (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
                0.0..100.0,
            )
            .map_err(fail)?;
        mesh(&mut chart)
            .x_desc("latency")
            .y_desc("share at or below")
            .x_label_formatter(&|v| axis_micros(*v))
            .y_label_formatter(&|v| format!("{v:.0} %"))
            .draw()
            .map_err(fail)?;
        draw_lines(&mut chart, series, |x, y| (x.max(lo), y))?;
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// `(µs, cumulative percent)` at every recorded value of `h`.
pub fn cdf_points(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    let total = h.len().max(1) as f64;
    let mut seen = 0u64;
    h.iter_recorded()
        .map(|v| {
            seen += v.count_at_value();
            (v.value_iterated_to() as f64, 100.0 * seen as f64 / total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::PALETTE;

    #[test]
    fn empty_histogram_still_draws() {
        assert!(latency_histogram("t", &[], PALETTE[0]).is_ok());
    }
}
