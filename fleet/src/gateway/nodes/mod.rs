//! The gateway over many fleet nodes (`fleet gateway`): the same [`Gateway`](super::Gateway),
//! pools and balancing as the gateway inside one fleet, its directory filled from other
//! processes' admin APIs instead of an in-process registry. One fleet process is one machine's
//! worth of servers; a gateway that learns every node's servers over HTTP spreads one MCP
//! endpoint over as many machines as there are nodes, and survives losing one.
//!
//! - [`source`]: where the nodes are: a fixed list (`--node [NAME=]URL`) or a DNS name whose
//!   every A/AAAA record is one node (`--discover dns:NAME:PORT`, re-resolved, as a Kubernetes
//!   headless Service answers), parsed and checked once at the edge.
//! - [`poll`]: one bounded `GET /servers` of one node (a timeout, a size cap, a shape check):
//!   a node that answers a huge or garbled list is refused, never half-believed.
//! - [`follow`]: polls every node about once a second and keeps the gateway in step: a node's
//!   servers join and leave with its answers, a server is in rotation while its node answers
//!   and calls it healthy, and every server of a node that stops answering leaves rotation at
//!   that poll; joins, leaves and state changes are logged.
//! - [`table`]: the nodes' state as the gateway's `/metrics` shows it; `config`: the
//!   follower's timings and bounds ([`NodesConfig`]) and how ids are qualified.
//!
//! Server ids are qualified by their node, `NODE~SERVER` (`10.0.0.5:7900~community-0000`, or
//! `a~community-0000` for `--node a=http://...`), since every node numbers its servers from
//! `-0000`: that is the id `/mcp/{server-id}` pins and `/backends` and `/metrics` name.

mod config;
pub mod follow;
pub mod poll;
pub mod source;
pub mod table;

pub use self::config::{NODE_SEPARATOR, NodesConfig, qualified_id};

#[cfg(test)]
mod tests;
