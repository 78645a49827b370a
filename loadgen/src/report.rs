//! The HTML report: one self-contained file rendered from a [`RunFile`] alone (inline CSS, an
//! inline SVG drawn here, no scripts, no external resources). Every piece of text from the run
//! goes through [`esc`].

use std::fmt::Write as _;

use crate::{fmt_micros, mcp::ErrorClass, recorder::SecondCounts, runfile::RunFile};

const CSS: &str = include_str!("report.css");
const SVG_WIDTH: f64 = 720.0;
const SVG_HEIGHT: f64 = 150.0;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn render(run: &RunFile) -> String {
    let mut h = String::new();
    let r = &run.results;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>mcpfleet run {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
         <h1>mcpfleet load run</h1>\n<p class=\"sub\">{} &middot; {} {} &middot; {} servers, \
         {} users, {:.0} s measured after {:.0} s warm-up</p>\n",
        esc(&run.started_at),
        esc(&run.started_at),
        esc(&run.tool.name),
        esc(&run.tool.version),
        run.config.servers,
        run.config.users,
        r.measured_s,
        run.config.warmup_s,
    );
    if run.interrupted {
        h.push_str(
            "<p class=\"banner\">Interrupted: the run was stopped early (Ctrl-C); the numbers \
             cover only what ran.</p>\n",
        );
    }

    h.push_str("<section id=\"claims\">\n<h2>Claims of the seed report</h2>\n<table>\n<tr><th>Verdict</th><th>Claim</th><th>Measured</th><th>Criterion</th></tr>\n");
    for c in &run.claims {
        let verdict = serde_json::to_value(c.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td class=\"{}\">{}</td><td>{}<br><q>{}</q></td><td>{}{}</td><td>{}</td></tr>",
            esc(&verdict),
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

    let l = &r.latency_us;
    let open = run.config.load_model.starts_with("open model");
    let _ = write!(
        h,
        "<section id=\"latency\">\n<h2>Latency</h2>\n<p>Successful requests only, {} to \
         having read the whole response body. {} successful of {} requests, {:.0} req/s.</p>\n\
         <table>\n<tr><th></th><th>mean</th><th>min</th><th>p50</th><th>p90</th>\
         <th>p99</th><th>p99.9</th><th>max</th></tr>\n",
        if open {
            "from each request's intended send time (open model, coordinated omission corrected)"
        } else {
            "from sending the request"
        },
        l.count,
        r.requests,
        r.throughput_rps
    );
    let mut rows = vec![("latency", l)];
    if open {
        rows.push((
            "service time (from the actual send, uncorrected)",
            &r.service_latency_us,
        ));
    }
    if r.ttfb_us.count > 0 {
        rows.push(("time to first byte (response headers)", &r.ttfb_us));
    }
    for (name, l) in rows {
        let _ = write!(h, "<tr><th>{}</th>", esc(name));
        let mean = l.mean.round() as u64;
        for v in [mean, l.min, l.p50, l.p90, l.p99, l.p99_9, l.max] {
            let _ = write!(h, "<td class=\"num\">{}</td>", esc(&fmt_micros(v)));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n</section>\n");

    if !r.by_call.is_empty() {
        h.push_str(
            "<section id=\"calls\">\n<h2>Per call</h2>\n<table>\n<tr><th>call</th>\
             <th class=\"num\">requests</th><th class=\"num\">errors</th>\
             <th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">max</th></tr>\n",
        );
        for c in &r.by_call {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&c.call),
                c.requests,
                c.errors,
                esc(&fmt_micros(c.latency_us.p50)),
                esc(&fmt_micros(c.latency_us.p99)),
                esc(&fmt_micros(c.latency_us.max)),
            );
        }
        h.push_str("</table>\n</section>\n");
    }

    h.push_str("<section id=\"percentiles\">\n<h2>Percentiles</h2>\n<table>\n<tr><th class=\"num\">percentile</th><th class=\"num\">latency</th><th class=\"num\">microseconds</th></tr>\n");
    for p in &r.percentiles_us {
        let name = if p.percentile >= 100.0 {
            "max".to_string()
        } else {
            format!("{}", p.percentile)
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&name),
            esc(&fmt_micros(p.us)),
            p.us
        );
    }
    h.push_str("</table>\n</section>\n");

    let _ = write!(
        h,
        "<section id=\"throughput\">\n<h2>Throughput per second</h2>\n<p>Requests by the \
         second they started in; errors in red.</p>\n{}\n</section>\n",
        throughput_svg(&r.per_second)
    );

    h.push_str("<section id=\"errors\">\n<h2>Errors</h2>\n<table>\n<tr><th>class</th><th class=\"num\">count</th><th>meaning</th></tr>\n");
    for class in ErrorClass::ALL {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td></tr>",
            class.name(),
            r.errors.get(&class).copied().unwrap_or(0),
            esc(class.describe())
        );
    }
    h.push_str("</table>\n");
    let hs = &run.health;
    let _ = writeln!(
        h,
        "<p>Health sweep (one <code>tools/list</code> per server): {} of {} answered in \
         {:.2} s{}.</p>",
        hs.ok,
        hs.servers,
        hs.seconds,
        if hs.interrupted { ", interrupted" } else { "" }
    );
    for f in hs.failures.iter().take(20) {
        let _ = writeln!(
            h,
            "<div class=\"note\">{} {}: {}</div>",
            esc(&f.server),
            esc(&f.url),
            f.error.name()
        );
    }
    h.push_str("</section>\n");

    h.push_str("<section id=\"config\">\n<h2>Configuration and environment</h2>\n<table>\n");
    let c = &run.config;
    let e = &run.environment;
    let mut rows: Vec<(&str, String)> = vec![
        ("mode", c.mode.clone()),
        ("servers", c.servers.to_string()),
        ("users", c.users.to_string()),
        (
            "warm-up / duration / timeout",
            format!("{} s / {} s / {} s", c.warmup_s, c.duration_s, c.timeout_s),
        ),
        ("load model", c.load_model.clone()),
        ("protocol version", c.protocol_version.clone()),
    ];
    if !c.targets.is_empty() {
        rows.push(("targets", c.targets.join(" ")));
    }
    let mix: Vec<String> = c
        .mix
        .iter()
        .map(|m| format!("{}: {} {:.0} %", m.group, m.call, m.percent))
        .collect();
    rows.push(("tool mix", mix.join(", ")));
    if let Some(cpu) = &run.cpu {
        rows.push((
            "CPU during the load run",
            format!(
                "this process {:.1} CPU-s ({:.0} % of the machine, {:.0} µs per request{}); all \
                 cores {:.0} % busy{}",
                cpu.process_cpu_s,
                cpu.process_percent_of_machine,
                cpu.cpu_us_per_request,
                if cpu.includes_embedded_fleet {
                    ", the embedded fleet included"
                } else {
                    ""
                },
                cpu.machine_busy_percent,
                if cpu.machine_busy_percent >= 90.0 {
                    ": the machine was saturated, so generator and servers competed for CPU"
                } else {
                    ""
                }
            ),
        ));
    }
    if let Some(f) = &run.fleet {
        rows.push((
            "fleet",
            format!(
                "{}/{} healthy at start ({:.2} s), {} at end; {} requests counted by the servers \
                 (health probes included), {} restarts",
                f.healthy_at_start,
                f.servers,
                f.startup_s,
                f.healthy_at_end,
                f.requests_total,
                f.restarts_total
            ),
        ));
    }
    rows.push((
        "os / arch / cpus",
        format!("{} / {} / {}", e.os, e.arch, e.cpus),
    ));
    rows.push(("open-file limit", e.fd_limit.to_string()));
    rows.push((
        "git commit",
        e.git_commit.clone().unwrap_or_else(|| "unknown".into()),
    ));
    rows.push((
        "started / finished",
        format!("{} / {}", run.started_at, run.finished_at),
    ));
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    h.push_str("</table>\n</section>\n</body>\n</html>\n");
    h
}

/// Bars of requests per second, errors stacked on top, drawn as inline SVG.
fn throughput_svg(seconds: &[SecondCounts]) -> String {
    let mut s = format!(
        "<svg width=\"{SVG_WIDTH}\" height=\"{SVG_HEIGHT}\" \
         viewBox=\"0 0 {SVG_WIDTH} {SVG_HEIGHT}\" role=\"img\" aria-label=\"requests per second\">"
    );
    let peak = seconds.iter().map(|c| c.ok + c.errors).max().unwrap_or(0);
    if seconds.is_empty() || peak == 0 {
        s.push_str("<text x=\"10\" y=\"20\">no requests measured</text></svg>");
        return s;
    }
    let (top, bottom) = (18.0, SVG_HEIGHT - 18.0);
    let scale = (bottom - top) / peak as f64;
    let step = SVG_WIDTH / seconds.len() as f64;
    let width = (step * 0.8).max(1.0);
    for (i, c) in seconds.iter().enumerate() {
        let x = i as f64 * step + (step - width) / 2.0;
        let ok_h = c.ok as f64 * scale;
        let err_h = c.errors as f64 * scale;
        let _ = write!(
            s,
            "<rect class=\"ok\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{ok_h:.1}\">\
             <title>second {i}: {} ok, {} errors</title></rect>",
            bottom - ok_h,
            c.ok,
            c.errors
        );
        if c.errors > 0 {
            let _ = write!(
                s,
                "<rect class=\"err\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{err_h:.1}\"/>",
                bottom - ok_h - err_h
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"4\" y=\"12\">peak {peak} req/s</text>\
         <text x=\"4\" y=\"{}\">0 s</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} s</text></svg>",
        SVG_HEIGHT - 4.0,
        SVG_WIDTH - 4.0,
        SVG_HEIGHT - 4.0,
        seconds.len()
    );
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<script>alert("x&y")</script> 'q'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; &#39;q&#39;"
        );
        assert_eq!(esc("plain µs"), "plain µs");
    }

    fn sample_run() -> RunFile {
        use crate::{claims, measure::*, recorder::Recorder, runfile::*};
        let mut recorder = Recorder::default();
        recorder.record(0, std::time::Duration::from_micros(900), Ok(()));
        recorder.record(
            1,
            std::time::Duration::from_micros(5),
            Err(ErrorClass::Connect),
        );
        let results = Results::new(&recorder, 2.0).unwrap();
        let evil = "http://127.0.0.1:1/mcp?<script>alert(1)</script>";
        let config = Config {
            mode: "targets".into(),
            servers: 1,
            users: 2,
            warmup_s: 0.0,
            duration_s: 2.0,
            timeout_s: 1.0,
            ephemeral_ports: false,
            targets: vec![evil.into()],
            protocol_version: "2026-07-28".into(),
            load_model: "closed loop".into(),
            mix: vec![],
        };
        let health = HealthSweep {
            servers: 1,
            checked: 1,
            ok: 0,
            availability: 0.0,
            seconds: 0.1,
            interrupted: false,
            failures: vec![SweepFailure {
                server: evil.into(),
                url: evil.into(),
                error: ErrorClass::Connect,
            }],
        };
        let specs = claims::load(None).expect("shipped claims");
        let claims = claims::evaluate(
            &specs,
            &claims::Evidence {
                config: &config,
                fleet: None,
                health: &health,
                results: &results,
            },
        );
        RunFile {
            schema_version: SCHEMA_VERSION,
            tool: Tool::default(),
            started_at: "2025-01-01T00:00:00Z".into(),
            finished_at: "2025-01-01T00:00:03Z".into(),
            interrupted: true,
            config,
            environment: Environment::detect(1024),
            fleet: None,
            health,
            results,
            cpu: None,
            claims,
        }
    }

    #[test]
    fn report_has_every_section_and_nothing_external() {
        let html = render(&sample_run());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        for id in [
            "claims",
            "latency",
            "percentiles",
            "throughput",
            "errors",
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
        ] {
            assert!(html.contains(marker), "{marker}");
        }
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

    #[test]
    fn svg_scales_to_the_peak() {
        let svg = throughput_svg(&[
            SecondCounts { ok: 10, errors: 0 },
            SecondCounts { ok: 5, errors: 5 },
        ]);
        assert!(svg.contains("peak 10 req/s"));
        assert_eq!(svg.matches("class=\"ok\"").count(), 2);
        assert_eq!(svg.matches("class=\"err\"").count(), 1);
        assert!(throughput_svg(&[]).contains("no requests measured"));
    }
}
