//! The [`Gateway`] every request shares: the directory of servers, each group's pool, the
//! upstream client, the session key and the request statistics; how servers join, leave and
//! change rotation ([`Gateway::set_backends`], [`Gateway::set_up`], [`follow_registry`]); and
//! the random word each pick of two members is seeded with.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::{
    backend::{Backend, Directory},
    balance::{MemberStats, Pool},
    calls::CallTable,
    eras::Eras,
    group::Group,
    nodes::{NODE_SEPARATOR, table::NodeTable},
    session::SessionKey,
    upstream::Upstream,
};
use crate::serve::registry::{Registry, ServerState};

/// What every gateway request shares.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Replaced whole when servers join or leave ([`follow_registry`]).
    pub(super) directory: Arc<std::sync::RwLock<Arc<Directory>>>,
    pub(super) groups: Arc<BTreeMap<String, Group>>,
    pub(super) upstream: Arc<Upstream>,
    /// Signs the session ids handed out on `/mcp`.
    pub(super) key: SessionKey,
    /// Seeds each request's random choice of two backends.
    pub(super) picks: Arc<AtomicU64>,
    /// Latency and outcomes of `/mcp` requests by group, method and tool.
    pub(super) calls: Arc<CallTable>,
    /// Bumped whenever servers join or leave: the gateway's sessions holding a GET stream
    /// are told their tool list changed.
    pub(super) tools_changed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Bounds the GET streams open at once (each holds a connection and a task).
    pub(super) streams: Arc<tokio::sync::Semaphore>,
    /// Cancelled when the gateway stops following the registry (the fleet is stopping): GET
    /// streams end then, rather than holding a graceful stop for its whole grace period.
    pub(super) closing: CancellationToken,
    /// Which members speak only the session eras, and the sessions held on them.
    pub(super) eras: Arc<Eras>,
    /// The nodes a standalone gateway follows (`fleet gateway`), shown in `/metrics`; `None`
    /// for the gateway inside a fleet.
    pub(super) nodes: Option<Arc<NodeTable>>,
}

/// Most GET streams of the gateway's own sessions open at once; more are refused with 503.
pub(super) const MAX_STREAMS: usize = 1024;

impl Gateway {
    /// A gateway over `directory`'s servers, every one in rotation until told otherwise
    /// ([`follow_registry`] or passive ejection). Session ids are signed with `key`: gateways
    /// sharing a key accept each other's sessions.
    pub fn new(directory: Directory, upstream: Upstream, key: SessionKey) -> Self {
        let groups = directory
            .groups()
            .into_iter()
            .map(|(name, ids)| {
                (
                    name,
                    Group {
                        pool: Pool::new(&ids),
                        tools: OnceCell::new(),
                        calls: AtomicU64::new(0),
                        retries: AtomicU64::new(0),
                    },
                )
            })
            .collect();
        Self {
            directory: Arc::new(std::sync::RwLock::new(Arc::new(directory))),
            groups: Arc::new(groups),
            upstream: Arc::new(upstream),
            key,
            picks: Arc::new(AtomicU64::new(0)),
            calls: Arc::default(),
            tools_changed: Arc::new(tokio::sync::watch::Sender::new(0)),
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
            closing: CancellationToken::new(),
            eras: Arc::default(),
            nodes: None,
        }
    }

    /// The same gateway, its `/metrics` also showing `nodes` (a standalone gateway's).
    pub fn with_nodes(mut self, nodes: Arc<NodeTable>) -> Self {
        self.nodes = Some(nodes);
        self
    }

    /// Every group's members as the balancer sees them.
    pub fn backends(&self) -> BTreeMap<String, Vec<MemberStats>> {
        self.groups
            .iter()
            .map(|(name, g)| (name.clone(), g.pool.snapshot()))
            .collect()
    }

    /// Each group's `tools/call`s routed and resent since start, as (group, calls, retries).
    pub fn group_calls(&self) -> Vec<(String, u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        self.groups
            .iter()
            .map(|(name, g)| (name.clone(), g.calls.load(Relaxed), g.retries.load(Relaxed)))
            .collect()
    }

    /// The server named `id`, if it is behind the gateway.
    pub fn backend(&self, id: &str) -> Option<Arc<Backend>> {
        self.directory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// `id` and, for a server of a standalone gateway's node (`NODE~SERVER`), every other
    /// server of that node: what a resend avoids after `id` failed, since what failed one call
    /// on a node (the node killed, unreachable) fails its other servers too. Inside one fleet
    /// ids carry no node, and this is `id` alone.
    pub(super) fn with_node_siblings(&self, id: &str) -> Vec<String> {
        let Some((node, _)) = id.split_once(NODE_SEPARATOR) else {
            return vec![id.to_string()];
        };
        let prefix = format!("{node}{NODE_SEPARATOR}");
        let directory = self.directory.read().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<String> = directory
            .by_id
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        if !ids.iter().any(|k| k == id) {
            ids.push(id.to_string());
        }
        ids
    }

    /// Takes `id` out of rotation (`up == false`) or puts it back; false if no group has it.
    pub fn set_up(&self, id: &str, up: bool) -> bool {
        if !up {
            self.eras.forget(id);
        }
        self.backend(id)
            .and_then(|b| self.groups.get(&b.group))
            .is_some_and(|g| g.pool.set_up(id, up))
    }

    /// Makes `backends` the servers behind the gateway: each group's pool keeps the members
    /// that stay (with their statistics), gains the new ones and drops those that left.
    /// Servers of groups the gateway was not started with are ignored.
    pub fn set_backends(&self, backends: Vec<Backend>) {
        let directory = Directory::new(backends);
        let by_group = directory.groups();
        // While the pools change, the directory holds old and new servers alike, so a pick
        // never names a server the directory does not know.
        {
            let mut current = self.directory.write().unwrap_or_else(|e| e.into_inner());
            let mut both = (**current).clone();
            both.by_id
                .extend(directory.by_id.iter().map(|(k, v)| (k.clone(), v.clone())));
            *current = Arc::new(both);
        }
        for (name, group) in self.groups.iter() {
            let ids = by_group.get(name).map_or(&[][..], Vec::as_slice);
            group.pool.set_members(ids);
        }
        // Idle connections to servers that left would hold their sockets until reused.
        let addrs: std::collections::HashSet<SocketAddr> =
            directory.by_id.values().map(|b| b.addr).collect();
        self.upstream.retain(|addr| addrs.contains(addr));
        self.eras.retain(|id| directory.by_id.contains_key(id));
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(directory);
        // A group that gained its first member or lost its last changes the tools listed; any
        // change is announced, and clients list again.
        self.tools_changed
            .send_modify(|generation| *generation += 1);
    }
}

/// Keeps the gateway's pools in step with the registry until `stop`: servers that join or
/// leave (`fleet scale`) join or leave the pools; a server is in rotation while it is healthy,
/// out of it from the moment it is killed, restarting, starting or failing its probes. Wakes on
/// every change rather than polling. `host` is where the servers listen; `in_process` lets the
/// gateway call servers running in its own process without a socket ([`Backend::of`]).
pub async fn follow_registry(
    gw: Gateway,
    registry: Arc<Registry>,
    host: std::net::IpAddr,
    in_process: bool,
    stop: CancellationToken,
) {
    let mut changes = registry.subscribe();
    let mut known: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    let mut members: Vec<(String, u16)> = Vec::new();
    loop {
        changes.borrow_and_update();
        let entries = registry.entries();
        let now: Vec<(String, u16)> = entries
            .iter()
            .map(|e| (e.identity.id.clone(), e.port))
            .collect();
        if now != members {
            gw.set_backends(
                entries
                    .iter()
                    .map(|e| Backend::of(e, host, in_process))
                    .collect(),
            );
            known.retain(|id, _| now.iter().any(|(n, _)| n == id));
            members = now;
        }
        for entry in entries.iter() {
            let up = entry.state() == ServerState::Healthy;
            if known.get(&entry.identity.id) != Some(&up) {
                gw.set_up(&entry.identity.id, up);
                known.insert(entry.identity.id.clone(), up);
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            changed = changes.changed() => if changed.is_err() { break },
        }
    }
    gw.closing.cancel();
}

/// A random word for one pick.
pub(super) fn rng_word(gw: &Gateway) -> u64 {
    fastrand::Rng::with_seed(gw.picks.fetch_add(1, Ordering::Relaxed)).u64(..)
}
