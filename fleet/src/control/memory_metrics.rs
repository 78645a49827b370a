//! The memory's part of the admin API's `/metrics`: versions acknowledged and committed, the
//! commit lag, and each peer repository the node publishes to, so an operator's Prometheus can
//! alert on git falling behind the writers or on a peer that stopped taking the history.

use std::fmt::Write as _;

use crate::{
    histogram::label,
    memory::{MemoryStats, replica::NodeSeen},
};

/// A gauge with one series per item (another node, a peer): name, help, value of an item.
type Gauge<T> = (&'static str, &'static str, fn(&T) -> f64);

/// Writes each gauge with one series per item, labelled with this node and the item's
/// `(label name, escaped value)`.
fn write_gauges<T>(
    out: &mut String,
    node: &str,
    gauges: &[Gauge<T>],
    items: &[T],
    item_label: impl Fn(&T) -> (&'static str, String),
) {
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for item in items {
            let (key, escaped) = item_label(item);
            let _ = writeln!(
                out,
                "{name}{{node=\"{node}\",{key}=\"{escaped}\"}} {}",
                value(item)
            );
        }
    }
}

/// Appends the memory's metrics in Prometheus text format.
pub fn render(out: &mut String, stats: &MemoryStats) {
    let gauges: [(&str, &str, &str, f64); 8] = [
        (
            "mcpfleet_memory_acked_version",
            "gauge",
            "Newest write acknowledged (durable in the write-ahead log).",
            stats.acked_version as f64,
        ),
        (
            "mcpfleet_memory_committed_version",
            "gauge",
            "Newest write in a durable git commit.",
            stats.committed_version as f64,
        ),
        (
            "mcpfleet_memory_ops_acked_total",
            "counter",
            "Writes acknowledged since the fleet started.",
            stats.ops_acked as f64,
        ),
        (
            "mcpfleet_memory_commit_failures_total",
            "counter",
            "Git commits that failed and were retried (the log keeps the writes).",
            stats.commit_failures as f64,
        ),
        (
            "mcpfleet_memory_commit_lag_p99_seconds",
            "gauge",
            "99th percentile of acknowledgement to durable commit since the fleet started.",
            stats.commit_lag.p99_ms / 1000.0,
        ),
        (
            "mcpfleet_memory_uncommitted_age_seconds",
            "gauge",
            "How long the oldest acknowledged write not yet in a durable git commit has waited (0 when all are committed).",
            stats.uncommitted_age_ms / 1000.0,
        ),
        (
            "mcpfleet_memory_wal_bytes",
            "gauge",
            "Bytes of write-ahead log on disk (segments git does not hold whole yet).",
            stats.wal_bytes as f64,
        ),
        (
            "mcpfleet_memory_poisoned",
            "gauge",
            "1 when the memory refuses writes after a failure it could not undo.",
            f64::from(u8::from(stats.poisoned)),
        ),
    ];
    for (name, kind, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
    if stats.peers.is_empty() {
        return;
    }
    let node = label(stats.node.as_deref().unwrap_or(""));
    let per_peer: [Gauge<crate::memory::replica::PeerStatus>; 4] = [
        (
            "mcpfleet_memory_peer_up",
            "1 when the last push of the history to the peer succeeded.",
            |p| f64::from(u8::from(p.state == "ok")),
        ),
        (
            "mcpfleet_memory_peer_failures",
            "Failed pushes to the peer since its last success.",
            |p| f64::from(p.failures),
        ),
        (
            "mcpfleet_memory_peer_pushed_version",
            "Newest version the peer holds of this node's history.",
            |p| p.pushed_version as f64,
        ),
        (
            "mcpfleet_memory_peer_last_success_timestamp_seconds",
            "When the last push to the peer succeeded (0: never).",
            |p| p.last_success_ms.map_or(0.0, |ms| ms as f64 / 1000.0),
        ),
    ];
    let name = "mcpfleet_memory_node_version";
    let _ = writeln!(
        out,
        "# HELP {name} Newest version of another node's history found at the peers."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    for n in &stats.nodes {
        let _ = writeln!(
            out,
            "{name}{{node=\"{node}\",of=\"{}\"}} {}",
            label(&n.node),
            n.version
        );
    }
    let per_node: [Gauge<NodeSeen>; 3] = [
        (
            "mcpfleet_memory_node_merged_version",
            "How far another node's history is merged here: its writes up to this version.",
            |n| n.merged as f64,
        ),
        (
            "mcpfleet_memory_node_waiting",
            "Another node's writes read but waiting for writes of a node they had seen.",
            |n| n.waiting as f64,
        ),
        (
            "mcpfleet_memory_node_merge_failing",
            "1 when another node's history cannot be merged here (fleet status says why).",
            |n| f64::from(u8::from(n.error.is_some())),
        ),
    ];
    write_gauges(out, &node, &per_node, &stats.nodes, |n| {
        ("of", label(&n.node))
    });
    write_gauges(out, &node, &per_peer, &stats.peers, |p| {
        ("peer", label(&p.url))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::replica::PeerStatus;

    #[test]
    fn peers_are_labelled_and_escaped() {
        let stats = crate::memory::MemoryStats {
            acked_version: 7,
            node: Some("node-a".into()),
            peers: vec![PeerStatus {
                url: "/srv/we\"ird".into(),
                state: "failing".into(),
                pushed_version: 3,
                last_success_ms: Some(1_500),
                failures: 2,
                last_error: Some("gone".into()),
            }],
            ..Default::default()
        };
        let mut out = String::new();
        render(&mut out, &stats);
        assert!(out.contains("mcpfleet_memory_acked_version 7\n"), "{out}");
        assert!(
            out.contains("mcpfleet_memory_peer_up{node=\"node-a\",peer=\"/srv/we\\\"ird\"} 0\n")
        );
        assert!(out.contains(
            "mcpfleet_memory_peer_failures{node=\"node-a\",peer=\"/srv/we\\\"ird\"} 2\n"
        ));
        assert!(out.contains(
            "_last_success_timestamp_seconds{node=\"node-a\",peer=\"/srv/we\\\"ird\"} 1.5\n"
        ));
    }
}
