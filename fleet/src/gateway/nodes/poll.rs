//! One poll of one node: `GET /servers` of its admin API, bounded in time (the whole exchange,
//! connection to last byte, within the poll timeout) and in size (the answer is read in chunks
//! and dropped past the cap), then checked before anything is believed: a list the gateway
//! cannot route by (too many servers, an id or group it would have to escape, a port 0, an id
//! twice) is refused whole, so one broken node can neither exhaust the gateway nor put a
//! half-read view into rotation. Only the fields routing needs are read, so nodes of a newer
//! version with more fields still parse.

use std::{collections::HashSet, net::IpAddr};

use serde::Deserialize;

use super::{NodesConfig, source::Node};
use crate::serve::registry::ServerState;

/// One server as a node lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RemoteServer {
    pub id: String,
    pub group: String,
    pub port: u16,
    pub state: ServerState,
}

impl RemoteServer {
    pub fn healthy(&self) -> bool {
        self.state == ServerState::Healthy
    }
}

/// A node's answer: where its servers listen and what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The address the node's name resolved to; its servers listen there.
    pub ip: IpAddr,
    pub servers: Vec<RemoteServer>,
}

#[derive(Deserialize)]
struct Servers {
    servers: Vec<RemoteServer>,
}

/// Why a poll gave no view. The first three mean the node is not answering (out of rotation);
/// the others that it answered something the gateway will not use (its previous view kept).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PollError {
    #[error("no answer: {0}")]
    Unreachable(String),
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("answer is not a fleet's server list: {0}")]
    Garbage(String),
}

impl PollError {
    /// Whether the node is not answering at all (as against answering badly).
    pub fn is_down(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::Timeout(_) | Self::Status(_)
        )
    }
}

/// Asks `node` for its servers, within `cfg`'s timeout and size cap.
pub async fn poll(
    client: &reqwest::Client,
    node: &Node,
    cfg: &NodesConfig,
) -> Result<NodeView, PollError> {
    tokio::time::timeout(cfg.poll_timeout, exchange(client, node, cfg))
        .await
        .map_err(|_| PollError::Timeout(cfg.poll_timeout))?
}

async fn exchange(
    client: &reqwest::Client,
    node: &Node,
    cfg: &NodesConfig,
) -> Result<NodeView, PollError> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((node.host.as_str(), node.port))
        .await
        .map_err(|e| PollError::Unreachable(format!("cannot resolve {}: {e}", node.host)))?
        .collect();
    let unreachable = |e: reqwest::Error| PollError::Unreachable(crate::causes::chain(&e));
    // Asked by its address, as the node's servers are called (the fleet's rebinding guard
    // refuses a `Host` that is a name other than `localhost`); of a name's addresses the first
    // that answers (`localhost` may give ::1 first to a node listening on 127.0.0.1 only).
    let mut answered = Err(PollError::Unreachable(format!(
        "{} has no address",
        node.host
    )));
    for addr in addrs {
        answered = client
            .get(format!("http://{addr}/servers"))
            .send()
            .await
            .map(|r| (addr.ip(), r))
            .map_err(unreachable);
        if answered.is_ok() {
            break;
        }
    }
    let (ip, mut response) = answered?;
    if !response.status().is_success() {
        return Err(PollError::Status(response.status().as_u16()));
    }
    let cap = cfg.max_answer_bytes;
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(PollError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > cap {
            return Err(PollError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    let servers = parse(&body, cfg)?;
    Ok(NodeView { ip, servers })
}

/// The servers of a `/servers` body, checked.
pub fn parse(body: &[u8], cfg: &NodesConfig) -> Result<Vec<RemoteServer>, PollError> {
    let garbage = PollError::Garbage;
    let list: Servers = serde_json::from_slice(body).map_err(|e| garbage(e.to_string()))?;
    if list.servers.len() > cfg.max_servers {
        return Err(garbage(format!(
            "{} servers, more than the {} a node may list",
            list.servers.len(),
            cfg.max_servers
        )));
    }
    let plain = |s: &str| {
        (1..=MAX_PART).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    let mut ids = HashSet::with_capacity(list.servers.len());
    for s in &list.servers {
        if !plain(&s.id) || !plain(&s.group) {
            return Err(garbage(format!(
                "server {:?} of group {:?}: ids and groups are 1-{MAX_PART} letters, digits, \
                 '.', '-' or '_'",
                s.id.chars().take(80).collect::<String>(),
                s.group.chars().take(80).collect::<String>()
            )));
        }
        if s.port == 0 {
            return Err(garbage(format!("server {} on port 0", s.id)));
        }
        if !ids.insert(s.id.as_str()) {
            return Err(garbage(format!("server {} listed twice", s.id)));
        }
    }
    Ok(list.servers)
}

/// Longest server id or group name taken: with a node name it must fit a session id's
/// server id ([`crate::gateway::session::MAX_BACKEND_LEN`]).
const MAX_PART: usize = crate::gateway::session::MAX_BACKEND_LEN - super::source::MAX_NODE_NAME - 1;

#[cfg(test)]
mod tests {
    use super::*;

    fn body(servers: &str) -> Vec<u8> {
        format!(r#"{{"isolation":"task","total":1,"healthy":1,"servers":[{servers}]}}"#)
            .into_bytes()
    }

    #[test]
    fn a_fleet_list_parses_and_anything_else_is_refused() {
        let cfg = NodesConfig::default();
        let one = r#"{"id":"community-0000","group":"community","port":8000,"state":"healthy","extra":1}"#;
        let servers = parse(&body(one), &cfg).unwrap();
        assert_eq!(servers.len(), 1);
        assert!(servers[0].healthy());
        let cases = [
            (b"<html>".to_vec(), "expected value"),
            (body(&[one, one].join(",")), "listed twice"),
            (body(&one.replace("8000", "0")), "port 0"),
            (
                body(&one.replace("community-0000", "a/../b")),
                "ids and groups",
            ),
            (
                body(&one.replace("\"healthy\"", "\"exploded\"")),
                "unknown variant",
            ),
        ];
        for (input, expected) in cases {
            let err = parse(&input, &cfg).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        let small = NodesConfig {
            max_servers: 1,
            ..cfg
        };
        let two = [one, &one.replace("0000", "0001")].join(",");
        let err = parse(&body(&two), &small).unwrap_err().to_string();
        assert!(err.contains("2 servers, more than the 1"), "{err}");
    }
}
