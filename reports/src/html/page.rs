//! The page around the sections: the document head with the stylesheet inlined (the CSS
//! itself is `report.css`), the run's heading line, the banner of an interrupted run, and the
//! closing tags. The comparison and the index inline the same stylesheet.

use std::fmt::Write as _;

use crate::{escape::esc, run::RunFile};

/// The stylesheet every page inlines.
pub const CSS: &str = include_str!("report.css");

/// The document head and the run's heading, with a banner when the run was interrupted.
pub(super) fn open(h: &mut String, run: &RunFile) {
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>mcpfleet run {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
         <h1>mcpfleet load run</h1>\n<p class=\"sub\">{} &middot; {} {} &middot; {} servers \
         &middot; scenarios: {}</p>\n",
        esc(&run.started_at),
        esc(&run.started_at),
        esc(&run.tool.name),
        esc(&run.tool.version),
        run.config.servers,
        esc(&run.config.scenarios.join(", ")),
    );
    if run.interrupted {
        h.push_str(
            "<p class=\"banner\">Interrupted: the run was stopped early (Ctrl-C); the numbers \
             cover only what ran.</p>\n",
        );
    }
}

/// The end of the page.
pub(super) fn close(h: &mut String) {
    h.push_str("</body>\n</html>\n");
}
