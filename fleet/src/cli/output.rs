//! What the command line prints about a fleet: start-up progress, the endpoints of a started
//! fleet, and the `status` table. loadgen prints an embedded fleet the same way.

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

use crate::{control::admin::FleetView, fleet::Fleet, serve::registry::ServerState};

/// Prints start-up progress: a line updated in place on a terminal, a few plain lines otherwise.
pub fn progress_printer(total: usize) -> impl FnMut(usize, usize) {
    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut last_plain = Instant::now();
    move |healthy, _| {
        let mut err = std::io::stderr();
        if tty {
            let _ = write!(
                err,
                "\r  {healthy}/{total} healthy ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            let _ = err.flush();
        } else if last_plain.elapsed() >= Duration::from_secs(1) {
            let _ = writeln!(
                err,
                "  {healthy}/{total} healthy ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            last_plain = Instant::now();
        }
    }
}

/// Human lines naming where everything is.
pub fn describe(fleet: &Fleet) -> Vec<String> {
    let mut lines = Vec::new();
    let endpoints = fleet.endpoints();
    for group in &fleet.spec().groups {
        let ports: Vec<u16> = endpoints
            .iter()
            .filter(|e| e.group == group.name)
            .map(|e| e.addr.port())
            .collect();
        let (lo, hi) = (ports.iter().min(), ports.iter().max());
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let host = fleet.spec().host;
            let place = if lo == hi {
                format!("http://{host}:{lo}/mcp")
            } else if usize::from(hi - lo) + 1 == ports.len() {
                format!("http://{host}:{lo}-{hi}/mcp")
            } else {
                format!("http://{host}:PORT/mcp on scattered ports {lo}..{hi} (see /servers)")
            };
            lines.push(format!(
                "  {:<10} {:>4} {} servers  {place}",
                group.name,
                ports.len(),
                group.profile,
            ));
        }
    }
    if let Some(addr) = fleet.admin_addr() {
        lines.push(format!(
            "  admin      http://{addr}/servers  (metrics: /metrics)"
        ));
        // The sign-in link is as good as the token until used: printed only where the output
        // stays on this machine's loopback fleet (a fleet bound to a network address has its
        // output in cluster logs); otherwise the page asks for the token file's content.
        match fleet.dashboard_link() {
            Some(link) if addr.ip().is_loopback() => lines.push(format!(
                "  dashboard  {link}  (live page; this link signs a browser in for its \
                 actions once, then http://{addr}/)"
            )),
            _ => lines.push(format!(
                "  dashboard  http://{addr}/  (live page; for its actions paste the admin token)"
            )),
        }
    }
    if let Some(addr) = fleet.gateway_addr() {
        lines.push(format!(
            "  gateway    http://{addr}/mcp  (every group's tools as group__tool; \
             /mcp/SERVER-ID pins one server)"
        ));
    }
    if let Some(memory) = fleet.memory() {
        lines.push(format!(
            "  memory     {} (git, version {}; every server offers the memory tools)",
            memory.path().display(),
            memory.view().version()
        ));
        let stats = memory.stats();
        if let Some(node) = stats.node {
            lines.push(format!(
                "             published as node {node} to {}",
                stats
                    .peers
                    .iter()
                    .map(|p| p.url.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    lines
}

/// The `fleet status` table.
pub fn render_status(view: &FleetView, all: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}/{} healthy, {} isolation, up {:.0} s",
        view.healthy,
        view.total,
        view.isolation.name(),
        view.uptime_ms as f64 / 1000.0
    );
    let mut groups: Vec<&str> = view.servers.iter().map(|s| s.group.as_str()).collect();
    groups.dedup();
    let _ = writeln!(
        out,
        "{:<12} {:>7} {:>8} {:>9} {:>11} {:>6} {:>8}",
        "GROUP", "SERVERS", "HEALTHY", "REQUESTS", "CONNECTIONS", "SESS", "RESTARTS"
    );
    for g in groups {
        let members: Vec<_> = view.servers.iter().filter(|s| s.group == g).collect();
        let _ = writeln!(
            out,
            "{:<12} {:>7} {:>8} {:>9} {:>11} {:>6} {:>8}",
            g,
            members.len(),
            members
                .iter()
                .filter(|s| s.state == ServerState::Healthy)
                .count(),
            members.iter().map(|s| s.requests).sum::<u64>(),
            members.iter().map(|s| s.open_connections).sum::<u64>(),
            members.iter().map(|s| s.open_sessions).sum::<u64>(),
            members.iter().map(|s| u64::from(s.restarts)).sum::<u64>(),
        );
    }
    let rows: Vec<_> = view
        .servers
        .iter()
        .filter(|s| all || s.state != ServerState::Healthy)
        .collect();
    if !rows.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<16} {:>5} {:>7} {:<10} {:>8} {:>8} {:>9} {:>5} {:>4}  LAST ERROR",
            "SERVER", "PORT", "PID", "STATE", "RESTARTS", "UPTIME", "REQUESTS", "CONNS", "SESS"
        );
        for s in rows {
            let _ = writeln!(
                out,
                "{:<16} {:>5} {:>7} {:<10} {:>8} {:>7.0}s {:>9} {:>5} {:>4}  {}",
                s.id,
                s.port,
                s.pid.map_or("-".to_string(), |p| p.to_string()),
                format!("{:?}", s.state).to_lowercase(),
                s.restarts,
                s.uptime_ms as f64 / 1000.0,
                s.requests,
                s.open_connections,
                s.open_sessions,
                s.last_error.as_deref().unwrap_or("")
            );
        }
    }
    if let Some(memory) = &view.memory {
        render_memory(&mut out, memory);
    }
    out
}

/// The memory's versions and, when it publishes, each peer: the lines that tell an operator
/// whether git keeps up and whether the other nodes get the history.
fn render_memory(out: &mut String, m: &crate::memory::MemoryStats) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "\nmemory: version {} acknowledged, {} committed (commit lag p99 {:.1} ms){}",
        m.acked_version,
        m.committed_version,
        m.commit_lag.p99_ms,
        m.node
            .as_deref()
            .map_or(String::new(), |n| format!(", node {n}"))
    );
    for p in &m.peers {
        let _ = writeln!(
            out,
            "  peer {:<40} {:<8} pushed version {}{}",
            p.url,
            p.state,
            p.pushed_version,
            p.last_error.as_deref().map_or(String::new(), |e| format!(
                "  ({} failures: {e})",
                p.failures
            ))
        );
    }
    for n in &m.nodes {
        let waiting = match n.waiting {
            0 => String::new(),
            w => format!(", {w} writes waiting for another node's"),
        };
        let error = n
            .error
            .as_deref()
            .map_or(String::new(), |e| format!("\n    not merged: {e}"));
        let _ = writeln!(
            out,
            "  node {:<40} version {} (at {}), merged through {}{waiting}{error}",
            n.node, n.version, n.via, n.merged
        );
    }
}
