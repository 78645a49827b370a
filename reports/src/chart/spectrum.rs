//! The HdrHistogram percentile spectrum: latency against percentile, with the tail given as
//! much room as the body. The report draws one series, the comparison base against head.

use plotters::prelude::*;

use super::{
    axis::{axis_micros, bounds, log_keys},
    style::{ChartError, SIZE, Series, draw_lines, fail, frame, legend, mesh, svg},
};

/// The HdrHistogram percentile spectrum: latency (log y) against percentile, where the x axis
/// is `1 / (1 - p)` on a log scale so 90 %, 99 %, 99.9 % and 99.99 % get equal room. `points`
/// of each series are `(percentile 0-100, µs)`.
pub fn spectrum(title: &str, series: &[Series]) -> Result<String, ChartError> {
    let to_x = |p: f64| 1.0 / (1.0 - (p / 100.0).min(0.999_99));
    let mapped: Vec<Series> = series
        .iter()
        .map(|s| Series {
            points: s.points.iter().map(|(p, us)| (to_x(*p), *us)).collect(),
            ..s.clone()
        })
        .collect();
    let all = || mapped.iter().flat_map(|s| s.points.iter());
    let (_, y_max) = bounds(all().map(|p| p.1));
    let y_min = all()
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    let lo = if y_min.is_finite() { y_min / 1.5 } else { 1.0 };
    let hi = (y_max * 1.5).max(lo * 10.0);
    let x_hi = all().map(|p| p.0).fold(10.0, f64::max).min(100_000.0);
    svg(SIZE, |root| {
        let keys: Vec<f64> = [1.0, 2.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0]
            .into_iter()
            .filter(|x| *x <= x_hi * 1.01)
            .collect();
        let mut chart = frame(root, title)
            .build_cartesian_2d(
                (1.0..x_hi).log_scale().with_key_points(keys),
                (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
            )
            .map_err(fail)?;
        mesh(&mut chart)
            .x_desc("percentile")
            .y_desc("latency")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| axis_micros(*v))
            .draw()
            .map_err(fail)?;
        draw_lines(&mut chart, &mapped, |x, y| (x, y.max(lo)))?;
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// `1 / (1 - p)` back to a percentile label: 1 → `0 %`, 2 → `50 %`, 100 → `99 %`.
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    if p < 99.0 {
        format!("{p:.0} %")
    } else {
        let digits = (x.log10().round() as usize).saturating_sub(2);
        format!("{p:.digits$} %")
    }
}

/// Points of a spectrum from a histogram: percentiles from 0 to 99.999 at even steps of
/// `1 / (1 - p)`, then the maximum.
pub fn spectrum_points(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points = Vec::new();
    let mut x: f64 = 1.0;
    while x <= 100_000.0 {
        let q = 1.0 - 1.0 / x;
        points.push((100.0 * q, h.value_at_quantile(q) as f64));
        x *= 1.25;
    }
    points.push((99.999, h.max() as f64));
    points
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::chart::PALETTE;

    #[test]
    fn empty_spectrum_still_draws() {
        assert!(spectrum("t", &[]).is_ok());
    }

    #[test]
    fn spectrum_labels_percentiles() {
        let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let points = spectrum_points(&h);
        assert!(points.len() > 40);
        let svg = spectrum("spectrum", &[Series::new("latency", PALETTE[0], points)]).unwrap();
        for label in ["50 %", "90 %", "99 %", "99.9 %"] {
            assert!(svg.contains(label), "{label}");
        }
    }
}
