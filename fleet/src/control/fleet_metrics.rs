//! The fleet's own series in `/metrics`: how many servers are healthy, each server's state,
//! traffic, errors and restarts, and each group's request latency as one histogram (the sum
//! of its servers', those that left included), so alert rules and dashboards can ask for a group's p99 without a series
//! per server and bucket.

use std::{collections::BTreeMap, fmt::Write as _};

use crate::{
    histogram::{self, label},
    serve::registry::{Registry, ServerState, ServerView},
};

/// Renders the metrics text of the registry's servers (in its order).
pub fn render(registry: &Registry) -> String {
    let entries = registry.entries();
    let mut out = String::with_capacity(entries.len() * 800);
    let mut groups: Vec<(&str, histogram::Snapshot)> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut views = Vec::with_capacity(entries.len());
    for e in entries.iter() {
        let (view, traffic) = e.view_and_traffic();
        let group = e.identity.group.as_str();
        let at = *index.entry(group).or_insert_with(|| {
            groups.push((group, registry.departed(group).latency));
            groups.len() - 1
        });
        groups[at].1.add(&traffic.latency);
        views.push(view);
    }
    render_servers(&mut out, &views);
    let name = "mcpfleet_group_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time the group's servers took to answer MCP requests (JSON-RPC POSTs, \
         injected faults included), all instances since start."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (group, latency) in &groups {
        latency.render(&mut out, name, &format!("group=\"{}\"", label(group)));
    }
    out
}

/// The per-server series.
fn render_servers(out: &mut String, views: &[ServerView]) {
    let healthy = views
        .iter()
        .filter(|v| v.state == ServerState::Healthy)
        .count();
    let _ = writeln!(out, "# HELP mcpfleet_servers Servers in the fleet.");
    let _ = writeln!(out, "# TYPE mcpfleet_servers gauge");
    let _ = writeln!(out, "mcpfleet_servers {}", views.len());
    let _ = writeln!(
        out,
        "# HELP mcpfleet_servers_healthy Servers passing health probes."
    );
    let _ = writeln!(out, "# TYPE mcpfleet_servers_healthy gauge");
    let _ = writeln!(out, "mcpfleet_servers_healthy {healthy}");
    type Metric = (
        &'static str,
        &'static str,
        &'static str,
        fn(&ServerView) -> f64,
    );
    let metrics: [Metric; 8] = [
        (
            "mcpfleet_server_up",
            "gauge",
            "1 when the server is healthy.",
            |v| f64::from(u8::from(v.state == ServerState::Healthy)),
        ),
        (
            "mcpfleet_server_requests_total",
            "counter",
            "HTTP requests served.",
            |v| v.requests as f64,
        ),
        (
            "mcpfleet_server_errors_total",
            "counter",
            "MCP requests answered with an HTTP error status (>= 400) or abandoned before an answer.",
            |v| v.errors as f64,
        ),
        (
            "mcpfleet_server_open_connections",
            "gauge",
            "Open TCP connections.",
            |v| v.open_connections as f64,
        ),
        (
            "mcpfleet_server_open_sessions",
            "gauge",
            "Open MCP sessions.",
            |v| v.open_sessions as f64,
        ),
        (
            "mcpfleet_server_restarts_total",
            "counter",
            "Restarts by the supervisor.",
            |v| f64::from(v.restarts),
        ),
        (
            "mcpfleet_server_probes_failed_total",
            "counter",
            "Failed health probes.",
            |v| v.probes_failed as f64,
        ),
        (
            "mcpfleet_server_probes_ok_total",
            "counter",
            "Successful health probes.",
            |v| v.probes_ok as f64,
        ),
    ];
    for (name, kind, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for v in views {
            let _ = writeln!(
                out,
                "{name}{{server=\"{}\",group=\"{}\",port=\"{}\"}} {}",
                v.id,
                v.group,
                v.port,
                value(v)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::{profile::Profile, serve::registry::Entry};

    fn count(text: &str) -> u64 {
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("mcpfleet_group_request_duration_seconds_count{group=\"community\"}")
            })
            .unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn a_group_s_totals_do_not_fall_when_it_shrinks() {
        let registry = Registry::new(vec!["community".into()]);
        let entries: Vec<Arc<Entry>> = (0..2)
            .map(|i| {
                let e = Entry::new(
                    crate::serve::registry::Identity::new("community", Profile::Community, i),
                    9000,
                    registry.changes(),
                );
                e.counters().latency.record(Duration::from_millis(1));
                e.counters()
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Arc::new(e)
            })
            .collect();
        registry.update(entries, &[]);
        let text = render(&registry);
        assert_eq!(count(&text), 2);
        assert!(text.contains("mcpfleet_server_errors_total{server=\"community-0001\",group=\"community\",port=\"9000\"} 1\n"), "{text}");
        registry.update(Vec::new(), &["community-0001"]);
        let text = render(&registry);
        assert_eq!(
            count(&text),
            2,
            "the departed server's requests stay counted"
        );
        assert!(!text.contains("community-0001"));
    }
}
