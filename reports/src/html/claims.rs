//! The claims table at the top of the report: each claim the run judged, its verdict, what
//! was measured and the criterion applied.

use std::fmt::Write as _;

use crate::{escape::esc, run::RunFile};

/// Every claim with its verdict, quote, measurement and criterion.
pub(super) fn section(h: &mut String, run: &RunFile) {
    h.push_str("<section id=\"claims\">\n<h2>Claims</h2>\n<table>\n<tr><th>Verdict</th><th>Claim</th><th>Measured</th><th>Criterion</th></tr>\n");
    for c in &run.claims {
        let verdict = c.verdict.key();
        let _ = writeln!(
            h,
            "<tr><td class=\"{}\">{}</td><td>{}<br><q>{}</q></td><td>{}{}</td><td>{}</td></tr>",
            verdict,
            esc(c.verdict.label()),
            esc(&c.title),
            esc(&c.quote),
            esc(c.measured.as_deref().unwrap_or("-")),
            if c.note.is_empty() {
                String::new()
            } else {
                format!("<div class=\"note\">{}</div>", esc(&c.note))
            },
            esc(&c.criterion),
        );
    }
    h.push_str("</table>\n</section>\n");
}
