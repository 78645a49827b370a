//! The configuration and environment section: what was asked of the run, the embedded fleet's
//! own figures, and the machine it ran on.

use std::fmt::Write as _;

use crate::{escape::esc, run::RunFile};

/// One row per setting, fact of the fleet and of the machine.
pub(super) fn section(h: &mut String, run: &RunFile) {
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
    if let Some(tls) = &c.tls {
        rows.push(("TLS", tls.clone()));
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
