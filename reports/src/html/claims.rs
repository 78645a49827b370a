//! The claims table at the top of the report: each claim the run judged, its verdict, what
//! was measured and the criterion applied.

use std::fmt::Write as _;

use crate::{
    escape::esc,
    run::{Claim, RunFile},
};

/// The opening of a table of claims, with its header row.
pub(super) const TABLE_OPEN: &str =
    "<table>\n<tr><th>Verdict</th><th>Claim</th><th>Measured</th><th>Criterion</th></tr>\n";

/// Every claim with its verdict, quote, measurement and criterion.
pub(super) fn section(h: &mut String, run: &RunFile) {
    h.push_str("<section id=\"claims\">\n<h2>Claims</h2>\n");
    h.push_str(TABLE_OPEN);
    for c in &run.claims {
        let note = if c.note.is_empty() {
            String::new()
        } else {
            format!("<div class=\"note\">{}</div>", esc(&c.note))
        };
        row(
            h,
            c,
            &format!("{}<br><q>{}</q>", esc(&c.title), esc(&c.quote)),
            &format!("{}{note}", esc(c.measured.as_deref().unwrap_or("-"))),
        );
    }
    h.push_str("</table>\n</section>\n");
}

/// One claim's row: its verdict, then `claim` and `measured` (markup, already escaped), then
/// the criterion.
pub(super) fn row(h: &mut String, c: &Claim, claim: &str, measured: &str) {
    let _ = writeln!(
        h,
        "<tr><td class=\"{}\">{}</td><td>{claim}</td><td>{measured}</td><td>{}</td></tr>",
        c.verdict.key(),
        esc(c.verdict.label()),
        esc(&c.criterion),
    );
}
