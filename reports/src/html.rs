//! The HTML report: one self-contained file rendered from a [`RunFile`] alone (inline CSS, an
//! inline SVG drawn here, no scripts, no external resources). Every piece of text from the run
//! goes through [`esc`].

use std::fmt::Write as _;

use crate::{
    chart::{self, ChartError, PALETTE, Series, YAxis},
    diagnose,
    escape::esc,
    fmt_micros,
    run::{
        CapacityResult, ChaosResult, ErrorClass, LatencySummary, Results, RunFile, SyncFigures,
        SyncResult, decode_histogram,
    },
};

/// The stylesheet every page inlines.
pub const CSS: &str = include_str!("report.css");

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
    diagnostics_section(&mut h, run);
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
             ({} samples).</p>\n</section>\n",
            c.asked,
            c.per_connection_rps,
            c.held_min_client
                .map_or("unknown".into(), |n| n.to_string()),
            c.held_min_server
                .map_or("not reported".into(), |n| n.to_string()),
            c.samples,
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
    if let Some(c) = &run.chaos {
        chaos_section(&mut h, c);
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
    phase_charts(h, id, r);
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

/// The chaos scenario: the faults, when the fleet and the gateway noticed each and when its
/// server was healthy again, then the load's own section (errors per second show the impact).
fn chaos_section(h: &mut String, c: &ChaosResult) {
    let r = &c.results;
    let (slowest, never) = c.recovery();
    let recoverable = c.recoverable().count();
    let _ = write!(
        h,
        "<section id=\"chaos\">\n<h2>Chaos</h2>\n<p>{} faults ({}) among {} servers{} while \
         {} took load {}. <strong>{:.3} %</strong> of {} requests succeeded; {} of {} servers \
         the fleet had to recover (killed, or paused long enough for it to notice) were healthy \
         again{}{}.</p>\n",
        c.faults.len(),
        esc(&c.specs.join(", ")),
        c.servers,
        c.isolation
            .as_deref()
            .map_or(String::new(), |i| format!(" ({} isolation)", esc(i))),
        esc(&c.load_target),
        if c.through_gateway {
            "as the gateway (its <code>/backends</code> timed when it took servers out)"
        } else {
            "directly"
        },
        r.success_percent().unwrap_or(0.0),
        r.requests,
        recoverable - never,
        recoverable,
        slowest.map_or(String::new(), |ms| format!(", the slowest after {ms} ms")),
        if never > 0 {
            format!(
                " (loadgen waited {:.1} s after the load)",
                c.recovery_wait_ms as f64 / 1000.0
            )
        } else {
            String::new()
        },
    );
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    let mut points: [Vec<(f64, f64)>; 3] = Default::default();
    for f in &c.faults {
        let at = f.at_ms as f64 / 1000.0;
        for (i, v) in [f.fleet_detect_ms, f.gateway_detect_ms, f.recovered_ms]
            .into_iter()
            .enumerate()
        {
            if let Some(v) = v {
                points[i].push((at, v as f64 * 1000.0));
            }
        }
    }
    let [fleet, gateway, healthy] = points;
    let mut series = vec![
        Series::new("fleet noticed", PALETTE[0], fleet),
        Series::new("healthy again", PALETTE[2], healthy),
    ];
    if c.through_gateway {
        series.insert(1, Series::new("gateway took out", PALETTE[1], gateway));
    }
    series.retain(|s| !s.points.is_empty());
    if !series.is_empty() {
        figure(
            h,
            "Per fault, by when it happened: time until the fleet noticed, the gateway took the \
             server out of rotation, and the server was healthy again.",
            chart::lines(
                "after each fault",
                "fault at (s into the measured window)",
                "time after the fault",
                YAxis::Micros,
                &series,
            ),
        );
    }
    h.push_str(
        "<table>\n<tr><th>server</th><th>fault</th><th class=\"num\">at</th>\
         <th class=\"num\">lasted</th><th class=\"num\">fleet noticed</th>\
         <th class=\"num\">gateway took out</th><th class=\"num\">healthy again</th>\
         <th>error</th></tr>\n",
    );
    for f in &c.faults {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.2} s</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td></tr>",
            esc(&f.server),
            esc(&f.action),
            f.at_ms as f64 / 1000.0,
            ms(f.lasted_ms),
            ms(f.fleet_detect_ms),
            ms(f.gateway_detect_ms),
            ms(f.recovered_ms),
            esc(f.error.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table>\n</section>\n");
    phase_section(h, "chaos-load", "Load during the chaos scenario", r);
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
    let mut rows: Vec<(&str, &LatencySummary)> = vec![
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
    if let Some(server) = &f.server_lag_us {
        rows.insert(
            3,
            (
                "write-to-visible lag by the servers' clocks (A's ack to B's view holding the \
                 version; no read round trip)",
                server,
            ),
        );
    }
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
    sync_charts(h, f);
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

/// Writes a chart as a figure, or says why it is missing.
pub(crate) fn figure(h: &mut String, caption: &str, chart: Result<String, ChartError>) {
    match chart {
        Ok(svg) => {
            // Inline SVG in HTML needs no namespace; without it the file holds no URL at all.
            let svg = svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
            let _ = writeln!(
                h,
                "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>",
                esc(caption)
            );
        }
        Err(e) => {
            let _ = writeln!(
                h,
                "<p class=\"note\">{}: {}</p>",
                esc(caption),
                esc(&e.to_string())
            );
        }
    }
}

/// Seconds of the measured window, as chart x values.
fn per_second<T>(seconds: &[T], value: impl Fn(&T) -> f64) -> Vec<(f64, f64)> {
    seconds
        .iter()
        .enumerate()
        .map(|(i, s)| (i as f64, value(s)))
        .collect()
}

/// The charts of one load phase, in the order a reader asks: how slow (spectrum), when (over
/// time), how much (throughput), with how many connections, what failed, where (servers), and
/// headers against whole answers.
fn phase_charts(h: &mut String, id: &str, r: &Results) {
    h.push_str("<h3>Latency percentile spectrum</h3>\n");
    match decode_histogram(&r.histogram.data) {
        Ok(hist) => figure(
            h,
            "Latency at each percentile (HdrHistogram style: 90 %, 99 %, 99.9 % ... get equal \
             room); successful requests",
            chart::spectrum(
                "latency by percentile",
                &[Series::new(
                    "latency",
                    PALETTE[0],
                    chart::spectrum_points(&hist),
                )],
            ),
        ),
        Err(e) => {
            let _ = writeln!(
                h,
                "<p class=\"note\">The histogram does not decode: {}</p>",
                esc(&e.to_string())
            );
        }
    }
    let seconds = &r.per_second;
    h.push_str("<h3>Over time</h3>\n");
    figure(
        h,
        "p50, p90 and p99 of each second of the measured window (by start time)",
        chart::lines(
            "latency percentiles per second",
            "second of the measured window",
            "latency",
            YAxis::MicrosLog,
            &[
                Series::new("p50", PALETTE[0], per_second(seconds, |s| s.p50_us as f64)),
                Series::new("p90", PALETTE[2], per_second(seconds, |s| s.p90_us as f64)),
                Series::new("p99", PALETTE[1], per_second(seconds, |s| s.p99_us as f64)),
            ],
        ),
    );
    figure(
        h,
        "Requests per second by start time: successful and failed",
        chart::lines(
            "throughput",
            "second of the measured window",
            "requests per second",
            YAxis::Count,
            &[
                Series::new("ok", PALETTE[0], per_second(seconds, |s| s.ok as f64)),
                Series::new(
                    "errors",
                    PALETTE[3],
                    per_second(seconds, |s| s.errors as f64),
                ),
            ],
        ),
    );
    if !r.connections.is_empty() {
        let mut series = vec![Series::new(
            "client sockets",
            PALETTE[0],
            r.connections
                .iter()
                .filter_map(|c| Some((c.t, c.client? as f64)))
                .collect(),
        )];
        if r.connections.iter().any(|c| c.server.is_some()) {
            series.push(Series::new(
                "servers' count",
                PALETTE[1],
                r.connections
                    .iter()
                    .filter_map(|c| Some((c.t, c.server? as f64)))
                    .collect(),
            ));
        }
        figure(
            h,
            &format!(
                "Open connections, sampled once a second over the whole phase (the measured \
                 window is {:.0}-{:.0} s)",
                r.window_s[0], r.window_s[1]
            ),
            chart::lines(
                "open connections",
                "second of the phase",
                "connections",
                YAxis::Count,
                &series,
            ),
        );
    }
    let classes: Vec<ErrorClass> = ErrorClass::ALL
        .into_iter()
        .filter(|c| seconds.iter().any(|s| s.errors_by_class.contains_key(c)))
        .collect();
    if classes.is_empty() {
        let errors: u64 = r.errors.values().sum();
        let _ = writeln!(
            h,
            "<p>Errors by class over time: {}.</p>",
            if errors == 0 {
                "no request failed"
            } else {
                "not recorded per second in this run file"
            }
        );
    } else {
        let series: Vec<Series> = classes
            .iter()
            .enumerate()
            .map(|(k, c)| {
                Series::new(
                    c.name(),
                    PALETTE[(k + 3) % PALETTE.len()],
                    per_second(seconds, |s| {
                        s.errors_by_class.get(c).copied().unwrap_or(0) as f64
                    }),
                )
            })
            .collect();
        figure(
            h,
            "Failed requests per second, by class",
            chart::lines(
                "errors by class",
                "second of the measured window",
                "errors per second",
                YAxis::Count,
                &series,
            ),
        );
    }
    if !r.by_server.is_empty() {
        let mut cells: Vec<(String, Option<f64>)> = r
            .by_server
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    (s.ok > 0).then_some(s.latency_us.p99 as f64),
                )
            })
            .collect();
        cells.sort_by_key(|c| natural(&c.0));
        let _ = writeln!(h, "<h3 id=\"{id}-servers\">Per server</h3>");
        figure(
            h,
            &format!(
                "Every server a cell, in id order, coloured by its p99 (log scale); hover a cell \
                 for its name. {} servers.",
                cells.len()
            ),
            chart::heatmap("p99 by server", &cells),
        );
        let mut slowest: Vec<_> = r.by_server.iter().filter(|s| s.ok > 0).collect();
        slowest.sort_by_key(|s| std::cmp::Reverse(s.latency_us.p99));
        if !slowest.is_empty() {
            h.push_str(
                "<table>\n<tr><th>slowest servers</th><th class=\"num\">requests</th>\
                 <th class=\"num\">errors</th><th class=\"num\">p50</th><th class=\"num\">p99</th>\
                 <th class=\"num\">max</th></tr>\n",
            );
            for s in slowest.iter().take(5) {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&s.name),
                    s.requests,
                    s.errors,
                    esc(&fmt_micros(s.latency_us.p50)),
                    esc(&fmt_micros(s.latency_us.p99)),
                    esc(&fmt_micros(s.latency_us.max)),
                );
            }
            h.push_str("</table>\n");
        }
    }
    if r.ttfb_us.count > 0 {
        let at = |l: &LatencySummary| vec![l.p50, l.p90, l.p99, l.p99_9, l.max];
        let (t, l) = (at(&r.ttfb_us), at(&r.service_latency_us));
        let groups: Vec<(String, Vec<f64>)> = ["p50", "p90", "p99", "p99.9", "max"]
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_string(), vec![t[i] as f64, l[i] as f64]))
            .collect();
        h.push_str("<h3>Time to first byte and time to result</h3>\n");
        figure(
            h,
            "Response headers against the whole JSON-RPC result, from the actual send. In the \
             session era headers leave before the tool runs, so the gap is the tool's work and \
             streaming.",
            chart::grouped_bars(
                "time to first byte vs time to result",
                &[("first byte", PALETTE[5]), ("result", PALETTE[0])],
                &groups,
            ),
        );
    }
}

/// Orders `server-9` before `server-10`: digits compare as numbers.
fn natural(name: &str) -> (String, u64) {
    let digits: String = name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let stem = name[..name.len() - digits.len()].to_string();
    (stem, digits.parse().unwrap_or(0))
}

/// The sync scenario's distributions: the write-to-visible lag as a histogram and, with the
/// baseline read and the ack, as CDFs; then ack and lag per second.
fn sync_charts(h: &mut String, f: &SyncFigures) {
    let lag = decode_histogram(&f.histograms.lag.data);
    let server_lag = f
        .histograms
        .server_lag
        .as_ref()
        .map(|h| decode_histogram(&h.data));
    let ack = decode_histogram(&f.histograms.ack.data);
    let baseline = decode_histogram(&f.histograms.baseline_read.data);
    if let Ok(lag) = &lag {
        h.push_str("<h3>Write-to-visible lag</h3>\n");
        figure(
            h,
            "How many writes became visible on the other server after each lag (log-spaced \
             buckets)",
            chart::latency_histogram(
                "write-to-visible lag",
                &chart::log_buckets(lag, 40),
                PALETTE[0],
            ),
        );
    }
    let mut series = Vec::new();
    for (name, color, h) in [
        ("lag", PALETTE[0], &lag),
        ("baseline read", PALETTE[6], &baseline),
        ("ack", PALETTE[1], &ack),
    ] {
        if let Ok(h) = h {
            series.push(Series::new(name, color, chart::cdf_points(h)));
        }
    }
    if let Some(Ok(h)) = &server_lag {
        series.push(Series::new(
            "lag, servers' clocks",
            PALETTE[2],
            chart::cdf_points(h),
        ));
    }
    figure(
        h,
        "Share of writes at or below each latency: the lag against a plain read of the same \
         server (the part of the lag that is the read itself) and the write's ack",
        chart::cdf("sync latencies, cumulative", &series),
    );
    figure(
        h,
        "Ack and lag p99 of each second (by the write's intended send time)",
        chart::lines(
            "sync p99 per second",
            "second of the measured window",
            "latency",
            YAxis::MicrosLog,
            &[
                Series::new(
                    "lag p99",
                    PALETTE[0],
                    per_second(&f.per_second, |s| s.lag_p99_us as f64),
                ),
                Series::new(
                    "ack p99",
                    PALETTE[1],
                    per_second(&f.per_second, |s| s.ack_p99_us as f64),
                ),
            ],
        ),
    );
}

/// What the report noticed by itself (see [`crate::diagnose`]).
fn diagnostics_section(h: &mut String, run: &RunFile) {
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
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

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
    fn chaos_section_times_each_fault_and_escapes_names() {
        use crate::run::{ChaosResult, FaultRecord};
        let mut run = sample_run();
        let load = run.latency.clone().unwrap();
        let fault = |server: &str, recovered_ms: Option<u64>| FaultRecord {
            server: server.into(),
            action: "kill".into(),
            at_ms: 1_500,
            at_unix_ms: 1,
            lasted_ms: None,
            fleet_detect_ms: Some(3),
            gateway_detect_ms: Some(4),
            recovered_ms,
            error: None,
        };
        run.chaos = Some(ChaosResult {
            specs: vec!["kill:10%".into()],
            load_target: "http://127.0.0.1:7999/mcp".into(),
            through_gateway: true,
            isolation: Some("process".into()),
            servers: 20,
            faults: vec![fault("community-0001", Some(812)), fault("<b>x</b>", None)],
            recovery_wait_ms: 15_000,
            results: load,
        });
        let html = render(&run);
        let section = &html[html.find("<section id=\"chaos\">").unwrap()..];
        let end = section.find("</section>").unwrap();
        let section = &section[..end];
        for marker in [
            "2 faults (kill:10%) among 20 servers (process isolation)",
            "1 of 2 servers the fleet had to recover (killed, or paused long enough for it to \
             notice) were healthy again, the slowest after 812 ms",
            "waited 15.0 s",
            "<svg",
            "gateway took out",
            "community-0001",
            "812 ms",
            "&lt;b&gt;x&lt;/b&gt;",
        ] {
            assert!(section.contains(marker), "{marker} in {section}");
        }
        assert!(html.contains("id=\"chaos-load\""));
    }
}
