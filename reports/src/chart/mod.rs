//! Charts as inline SVG strings, drawn with plotters' SVG backend (text as `<text>` nodes, no
//! fonts, images or scripts), so a report stays one file that renders offline and prints.
//!
//! One file per kind of chart (`lines`, `spectrum`, `bars`, `histogram`,
//! `heatmap`); what they share (size, palette, frame, mesh, legend) lives in `style` and
//! how axes read in `axis`.

mod axis;
mod bars;
mod heatmap;
mod histogram;
mod lines;
mod spectrum;
mod style;

pub use axis::{YAxis, axis_micros};
pub use bars::grouped_bars;
pub use heatmap::heatmap;
pub use histogram::{cdf, cdf_points, latency_histogram, log_buckets};
pub use lines::lines;
pub use spectrum::{spectrum, spectrum_points};
pub use style::{ChartError, PALETTE, SIZE, Series};
