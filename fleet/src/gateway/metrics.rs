//! `GET /metrics`: Prometheus text of each group's calls and retries, every pool member's
//! state, failures and latency, and the latency and outcomes of `/mcp` requests by group,
//! method and tool. [`render_metrics`] is apart from the handler so tests can read it.

use std::{fmt::Write as _, sync::atomic::Ordering};

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};

use super::{
    balance::{FailureKind, MemberStats},
    calls::CallKey,
    group::Group,
    routing::Gateway,
};
use crate::histogram;

/// `/metrics`: Prometheus text of every pool member's state and each group's calls.
pub(super) async fn metrics(State(gw): State<Gateway>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(&gw),
    )
        .into_response()
}

/// The metrics text (separate from the handler so tests can read it): group counters, then
/// each member's state, failures and latency, then `/mcp` requests by group, method and tool,
/// then (a standalone gateway's) the nodes.
pub fn render_metrics(gw: &Gateway) -> String {
    let mut out = String::new();
    group_counters(&mut out, gw);
    let members: Vec<(&String, MemberStats)> = gw
        .groups
        .iter()
        .flat_map(|(name, g)| g.pool.snapshot().into_iter().map(move |m| (name, m)))
        .collect();
    member_gauges(&mut out, &members);
    member_failures(&mut out, &members);
    member_latency(&mut out, &members);
    requests(&mut out, gw);
    if let Some(nodes) = &gw.nodes {
        nodes.render(&mut out);
    }
    out
}

/// The `# HELP` and `# TYPE` lines that open a metric.
fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Each group's routed calls and resends.
fn group_counters(out: &mut String, gw: &Gateway) {
    type Pick = fn(&Group) -> u64;
    let counters: [(&str, &str, Pick); 2] = [
        (
            "mcpfleet_gateway_calls_total",
            "tools/call requests routed to a group.",
            |g| g.calls.load(Ordering::Relaxed),
        ),
        (
            "mcpfleet_gateway_retries_total",
            "Calls sent once more, to another member, after the first could not reach its server \
             (or, for a read-only or idempotent tool, lost it mid-request).",
            |g| g.retries.load(Ordering::Relaxed),
        ),
    ];
    for (metric, help, pick) in counters {
        header(out, metric, help, "counter");
        for (name, g) in gw.groups.iter() {
            let _ = writeln!(out, "{metric}{{group=\"{name}\"}} {}", pick(g));
        }
    }
}

/// One number per pool member for each of the balancer's gauges and counters.
fn member_gauges(out: &mut String, members: &[(&String, MemberStats)]) {
    type Pick = fn(&MemberStats) -> u64;
    let series: [(&str, &str, &str, Pick); 6] = [
        (
            "mcpfleet_gateway_backend_outstanding",
            "Requests in flight to the backend.",
            "gauge",
            |m| u64::from(m.outstanding),
        ),
        (
            "mcpfleet_gateway_backend_latency_ewma_microseconds",
            "The backend's latency EWMA, as the balancer weighs it.",
            "gauge",
            |m| m.ewma_us,
        ),
        (
            "mcpfleet_gateway_backend_ejected",
            "1 while the backend is passively ejected (or half-open).",
            "gauge",
            |m| u64::from(m.ejected),
        ),
        (
            "mcpfleet_gateway_backend_ejections_total",
            "Passive ejections of the backend.",
            "counter",
            |m| m.ejections_total,
        ),
        (
            "mcpfleet_gateway_backend_successes_total",
            "Requests the backend answered.",
            "counter",
            |m| m.successes_total,
        ),
        (
            "mcpfleet_gateway_backend_up",
            "1 unless marked down by health checks.",
            "gauge",
            |m| u64::from(m.up),
        ),
    ];
    for (name, help, kind, pick) in series {
        header(out, name, help, kind);
        for (group, m) in members {
            let _ = writeln!(
                out,
                "{name}{{group=\"{group}\",backend=\"{}\"}} {}",
                m.id,
                pick(m)
            );
        }
    }
}

/// Each member's failed requests, by kind.
fn member_failures(out: &mut String, members: &[(&String, MemberStats)]) {
    header(
        out,
        "mcpfleet_gateway_backend_failures_total",
        "Failed requests to the backend, by kind.",
        "counter",
    );
    for (group, m) in members {
        for kind in FailureKind::ALL {
            let _ = writeln!(
                out,
                "mcpfleet_gateway_backend_failures_total{{group=\"{group}\",backend=\"{}\",kind=\"{}\"}} {}",
                m.id,
                kind.as_str(),
                m.failures.get(kind)
            );
        }
    }
}

/// Each member's latency histogram, as the gateway timed its answers.
fn member_latency(out: &mut String, members: &[(&String, MemberStats)]) {
    header(
        out,
        "mcpfleet_gateway_backend_request_duration_seconds",
        "Latency of the requests each backend answered, as the gateway timed them.",
        "histogram",
    );
    for (group, m) in members {
        m.latency.render(
            out,
            "mcpfleet_gateway_backend_request_duration_seconds",
            &format!(
                "group=\"{}\",backend=\"{}\"",
                histogram::label(group),
                histogram::label(&m.id)
            ),
        );
    }
}

/// `/mcp` requests by group, method and tool: their latency and outcomes.
fn requests(out: &mut String, gw: &Gateway) {
    let calls = gw.calls.snapshot();
    header(
        out,
        "mcpfleet_gateway_request_duration_seconds",
        "Latency of /mcp requests through the gateway by group, method and tool (group and \
         tool empty for methods the gateway answers itself).",
        "histogram",
    );
    let labels = |(g, m, t): &CallKey| {
        format!(
            "group=\"{}\",method=\"{}\",tool=\"{}\"",
            histogram::label(g),
            histogram::label(m),
            histogram::label(t)
        )
    };
    for (key, latency, _, _) in &calls {
        latency.render(
            out,
            "mcpfleet_gateway_request_duration_seconds",
            &labels(key),
        );
    }
    header(
        out,
        "mcpfleet_gateway_requests_total",
        "/mcp requests by group, method, tool and outcome (ok: a 2xx answer).",
        "counter",
    );
    for (key, _, ok, failed) in &calls {
        let l = labels(key);
        let _ = writeln!(
            out,
            "mcpfleet_gateway_requests_total{{{l},outcome=\"ok\"}} {ok}"
        );
        let _ = writeln!(
            out,
            "mcpfleet_gateway_requests_total{{{l},outcome=\"failed\"}} {failed}"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, time::Duration};

    use super::*;
    use crate::gateway::{
        backend::{Backend, Directory},
        session::SessionKey,
        upstream::Upstream,
    };

    fn gateway() -> Gateway {
        let backend = |id: &str, group: &str, port: u16| Backend {
            id: id.into(),
            group: group.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            local: None,
        };
        Gateway::new(
            Directory::new([
                backend("c-0", "community", 1),
                backend("c-1", "community", 2),
                backend("s-0", "security", 3),
            ]),
            Upstream::new(Duration::from_secs(1)),
            SessionKey::from_bytes([7; 32]),
        )
    }

    #[test]
    fn every_series_has_help_and_type_once() {
        let text = render_metrics(&gateway());
        for name in [
            "mcpfleet_gateway_calls_total",
            "mcpfleet_gateway_retries_total",
            "mcpfleet_gateway_backend_outstanding",
            "mcpfleet_gateway_backend_latency_ewma_microseconds",
            "mcpfleet_gateway_backend_ejected",
            "mcpfleet_gateway_backend_ejections_total",
            "mcpfleet_gateway_backend_successes_total",
            "mcpfleet_gateway_backend_up",
            "mcpfleet_gateway_backend_failures_total",
            "mcpfleet_gateway_backend_request_duration_seconds",
            "mcpfleet_gateway_request_duration_seconds",
            "mcpfleet_gateway_requests_total",
        ] {
            assert_eq!(
                text.matches(&format!("# HELP {name} ")).count(),
                1,
                "{name}"
            );
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
        }
    }

    #[test]
    fn groups_and_members_are_labelled() {
        let gw = gateway();
        gw.groups["community"].calls.fetch_add(3, Ordering::Relaxed);
        gw.set_up("s-0", false);
        let text = render_metrics(&gw);
        assert!(text.contains("mcpfleet_gateway_calls_total{group=\"community\"} 3\n"));
        assert!(text.contains("mcpfleet_gateway_calls_total{group=\"security\"} 0\n"));
        assert!(text.contains("mcpfleet_gateway_retries_total{group=\"community\"} 0\n"));
        assert!(
            text.contains("mcpfleet_gateway_backend_up{group=\"community\",backend=\"c-1\"} 1\n")
        );
        assert!(
            text.contains("mcpfleet_gateway_backend_up{group=\"security\",backend=\"s-0\"} 0\n")
        );
        for kind in FailureKind::ALL {
            assert!(text.contains(&format!(
                "mcpfleet_gateway_backend_failures_total{{group=\"community\",backend=\"c-0\",kind=\"{}\"}} 0\n",
                kind.as_str()
            )));
        }
    }

    #[test]
    fn requests_are_counted_by_outcome() {
        let gw = gateway();
        let stats = gw.calls.get("community", "tools/call", "echo");
        stats.ok.fetch_add(2, Ordering::Relaxed);
        stats.failed.fetch_add(1, Ordering::Relaxed);
        stats.latency.record(Duration::from_millis(3));
        let text = render_metrics(&gw);
        let labels = "group=\"community\",method=\"tools/call\",tool=\"echo\"";
        assert!(text.contains(&format!(
            "mcpfleet_gateway_requests_total{{{labels},outcome=\"ok\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "mcpfleet_gateway_requests_total{{{labels},outcome=\"failed\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "mcpfleet_gateway_request_duration_seconds_count{{{labels}}} 1\n"
        )));
    }
}
