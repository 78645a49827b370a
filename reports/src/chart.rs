//! Charts as inline SVG strings, drawn with plotters' SVG backend (text as `<text>` nodes, no
//! fonts, images or scripts), so a report stays one file that renders offline and prints.

use plotters::{
    coord::{Shift, types::RangedCoordf64},
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

/// Width and height of a full-width chart, in CSS pixels (scaled down on narrow screens).
pub const SIZE: (u32, u32) = (860, 300);

/// Series colours, distinguishable in print and for common colour-vision deficiencies
/// (Okabe-Ito).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(120, 120, 120),
];

/// A chart that could not be drawn (plotters' error, as text).
#[derive(Debug, thiserror::Error)]
#[error("chart not drawn: {0}")]
pub struct ChartError(String);

fn fail<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError(format!("{e:?}"))
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed-looking (thinner, lighter): for the baseline in a comparison.
    pub faint: bool,
}

impl Series {
    pub fn new(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            color,
            points,
            faint: false,
        }
    }
}

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

fn axis_count(v: f64) -> String {
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

fn y_label(axis: YAxis, v: f64) -> String {
    match axis {
        YAxis::Micros | YAxis::MicrosLog => axis_micros(v),
        YAxis::Count => axis_count(v),
        YAxis::Percent => format!("{v:.0} %"),
    }
}

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
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let x_hi = x_max.max(x_min + 1.0);
        let x_range = x_min..x_hi;
        // Every x axis of these charts counts whole things (seconds, runs): as many labels as
        // whole-number keys, so plotters' 1-2-5 steps never go below 1 ("1.5" runs).
        let x_labels = whole_keys(x_min, x_hi).len().max(2);
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
                let mut chart = frame(&root, title)
                    .build_cartesian_2d(
                        x_range,
                        (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
                    )
                    .map_err(fail)?;
                chart
                    .configure_mesh()
                    .x_desc(x_desc)
                    .y_desc(y_desc)
                    .y_label_formatter(&|v| y_label(y_axis, *v))
                    .x_label_formatter(&|v| axis_count(*v))
                    .x_labels(x_labels)
                    .light_line_style(WHITE.mix(0.0))
                    .label_style(("sans-serif", 13))
                    .axis_desc_style(("sans-serif", 13))
                    .draw()
                    .map_err(fail)?;
                draw_series(&mut chart, series, |v| v.max(lo))?;
                legend(&mut chart)?;
            }
            _ => {
                let hi = match y_axis {
                    YAxis::Percent => 100.0,
                    _ => nice_ceiling(y_max),
                };
                let mut chart = frame(&root, title)
                    .build_cartesian_2d(x_range, 0.0..hi)
                    .map_err(fail)?;
                chart
                    .configure_mesh()
                    .x_desc(x_desc)
                    .y_desc(y_desc)
                    .y_label_formatter(&|v| y_label(y_axis, *v))
                    .x_label_formatter(&|v| axis_count(*v))
                    .x_labels(x_labels)
                    .y_labels(match y_axis {
                        // Counts (errors, connections) are whole too.
                        YAxis::Count => whole_keys(0.0, hi).len().max(2),
                        _ => 10,
                    })
                    .light_line_style(WHITE.mix(0.0))
                    .label_style(("sans-serif", 13))
                    .axis_desc_style(("sans-serif", 13))
                    .draw()
                    .map_err(fail)?;
                draw_series(&mut chart, series, |v| v)?;
                legend(&mut chart)?;
            }
        }
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

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
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let keys: Vec<f64> = [1.0, 2.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0]
            .into_iter()
            .filter(|x| *x <= x_hi * 1.01)
            .collect();
        let mut chart = frame(&root, title)
            .build_cartesian_2d(
                (1.0..x_hi).log_scale().with_key_points(keys),
                (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
            )
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| axis_micros(*v))
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(fail)?;
        for s in &mapped {
            let style = series_style(s);
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|(x, y)| (*x, y.max(lo))),
                    style,
                ))
                .map_err(fail)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .label_font(("sans-serif", 13))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(fail)?;
        root.present().map_err(fail)?;
    }
    Ok(svg)
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

/// Vertical bars in named groups, e.g. time to first byte against time to result at each
/// percentile; `groups` are `(group label, one value per series)`, on a log y axis of µs.
pub fn grouped_bars(
    title: &str,
    series: &[(&str, RGBColor)],
    groups: &[(String, Vec<f64>)],
) -> Result<String, ChartError> {
    let (_, hi) = bounds(groups.iter().flat_map(|g| g.1.iter().copied()));
    let lo = 0.0;
    let n = groups.len().max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let labels: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        let mut chart = frame(&root, title)
            .build_cartesian_2d(0.0..n as f64, 0.0..nice_ceiling(hi))
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_labels(0)
            .y_label_formatter(&|v| axis_micros(*v))
            .y_desc("latency")
            .disable_x_mesh()
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(fail)?;
        // Group names under the middle of each group (plotters places numeric labels only).
        let style =
            TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        chart
            .draw_series(labels.iter().enumerate().map(|(i, label)| {
                EmptyElement::at((i as f64 + 0.5, 0.0))
                    + Text::new(label.clone(), (0, 6), style.clone())
            }))
            .map_err(fail)?;
        let width = 0.8 / series.len().max(1) as f64;
        for (k, (label, color)) in series.iter().enumerate() {
            let color = *color;
            chart
                .draw_series(groups.iter().enumerate().filter_map(|(i, g)| {
                    let v = *g.1.get(k)?;
                    let x0 = i as f64 + 0.1 + k as f64 * width;
                    Some(Rectangle::new(
                        [(x0, lo), (x0 + width * 0.9, v.max(lo))],
                        color.filled(),
                    ))
                }))
                .map_err(fail)?
                .label(*label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .label_font(("sans-serif", 13))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(fail)?;
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

/// Histogram bars over log-spaced latency buckets: `buckets` are `(from µs, to µs, count)`.
pub fn latency_histogram(
    title: &str,
    buckets: &[(f64, f64, u64)],
    color: RGBColor,
) -> Result<String, ChartError> {
    let lo = buckets.first().map_or(1.0, |b| b.0.max(1.0));
    let hi = buckets.last().map_or(10.0, |b| b.1.max(lo * 10.0));
    let peak = buckets.iter().map(|b| b.2).max().unwrap_or(0) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let mut chart = frame(&root, title)
            .build_cartesian_2d(
                (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
                0.0..nice_ceiling(peak),
            )
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc("latency")
            .y_desc("samples")
            .x_label_formatter(&|v| axis_micros(*v))
            .y_label_formatter(&|v| axis_count(*v))
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(fail)?;
        chart
            .draw_series(buckets.iter().map(|(a, b, n)| {
                Rectangle::new([(*a, 0.0), (*b, *n as f64)], color.mix(0.8).filled())
            }))
            .map_err(fail)?;
        root.present().map_err(fail)?;
    }
    Ok(svg)
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
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        let mut chart = frame(&root, title)
            .build_cartesian_2d(
                (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
                0.0..100.0,
            )
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc("latency")
            .y_desc("share at or below")
            .x_label_formatter(&|v| axis_micros(*v))
            .y_label_formatter(&|v| format!("{v:.0} %"))
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()
            .map_err(fail)?;
        for s in series {
            let style = series_style(s);
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|(x, y)| (x.max(lo), *y)),
                    style,
                ))
                .map_err(fail)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .label_font(("sans-serif", 13))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(fail)?;
        root.present().map_err(fail)?;
    }
    Ok(svg)
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

/// One cell per server, coloured by its value (p99) from green (the fleet's lowest) to red
/// (its highest) on a log scale; cells with no value are grey. Each cell carries a `<title>`
/// naming the server and value, which browsers show on hover.
pub fn heatmap(title: &str, cells: &[(String, Option<f64>)]) -> Result<String, ChartError> {
    let columns = (cells.len() as f64).sqrt().ceil().max(1.0) as usize * 2;
    let rows = cells.len().div_ceil(columns).max(1);
    let cell = ((SIZE.0 - 20) / columns as u32).clamp(6, 40);
    let height = 50 + rows as u32 * cell + 30;
    let values: Vec<f64> = cells
        .iter()
        .filter_map(|c| c.1)
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        root.draw(&Text::new(
            title.to_string(),
            (10, 10),
            ("sans-serif", 16).into_font(),
        ))
        .map_err(fail)?;
        for (i, (_, value)) in cells.iter().enumerate() {
            let (r, c) = ((i / columns) as i32, (i % columns) as i32);
            let (x, y) = (10 + c * cell as i32, 40 + r * cell as i32);
            let color = match value {
                Some(v) if *v > 0.0 && hi > lo => {
                    heat(((v.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0))
                }
                Some(_) => heat(0.0),
                None => RGBColor(200, 200, 200),
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + cell as i32 - 1, y + cell as i32 - 1)],
                color.filled(),
            ))
            .map_err(fail)?;
        }
        let legend_y = 40 + rows as i32 * cell as i32 + 8;
        for k in 0..=10 {
            let x = 10 + k * 24;
            root.draw(&Rectangle::new(
                [(x, legend_y), (x + 23, legend_y + 10)],
                heat(k as f64 / 10.0).filled(),
            ))
            .map_err(fail)?;
        }
        let label = if values.is_empty() {
            "no successful request on any server".to_string()
        } else {
            format!(
                "{} (fastest) to {} (slowest); grey: no success",
                axis_micros(lo),
                axis_micros(hi)
            )
        };
        root.draw(&Text::new(
            label,
            (10 + 11 * 24 + 8, legend_y),
            ("sans-serif", 12).into_font(),
        ))
        .map_err(fail)?;
        root.present().map_err(fail)?;
    }
    Ok(add_cell_titles(svg, cells))
}

/// Green (0) through yellow to red (1).
fn heat(t: f64) -> RGBColor {
    let (r, g) = if t < 0.5 {
        (2.0 * t, 1.0)
    } else {
        (1.0, 2.0 * (1.0 - t))
    };
    RGBColor((40.0 + 200.0 * r) as u8, (60.0 + 140.0 * g) as u8, 60)
}

/// Gives each heatmap cell (the `rect`s after the background, in cell order) a `<title>`.
fn add_cell_titles(svg: String, cells: &[(String, Option<f64>)]) -> String {
    let mut out = String::with_capacity(svg.len() + cells.len() * 48);
    let mut rects = 0usize;
    let mut rest = svg.as_str();
    while let Some(at) = rest.find("<rect") {
        let Some(end) = rest[at..].find("/>") else {
            break;
        };
        let end = at + end;
        // The first rect is the background; the cells follow in order.
        let cell = rects.checked_sub(1).and_then(|i| cells.get(i));
        match cell {
            Some((name, value)) => {
                out.push_str(&rest[..end]);
                out.push_str("><title>");
                out.push_str(&crate::html::esc(name));
                out.push_str(": p99 ");
                out.push_str(&value.map_or("no success".into(), axis_micros));
                out.push_str("</title></rect>");
            }
            None => out.push_str(&rest[..end + 2]),
        }
        rest = &rest[end + 2..];
        rects += 1;
    }
    out.push_str(rest);
    out
}

fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 17))
        .margin(10)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(70);
    builder
}

fn series_style(s: &Series) -> ShapeStyle {
    if s.faint {
        s.color.mix(0.55).stroke_width(1)
    } else {
        s.color.stroke_width(2)
    }
}

fn draw_series<'a, 'b, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>,
    series: &[Series],
    clamp: impl Fn(f64) -> f64,
) -> Result<(), ChartError>
where
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    for s in series {
        let style = series_style(s);
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|(x, y)| (*x, clamp(*y))),
                style,
            ))
            .map_err(fail)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    Ok(())
}

fn legend<'a, 'b: 'a, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>,
) -> Result<(), ChartError>
where
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .label_font(("sans-serif", 13))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(fail)
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// Key points 1, 2 and 5 times each power of ten within `lo..hi`, for a log axis (plotters
/// picks too few on short log ranges).
fn log_keys(lo: f64, hi: f64) -> Vec<f64> {
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
fn whole_keys(lo: f64, hi: f64) -> Vec<f64> {
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
fn nice_ceiling(v: f64) -> f64 {
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
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

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
    fn empty_series_still_draw() {
        assert!(lines("t", "x", "y", YAxis::Count, &[]).is_ok());
        assert!(spectrum("t", &[]).is_ok());
        assert!(heatmap("t", &[]).is_ok());
        assert!(latency_histogram("t", &[], PALETTE[0]).is_ok());
        assert!(grouped_bars("t", &[], &[]).is_ok());
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

    #[test]
    fn heatmap_names_every_cell() {
        let cells = vec![
            ("server-a".to_string(), Some(800.0)),
            ("server-<b>".to_string(), Some(25_000.0)),
            ("server-c".to_string(), None),
        ];
        let svg = heatmap("p99 by server", &cells).unwrap();
        assert!(svg.contains("<title>server-a: p99 800 µs</title>"));
        assert!(svg.contains("<title>server-&lt;b&gt;: p99 25 ms</title>"));
        assert!(svg.contains("server-c: p99 no success"));
    }

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
