//! How a chart sits in a page: as a `<figure>` with its caption, or as a note saying why it
//! could not be drawn; and the measured window's seconds as chart points. Shared by the
//! report's sections, the comparison and the index.

use std::fmt::Write as _;

use crate::{chart::ChartError, escape::esc};

/// Writes a chart as a figure, or says why it is missing.
pub(crate) fn figure(h: &mut String, caption: &str, chart: Result<String, ChartError>) {
    match chart {
        Ok(svg) => {
            // Inline SVG in HTML needs no namespace; without it the file holds no URL at all.
            let svg = svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
            let _ = writeln!(
                h,
                "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>",
                esc(caption)
            );
        }
        Err(e) => {
            let _ = writeln!(
                h,
                "<p class=\"note\">{}: {}</p>",
                esc(caption),
                esc(&e.to_string())
            );
        }
    }
}

/// Seconds of the measured window, as chart x values.
pub(super) fn per_second<T>(seconds: &[T], value: impl Fn(&T) -> f64) -> Vec<(f64, f64)> {
    seconds
        .iter()
        .enumerate()
        .map(|(i, s)| (i as f64, value(s)))
        .collect()
}
