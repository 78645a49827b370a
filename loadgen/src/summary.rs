//! What the binary prints at the end of a run: headline numbers per scenario, the verdict
//! table and the paths written (`--json` prints [`crate::summary_json`] instead).

use crate::{RunOutcome, claims, fmt_micros, runfile};

/// What the binary prints at the end: headline numbers, the verdict table, the paths.
pub fn summary(outcome: &RunOutcome) -> String {
    let run = &outcome.run;
    let mut lines = String::new();
    if run.interrupted {
        lines.push_str("INTERRUPTED: partial results\n");
    }
    let headline = |name: &str, r: &runfile::Results| {
        let l = &r.latency_us;
        format!(
            "{name}: {} requests in {:.1} s ({:.0} req/s), {} errors; latency mean {}, p50 {}, \
             p99 {}, max {}\n",
            r.requests,
            r.measured_s,
            r.throughput_rps,
            r.requests - r.ok,
            fmt_micros(l.mean.round() as u64),
            fmt_micros(l.p50),
            fmt_micros(l.p99),
            fmt_micros(l.max),
        )
    };
    lines.push_str(&format!(
        "health: {}/{} servers answered\n",
        run.health.ok, run.health.servers
    ));
    if let Some(a) = &run.auth {
        lines.push_str(&format!(
            "auth: OAuth client credentials ({}) from {}: {} token fetches ({} after a 401, {} \
             failed), {} in all, not in the figures\n",
            a.client_auth.join(", "),
            a.authorization_servers.join(", "),
            a.token_fetches,
            a.after_401,
            a.failures,
            fmt_micros(a.fetch_total_us),
        ));
    }
    if let Some(r) = &run.latency {
        lines.push_str(&headline("latency", r));
    }
    if let Some(c) = &run.connections {
        lines.push_str(&format!(
            "connections: {} asked, {} held (client side {}, servers {})\n",
            c.asked,
            c.held().map_or("?".into(), |n| n.to_string()),
            c.held_min_client.map_or("?".into(), |n| n.to_string()),
            c.held_min_server.map_or("-".into(), |n| n.to_string()),
        ));
        lines.push_str(&headline("  under them", &c.results));
    }
    if let Some(c) = &run.capacity {
        lines.push_str(&format!(
            "capacity: {} with p99 <= {} ({} steps)\n",
            c.best_rps
                .map_or("no rate passed".into(), |r| format!("{r:.0} req/s")),
            fmt_micros(c.p99_bound_us),
            c.steps.len()
        ));
    }
    if let Some(s) = &run.sync {
        lines.push_str(&format!("sync: {}\n", s.reason));
    }
    if let Some(s) = &run.stdio {
        lines.push_str(&format!(
            "stdio: {} process(es) ({} started, {} exited, {} restarts), {}; CPU {:.1} s \
             (peak {:.0} % of a CPU), RSS peak {:.1} MiB\n",
            s.processes,
            s.started,
            s.exited,
            s.restarts,
            s.protocol_version,
            s.cpu_s,
            s.cpu_percent_max,
            s.rss_bytes_max as f64 / (1024.0 * 1024.0),
        ));
    }
    if let Some(c) = &run.chaos {
        let (slowest, never) = c.recovery();
        let n = c.recoverable().count();
        lines.push_str(&format!(
            "chaos: {} faults; {} requests, {} errors; {}/{n} servers healthy again{}\n",
            c.faults.len(),
            c.results.requests,
            c.results.requests - c.results.ok,
            n - never,
            slowest.map_or(String::new(), |ms| format!(" (slowest {ms} ms)")),
        ));
    }
    if let Some(s) = &run.scale {
        lines.push_str(&format!("scale: {}\n", s.reason));
    }
    let exports: String = outcome
        .exports
        .paths()
        .map(|p| format!("export: {}\n", p.display()))
        .collect();
    format!(
        "{lines}\n{}\nrun file: {}\nreport: {}\n{exports}{}",
        claims::text_table(&outcome.run.claims),
        outcome.run_file.display(),
        outcome.report.display(),
        outcome
            .index
            .as_ref()
            .map_or(String::new(), |i| format!("all runs: {}\n", i.display())),
    )
}
