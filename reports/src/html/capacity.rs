//! The capacity section: the open-model steps of the rate search, each with its verdict,
//! achieved rate and latency, and the highest rate that passed.

use std::fmt::Write as _;

use crate::{escape::esc, fmt_micros, run::CapacityResult};

/// The search's best rate and a row per step.
pub(super) fn section(h: &mut String, c: &CapacityResult) {
    let _ = write!(
        h,
        "<section id=\"capacity\">\n<h2>Capacity</h2>\n<p>Open-model steps searching the \
         highest rate with no errors, the rate achieved and p99 within {}: <strong>{}</strong>.\
         </p>\n<table>\n<tr><th class=\"num\">rate</th><th>verdict</th><th class=\"num\">\
         achieved</th><th class=\"num\">p50</th><th class=\"num\">p99</th><th>why</th></tr>\n",
        esc(&fmt_micros(c.p99_bound_us)),
        c.best_rps
            .map_or("no rate passed".into(), |r| format!("{r:.0} req/s")),
    );
    for s in &c.steps {
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{:.0}</td><td class=\"{}\">{}</td><td class=\"num\">{:.0}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            s.rate,
            if s.passed { "pass" } else { "fail" },
            if s.passed { "passed" } else { "failed" },
            s.results.throughput_rps,
            esc(&fmt_micros(s.results.latency_us.p50)),
            esc(&fmt_micros(s.results.latency_us.p99)),
            esc(&s.reason)
        );
    }
    h.push_str("</table>\n</section>\n");
}
