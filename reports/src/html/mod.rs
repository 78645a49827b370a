//! The HTML report: one self-contained file rendered from a [`RunFile`] alone (inline CSS, an
//! inline SVG drawn here, no scripts, no external resources). Every piece of text from the run
//! goes through [`esc`](crate::escape::esc).
//!
//! [`render`] lays the page out in the reader's order, one child module a section: the claims
//! and the report's own diagnostics first, a merged run's shards, then the health sweep, each
//! scenario's section (phases, held connections, capacity, sync, chaos, scale) and the configuration
//! last. The page template and its stylesheet live in `page`; charts are placed by `figure`.

mod capacity;
mod chaos;
mod claims;
mod config;
mod connections;
mod diagnostics;
mod figure;
mod health;
mod page;
mod phase;
mod phase_charts;
#[cfg(test)]
mod sample;
mod scale;
mod shards;
mod sync;
mod sync_charts;
mod tables;

pub(crate) use figure::figure;
pub use page::CSS;

use crate::run::RunFile;

/// The report page of `run`.
pub fn render(run: &RunFile) -> String {
    let mut h = String::new();
    page::open(&mut h, run);
    claims::section(&mut h, run);
    diagnostics::section(&mut h, run);
    shards::section(&mut h, run);
    health::section(&mut h, run);
    if let Some(r) = &run.latency {
        phase::section(&mut h, "latency", "Latency scenario", r);
    }
    if let Some(c) = &run.connections {
        connections::section(&mut h, c);
    }
    if let Some(c) = &run.capacity {
        capacity::section(&mut h, c);
    }
    if let Some(s) = &run.sync {
        sync::section(&mut h, run, s);
    }
    if let Some(c) = &run.chaos {
        chaos::section(&mut h, c);
    }
    if let Some(s) = &run.scale {
        scale::section(&mut h, s);
    }
    config::section(&mut h, run);
    page::close(&mut h);
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::{render, sample::sample_run};

    #[test]
    fn report_has_every_section_and_nothing_external() {
        let html = render(&sample_run());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        for id in [
            "claims",
            "diagnostics",
            "health",
            "latency",
            "sync",
            "config",
        ] {
            assert!(
                html.contains(&format!("<section id=\"{id}\">")),
                "section {id}"
            );
        }
        for marker in [
            "Interrupted",
            "p99.9",
            "99.99",
            "not measured",
            "<svg",
            "jsonrpc_error",
            "latency by percentile",
            "latency percentiles per second",
            "throughput",
            "open connections",
            "errors by class",
            "p99 by server",
            "time to first byte vs time to result",
            "write-to-visible lag",
            "sync latencies, cumulative",
        ] {
            assert!(html.contains(marker), "{marker}");
        }
        assert!(html.matches("<svg").count() >= 10, "every chart drawn");
        assert!(!html.contains("chart not drawn"));
        assert!(!html.contains("<script"), "target text is escaped");
        assert!(html.contains("&lt;script&gt;"));
        let lower = html.to_lowercase();
        for forbidden in ["src=", "href=", "@import", "url(", "<link", "<iframe"] {
            assert!(!lower.contains(forbidden), "{forbidden}");
        }
        // The only URLs are the escaped target addresses in the text.
        assert_eq!(
            lower.matches("http://").count(),
            lower.matches("http://127.0.0.1:1/mcp").count()
        );
    }
}
