//! The store: opens a repository (lock, stale-lock cleanup, load, WAL recovery), starts the
//! owner and committer threads, and hands out cheap [`MemoryHandle`]s for the fleet's
//! servers. Closing (or dropping) it commits every acknowledged op and releases the lock.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
    time::Duration,
};

use tokio::sync::{mpsc, oneshot, watch};

use super::archive::{self, Archive};
use super::committer::Committer;
use super::error::{CloseError, OpenError, Timeout, WriteError};
use super::graph::Graph;
use super::history::{self, HistoryEntry, HistoryIndex};
use super::lock::{OwnerLock, state_dir};
use super::op::{Op, validate_server};
use super::owner::{Ack, Batch, Owner, Request};
use super::replica::{Merger, NodeId, PeerBoard, Publisher, ReplicaOptions};
use super::stats::{MemoryStats, Stats};
use super::view::View;
use super::wal::{self, Wal, WalFaults};

/// Tuning knobs; the defaults suit a fleet on a small machine.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Least time between two git commits: batches arriving meanwhile share one commit, which
    /// bounds commits (and packs) per second. Commit lag is about this plus the commit time.
    pub commit_interval: Duration,
    /// Most writes in one group commit (one WAL fsync).
    pub max_batch: usize,
    /// Most ops in one git commit when the committer has fallen behind (it otherwise takes
    /// everything pending: bigger commits cost less per op, so it catches up).
    pub max_commit_ops: usize,
    /// WAL segment size at which a new segment starts (old ones are deleted once in git).
    pub wal_segment_bytes: u64,
    /// How many of the newest ops the history index reads at open.
    pub history_scan_ops: usize,
    /// How many entries the history index keeps per entity.
    pub history_per_entity: usize,
    /// Pack count above which packs are merged (geometrically).
    pub max_packs: usize,
    /// Fault injection for tests and drills (see [`WalFaults`]).
    pub wal_faults: Option<Arc<WalFaults>>,
    /// Peer repositories to publish the history to (none by default).
    pub replica: ReplicaOptions,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            commit_interval: Duration::from_millis(100),
            max_batch: 4096,
            max_commit_ops: 1_000_000,
            wal_segment_bytes: 4 << 20,
            history_scan_ops: 100_000,
            history_per_entity: 1000,
            max_packs: 16,
            wal_faults: None,
            replica: ReplicaOptions::default(),
        }
    }
}

/// What every handle of an open store reaches: the owner thread's request queue, the local
/// view, statistics, the history index, the committed-version watch and the store's paths.
struct OpenStore {
    tx: mpsc::UnboundedSender<Request>,
    view: Arc<View>,
    stats: Arc<Stats>,
    history: Arc<Mutex<HistoryIndex>>,
    committed: watch::Receiver<u64>,
    path: PathBuf,
    /// The write-ahead log's segments, whose size the stats report.
    wal_dir: PathBuf,
    /// This node's id and its peers, when it publishes to any.
    peers: Option<PeerBoard>,
}

/// A cheap, cloneable handle to an open store, for every server of the fleet. All methods
/// are safe to call from async code: writes wait on the owner thread without blocking the
/// runtime.
#[derive(Clone)]
pub struct MemoryHandle {
    store: Arc<OpenStore>,
}

impl std::fmt::Debug for MemoryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHandle")
            .field("path", &self.store.path)
            .field("view_version", &self.store.view.version())
            .finish()
    }
}

impl MemoryHandle {
    /// Submits one write and waits until it is durable (in the fsynced WAL and applied to
    /// this process's view). `server` is the writing server's id; `seen` is the version of
    /// the writer's view when it decided to write (usually `self.view().version()`), which
    /// decides what its deletes may remove.
    pub async fn write(&self, server: &str, seen: u64, op: Op) -> Result<Ack, WriteError> {
        validate_server(server)?;
        op.validate()?;
        let (reply, rx) = oneshot::channel();
        self.store
            .tx
            .send(Request::Write {
                server: server.to_string(),
                seen,
                op,
                reply,
            })
            .map_err(|_| WriteError::Closed)?;
        rx.await.map_err(|_| WriteError::Closed)?
    }

    /// The process's own view. It already holds every write whose `write` has returned.
    pub fn view(&self) -> &Arc<View> {
        &self.store.view
    }

    /// The newest committed ops that named `entity`, newest first, at most `limit`. Ops
    /// acknowledged but not yet in a commit are not listed; [`MemoryHandle::wait_committed`]
    /// waits for them.
    pub fn history(&self, entity: &str, limit: usize) -> Vec<HistoryEntry> {
        self.store
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .query(entity, limit)
    }

    /// Waits until git durably holds `version`.
    pub async fn wait_committed(&self, version: u64, timeout: Duration) -> Result<(), Timeout> {
        let mut rx = self.store.committed.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|v| *v >= version)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Timeout {
                wanted: version,
                current: *self.store.committed.borrow(),
            }),
        }
    }

    /// Batch sizes, versions acknowledged and committed, and the commit lag: what tells an
    /// operator whether git keeps up with the writers.
    pub fn stats(&self) -> MemoryStats {
        let mut stats = self.store.stats.snapshot(self.store.view.version());
        stats.wal_bytes = wal::size(&self.store.wal_dir);
        if let Some(board) = &self.store.peers {
            stats.node = Some(board.node.to_string());
            stats.peers = board.peers();
            stats.nodes = board.nodes();
        }
        stats
    }

    /// The path the store was opened at.
    pub fn path(&self) -> &Path {
        &self.store.path
    }
}

/// An open memory repository: the lock, the owner and committer threads, and the local
/// view. Dropping it is the same as [`Store::close`] with the error logged.
pub struct Store {
    handle: MemoryHandle,
    owner: Option<JoinHandle<()>>,
    committer: Option<JoinHandle<Result<(), String>>>,
    /// Stopped after the committer, so its last commit is published too.
    publisher: Option<Publisher>,
    lock: Option<OwnerLock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("handle", &self.handle)
            .finish()
    }
}

impl Store {
    /// Opens the memory repository at `path`, creating a bare one if `path` does not exist or
    /// is an empty directory; a non-bare clone works too (its `.git` is used, its work tree
    /// is left alone). Takes the owner lock, clears stale git locks, loads the head state,
    /// replays the WAL past it (cutting off a torn tail) and lets the committer commit the
    /// replayed ops.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, OpenError> {
        let mut opened = archive::open_locked(path)?;
        let gitdir = opened.gitdir;
        let node = if options.replica.peers.is_empty() {
            None
        } else {
            let node = node_of(
                path,
                &gitdir,
                &opened.graph,
                options.replica.node_id.as_ref(),
            )?;
            opened.graph.set_node(node.as_str());
            Some(node)
        };
        let wal_dir = state_dir(&gitdir).join("wal");
        let recovered = wal::recover(&wal_dir, opened.graph.version(), true)?;
        let head_version = opened.graph.version();
        let hlc = recovered
            .records
            .iter()
            .map(|r| r.hlc)
            .fold(opened.hlc, u64::max);
        let mut graph = opened.graph.clone();
        for r in &recovered.records {
            graph.apply_record(r).map_err(|e| OpenError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "WAL record {} does not apply to the archive: {e}",
                    r.version
                ),
            })?;
        }
        if !recovered.records.is_empty() {
            tracing::info!(
                ops = recovered.records.len(),
                from = head_version + 1,
                to = graph.version(),
                "replayed acknowledged ops from the WAL; committing them"
            );
        }
        let wal = Wal::open(
            &wal_dir,
            graph.version() + 1,
            options.wal_segment_bytes,
            options.wal_faults.clone(),
        )
        .map_err(OpenError::io("open the WAL in", &wal_dir))?;
        let history = Arc::new(Mutex::new(history::rebuild(
            &gitdir,
            options.history_scan_ops,
            options.history_per_entity,
        )));
        let stats = Arc::new(Stats::new(graph.version(), head_version));
        let view = Arc::new(View::from_graph(graph.clone()));
        // Server processes once followed the log through this file; nothing reads it now.
        let _ = std::fs::remove_file(state_dir(&gitdir).join("durable"));
        let (committed_tx, committed_rx) = watch::channel(head_version);
        let (batch_tx, batch_rx) = std::sync::mpsc::channel::<Batch>();
        if !recovered.records.is_empty() {
            let _ = batch_tx.send(Batch {
                records: recovered.records.into(),
                acked_at: std::time::Instant::now(),
            });
        }
        let mut archive = Archive::new(gitdir.clone(), opened.head, opened.graph, opened.layout);
        archive.set_max_packs(options.max_packs);
        let committer = Committer {
            archive,
            rx: batch_rx,
            history: history.clone(),
            stats: stats.clone(),
            committed: committed_tx,
            wal_dir: wal_dir.clone(),
            interval: options.commit_interval,
            max_commit_ops: options.max_commit_ops.max(1),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let publisher = match node {
            None => None,
            Some(node) => {
                let merger = Merger::new(tx.clone(), view.clone(), node.clone());
                let publisher = Publisher::start(
                    gitdir.clone(),
                    node,
                    &options.replica,
                    stats.clone(),
                    merger,
                )
                .map_err(OpenError::io("start the publishing thread for", path))?;
                Some(publisher)
            }
        };
        let committer = std::thread::Builder::new()
            .name("memory-committer".into())
            .spawn(move || committer.run())
            .map_err(OpenError::io("start the committer thread for", path))?;
        let owner = Owner {
            graph,
            wal,
            view: view.clone(),
            committer: batch_tx,
            stats: stats.clone(),
            max_batch: options.max_batch.max(1),
            poisoned: None,
            hlc,
        };
        // If this fails the owner (and its sender) is dropped, so the committer finishes.
        let owner = std::thread::Builder::new()
            .name("memory-owner".into())
            .spawn(move || owner.run(rx))
            .map_err(OpenError::io("start the owner thread for", path))?;
        Ok(Store {
            handle: MemoryHandle {
                store: Arc::new(OpenStore {
                    tx,
                    view,
                    stats,
                    history,
                    committed: committed_rx,
                    path: path.to_path_buf(),
                    wal_dir,
                    peers: publisher.as_ref().map(Publisher::board),
                }),
            },
            owner: Some(owner),
            committer: Some(committer),
            publisher,
            lock: Some(opened.lock),
        })
    }

    /// A handle for the fleet's servers (clone freely).
    pub fn handle(&self) -> MemoryHandle {
        self.handle.clone()
    }

    /// Stops accepting writes (later ones get [`WriteError::Closed`]), commits every
    /// acknowledged op, joins the threads and releases the lock. Blocks until the final
    /// commit is durable; from async code call it via `spawn_blocking`.
    pub fn close(mut self) -> Result<(), CloseError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), CloseError> {
        let mut result = Ok(());
        if let Some(owner) = self.owner.take() {
            let _ = self.handle.store.tx.send(Request::Shutdown);
            if owner.join().is_err() {
                result = Err(CloseError::Panicked("owner"));
            }
        }
        if let Some(committer) = self.committer.take() {
            let stats = self.handle.stats();
            match committer.join() {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => {
                    let stats = self.handle.stats();
                    result = result.and(Err(CloseError::Uncommitted {
                        acked: stats.acked_version,
                        committed: stats.committed_version,
                        reason,
                    }));
                }
                Err(_) => {
                    result = result.and(Err(CloseError::Uncommitted {
                        acked: stats.acked_version,
                        committed: stats.committed_version,
                        reason: "the committer thread panicked".into(),
                    }));
                }
            }
        }
        if let Some(mut publisher) = self.publisher.take() {
            publisher.stop();
        }
        self.lock.take();
        result
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "closing the memory store");
        }
    }
}

/// The node a repository replicates as: the one its history was written by (a restored copy
/// goes on as that node), else the one given, else the one remembered or made for it.
fn node_of(
    path: &Path,
    gitdir: &Path,
    graph: &Graph,
    given: Option<&NodeId>,
) -> Result<NodeId, OpenError> {
    let written = match graph.node() {
        "" => None,
        w => Some(NodeId::parse(w).map_err(|reason| OpenError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })?),
    };
    if let (Some(w), Some(g)) = (&written, given)
        && w != g
    {
        return Err(OpenError::OtherNode {
            path: path.to_path_buf(),
            written: w.to_string(),
            given: g.to_string(),
        });
    }
    NodeId::resolve(&state_dir(gitdir), written.as_ref().or(given))
        .map_err(OpenError::io("keep the node id of", path))
}
