//! The diagnostics section: what the report noticed by itself in the run (see
//! [`crate::diagnose`]), or a line saying nothing was flagged.

use std::fmt::Write as _;

use crate::{diagnose, escape::esc, run::RunFile};

/// What the report noticed by itself (see [`crate::diagnose`]).
pub(super) fn section(h: &mut String, run: &RunFile) {
    let found = diagnose::diagnose(run);
    h.push_str("<section id=\"diagnostics\">\n<h2>Diagnostics</h2>\n");
    if found.is_empty() {
        h.push_str(
            "<p>Nothing flagged: no latency mode near 40 ms, no tail concentrated on a few \
             servers, no large gap between corrected and uncorrected latency, no saturated \
             generator.</p>\n",
        );
    }
    for f in &found {
        let _ = writeln!(
            h,
            "<div class=\"finding {}\"><strong>{}</strong> <span class=\"note\">({})</span><br>{}</div>",
            f.id,
            esc(&f.title),
            esc(&f.phase),
            esc(&f.detail)
        );
    }
    h.push_str("</section>\n");
}
