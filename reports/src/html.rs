//! The HTML report: one self-contained file rendered from a [`RunFile`] alone (inline CSS, an
//! inline SVG drawn here, no scripts, no external resources). Every piece of text from the run
//! goes through [`esc`].

use std::fmt::Write as _;

use crate::{
    fmt_micros,
    run::{
        CapacityResult, ErrorClass, LatencySummary, Results, RunFile, SecondSummary, SyncResult,
    },
};

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
    claims_section(&mut h, run);
    health_section(&mut h, run);
    if let Some(r) = &run.latency {
        phase_section(&mut h, "latency", "Latency scenario", r);
    }
    if let Some(c) = &run.connections {
        let _ = write!(
            h,
            "<section id=\"connections\">\n<h2>Held connections</h2>\n<p>{} connections asked \
             for, each sending {} req/s. Fewest established during the measured window: {} on \
             the client side (sockets in <code>/proc</code>), {} as the servers counted them \
             ({} samples).</p>\n{}\n</section>\n",
            c.asked,
            c.per_connection_rps,
            c.held_min_client
                .map_or("unknown".into(), |n| n.to_string()),
            c.held_min_server
                .map_or("not reported".into(), |n| n.to_string()),
            c.samples,
            connections_svg(&c.results)
        );
        phase_section(
            &mut h,
            "connections-latency",
            "Latency while the connections were held",
            &c.results,
        );
    }
    if let Some(c) = &run.capacity {
        capacity_section(&mut h, c);
    }
    if let Some(s) = &run.sync {
        sync_section(&mut h, run, s);
    }
    config_section(&mut h, run);
    h.push_str("</body>\n</html>\n");
    h
}

fn claims_section(h: &mut String, run: &RunFile) {
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

fn health_section(h: &mut String, run: &RunFile) {
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
}

/// Everything one load phase measured: latency table, per call and group, percentiles,
/// throughput and p50/p99 over time, errors, CPU and goose's own counts.
fn phase_section(h: &mut String, id: &str, title: &str, r: &Results) {
    let l = &r.latency_us;
    let open = r.setup.load_model.starts_with("open model")
        || r.setup.load_model.starts_with("per-connection");
    let _ = write!(
        h,
        "<section id=\"{id}\">\n<h2>{}</h2>\n<p>{} users, {:.0} s ramp-up, {:.0} s warm-up, \
         {:.1} s measured; {}.</p>\n<p>Successful requests only, {} to having read the whole \
         response body. {} successful of {} requests, {:.0} req/s.</p>\n\
         <table>\n<tr><th></th><th>mean</th><th>min</th><th>p50</th><th>p90</th>\
         <th>p99</th><th>p99.9</th><th>max</th></tr>\n",
        esc(title),
        r.setup.users,
        r.setup.ramp_up_s,
        r.setup.warmup_s,
        r.measured_s,
        esc(&r.setup.load_model),
        if open {
            "from each request's intended send time (coordinated omission corrected)"
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
    h.push_str("</table>\n");
    for (what, rows) in [("call", &r.by_call), ("target group", &r.by_group)] {
        if rows.len() < 2 && what == "target group" {
            continue;
        }
        let _ = write!(
            h,
            "<h3>Per {what}</h3>\n<table>\n<tr><th>{what}</th>\
             <th class=\"num\">requests</th><th class=\"num\">errors</th>\
             <th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">max</th></tr>\n",
        );
        for c in rows.iter() {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&c.name),
                c.requests,
                c.errors,
                esc(&fmt_micros(c.latency_us.p50)),
                esc(&fmt_micros(c.latency_us.p99)),
                esc(&fmt_micros(c.latency_us.max)),
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h3>Percentiles</h3>\n<table>\n<tr><th class=\"num\">percentile</th><th class=\"num\">latency</th><th class=\"num\">microseconds</th></tr>\n");
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
    h.push_str("</table>\n");
    let _ = write!(
        h,
        "<h3>Throughput per second</h3>\n<p>Requests by the second they started in; errors in \
         red.</p>\n{}\n<h3>p50 and p99 per second</h3>\n{}\n",
        throughput_svg(&r.per_second),
        percentiles_svg(&r.per_second)
    );
    h.push_str("<h3>Errors</h3>\n<table>\n<tr><th>class</th><th class=\"num\">count</th><th>meaning</th></tr>\n");
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
    if let Some(cpu) = &r.cpu {
        let fleet = match cpu.fleet_cpu_s {
            Some(f) => format!(", the embedded fleet's threads {f:.1} CPU-s"),
            None => String::new(),
        };
        let _ = writeln!(
            h,
            "<p>CPU during the phase: the load generator {:.1} CPU-s ({:.0} % of the machine, \
             {:.0} µs per request){fleet}; this process {:.1} CPU-s in all; all cores {:.0} % \
             busy{}.</p>",
            cpu.generator_cpu_s,
            cpu.generator_percent_of_machine,
            cpu.generator_cpu_us_per_request,
            cpu.process_cpu_s,
            cpu.machine_busy_percent,
            if cpu.machine_busy_percent >= 90.0 {
                ": the machine was saturated, so generator and servers competed for CPU"
            } else {
                ""
            }
        );
    }
    let e = &r.engine;
    let _ = writeln!(
        h,
        "<p>Engine: {} {}: {} users at most, {} requests counted by goose (warm-up included), \
         {} marked failed.</p>\n</section>",
        esc(&e.name),
        esc(&e.version),
        e.users_max,
        e.requests,
        e.failures
    );
}

fn capacity_section(h: &mut String, c: &CapacityResult) {
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

/// The memory sync scenario: what was done, the figures, the final check and the verdicts of
/// the claims it measures.
fn sync_section(h: &mut String, run: &RunFile, s: &SyncResult) {
    h.push_str("<section id=\"sync\">\n<h2>Memory sync</h2>\n");
    let Some(f) = s.figures.as_ref().filter(|_| s.ran) else {
        let _ = writeln!(h, "<p>Not run: {}</p>\n</section>", esc(&s.reason));
        return;
    };
    let _ = writeln!(
        h,
        "<p>{} writes/s (open model, at most {} in flight) for {:.1} s measured after a {:.0} s \
         warm-up, over {} servers{}{}. Each write creates one entity on a random server A \
         (<code>create_entities</code>); {}, <code>open_nodes</code> with \
         <code>minVersion</code> = the version A acknowledged (waiting up to {} ms) must \
         return it; then the same read without <code>minVersion</code> gives the baseline \
         read. Probes are named <code>sync-{}-N</code>.</p>",
        f.rate_wps,
        f.users,
        f.measured_s,
        f.warmup_s,
        f.servers,
        f.isolation
            .as_deref()
            .map_or(String::new(), |i| format!(" ({} isolation)", esc(i))),
        if f.servers_left_out > 0 {
            format!(
                "; {} targets left out (no memory tools, or no answer)",
                f.servers_left_out
            )
        } else {
            String::new()
        },
        if f.same_server {
            "then on the same server (there is only one)"
        } else {
            "then on a random other server B"
        },
        f.visible_wait_ms,
        esc(&f.tag),
    );
    let failed: u64 = f.failed.values().sum();
    let invisible: u64 = f.visibility_failures.values().sum();
    let mut counts: Vec<(String, String)> = vec![
        (
            "writes attempted (measured window)".into(),
            format!("{} ({:.0}/s)", f.writes, f.achieved_wps),
        ),
        ("acknowledged".into(), f.acked.to_string()),
        (
            "failed (not acknowledged)".into(),
            if failed == 0 {
                "0".into()
            } else {
                f.failed
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(c, n)| format!("{n} {}", c.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("visible on the other server".into(), f.visible.to_string()),
        (
            "not visible".into(),
            if invisible == 0 {
                "0".into()
            } else {
                f.visibility_failures
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "warm-up writes (acknowledged)".into(),
            format!("{} ({})", f.warmup_writes, f.warmup_acked),
        ),
        (
            "connections opened during the run".into(),
            format!(
                "{} (besides one per server beforehand)",
                f.connections_opened
            ),
        ),
    ];
    if f.baseline_failures > 0 {
        counts.push((
            "baseline reads failed".into(),
            f.baseline_failures.to_string(),
        ));
    }
    h.push_str("<table>\n");
    for (k, v) in &counts {
        let _ = writeln!(
            h,
            "<tr><th>{}</th><td class=\"num\">{}</td></tr>",
            esc(k),
            esc(v)
        );
    }
    h.push_str("</table>\n");
    h.push_str(
        "<h3>Latency</h3>\n<table>\n<tr><th></th><th>count</th><th>mean</th><th>min</th>\
         <th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n",
    );
    let rows: [(&str, &LatencySummary); 4] = [
        (
            "ack latency (from the intended send time, coordinated omission corrected)",
            &f.ack_us,
        ),
        ("ack service time (from the actual send)", &f.ack_service_us),
        (
            "write-to-visible lag (ack on A to B's answer with the entity; one read round trip \
             included)",
            &f.lag_us,
        ),
        (
            "baseline read (same read on B without minVersion)",
            &f.baseline_read_us,
        ),
    ];
    for (name, l) in rows {
        let _ = write!(
            h,
            "<tr><th>{}</th><td class=\"num\">{}</td>",
            esc(name),
            l.count
        );
        for v in [
            l.mean.round() as u64,
            l.min,
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.max,
        ] {
            let _ = write!(h, "<td class=\"num\">{}</td>", esc(&fmt_micros(v)));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    let _ = writeln!(
        h,
        "<h3>Per second</h3>\n{}",
        lines_svg(
            "ack and lag p99 per second",
            &|v| fmt_micros(v),
            &[
                (
                    "p50",
                    "lag p99 (blue)",
                    f.per_second.iter().map(|s| s.lag_p99_us).collect(),
                ),
                (
                    "p99",
                    "ack p99 (orange)",
                    f.per_second.iter().map(|s| s.ack_p99_us).collect(),
                ),
            ],
        )
    );
    let c = &f.check;
    let check = match &c.skipped {
        Some(why) => format!("Skipped: {}.", esc(why)),
        None => {
            let mut text = format!(
                "All {} acknowledged writes (warm-up included) read back with \
                 <code>minVersion</code> {} on {} servers ({}) in {:.2} s: <strong>{} \
                 lost</strong>{}{}.",
                c.acked,
                c.min_version,
                c.servers.len(),
                esc(&c.servers.join(", ")),
                c.seconds,
                c.lost,
                if c.duplicates > 0 {
                    format!(", {} listed twice", c.duplicates)
                } else {
                    String::new()
                },
                if c.complete {
                    String::new()
                } else {
                    format!(
                        "; incomplete: {} reads failed twice, so no-loss is not established",
                        c.read_errors
                    )
                }
            );
            if !c.lost_examples.is_empty() {
                let _ = write!(
                    text,
                    " Missing, e.g.: {}. Per server: {}.",
                    esc(&c.lost_examples.join(", ")),
                    esc(&c
                        .missing_by_server
                        .iter()
                        .map(|(s, n)| format!("{s} {n}"))
                        .collect::<Vec<_>>()
                        .join(", "))
                );
            }
            text
        }
    };
    let _ = writeln!(
        h,
        "<h3>No acknowledged write missing</h3>\n<p>{check} Writes that failed are not \
         counted as lost: a write that timed out may or may not have been applied.</p>"
    );
    if let Some(hist) = &f.history {
        let _ = writeln!(
            h,
            "<p>History: {} of {} sampled probes show their write in <code>memory_history</code> \
             ({} naming the server that took it; {} errors; waited {:.2} s for commits).</p>",
            hist.found, hist.sampled, hist.attributed, hist.errors, hist.waited_s
        );
    }
    match &f.cleanup {
        Some(clean) => {
            let _ = writeln!(
                h,
                "<p>Clean-up: {} probes deleted with <code>delete_entities</code> after the \
                 measurements ({} calls failed).</p>",
                clean.requested, clean.failed_calls
            );
        }
        None if run.fleet.is_some() => h.push_str(
            "<p>The probes stay in the embedded fleet's memory, which belongs to this run (in \
             the run folder).</p>\n",
        ),
        None => {}
    }
    if let Some(cpu) = &f.cpu {
        let _ = writeln!(
            h,
            "<p>CPU during the load: the load generator {:.1} CPU-s ({:.0} % of the machine){}; \
             this process {:.1} CPU-s in all; all cores {:.0} % busy{}.</p>",
            cpu.generator_cpu_s,
            cpu.generator_percent_of_machine,
            cpu.fleet_cpu_s.map_or(String::new(), |f| format!(
                ", the embedded fleet's runtime threads {f:.1} CPU-s"
            )),
            cpu.process_cpu_s,
            cpu.machine_busy_percent,
            if cpu.machine_busy_percent >= 90.0 {
                ": the machine was saturated, so generator and servers competed for CPU"
            } else {
                ""
            }
        );
    }
    let verdicts: Vec<_> = run
        .claims
        .iter()
        .filter(|c| {
            c.criterion.starts_with("sync_lag_p99_ms") || c.criterion.starts_with("lost_writes")
        })
        .collect();
    if !verdicts.is_empty() {
        h.push_str(
            "<h3>Verdicts</h3>\n<table>\n<tr><th>Verdict</th><th>Claim</th><th>Measured</th>\
             <th>Criterion</th></tr>\n",
        );
        for c in verdicts {
            let class = c.verdict.key();
            let _ = writeln!(
                h,
                "<tr><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                class,
                esc(c.verdict.label()),
                esc(&c.title),
                esc(c.measured.as_deref().unwrap_or(&c.note)),
                esc(&c.criterion)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

fn config_section(h: &mut String, run: &RunFile) {
    h.push_str("<section id=\"config\">\n<h2>Configuration and environment</h2>\n<table>\n");
    let c = &run.config;
    let e = &run.environment;
    let mut rows: Vec<(&str, String)> = vec![
        ("mode", c.mode.clone()),
        ("servers", c.servers.to_string()),
        ("scenarios", c.scenarios.join(", ")),
        ("latency users", c.users.to_string()),
        (
            "warm-up / duration / timeout",
            format!("{} s / {} s / {} s", c.warmup_s, c.duration_s, c.timeout_s),
        ),
        ("latency load model", c.load_model.clone()),
        (
            "protocol",
            format!("{} (spoken: {})", c.protocol, c.protocol_version),
        ),
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
    if let Some(f) = &run.fleet {
        rows.push((
            "fleet",
            format!(
                "{}/{} healthy at start ({:.2} s), {} at end; {} requests counted by the servers \
                 (health probes included), {} restarts, at most {} connections open",
                f.healthy_at_start,
                f.servers,
                f.startup_s,
                f.healthy_at_end,
                f.requests_total,
                f.restarts_total,
                f.open_connections_max.map_or("?".into(), |n| n.to_string())
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
    h.push_str("</table>\n</section>\n");
}

/// Polylines over time: `series` of (class, label, values), scaled to the largest value.
fn lines_svg(
    label: &str,
    unit: &dyn Fn(u64) -> String,
    series: &[(&str, &str, Vec<u64>)],
) -> String {
    let mut s = format!(
        "<svg width=\"{SVG_WIDTH}\" height=\"{SVG_HEIGHT}\" \
         viewBox=\"0 0 {SVG_WIDTH} {SVG_HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
    let peak = series
        .iter()
        .flat_map(|x| x.2.iter().copied())
        .max()
        .unwrap_or(0);
    let len = series.iter().map(|x| x.2.len()).max().unwrap_or(0);
    if len == 0 || peak == 0 {
        s.push_str("<text x=\"10\" y=\"20\">nothing measured</text></svg>");
        return s;
    }
    let (top, bottom) = (18.0, SVG_HEIGHT - 18.0);
    let scale = (bottom - top) / peak as f64;
    let step = SVG_WIDTH / len.max(2).saturating_sub(1) as f64;
    let mut legend = String::new();
    for (class, name, values) in series {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", i as f64 * step, bottom - *v as f64 * scale))
            .collect();
        let _ = write!(
            s,
            "<polyline class=\"{class}\" fill=\"none\" points=\"{}\"/>",
            points.join(" ")
        );
        let _ = write!(legend, "{} ", esc(name));
    }
    let _ = write!(
        s,
        "<text x=\"4\" y=\"12\">peak {} &middot; {}</text>\
         <text x=\"4\" y=\"{}\">0 s</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} s</text></svg>",
        esc(&unit(peak)),
        legend.trim_end(),
        SVG_HEIGHT - 4.0,
        SVG_WIDTH - 4.0,
        SVG_HEIGHT - 4.0,
        len
    );
    s
}

/// p50 and p99 of each second of the measured window.
fn percentiles_svg(seconds: &[SecondSummary]) -> String {
    lines_svg(
        "p50 and p99 per second",
        &|v| fmt_micros(v),
        &[
            (
                "p50",
                "p50 (blue)",
                seconds.iter().map(|s| s.p50_us).collect(),
            ),
            (
                "p99",
                "p99 (orange)",
                seconds.iter().map(|s| s.p99_us).collect(),
            ),
        ],
    )
}

/// Connections held over the whole phase, as both sides counted them.
fn connections_svg(r: &Results) -> String {
    let client: Vec<u64> = r
        .connections
        .iter()
        .map(|c| c.client.unwrap_or(0))
        .collect();
    let mut series = vec![("p50", "client sockets (blue)", client)];
    if r.connections.iter().any(|c| c.server.is_some()) {
        series.push((
            "p99",
            "servers' count (orange)",
            r.connections
                .iter()
                .map(|c| c.server.unwrap_or(0))
                .collect(),
        ));
    }
    lines_svg(
        "open connections over time",
        &|v| format!("{v} connections"),
        &series,
    )
}

/// Bars of requests per second, errors stacked on top, drawn as inline SVG.
fn throughput_svg(seconds: &[SecondSummary]) -> String {
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
        use crate::run::*;
        let mut run = crate::synthetic::run(&crate::synthetic::Spec {
            error_every: 97,
            ..Default::default()
        });
        let evil = "http://127.0.0.1:1/mcp?<script>alert(1)</script>";
        run.config.targets = vec![evil.into()];
        run.config.scenarios = vec!["latency".into(), "sync".into()];
        run.interrupted = true;
        run.health.failures = vec![SweepFailure {
            server: evil.into(),
            url: evil.into(),
            error: ErrorClass::Connect,
        }];
        run.claims[0].verdict = Verdict::NotMeasured;
        run
    }

    #[test]
    fn report_has_every_section_and_nothing_external() {
        let html = render(&sample_run());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        for id in ["claims", "health", "latency", "sync", "config"] {
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
            "p50 and p99 per second",
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
    fn sync_section_shows_figures_check_and_verdicts() {
        let html = render(&sample_run());
        let section = &html[html.find("<section id=\"sync\">").unwrap()..];
        let section = &section[..section.find("</section>").unwrap()];
        for marker in [
            "write-to-visible lag",
            "baseline read",
            "ack latency",
            "minVersion",
            "0 lost",
            "task isolation",
            "Verdicts",
            "Shared memory loses no write",
            "Git memory shared in real time",
        ] {
            assert!(section.contains(marker), "{marker} in {section}");
        }
    }

    #[test]
    fn svg_scales_to_the_peak() {
        let second = |ok, errors| SecondSummary {
            ok,
            errors,
            p50_us: 100,
            p90_us: 200,
            p99_us: 300,
            max_us: 400,
            histogram: String::new(),
            errors_by_class: Default::default(),
        };
        let svg = throughput_svg(&[second(10, 0), second(5, 5)]);
        assert!(svg.contains("peak 10 req/s"));
        assert_eq!(svg.matches("class=\"ok\"").count(), 2);
        assert_eq!(svg.matches("class=\"err\"").count(), 1);
        assert!(throughput_svg(&[]).contains("no requests measured"));
        let lines = percentiles_svg(&[second(1, 0), second(1, 0)]);
        assert_eq!(lines.matches("<polyline").count(), 2);
        assert!(lines.contains("peak 300 µs"));
    }
}
