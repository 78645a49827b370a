//! What every chart shares: its size and colours, the [`Series`] it draws, the frame (caption,
//! margins, label areas), the mesh's look, lines with their legend entries and the legend box.
//! A chart function picks its coordinates and data; how it looks is decided here, once.

use plotters::{
    chart::MeshStyle,
    coord::{CoordTranslate, Shift, ranged1d::ValueFormatter},
    prelude::*,
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

/// Font size of tick labels, axis descriptions and legend entries.
pub(super) const LABEL_FONT: (&str, u32) = ("sans-serif", 13);

/// A chart that could not be drawn (plotters' error, as text).
#[derive(Debug, thiserror::Error)]
#[error("chart not drawn: {0}")]
pub struct ChartError(String);

pub(super) fn fail<E: std::fmt::Debug>(e: E) -> ChartError {
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

/// A chart's frame on `root`: its caption, margins and the room for axis labels.
pub(super) fn frame<'a, 'b>(
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

/// The mesh of a chart with the shared look (no light grid lines, the label font); the
/// caller adds its descriptions and formatters, then draws it.
pub(super) fn mesh<'a, 'c, 'b, X, Y>(
    chart: &'c mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
) -> MeshStyle<'a, 'c, X, Y, SVGBackend<'b>>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut style = chart.configure_mesh();
    style
        .light_line_style(WHITE.mix(0.0))
        .label_style(LABEL_FONT)
        .axis_desc_style(LABEL_FONT);
    style
}

fn series_style(s: &Series) -> ShapeStyle {
    if s.faint {
        s.color.mix(0.55).stroke_width(1)
    } else {
        s.color.stroke_width(2)
    }
}

/// Draws each series as a line, its points passed through `place` (to clamp them into the
/// axes), with a short line of its style as its legend entry.
pub(super) fn draw_lines<'a, 'b, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
    series: &[Series],
    place: impl Fn(f64, f64) -> (f64, f64),
) -> Result<(), ChartError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for s in series {
        let style = series_style(s);
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|(x, y)| place(*x, *y)),
                style,
            ))
            .map_err(fail)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    Ok(())
}

/// The legend box of every labelled series, at `position`.
pub(super) fn legend<'a, 'b: 'a, Coord: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Coord>,
    position: SeriesLabelPosition,
) -> Result<(), ChartError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .label_font(LABEL_FONT)
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(fail)
}

/// An SVG of `size` on a white background: `draw` paints it, this presents it as a string.
pub(super) fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ChartError>,
) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        draw(&root)?;
        root.present().map_err(fail)?;
    }
    Ok(svg)
}
