//! The fleet at a glance: one cell per server, coloured by its p99, each cell titled with the
//! server's name so a browser shows it on hover.

use plotters::prelude::*;

use super::{
    axis::axis_micros,
    style::{ChartError, SIZE, fail, svg},
};
use crate::escape::esc;

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
    let svg = svg((SIZE.0, height), |root| {
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
        .map_err(fail)
    })?;
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
                out.push_str(&esc(name));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn empty_heatmap_still_draws() {
        assert!(heatmap("t", &[]).is_ok());
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
}
