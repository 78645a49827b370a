//! Replication of the memory between fleet nodes through git. Each node keeps its own owner,
//! WAL and repository and publishes its history to every peer repository (a path or `file://`
//! URL: a local or shared volume, [`local`]; or `ssh://`, [`remote`]) on a ref of its own,
//! `refs/heads/nodes/<node-id>`,
//! so no two nodes ever push the same ref and a peer repository holds every node's history
//! side by side (a continuous off-machine backup: a clone of that ref opens as the node's
//! memory). Publishing runs on its own thread, about once per `interval` and only when the
//! head moved; it never holds up a write, and an unreachable peer is retried with backoff and
//! shown in `fleet status` and `/metrics`.
//!
//! Each round also reads every other node's published head at every peer and merges their
//! writes, read where the newest head was found (at the peer on a path; from this
//! repository's fetched copy for a peer over ssh), into this node's graph
//! ([`merge`]); `fleet status` shows how far each node has got and how much of it is merged
//! here.

mod local;
mod merge;
#[cfg(test)]
mod merge_tests;
mod node;
mod peer;
mod peer_repo;
mod remote;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::Ordering,
        mpsc::{self, RecvTimeoutError},
    },
    thread::JoinHandle,
    time::Duration,
};

use git2::{Oid, Repository};

pub use node::{MAX_NODE_ID, NodeId};
pub use peer::{PeerStatus, check_url};
pub use peer_repo::{PeerRepo, PeerRepoError, init_peer};

pub(crate) use merge::Merger;

use super::stats::Stats;
use peer::Peer;

/// Where and how often to publish. No peers: nothing runs.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// Peer repository URLs (they must exist: `git init --bare` one).
    pub peers: Vec<String>,
    /// This node's id; `None` uses the one remembered in the repository, or makes one.
    pub node_id: Option<NodeId>,
    /// Least time between two publishing rounds.
    pub interval: Duration,
    /// Longest one push or fetch to a peer over ssh may take before it is stopped.
    pub ssh_timeout: Duration,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self {
            peers: Vec::new(),
            node_id: None,
            interval: Duration::from_millis(500),
            ssh_timeout: Duration::from_secs(120),
        }
    }
}

/// Most other nodes reported: a peer repository is not trusted to hold a sane number.
const MAX_NODES: usize = 256;
/// Versions of node heads remembered before the cache starts afresh.
const MAX_CACHED_HEADS: usize = 10_000;

/// Another node's history as found at the peers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeSeen {
    /// The node's id (its ref's name at the peers).
    pub node: String,
    /// The version of its newest commit published.
    pub version: u64,
    /// The peer its newest commit was found at (user and password left out).
    pub via: String,
    /// How far its history is taken into this node's memory: every write of its own up to
    /// this version is merged (equal to `version` once caught up).
    #[serde(default)]
    pub merged: u64,
    /// Its writes read but waiting for writes of a node not published yet that they had
    /// seen.
    #[serde(default)]
    pub waiting: usize,
    /// Why its history cannot be merged here, if it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the publishing thread last found: the peers' status and the other nodes' heads.
#[derive(Debug, Default)]
struct Board {
    peers: Vec<PeerStatus>,
    nodes: Vec<NodeSeen>,
}

/// This node's id, its peers' status and the other nodes, as the thread last left them.
#[derive(Debug, Clone)]
pub(crate) struct PeerBoard {
    pub(crate) node: NodeId,
    board: Arc<Mutex<Board>>,
}

impl PeerBoard {
    pub(crate) fn peers(&self) -> Vec<PeerStatus> {
        self.board
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .peers
            .clone()
    }

    pub(crate) fn nodes(&self) -> Vec<NodeSeen> {
        self.board
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .nodes
            .clone()
    }
}

/// The publishing thread and the peers' status it keeps.
pub(crate) struct Publisher {
    board: PeerBoard,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    /// Starts publishing `gitdir`'s `refs/heads/main` to `options.peers` as `node`.
    pub(crate) fn start(
        gitdir: PathBuf,
        node: NodeId,
        options: &ReplicaOptions,
        stats: Arc<Stats>,
        merger: Merger,
    ) -> std::io::Result<Publisher> {
        let peers: Vec<Peer> = options
            .peers
            .iter()
            .map(|url| Peer::new(url.clone(), options.ssh_timeout))
            .collect();
        let board = Arc::new(Mutex::new(Board {
            peers: peers.iter().map(|p| p.status.clone()).collect(),
            nodes: Vec::new(),
        }));
        let (stop, stopped) = mpsc::channel();
        let round = Round {
            gitdir,
            node: node.clone(),
            peers,
            stats,
            board: board.clone(),
            versions: HashMap::new(),
            merger,
            rewound: None,
        };
        let interval = options.interval;
        let thread = std::thread::Builder::new()
            .name("memory-publish".into())
            .spawn(move || round.run(&stopped, interval))?;
        Ok(Publisher {
            board: PeerBoard { node, board },
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(crate) fn board(&self) -> PeerBoard {
        self.board.clone()
    }

    /// Publishes once more (what the committer made last) and ends the thread.
    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the memory publishing thread panicked");
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Round {
    gitdir: PathBuf,
    node: NodeId,
    peers: Vec<Peer>,
    stats: Arc<Stats>,
    board: Arc<Mutex<Board>>,
    /// The version of each head read so far, this node's and the others'.
    versions: HashMap<Oid, u64>,
    merger: Merger,
    /// Set when a peer holds a newer history of this very node than this repository: this
    /// node was restored from an older copy, and merging stops.
    rewound: Option<String>,
}

impl Round {
    fn run(mut self, stopped: &mpsc::Receiver<()>, interval: Duration) {
        if let Ok(repo) = Repository::open(&self.gitdir) {
            let slots: Vec<String> = self.peers.iter().filter_map(Peer::slot).collect();
            local::forget_fetched(&repo, &slots);
        }
        loop {
            let last = match stopped.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => false,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
            };
            // Opened afresh each round: a kept `Repository` holds every pack it ever read
            // open, including the ones the committer merges and deletes (descriptors and disk
            // space never freed).
            match Repository::open(&self.gitdir) {
                Ok(repo) => self.publish(&repo, last),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the memory repository to publish it")
                }
            }
            if last {
                return;
            }
        }
    }

    /// Publishes the head to every peer that lacks it and reads the other nodes' heads
    /// there, skipping peers that are backing off (the last round only publishes, and tries
    /// failing peers once more regardless); then merges what the other nodes wrote.
    fn publish(&mut self, repo: &Repository, last: bool) {
        // Only a durable head goes out: the committer moves `main` before it fsyncs the ref,
        // and a head lost to a power cut would be replaced by another commit of the same
        // versions, which the peers would then refuse as a rewrite. The committed version is
        // published after the fsync.
        let durable = self.stats.committed_version.load(Ordering::Acquire);
        let Ok(mut head) = repo.refname_to_id("refs/heads/main") else {
            return;
        };
        let mut version = self.version_of(repo, head);
        if version > durable {
            match first_durable(repo, head, durable) {
                Some((oid, v)) => (head, version) = (oid, v),
                None => return,
            }
        }
        let mut seen: BTreeMap<String, NodeSeen> = BTreeMap::new();
        // Per node, the peer (an index into `opened`) its newest head was found at.
        let mut heads: BTreeMap<String, (usize, Oid)> = BTreeMap::new();
        let mut opened: Vec<Repository> = Vec::new();
        for index in 0..self.peers.len() {
            let peer = &mut self.peers[index];
            if !last && !peer.ready() {
                continue;
            }
            let exchanged = peer.exchange(&self.gitdir, repo, &self.node, (head, version), last);
            let Some((found, reader)) = exchanged else {
                self.show_peers();
                continue;
            };
            let via = peer.status.url.clone();
            self.show_peers();
            let at = opened.len();
            for (node, oid) in found {
                if node == self.node.as_str() {
                    let published = self.version_of(&reader, oid);
                    if published > version && self.rewound.is_none() {
                        let e = format!(
                            "peer {via} holds this node's history up to version {published}, \
                             past this repository's {version}: it was restored from an older \
                             copy, and its new writes would reuse versions the other nodes \
                             already have; merging is stopped (give this node a new id and an \
                             empty repository to rejoin)"
                        );
                        tracing::error!(error = %e, "memory replication stopped");
                        self.rewound = Some(e);
                    }
                    continue;
                }
                if seen.len() >= MAX_NODES && !seen.contains_key(&node) {
                    continue;
                }
                let version = self.version_of(&reader, oid);
                if seen.get(&node).is_none_or(|s| s.version < version) {
                    heads.insert(node.clone(), (at, oid));
                    seen.insert(
                        node.clone(),
                        NodeSeen {
                            node,
                            version,
                            via: via.clone(),
                            merged: 0,
                            waiting: 0,
                            error: None,
                        },
                    );
                }
            }
            opened.push(reader);
        }
        if !last {
            let merged = match &self.rewound {
                None => {
                    let heads = heads
                        .into_iter()
                        .map(|(node, (at, oid))| (node, (&opened[at], oid)))
                        .collect();
                    self.merger.round(&heads)
                }
                Some(_) => BTreeMap::new(),
            };
            for (node, m) in merged {
                if let Some(s) = seen.get_mut(&node) {
                    (s.merged, s.waiting, s.error) = (m.merged, m.waiting, m.error);
                }
            }
            if let Some(e) = &self.rewound {
                for s in seen.values_mut() {
                    s.error = Some(e.clone());
                }
            }
            self.board
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .nodes = seen.into_values().collect();
        }
    }

    /// The version a commit holds (0 if unreadable, asked again next time), remembered: a
    /// commit never changes, and the same heads come back every round.
    fn version_of(&mut self, repo: &Repository, oid: Oid) -> u64 {
        if let Some(&v) = self.versions.get(&oid) {
            return v;
        }
        let Some(v) = version_at(repo, oid) else {
            return 0;
        };
        if self.versions.len() >= MAX_CACHED_HEADS {
            self.versions.clear();
        }
        self.versions.insert(oid, v);
        v
    }

    /// Shows the peers' status as it is now, after each peer (a slow one delays no other's).
    fn show_peers(&self) {
        self.board
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .peers = self.peers.iter().map(|p| p.status.clone()).collect();
    }
}

/// The newest commit at or before `head` whose version is at most `durable` (a few parents
/// back at most: the committer is one commit ahead of its fsync), with its version.
fn first_durable(repo: &Repository, head: Oid, durable: u64) -> Option<(Oid, u64)> {
    let mut oid = head;
    for _ in 0..8 {
        oid = repo.find_commit(oid).ok()?.parent_id(0).ok()?;
        let version = version_at(repo, oid)?;
        if version <= durable {
            return Some((oid, version));
        }
    }
    None
}

/// The version a memory commit's `meta.json` states.
pub(super) fn version_at(repo: &Repository, oid: Oid) -> Option<u64> {
    let tree = repo.find_commit(oid).ok()?.tree().ok()?;
    Some(super::archive::read_meta(repo, &tree).ok()?.version)
}
