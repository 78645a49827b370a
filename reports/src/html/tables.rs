//! Table rows the sections share: a latency summary's cells (mean to max) and a breakdown row
//! (requests, errors, p50, p99, max) for a call, a target group or a server.

use std::fmt::Write as _;

use crate::{
    escape::esc,
    fmt_micros,
    run::{Breakdown, LatencySummary},
};

/// The mean, min, p50, p90, p99, p99.9 and max cells of a latency row.
pub(super) fn latency_cells(h: &mut String, l: &LatencySummary) {
    for v in [
        l.mean.round() as u64,
        l.min,
        l.p50,
        l.p90,
        l.p99,
        l.p99_9,
        l.max,
    ] {
        let _ = write!(h, "<td class=\"num\">{}</td>", esc(&fmt_micros(v)));
    }
}

/// One line of a breakdown table: name, requests, errors, then p50, p99 and max.
pub(super) fn breakdown_row(h: &mut String, b: &Breakdown) {
    let _ = writeln!(
        h,
        "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
        esc(&b.name),
        b.requests,
        b.errors,
        esc(&fmt_micros(b.latency_us.p50)),
        esc(&fmt_micros(b.latency_us.p99)),
        esc(&fmt_micros(b.latency_us.max)),
    );
}
