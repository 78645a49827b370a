//! The nodes' state as the standalone gateway's `/metrics` shows it: which nodes it follows,
//! which answer, how many servers each lists and how many of those are healthy, and how many
//! of a node's answers were refused. The follower ([`super::follow`]) writes a row per node
//! after every poll round; the metrics handler only reads.

use std::{fmt::Write as _, sync::Mutex};

/// One node's line in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    pub up: bool,
    /// Servers in the node's last accepted view, and those of them it called healthy.
    pub servers: usize,
    pub healthy: usize,
    /// Answers refused (too large, garbled) since the gateway started following the node.
    pub refused: u64,
}

/// Every node's row, replaced whole after each poll round.
#[derive(Debug, Default)]
pub struct NodeTable {
    rows: Mutex<Vec<NodeRow>>,
}

impl NodeTable {
    pub fn set(&self, rows: Vec<NodeRow>) {
        *self.rows.lock().unwrap_or_else(|e| e.into_inner()) = rows;
    }

    pub fn rows(&self) -> Vec<NodeRow> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Appends the nodes' metrics in Prometheus text.
    pub fn render(&self, out: &mut String) {
        let rows = self.rows();
        let up = rows.iter().filter(|r| r.up).count();
        let _ = writeln!(
            out,
            "# HELP mcpfleet_gateway_nodes Fleet nodes the gateway follows.\n\
             # TYPE mcpfleet_gateway_nodes gauge\nmcpfleet_gateway_nodes {}\n\
             # HELP mcpfleet_gateway_nodes_up Nodes whose admin API answered the last poll.\n\
             # TYPE mcpfleet_gateway_nodes_up gauge\nmcpfleet_gateway_nodes_up {up}",
            rows.len()
        );
        let series =
            |out: &mut String, name: &str, kind: &str, help: &str, pick: fn(&NodeRow) -> u64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for r in &rows {
                    let _ = writeln!(out, "{name}{{node=\"{}\"}} {}", r.name, pick(r));
                }
            };
        let gauge = "gauge";
        series(
            out,
            "mcpfleet_gateway_node_up",
            gauge,
            "1 while the node answers its polls; its servers are out of rotation at 0.",
            |r| u64::from(r.up),
        );
        series(
            out,
            "mcpfleet_gateway_node_servers",
            gauge,
            "Servers the node listed in its last accepted answer.",
            |r| r.servers as u64,
        );
        series(
            out,
            "mcpfleet_gateway_node_servers_healthy",
            gauge,
            "Of those, servers the node called healthy.",
            |r| r.healthy as u64,
        );
        series(
            out,
            "mcpfleet_gateway_node_refused_total",
            "counter",
            "Answers of the node refused as too large or not a server list.",
            |r| r.refused,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_has_its_lines() {
        let table = NodeTable::default();
        let row = |name: &str, up| NodeRow {
            name: name.into(),
            up,
            servers: 4,
            healthy: if up { 4 } else { 0 },
            refused: 0,
        };
        table.set(vec![row("a", true), row("b", false)]);
        let mut out = String::new();
        table.render(&mut out);
        for line in [
            "mcpfleet_gateway_nodes 2",
            "mcpfleet_gateway_nodes_up 1",
            "mcpfleet_gateway_node_up{node=\"b\"} 0",
            "mcpfleet_gateway_node_servers{node=\"b\"} 4",
            "mcpfleet_gateway_node_servers_healthy{node=\"a\"} 4",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
    }
}
