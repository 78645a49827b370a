//! The run index: one page listing the runs of a folder (newest first) with their verdicts,
//! headline figures and a trend of those figures across runs. Links are relative, to each
//! run's own report, so the folder can be copied or archived whole.

use std::{fmt::Write as _, path::Path};

use crate::{
    chart::{self, PALETTE, Series, YAxis},
    escape::esc,
    fmt_micros,
    html::CSS,
    run::{RunFile, Verdict},
};

/// One run folder: its name and its run file, or why that could not be read.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub has_report: bool,
    pub run: Result<RunFile, String>,
}

/// The run folders (those holding a `run.json`) directly inside `dir`, oldest first (their
/// names are UTC timestamps).
pub fn scan(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let path = item?.path();
        let file = path.join("run.json");
        if !file.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        entries.push(Entry {
            name: name.to_string(),
            has_report: path.join("report.html").is_file(),
            run: RunFile::load(&file).map_err(|e| e.to_string()),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The index page of `entries` (as [`scan`] orders them).
pub fn render(entries: &[Entry]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>mcpfleet runs</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
         <h1>mcpfleet runs</h1>\n<p class=\"sub\">{} runs, newest first. Each links to its own \
         report.</p>\n",
        entries.len()
    );
    trend(&mut h, entries);
    h.push_str(
        "<section id=\"runs\">\n<h2>Runs</h2>\n<table>\n<tr><th>run</th><th>scenarios</th>\
         <th class=\"num\">servers</th><th>claims</th><th class=\"num\">p50</th>\
         <th class=\"num\">p99</th><th class=\"num\">req/s</th><th class=\"num\">errors</th>\
         <th class=\"num\">sync lag p99</th></tr>\n",
    );
    for e in entries.iter().rev() {
        let name = if e.has_report {
            format!(
                "<a href=\"{}/report.html\">{}</a>",
                esc(&e.name),
                esc(&e.name)
            )
        } else {
            esc(&e.name)
        };
        let run = match &e.run {
            Ok(run) => run,
            Err(why) => {
                let _ = writeln!(
                    h,
                    "<tr><td>{name}</td><td colspan=\"8\" class=\"fail\">unreadable: {}</td></tr>",
                    esc(why)
                );
                continue;
            }
        };
        let count = |v: Verdict| run.claims.iter().filter(|c| c.verdict == v).count();
        let (pass, fail, unmeasured) = (
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::NotMeasured),
        );
        let claims = format!(
            "<span class=\"pass\">{pass} pass</span>, <span class=\"fail\">{fail} fail</span>, \
             <span class=\"not_measured\">{unmeasured} not measured</span>{}",
            if run.interrupted {
                " <strong>(interrupted)</strong>"
            } else {
                ""
            }
        );
        let (p50, p99, rps, errors) = match &run.latency {
            Some(r) => (
                fmt_micros(r.latency_us.p50),
                fmt_micros(r.latency_us.p99),
                format!("{:.0}", r.throughput_rps),
                (r.requests - r.ok).to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let lag = run
            .sync
            .as_ref()
            .and_then(|s| s.figures.as_ref())
            .map_or("-".into(), |f| fmt_micros(f.lag_us.p99));
        let _ = writeln!(
            h,
            "<tr><td>{name}</td><td>{}</td><td class=\"num\">{}</td><td>{claims}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&run.config.scenarios.join(", ")),
            run.config.servers,
            esc(&p50),
            esc(&p99),
            esc(&rps),
            esc(&errors),
            esc(&lag)
        );
    }
    h.push_str("</table>\n</section>\n</body>\n</html>\n");
    h
}

/// Latency and throughput of the latency scenario across runs (oldest left).
fn trend(h: &mut String, entries: &[Entry]) {
    let runs: Vec<(f64, &RunFile)> = entries
        .iter()
        .filter_map(|e| e.run.as_ref().ok())
        .enumerate()
        .map(|(i, r)| (i as f64 + 1.0, r))
        .collect();
    let latency: Vec<(f64, &crate::run::Results)> = runs
        .iter()
        .filter_map(|(i, r)| Some((*i, r.latency.as_ref()?)))
        .collect();
    if latency.len() < 2 {
        return;
    }
    h.push_str("<section id=\"trend\">\n<h2>Trend</h2>\n");
    let pick = |f: fn(&crate::run::Results) -> f64| -> Vec<(f64, f64)> {
        latency.iter().map(|(i, r)| (*i, f(r))).collect()
    };
    for (caption, svg) in [
        (
            "Latency scenario p50 and p99 of each run, oldest left (runs of different \
             settings mix here: read the table)",
            chart::lines(
                "latency across runs",
                "run",
                "latency",
                YAxis::MicrosLog,
                &[
                    Series::new("p50", PALETTE[0], pick(|r| r.latency_us.p50 as f64)),
                    Series::new("p99", PALETTE[1], pick(|r| r.latency_us.p99 as f64)),
                ],
            ),
        ),
        (
            "Latency scenario throughput of each run",
            chart::lines(
                "throughput across runs",
                "run",
                "requests per second",
                YAxis::Count,
                &[Series::new("req/s", PALETTE[2], pick(|r| r.throughput_rps))],
            ),
        ),
    ] {
        crate::html::figure(h, caption, svg);
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::synthetic::{Spec, run};

    #[test]
    fn lists_runs_newest_first_with_a_trend_and_unreadable_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        for (name, median) in [("20260101T000000Z", 1_000.0), ("20260102T000000Z", 3_000.0)] {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).unwrap();
            let r = run(&Spec {
                median_us: median,
                ..Default::default()
            });
            std::fs::write(d.join("run.json"), serde_json::to_string(&r).unwrap()).unwrap();
            std::fs::write(d.join("report.html"), "x").unwrap();
        }
        let bad = dir.path().join("20260103T000000Z");
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join("run.json"), "{\"schema_version\": 99}").unwrap();
        std::fs::create_dir(dir.path().join("not-a-run")).unwrap();

        let entries = scan(dir.path()).unwrap();
        assert_eq!(entries.len(), 3);
        let html = render(&entries);
        let newest = html.find("20260103T000000Z").unwrap();
        let oldest = html.find("20260101T000000Z").unwrap();
        assert!(newest < oldest, "newest first");
        assert!(html.contains("href=\"20260101T000000Z/report.html\""));
        assert!(html.contains("schema version 99"));
        assert!(html.contains("latency across runs"));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
