//! The charts of one load phase: the percentile spectrum, percentiles and throughput over time,
//! open connections, errors by class, the per-server heatmap with the slowest servers, and time
//! to first byte against time to result.

use std::fmt::Write as _;

use super::{
    figure::{figure, per_second},
    tables::breakdown_row,
};
use crate::{
    chart::{self, PALETTE, Series, YAxis},
    escape::esc,
    run::{ErrorClass, LatencySummary, Results, decode_histogram},
};

/// The charts of one load phase, in the order a reader asks: how slow (spectrum), when (over
/// time), how much (throughput), with how many connections, what failed, where (servers), and
/// headers against whole answers.
pub(super) fn charts(h: &mut String, id: &str, r: &Results) {
    h.push_str("<h3>Latency percentile spectrum</h3>\n");
    match decode_histogram(&r.histogram.data) {
        Ok(hist) => figure(
            h,
            "Latency at each percentile (HdrHistogram style: 90 %, 99 %, 99.9 % ... get equal \
             room); successful requests",
            chart::spectrum(
                "latency by percentile",
                &[Series::new(
                    "latency",
                    PALETTE[0],
                    chart::spectrum_points(&hist),
                )],
            ),
        ),
        Err(e) => {
            let _ = writeln!(
                h,
                "<p class=\"note\">The histogram does not decode: {}</p>",
                esc(&e.to_string())
            );
        }
    }
    let seconds = &r.per_second;
    h.push_str("<h3>Over time</h3>\n");
    figure(
        h,
        "p50, p90 and p99 of each second of the measured window (by start time)",
        chart::lines(
            "latency percentiles per second",
            "second of the measured window",
            "latency",
            YAxis::MicrosLog,
            &[
                Series::new("p50", PALETTE[0], per_second(seconds, |s| s.p50_us as f64)),
                Series::new("p90", PALETTE[2], per_second(seconds, |s| s.p90_us as f64)),
                Series::new("p99", PALETTE[1], per_second(seconds, |s| s.p99_us as f64)),
            ],
        ),
    );
    figure(
        h,
        "Requests per second by start time: successful and failed",
        chart::lines(
            "throughput",
            "second of the measured window",
            "requests per second",
            YAxis::Count,
            &[
                Series::new("ok", PALETTE[0], per_second(seconds, |s| s.ok as f64)),
                Series::new(
                    "errors",
                    PALETTE[3],
                    per_second(seconds, |s| s.errors as f64),
                ),
            ],
        ),
    );
    if !r.connections.is_empty() {
        let mut series = vec![Series::new(
            "client sockets",
            PALETTE[0],
            r.connections
                .iter()
                .filter_map(|c| Some((c.t, c.client? as f64)))
                .collect(),
        )];
        if r.connections.iter().any(|c| c.server.is_some()) {
            series.push(Series::new(
                "servers' count",
                PALETTE[1],
                r.connections
                    .iter()
                    .filter_map(|c| Some((c.t, c.server? as f64)))
                    .collect(),
            ));
        }
        figure(
            h,
            &format!(
                "Open connections, sampled once a second over the whole phase (the measured \
                 window is {:.0}-{:.0} s)",
                r.window_s[0], r.window_s[1]
            ),
            chart::lines(
                "open connections",
                "second of the phase",
                "connections",
                YAxis::Count,
                &series,
            ),
        );
    }
    let classes: Vec<ErrorClass> = ErrorClass::ALL
        .into_iter()
        .filter(|c| seconds.iter().any(|s| s.errors_by_class.contains_key(c)))
        .collect();
    if classes.is_empty() {
        let errors: u64 = r.errors.values().sum();
        let _ = writeln!(
            h,
            "<p>Errors by class over time: {}.</p>",
            if errors == 0 {
                "no request failed"
            } else {
                "not recorded per second in this run file"
            }
        );
    } else {
        let series: Vec<Series> = classes
            .iter()
            .enumerate()
            .map(|(k, c)| {
                Series::new(
                    c.name(),
                    PALETTE[(k + 3) % PALETTE.len()],
                    per_second(seconds, |s| {
                        s.errors_by_class.get(c).copied().unwrap_or(0) as f64
                    }),
                )
            })
            .collect();
        figure(
            h,
            "Failed requests per second, by class",
            chart::lines(
                "errors by class",
                "second of the measured window",
                "errors per second",
                YAxis::Count,
                &series,
            ),
        );
    }
    if !r.by_server.is_empty() {
        let mut cells: Vec<(String, Option<f64>)> = r
            .by_server
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    (s.ok > 0).then_some(s.latency_us.p99 as f64),
                )
            })
            .collect();
        cells.sort_by_key(|c| natural(&c.0));
        let _ = writeln!(h, "<h3 id=\"{id}-servers\">Per server</h3>");
        figure(
            h,
            &format!(
                "Every server a cell, in id order, coloured by its p99 (log scale); hover a cell \
                 for its name. {} servers.",
                cells.len()
            ),
            chart::heatmap("p99 by server", &cells),
        );
        let mut slowest: Vec<_> = r.by_server.iter().filter(|s| s.ok > 0).collect();
        slowest.sort_by_key(|s| std::cmp::Reverse(s.latency_us.p99));
        if !slowest.is_empty() {
            h.push_str(
                "<table>\n<tr><th>slowest servers</th><th class=\"num\">requests</th>\
                 <th class=\"num\">errors</th><th class=\"num\">p50</th><th class=\"num\">p99</th>\
                 <th class=\"num\">max</th></tr>\n",
            );
            for s in slowest.iter().take(5) {
                breakdown_row(h, s);
            }
            h.push_str("</table>\n");
        }
    }
    if r.ttfb_us.count > 0 {
        let at = |l: &LatencySummary| vec![l.p50, l.p90, l.p99, l.p99_9, l.max];
        let (t, l) = (at(&r.ttfb_us), at(&r.service_latency_us));
        let groups: Vec<(String, Vec<f64>)> = ["p50", "p90", "p99", "p99.9", "max"]
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_string(), vec![t[i] as f64, l[i] as f64]))
            .collect();
        h.push_str("<h3>Time to first byte and time to result</h3>\n");
        figure(
            h,
            "Response headers against the whole JSON-RPC result, from the actual send. In the \
             session era headers leave before the tool runs, so the gap is the tool's work and \
             streaming.",
            chart::grouped_bars(
                "time to first byte vs time to result",
                &[("first byte", PALETTE[5]), ("result", PALETTE[0])],
                &groups,
            ),
        );
    }
}

/// Orders `server-9` before `server-10`: digits compare as numbers.
fn natural(name: &str) -> (String, u64) {
    let digits: String = name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let stem = name[..name.len() - digits.len()].to_string();
    (stem, digits.parse().unwrap_or(0))
}
