//! What every read of the memory is answered from: the graph as of the last durable
//! (acknowledged) record, applied with the same `apply` as the owner's, so a view at version v
//! holds exactly the owner's state at v.
//!
//! The store's view is fed by the owner thread before the writers are acknowledged, so a
//! writer reads its own write (through any server) as soon as `write` returns. Tests and
//! tools can build other views from a [`Snapshot`] and feed them [`Record`]s through
//! [`View::apply_batch`].

use std::{
    collections::VecDeque,
    sync::{PoisonError, RwLock},
    time::{Duration, SystemTime},
};

use tokio::sync::watch;

use super::error::{Timeout, ViewError};
use super::graph::{Graph, KnowledgeGraph, Snapshot, StateError};
use super::op::{Entity, Record};

/// Batches whose arrival a view remembers for [`View::visible_at`]: at 1000 writes/s in
/// batches of a few, several seconds' worth.
const VISIBLE_HISTORY: usize = 8192;

/// Microseconds since the Unix epoch: comparable across the processes of one machine, which
/// `Instant` is not.
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// What the view's lock guards: the graph, and when recent versions became visible here.
struct Replica {
    graph: Graph,
    /// `(first version, last version, wall µs)` of each recent batch applied, oldest first.
    visible: VecDeque<(u64, u64, u64)>,
}

impl Replica {
    /// Notes that versions after `before` up to the graph's version became visible at `at`.
    fn arrived(&mut self, before: u64, at: u64) {
        let now = self.graph.version();
        if now > before {
            if self.visible.len() == VISIBLE_HISTORY {
                self.visible.pop_front();
            }
            self.visible.push_back((before + 1, now, at));
        }
    }
}

/// A read replica: queries plus the version it has reached.
pub struct View {
    replica: RwLock<Replica>,
    version: watch::Sender<u64>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("version", &self.version())
            .finish()
    }
}

impl View {
    pub(crate) fn from_graph(graph: Graph) -> View {
        let version = graph.version();
        View {
            replica: RwLock::new(Replica {
                graph,
                visible: VecDeque::new(),
            }),
            version: watch::Sender::new(version),
        }
    }

    /// A view starting at a snapshot (e.g. one received from the owner's process).
    pub fn from_snapshot(snapshot: Snapshot) -> Result<View, StateError> {
        Ok(Self::from_graph(Graph::from_snapshot(snapshot)?))
    }

    /// An empty view at version 0.
    pub fn empty() -> View {
        Self::from_graph(Graph::new())
    }

    fn read<T>(&self, f: impl FnOnce(&Graph) -> T) -> T {
        let replica = self.replica.read().unwrap_or_else(PoisonError::into_inner);
        f(&replica.graph)
    }

    /// Version of the last record applied.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// The node this view's memory belongs to (empty if it never replicated).
    pub fn node(&self) -> String {
        self.read(|g| g.node().to_string())
    }

    /// The newest version of `node`'s writes merged into this view (0: none).
    pub fn merged_version(&self, node: &str) -> u64 {
        self.read(|g| g.merged_version(node))
    }

    /// Waits until `node`'s writes up to its `version` are merged here, or fails after
    /// `timeout`.
    pub async fn wait_for_merged(
        &self,
        node: &str,
        version: u64,
        timeout: Duration,
    ) -> Result<(), Timeout> {
        let mut rx = self.version.subscribe();
        let reached = async {
            // Checked after each new version, outside the version channel's lock.
            while self.merged_version(node) < version {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, reached)
            .await
            .map_err(|_| Timeout {
                wanted: version,
                current: self.merged_version(node),
            })
    }

    /// For each other node, the newest of its versions merged into this view.
    pub fn merged_versions(&self) -> std::collections::BTreeMap<String, u64> {
        self.read(|g| g.nodes().map(|(n, v)| (n.to_string(), v)).collect())
    }

    /// Waits until the view reaches `min_version` (e.g. the version of a write made through
    /// another server), or fails after `timeout`.
    pub async fn wait_for(&self, min_version: u64, timeout: Duration) -> Result<(), Timeout> {
        let mut rx = self.version.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|v| *v >= min_version)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Timeout {
                wanted: min_version,
                current: self.version(),
            }),
        }
    }

    /// Applies records that follow the view's version. Records it already has are skipped;
    /// a gap is refused (nothing applied) so the feeder knows to start again.
    pub fn apply_batch(&self, records: &[Record]) -> Result<(), ViewError> {
        self.publish(records, wall_us())
    }

    /// When `version` became visible in this view (wall µs, see [`wall_us`]), if it arrived
    /// in one of the last batches this view applied; `None` for a version it has not reached,
    /// or reached too long ago or from a snapshot.
    pub fn visible_at(&self, version: u64) -> Option<u64> {
        let replica = self.replica.read().unwrap_or_else(PoisonError::into_inner);
        let i = replica
            .visible
            .partition_point(|(_, last, _)| *last < version);
        replica
            .visible
            .get(i)
            .filter(|(first, _, _)| *first <= version)
            .map(|(_, _, at)| *at)
    }

    fn apply_locked(graph: &mut Graph, records: &[Record]) -> Result<(), ViewError> {
        let have = graph.version();
        if let Some(next) = records.iter().map(|r| r.version).find(|v| *v > have)
            && next != have + 1
        {
            return Err(ViewError::Gap { have, next });
        }
        for r in records {
            if r.version <= graph.version() {
                continue;
            }
            graph
                .apply_record(r)
                .map_err(|source| ViewError::Diverged {
                    version: r.version,
                    source,
                })?;
        }
        Ok(())
    }

    /// Owner side: applies a durable batch, visible from `at_us` (wall µs), and wakes whoever
    /// waits for its versions.
    pub(crate) fn publish(&self, records: &[Record], at_us: u64) -> Result<(), ViewError> {
        let mut replica = self.replica.write().unwrap_or_else(PoisonError::into_inner);
        let before = replica.graph.version();
        let result = Self::apply_locked(&mut replica.graph, records);
        replica.arrived(before, at_us);
        self.version.send_replace(replica.graph.version());
        result
    }

    /// The view's whole state with tags, e.g. to start another view from.
    pub fn snapshot(&self) -> Snapshot {
        self.read(Graph::snapshot)
    }

    /// `read_graph`: every entity and relation.
    pub fn read_graph(&self) -> KnowledgeGraph {
        self.read(Graph::read_graph)
    }

    /// `search_nodes`: case-insensitive substring over name, type and observations.
    pub fn search_nodes(&self, query: &str) -> KnowledgeGraph {
        self.read(|g| g.search_nodes(query))
    }

    /// `open_nodes`: the named entities and the relations among them.
    pub fn open_nodes(&self, names: &[String]) -> KnowledgeGraph {
        self.read(|g| g.open_nodes(names))
    }

    /// One entity, if it exists.
    pub fn entity(&self, name: &str) -> Option<Entity> {
        self.read(|g| g.entity(name))
    }

    /// (entities, relations) counts.
    pub fn counts(&self) -> (usize, usize) {
        self.read(|g| (g.entity_count(), g.relation_count()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::memory::op::{CreateEntities, Op};

    fn rec(version: u64, name: &str) -> Record {
        Record {
            effect: None,
            deps: Default::default(),
            version,
            server: "s".into(),
            seen: 0,
            time_ms: 0,
            hlc: 0,
            op: Op::CreateEntities(CreateEntities {
                entities: vec![Entity {
                    name: name.into(),
                    entity_type: "t".into(),
                    observations: vec![],
                }],
            }),
        }
    }

    #[tokio::test]
    async fn follows_skips_repeats_and_refuses_gaps() {
        let view = View::empty();
        view.apply_batch(&[rec(1, "a"), rec(2, "b")]).unwrap();
        view.apply_batch(&[rec(2, "b"), rec(3, "c")]).unwrap();
        assert_eq!(view.version(), 3);
        assert_eq!(
            view.apply_batch(&[rec(5, "e")]),
            Err(ViewError::Gap { have: 3, next: 5 })
        );
        assert_eq!(view.counts(), (3, 0));
        view.wait_for(3, Duration::from_millis(1)).await.unwrap();
        let err = view
            .wait_for(4, Duration::from_millis(10))
            .await
            .unwrap_err();
        assert_eq!(err.current, 3);
        let copy = View::from_snapshot(view.snapshot()).unwrap();
        assert_eq!(copy.read_graph(), view.read_graph());
        assert_eq!(copy.version(), 3);
    }

    #[test]
    fn remembers_when_each_version_arrived() {
        let view = View::empty();
        let t0 = wall_us();
        view.apply_batch(&[rec(1, "a"), rec(2, "b")]).unwrap();
        let t1 = wall_us();
        view.apply_batch(&[rec(3, "c")]).unwrap();
        let (a, b, c) = (view.visible_at(1), view.visible_at(2), view.visible_at(3));
        assert_eq!(a, b, "one batch, one arrival");
        assert!(a.unwrap() >= t0 && a.unwrap() <= t1);
        assert!(c.unwrap() >= a.unwrap());
        assert_eq!(view.visible_at(4), None, "not reached");
        // A view started from a snapshot does not know when the snapshot's versions arrived.
        let copy = View::from_snapshot(view.snapshot()).unwrap();
        assert_eq!(copy.visible_at(3), None);
    }
}
