//! Vertical bars in named groups: the report's time to first byte against time to result at
//! each percentile.

use plotters::{
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use super::{
    axis::{axis_micros, bounds, nice_ceiling},
    style::{ChartError, LABEL_FONT, SIZE, fail, frame, legend, mesh, svg},
};

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
    svg(SIZE, |root| {
        let labels: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        let mut chart = frame(root, title)
            .build_cartesian_2d(0.0..n as f64, 0.0..nice_ceiling(hi))
            .map_err(fail)?;
        mesh(&mut chart)
            .x_labels(0)
            .y_label_formatter(&|v| axis_micros(*v))
            .y_desc("latency")
            .disable_x_mesh()
            .draw()
            .map_err(fail)?;
        // Group names under the middle of each group (plotters places numeric labels only).
        let style = TextStyle::from(LABEL_FONT.into_font()).pos(Pos::new(HPos::Center, VPos::Top));
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
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_bars_still_draw() {
        assert!(grouped_bars("t", &[], &[]).is_ok());
    }
}
