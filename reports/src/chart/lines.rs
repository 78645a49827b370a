//! Lines over a linear x axis (seconds of a phase, runs of an index): the time series of the
//! report and the trends of the index and the comparison.

use plotters::{
    coord::{ranged1d::ValueFormatter, types::RangedCoordf64},
    prelude::*,
};

use super::{
    axis::{YAxis, axis_count, bounds, log_keys, nice_ceiling, whole_keys, y_label},
    style::{ChartError, SIZE, Series, draw_lines, fail, frame, legend, mesh, svg},
};

/// Lines over a linear x axis (seconds, runs, ...): time series and trends.
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    y_axis: YAxis,
    series: &[Series],
) -> Result<String, ChartError> {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let (x_min, x_max) = bounds(points().map(|p| p.0));
    let (_, y_max) = bounds(points().map(|p| p.1));
    svg(SIZE, |root| {
        let x_hi = x_max.max(x_min + 1.0);
        let x_range = x_min..x_hi;
        // Every x axis of these charts counts whole things (seconds, runs): as many labels as
        // whole-number keys, so plotters' 1-2-5 steps never go below 1 ("1.5" runs).
        let axes = Axes {
            x_desc,
            y_desc,
            y_axis,
            x_labels: whole_keys(x_min, x_hi).len().max(2),
        };
        match y_axis {
            YAxis::MicrosLog => {
                let y_min_pos = points()
                    .map(|p| p.1)
                    .filter(|v| *v > 0.0)
                    .fold(f64::INFINITY, f64::min);
                let lo = if y_min_pos.is_finite() {
                    y_min_pos / 1.5
                } else {
                    1.0
                };
                let hi = (y_max * 1.5).max(lo * 10.0);
                let mut chart = frame(root, title)
                    .build_cartesian_2d(
                        x_range,
                        (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
                    )
                    .map_err(fail)?;
                draw_on(&mut chart, &axes, None, Some(lo), series)
            }
            _ => {
                let hi = match y_axis {
                    YAxis::Percent => 100.0,
                    _ => nice_ceiling(y_max),
                };
                let mut chart = frame(root, title)
                    .build_cartesian_2d(x_range, 0.0..hi)
                    .map_err(fail)?;
                let y_labels = match y_axis {
                    // Counts (errors, connections) are whole too.
                    YAxis::Count => whole_keys(0.0, hi).len().max(2),
                    _ => 10,
                };
                draw_on(&mut chart, &axes, Some(y_labels), None, series)
            }
        }
    })
}

/// How the axes of a [`lines`] chart are described and labelled.
struct Axes<'t> {
    x_desc: &'t str,
    y_desc: &'t str,
    y_axis: YAxis,
    /// How many labels the x axis gets.
    x_labels: usize,
}

/// The mesh, the lines and the legend on a built chart, whichever the y coordinates:
/// `y_labels` asks for that many y labels (a log axis places its own), `y_floor` lifts points
/// onto a log axis.
fn draw_on<'a, 'b: 'a, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>,
    axes: &Axes,
    y_labels: Option<usize>,
    y_floor: Option<f64>,
    series: &[Series],
) -> Result<(), ChartError>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let y_axis = axes.y_axis;
    let y_format = |v: &f64| y_label(y_axis, *v);
    let x_format = |v: &f64| axis_count(*v);
    let mut style = mesh(chart);
    style
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .y_label_formatter(&y_format)
        .x_label_formatter(&x_format)
        .x_labels(axes.x_labels);
    if let Some(n) = y_labels {
        style.y_labels(n);
    }
    style.draw().map_err(fail)?;
    draw_lines(chart, series, |x, y| {
        (x, y_floor.map_or(y, |floor| y.max(floor)))
    })?;
    legend(chart, SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::chart::PALETTE;

    #[test]
    fn line_chart_is_svg_with_text_and_paths() {
        let svg = lines(
            "p99 per second",
            "second",
            "latency",
            YAxis::Micros,
            &[Series::new(
                "p99",
                PALETTE[0],
                vec![(0.0, 900.0), (1.0, 2500.0)],
            )],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("p99 per second"));
        assert!(svg.contains("<polyline") || svg.contains("<path"));
        assert!(!svg.contains("href"));
    }

    #[test]
    fn empty_lines_still_draw() {
        assert!(lines("t", "x", "y", YAxis::Count, &[]).is_ok());
    }

    #[test]
    fn x_and_count_labels_are_whole_numbers_about_ten_of_them() {
        assert_eq!(
            whole_keys(0.0, 15.0),
            (0..=7).map(|k| f64::from(k) * 2.0).collect::<Vec<_>>()
        );
        assert_eq!(whole_keys(1.0, 4.0), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            whole_keys(0.0, 120.0),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0]
        );
        assert!(whole_keys(0.3, 2.5).iter().all(|k| k.fract() == 0.0));
        assert!(whole_keys(5.0, 5.0).is_empty());
        // Three runs (x 1..3) or a short phase: the drawn labels are whole numbers.
        for points in [
            vec![(1.0, 5.0), (2.0, 6.0), (3.0, 7.0)],
            vec![(0.0, 1.0), (14.0, 2.0)],
        ] {
            let svg = lines(
                "t",
                "run",
                "y",
                YAxis::Count,
                &[Series::new("s", PALETTE[0], points)],
            )
            .unwrap();
            // Text content sits on lines of its own in plotters' SVG.
            let numbers: Vec<f64> = svg.lines().filter_map(|l| l.trim().parse().ok()).collect();
            assert!(numbers.contains(&2.0), "{numbers:?}");
            assert!(numbers.iter().all(|n| n.fract() == 0.0), "{numbers:?}");
        }
    }
}
