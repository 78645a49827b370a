//! The comparison report of two runs (base, then head): a table of changes with their
//! significance, the claims side by side, and overlaid charts. Significance comes from the
//! per-second values of each run (see [`crate::stats::compare`]); one run of each side gives
//! one sample per second, so short runs rarely reach significance, as they should not.

use std::fmt::Write as _;

use crate::{
    chart::{self, PALETTE, Series, YAxis},
    escape::esc,
    fmt_micros,
    html::{CSS, figure},
    run::{Results, RunFile, decode_histogram},
    stats::{self, Comparison, Settings},
};

/// One line of the change table.
#[derive(Debug, Clone)]
pub struct Delta {
    pub metric: String,
    pub base: f64,
    pub head: f64,
    /// How the values read: latency (µs) or a rate.
    pub unit: Unit,
    /// The test on per-second samples; `Err` says why there is none.
    pub test: Result<Comparison, String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    Micros,
    PerSecond,
    Count,
}

impl Delta {
    /// `100 * (head / base - 1)`; `None` when the base is 0.
    pub fn change_percent(&self) -> Option<f64> {
        (self.base > 0.0).then(|| 100.0 * (self.head / self.base - 1.0))
    }

    /// `regression`, `improvement`, `within noise` or why it was not tested.
    pub fn verdict(&self) -> &'static str {
        match &self.test {
            Ok(c) if c.regression => "regression",
            Ok(c) if c.improvement => "improvement",
            Ok(_) => "within noise",
            Err(_) => "not tested",
        }
    }

    fn show(&self, v: f64) -> String {
        match self.unit {
            Unit::Micros => fmt_micros(v.round() as u64),
            Unit::PerSecond => format!("{v:.0}/s"),
            Unit::Count => format!("{v:.0}"),
        }
    }
}

/// Per-second samples of a phase: p50, p90, p99 of each second with a success, and the
/// requests started each second.
fn samples(r: &Results, pick: fn(&crate::run::SecondSummary) -> u64) -> Vec<f64> {
    r.per_second
        .iter()
        .filter(|s| s.ok > 0)
        .map(|s| pick(s) as f64)
        .collect()
}

fn test(base: &[f64], head: &[f64], higher_is_worse: bool) -> Result<Comparison, String> {
    let settings = Settings {
        higher_is_worse,
        ..Settings::default()
    };
    stats::compare(base, head, &settings).map_err(|e| e.to_string())
}

/// The change table of two runs' common phases.
pub fn deltas(base: &RunFile, head: &RunFile) -> Vec<Delta> {
    let mut out = Vec::new();
    if let (Some(b), Some(h)) = (&base.latency, &head.latency) {
        type Pick = fn(&crate::run::SecondSummary) -> u64;
        let lines: [(&str, u64, u64, Pick); 3] = [
            ("latency p50", b.latency_us.p50, h.latency_us.p50, |s| {
                s.p50_us
            }),
            ("latency p90", b.latency_us.p90, h.latency_us.p90, |s| {
                s.p90_us
            }),
            ("latency p99", b.latency_us.p99, h.latency_us.p99, |s| {
                s.p99_us
            }),
        ];
        for (metric, bv, hv, pick) in lines {
            out.push(Delta {
                metric: metric.into(),
                base: bv as f64,
                head: hv as f64,
                unit: Unit::Micros,
                test: test(&samples(b, pick), &samples(h, pick), true),
            });
        }
        out.push(Delta {
            metric: "latency mean".into(),
            base: b.latency_us.mean,
            head: h.latency_us.mean,
            unit: Unit::Micros,
            test: Err("no per-second means in a run file".into()),
        });
        let rate = |r: &Results| -> Vec<f64> {
            r.per_second
                .iter()
                .map(|s| (s.ok + s.errors) as f64)
                .collect()
        };
        out.push(Delta {
            metric: "throughput".into(),
            base: b.throughput_rps,
            head: h.throughput_rps,
            unit: Unit::PerSecond,
            test: test(&rate(b), &rate(h), false),
        });
        out.push(Delta {
            metric: "errors".into(),
            base: (b.requests - b.ok) as f64,
            head: (h.requests - h.ok) as f64,
            unit: Unit::Count,
            test: Err("a count: read it, any error fails the gate".into()),
        });
    }
    let figures = |r: &RunFile| r.sync.as_ref().and_then(|s| s.figures.clone());
    if let (Some(b), Some(h)) = (figures(base), figures(head)) {
        let lag = |f: &crate::run::SyncFigures, p99: bool| -> Vec<f64> {
            f.per_second
                .iter()
                .filter(|s| s.acked > 0)
                .map(|s| if p99 { s.lag_p99_us } else { s.lag_p50_us } as f64)
                .collect()
        };
        for (metric, p99, bv, hv) in [
            ("sync lag p50", false, b.lag_us.p50, h.lag_us.p50),
            ("sync lag p99", true, b.lag_us.p99, h.lag_us.p99),
        ] {
            out.push(Delta {
                metric: metric.into(),
                base: bv as f64,
                head: hv as f64,
                unit: Unit::Micros,
                test: test(&lag(&b, p99), &lag(&h, p99), true),
            });
        }
    }
    out
}

/// The comparison page; `base` and `head` are `(name shown, run)`.
pub fn render(base: (&str, &RunFile), head: (&str, &RunFile)) -> String {
    let (base_name, b) = base;
    let (head_name, h) = head;
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>mcpfleet comparison</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
         <h1>mcpfleet run comparison</h1>\n<p class=\"sub\">base <strong>{}</strong> ({}) \
         &rarr; head <strong>{}</strong> ({})</p>\n",
        esc(base_name),
        esc(&b.started_at),
        esc(head_name),
        esc(&h.started_at)
    );
    setup_section(&mut page, b, h);
    changes_section(&mut page, &deltas(b, h));
    claims_section(&mut page, b, h);
    charts_section(&mut page, b, h);
    page.push_str("</body>\n</html>\n");
    page
}

/// Settings that differ between the runs: a comparison across them compares setups too.
fn setup_section(page: &mut String, b: &RunFile, h: &RunFile) {
    let rows: [(&str, String, String); 7] = [
        ("mode", b.config.mode.clone(), h.config.mode.clone()),
        (
            "servers",
            b.config.servers.to_string(),
            h.config.servers.to_string(),
        ),
        (
            "scenarios",
            b.config.scenarios.join(", "),
            h.config.scenarios.join(", "),
        ),
        (
            "users",
            b.config.users.to_string(),
            h.config.users.to_string(),
        ),
        (
            "load model",
            b.config.load_model.clone(),
            h.config.load_model.clone(),
        ),
        (
            "cpus",
            b.environment.cpus.to_string(),
            h.environment.cpus.to_string(),
        ),
        (
            "git commit",
            b.environment.git_commit.clone().unwrap_or_default(),
            h.environment.git_commit.clone().unwrap_or_default(),
        ),
    ];
    page.push_str(
        "<section id=\"setup\">\n<h2>Setup</h2>\n<table>\n<tr><th></th><th>base</th><th>head</th></tr>\n",
    );
    for (name, bv, hv) in rows {
        let class = if bv == hv { "" } else { " class=\"fail\"" };
        let _ = writeln!(
            page,
            "<tr><th>{}</th><td>{}</td><td{class}>{}</td></tr>",
            esc(name),
            esc(&bv),
            esc(&hv)
        );
    }
    page.push_str("</table>\n</section>\n");
}

fn changes_section(page: &mut String, deltas: &[Delta]) {
    let settings = Settings::default();
    let _ = write!(
        page,
        "<section id=\"changes\">\n<h2>Changes</h2>\n<p>Significance: Mann-Whitney U over the \
         per-second values of each run, with a bootstrap interval of the median's change; a \
         regression needs p &lt; {} and the whole interval beyond &plusmn;{:.0} % (the noise \
         band).</p>\n<table>\n<tr><th>metric</th><th class=\"num\">base</th>\
         <th class=\"num\">head</th><th class=\"num\">change</th><th class=\"num\">interval</th>\
         <th class=\"num\">p</th><th>verdict</th></tr>\n",
        settings.alpha, settings.min_effect_percent
    );
    if deltas.is_empty() {
        page.push_str("<tr><td colspan=\"7\">The runs share no measured phase.</td></tr>\n");
    }
    for d in deltas {
        let change = d
            .change_percent()
            .map_or("-".into(), |c| format!("{c:+.1} %"));
        let (interval, p) = match &d.test {
            Ok(c) => (
                format!("{:+.1} to {:+.1} %", c.ci_low_percent, c.ci_high_percent),
                format!("{:.3}", c.p_value),
            ),
            Err(why) => (esc(why), "-".into()),
        };
        let class = match d.verdict() {
            "regression" => "fail",
            "improvement" => "pass",
            _ => "not_measured",
        };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{interval}</td><td class=\"num\">{p}</td>\
             <td class=\"{class}\">{}</td></tr>",
            esc(&d.metric),
            esc(&d.show(d.base)),
            esc(&d.show(d.head)),
            esc(&change),
            d.verdict()
        );
    }
    page.push_str("</table>\n</section>\n");
}

fn claims_section(page: &mut String, b: &RunFile, h: &RunFile) {
    page.push_str(
        "<section id=\"claims\">\n<h2>Claims</h2>\n<table>\n<tr><th>claim</th><th>base</th>\
         <th>head</th></tr>\n",
    );
    let mut ids: Vec<&str> = b.claims.iter().map(|c| c.id.as_str()).collect();
    for c in &h.claims {
        if !ids.contains(&c.id.as_str()) {
            ids.push(&c.id);
        }
    }
    for id in ids {
        let find = |r: &RunFile| r.claims.iter().find(|c| c.id == id).cloned();
        let (bc, hc) = (find(b), find(h));
        let title = bc
            .as_ref()
            .or(hc.as_ref())
            .map_or(id.to_string(), |c| c.title.clone());
        let cell = |c: &Option<crate::run::Claim>| match c {
            Some(c) => format!(
                "<span class=\"{}\">{}</span> {}",
                c.verdict.key(),
                esc(c.verdict.label()),
                esc(c.measured.as_deref().unwrap_or(""))
            ),
            None => "-".into(),
        };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&title),
            cell(&bc),
            cell(&hc)
        );
    }
    page.push_str("</table>\n</section>\n");
}

fn charts_section(page: &mut String, b: &RunFile, h: &RunFile) {
    page.push_str("<section id=\"charts\">\n<h2>Overlaid</h2>\n");
    let faint = |mut s: Series| {
        s.faint = true;
        s
    };
    if let (Some(br), Some(hr)) = (&b.latency, &h.latency) {
        let mut spectra = Vec::new();
        for (name, r, color, is_base) in [
            ("base", br, PALETTE[6], true),
            ("head", hr, PALETTE[0], false),
        ] {
            if let Ok(hist) = decode_histogram(&r.histogram.data) {
                let s = Series::new(name, color, chart::spectrum_points(&hist));
                spectra.push(if is_base { faint(s) } else { s });
            }
        }
        figure(
            page,
            "Latency by percentile, base (grey) and head",
            chart::spectrum("latency by percentile", &spectra),
        );
        let over_time = |r: &Results, p99: bool| -> Vec<(f64, f64)> {
            r.per_second
                .iter()
                .enumerate()
                .map(|(i, s)| (i as f64, if p99 { s.p99_us } else { s.p50_us } as f64))
                .collect()
        };
        figure(
            page,
            "p50 and p99 of each second, base (grey) and head",
            chart::lines(
                "latency per second",
                "second of the measured window",
                "latency",
                YAxis::MicrosLog,
                &[
                    faint(Series::new("base p50", PALETTE[6], over_time(br, false))),
                    faint(Series::new("base p99", PALETTE[6], over_time(br, true))),
                    Series::new("head p50", PALETTE[0], over_time(hr, false)),
                    Series::new("head p99", PALETTE[1], over_time(hr, true)),
                ],
            ),
        );
        let rate = |r: &Results| -> Vec<(f64, f64)> {
            r.per_second
                .iter()
                .enumerate()
                .map(|(i, s)| (i as f64, (s.ok + s.errors) as f64))
                .collect()
        };
        figure(
            page,
            "Requests per second, base (grey) and head",
            chart::lines(
                "throughput",
                "second of the measured window",
                "requests per second",
                YAxis::Count,
                &[
                    faint(Series::new("base", PALETTE[6], rate(br))),
                    Series::new("head", PALETTE[0], rate(hr)),
                ],
            ),
        );
    }
    let lag = |r: &RunFile| {
        r.sync
            .as_ref()
            .and_then(|s| s.figures.as_ref())
            .and_then(|f| decode_histogram(&f.histograms.lag.data).ok())
    };
    if let (Some(bl), Some(hl)) = (lag(b), lag(h)) {
        figure(
            page,
            "Write-to-visible lag, cumulative, base (grey) and head",
            chart::cdf(
                "sync lag, cumulative",
                &[
                    faint(Series::new("base", PALETTE[6], chart::cdf_points(&bl))),
                    Series::new("head", PALETTE[0], chart::cdf_points(&hl)),
                ],
            ),
        );
    }
    page.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::synthetic::{Spec, run};

    fn delta<'a>(ds: &'a [Delta], metric: &str) -> &'a Delta {
        ds.iter().find(|d| d.metric == metric).unwrap()
    }

    #[test]
    fn a_30_percent_slower_head_is_a_regression_and_noise_is_not() {
        let base = run(&Spec {
            seconds: 30,
            ..Default::default()
        });
        let same = run(&Spec {
            seconds: 30,
            seed: 2,
            ..Default::default()
        });
        let slower = run(&Spec {
            seconds: 30,
            seed: 3,
            median_us: 2_600.0,
            ..Default::default()
        });
        let ds = deltas(&base, &same);
        assert_eq!(delta(&ds, "latency p50").verdict(), "within noise");
        assert_eq!(delta(&ds, "throughput").verdict(), "within noise");
        let ds = deltas(&base, &slower);
        let p50 = delta(&ds, "latency p50");
        assert_eq!(p50.verdict(), "regression", "{p50:?}");
        assert!((p50.change_percent().unwrap() - 30.0).abs() < 5.0);
        let ds = deltas(&slower, &base);
        assert_eq!(delta(&ds, "latency p50").verdict(), "improvement");
    }

    #[test]
    fn page_has_table_claims_and_overlays() {
        let base = run(&Spec::default());
        let head = run(&Spec {
            seed: 9,
            median_us: 4_000.0,
            ..Default::default()
        });
        let html = render(("base/run.json", &base), ("head <b>/run.json", &head));
        for id in ["setup", "changes", "claims", "charts"] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        assert!(html.contains("head &lt;b&gt;/run.json"));
        assert!(html.contains("latency p50") && html.contains("sync lag p99"));
        assert!(html.matches("<svg").count() >= 4);
        assert!(!html.contains("http://") && !html.contains("<script"));
    }
}
