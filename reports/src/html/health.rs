//! The health sweep section: how many servers answered one `tools/list`, in which protocol
//! eras, and the first failures.

use std::fmt::Write as _;

use crate::{
    escape::esc,
    run::{RunFile, SweepFailure},
};

/// The sweep's counts and up to twenty failures.
pub(super) fn section(h: &mut String, run: &RunFile) {
    let hs = &run.health;
    let eras: Vec<String> = hs
        .protocols
        .iter()
        .map(|(era, n)| format!("{n} in {era}"))
        .collect();
    let _ = writeln!(
        h,
        "<section id=\"health\">\n<h2>Health sweep</h2>\n<p>One <code>tools/list</code> per \
         server: {} of {} answered in {:.2} s{} ({}).</p>",
        hs.ok,
        hs.servers,
        hs.seconds,
        if hs.interrupted { ", interrupted" } else { "" },
        esc(&eras.join(", "))
    );
    failures(h, &hs.failures);
    h.push_str("</section>\n");
}

/// The first twenty servers a sweep found failing (the scale step's sweep too).
pub(super) fn failures(h: &mut String, failures: &[SweepFailure]) {
    for f in failures.iter().take(20) {
        let _ = writeln!(
            h,
            "<div class=\"note\">{} {}: {}</div>",
            esc(&f.server),
            esc(&f.url),
            f.error.name()
        );
    }
}
