//! Keeps a gateway in step with its nodes: every poll interval each node is asked for its
//! servers, all at once and each within the poll timeout ([`super::poll`]), so one slow node
//! delays nobody; then the gateway is told what changed, as [`crate::gateway::follow_registry`]
//! tells it for a fleet's own registry. A node's servers join and leave with its answers
//! (a restarted node's servers keep their ids, on new ports); a server is in rotation while its
//! node answers and calls it healthy; a node that stops answering (refused, reset, timed out,
//! a 5xx) has every server taken out at that poll, and back once it answers again. An answer
//! the gateway will not use (too large, garbled) is refused with a log line and the node's
//! previous view kept. A `dns:` source is resolved again every [`NodesConfig::resolve_every`]:
//! a new address is a node joining, a vanished one a node leaving (its servers removed).
//!
//! A node joining, leaving, going down or coming back is logged at `warn`, the level a fleet
//! logs by default: what is in rotation changed, which whoever reads the gateway's log after an
//! incident wants to see; servers joining or leaving within a node at `info`.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    sync::Arc,
    time::Instant,
};

use tokio_util::sync::CancellationToken;

use super::{
    NodesConfig,
    poll::{NodeView, PollError, poll},
    qualified_id,
    source::{Node, Source, resolve},
    table::{NodeRow, NodeTable},
};
use crate::{
    control::admin_auth::AdminToken,
    gateway::{Backend, Gateway},
};

/// One node as the follower knows it.
#[derive(Debug)]
struct Tracked {
    node: Node,
    /// The last view accepted; kept while the node is down, so its servers stay known (out of
    /// rotation) and come back under the same ids.
    view: Option<NodeView>,
    up: bool,
    refused: u64,
    /// The last refusal logged, so a node repeating one is not logged every second.
    last_refusal: Option<String>,
    /// Why the node's last poll got no answer, while it has none.
    silent: Option<String>,
}

/// Polls the nodes and applies what it learns to a gateway.
#[derive(Debug)]
pub struct Follower {
    client: reqwest::Client,
    source: Source,
    cfg: NodesConfig,
    table: Arc<NodeTable>,
    nodes: BTreeMap<String, Tracked>,
    resolved_at: Option<Instant>,
    /// The servers (qualified id, address) the gateway was last given.
    members: Vec<(String, SocketAddr)>,
    /// Whether each server was last put in rotation or out of it.
    known: HashMap<String, bool>,
    /// Groups the gateway has no pool for, logged once each.
    ignored_groups: HashSet<String>,
}

impl Follower {
    /// A follower of `source`'s nodes, presenting `token` (when given) to their admin APIs.
    pub fn new(
        source: Source,
        cfg: NodesConfig,
        table: Arc<NodeTable>,
        token: Option<&AdminToken>,
    ) -> Result<Self, reqwest::Error> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token
            && let Ok(value) = reqwest::header::HeaderValue::from_str(&token.bearer())
        {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(cfg.poll_timeout)
            .default_headers(headers)
            .build()?;
        let nodes = match &source {
            Source::Fixed(nodes) => nodes.iter().map(|n| (n.name.clone(), track(n))).collect(),
            Source::Dns(_) => BTreeMap::new(),
        };
        Ok(Self {
            client,
            source,
            cfg,
            table,
            nodes,
            resolved_at: None,
            members: Vec::new(),
            known: HashMap::new(),
            ignored_groups: HashSet::new(),
        })
    }

    /// Whether some node has answered: the gateway learns its groups from the first answers.
    pub fn has_view(&self) -> bool {
        self.nodes.values().any(|t| t.view.is_some())
    }

    /// Each node that has not answered, and why (for an error naming them), `; `-separated.
    pub fn silent(&self) -> String {
        let why: Vec<String> = self
            .nodes
            .values()
            .map(|t| {
                let reason = t.silent.as_deref().or(t.last_refusal.as_deref());
                format!("{}: {}", t.node.name, reason.unwrap_or("not asked yet"))
            })
            .collect();
        if why.is_empty() {
            return "no node found (the name gave no address)".into();
        }
        why.join("; ")
    }

    /// Every known server of every node, qualified by its node.
    pub fn backends(&self) -> Vec<Backend> {
        self.nodes
            .values()
            .filter_map(|t| Some((t, t.view.as_ref()?)))
            .flat_map(|(t, view)| {
                view.servers.iter().map(move |s| Backend {
                    id: qualified_id(&t.node.name, &s.id),
                    group: s.group.clone(),
                    addr: SocketAddr::new(view.ip, s.port),
                    local: None,
                })
            })
            .collect()
    }

    /// One round: resolves the nodes again when due, then polls every node at once.
    pub async fn round(&mut self) {
        if let Source::Dns(dns) = &self.source
            && self
                .resolved_at
                .is_none_or(|t| t.elapsed() >= self.cfg.resolve_every)
        {
            self.resolved_at = Some(Instant::now());
            match resolve(dns).await {
                Ok(found) => self.rediscover(found),
                Err(e) => tracing::warn!(
                    "cannot resolve {}: {e}; keeping the {} node(s) known",
                    dns.name,
                    self.nodes.len()
                ),
            }
        }
        let polls = self
            .nodes
            .values()
            .map(|t| poll(&self.client, &t.node, &self.cfg));
        let answers = futures::future::join_all(polls).await;
        for (t, answer) in self.nodes.values_mut().zip(answers) {
            learn(t, answer);
        }
    }

    /// Nodes that appeared in DNS join, nodes that vanished from it leave.
    fn rediscover(&mut self, found: Vec<Node>) {
        let names: HashSet<&str> = found.iter().map(|n| n.name.as_str()).collect();
        self.nodes.retain(|name, t| {
            let stays = names.contains(name.as_str());
            if !stays {
                let servers = t.view.as_ref().map_or(0, |v| v.servers.len());
                tracing::warn!(node = %name, "node left (gone from DNS): its {servers} servers removed");
            }
            stays
        });
        for node in found {
            if !self.nodes.contains_key(&node.name) {
                tracing::warn!(node = %node.name, "node joined (found in DNS)");
                self.nodes.insert(node.name.clone(), track(&node));
            }
        }
    }

    /// Gives the gateway the servers and rotation states learnt, and the metrics table the
    /// nodes' rows.
    pub fn apply(&mut self, gw: &Gateway) {
        let mut backends = self.backends();
        backends.retain(|b| {
            let served = gw.groups.contains_key(&b.group);
            if !served && self.ignored_groups.insert(b.group.clone()) {
                tracing::warn!(
                    "group {:?} (server {}) was not on any node when the gateway started: its \
                     servers are not served until the gateway restarts",
                    b.group,
                    b.id
                );
            }
            served
        });
        let mut members: Vec<(String, SocketAddr)> =
            backends.iter().map(|b| (b.id.clone(), b.addr)).collect();
        members.sort();
        if members != self.members {
            gw.set_backends(backends);
            self.known
                .retain(|id, _| members.binary_search_by(|(m, _)| m.cmp(id)).is_ok());
            self.members = members;
        }
        for t in self.nodes.values() {
            let Some(view) = &t.view else { continue };
            for s in &view.servers {
                let id = qualified_id(&t.node.name, &s.id);
                let up = t.up && s.healthy();
                if self.known.get(&id) != Some(&up) && gw.set_up(&id, up) {
                    self.known.insert(id, up);
                }
            }
        }
        self.table.set(self.nodes.values().map(row).collect());
    }

    /// Polls and applies every interval until `stop`.
    pub async fn run(mut self, gw: Gateway, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.poll_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.round().await;
            self.apply(&gw);
        }
        gw.closing.cancel();
    }
}

fn track(node: &Node) -> Tracked {
    Tracked {
        node: node.clone(),
        view: None,
        up: false,
        refused: 0,
        last_refusal: None,
        silent: None,
    }
}

fn row(t: &Tracked) -> NodeRow {
    let servers = t.view.as_ref().map_or(&[][..], |v| v.servers.as_slice());
    NodeRow {
        name: t.node.name.clone(),
        up: t.up,
        servers: servers.len(),
        healthy: servers.iter().filter(|s| s.healthy()).count(),
        refused: t.refused,
    }
}

/// What one poll's answer changes about a node, logged when it changes anything.
fn learn(t: &mut Tracked, answer: Result<NodeView, PollError>) {
    let name = &t.node.name;
    match answer {
        Ok(view) => {
            let healthy = view.servers.iter().filter(|s| s.healthy()).count();
            if !t.up {
                tracing::warn!(node = %name, "node answers: {} servers, {healthy} healthy", view.servers.len());
            } else if let Some(old) = &t.view {
                let ids = |v: &NodeView| -> HashSet<String> {
                    v.servers.iter().map(|s| s.id.clone()).collect()
                };
                let (before, after) = (ids(old), ids(&view));
                let (joined, left) = (
                    after.difference(&before).count(),
                    before.difference(&after).count(),
                );
                if joined + left > 0 {
                    tracing::info!(node = %name, "{joined} server(s) joined, {left} left: {} now", after.len());
                }
            }
            t.up = true;
            t.view = Some(view);
            t.last_refusal = None;
            t.silent = None;
        }
        Err(e) if e.is_down() => {
            if t.up {
                let servers = t.view.as_ref().map_or(0, |v| v.servers.len());
                tracing::warn!(node = %name, "node stopped answering ({e}): its {servers} servers are out of rotation");
            }
            t.up = false;
            t.silent = Some(e.to_string());
        }
        Err(e) => {
            t.refused += 1;
            let why = e.to_string();
            if t.last_refusal.as_deref() != Some(why.as_str()) {
                tracing::warn!(node = %name, "refused the node's /servers ({why}); keeping its previous view");
                t.last_refusal = Some(why);
            }
        }
    }
}
