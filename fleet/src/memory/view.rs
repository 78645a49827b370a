//! A read replica of the graph: only durable (acknowledged) records reach it, applied with
//! the same `apply` as the owner's, so a view at version v holds exactly the owner's state at
//! v.
//!
//! The store's own view is fed by the owner thread before the writers are acknowledged, so a
//! writer reads its own write as soon as `write` returns. Other views (e.g. in another
//! process) start from a [`Snapshot`] and are fed [`Record`]s by any transport through
//! [`View::apply_batch`] (in process mode: read from the WAL up to the owner's durable mark).

use std::{
    collections::VecDeque,
    sync::{PoisonError, RwLock},
    time::{Duration, SystemTime},
};

use tokio::sync::watch;

use super::error::{Timeout, ViewError};
use super::graph::{Graph, KnowledgeGraph, Snapshot, StateError};
use super::op::{Entity, Record};
use super::wal::Position;

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

/// What the view's lock guards: the replica's graph, where the owner's WAL continues after it,
/// and when recent versions became visible here.
struct Replica {
    graph: Graph,
    /// The owner's view only: where in the WAL the record after the graph's version starts,
    /// so a follower can start from a snapshot of this view and read on from there.
    position: Option<Position>,
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
                position: None,
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
    /// a gap is refused (nothing applied) so the feeder knows to resubscribe.
    pub fn apply_batch(&self, records: &[Record]) -> Result<(), ViewError> {
        self.apply_batch_at(records, wall_us())
    }

    /// [`View::apply_batch`] for records that became visible at `at_us` (wall µs), not now:
    /// a view that reads the owner's log lazily serves each record from the moment the owner
    /// published it as durable, so that is when it counts as visible here.
    pub fn apply_batch_at(&self, records: &[Record], at_us: u64) -> Result<(), ViewError> {
        let mut replica = self.replica.write().unwrap_or_else(PoisonError::into_inner);
        let before = replica.graph.version();
        let result = Self::apply_locked(&mut replica.graph, records);
        replica.arrived(before, at_us);
        self.version.send_replace(replica.graph.version());
        result
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
                .apply(&r.op, r.version, r.seen)
                .map_err(|source| ViewError::Diverged {
                    version: r.version,
                    source,
                })?;
        }
        Ok(())
    }

    /// Owner side: applies a durable batch that ends at WAL `position`, visible from `at_us`.
    /// Its version is not announced to waiters until [`View::announce`]: the owner first
    /// publishes the durable mark, so whoever hears of the version from this view (a server
    /// process waiting over the socket) finds it under the mark too.
    pub(crate) fn publish(
        &self,
        records: &[Record],
        position: Position,
        at_us: u64,
    ) -> Result<(), ViewError> {
        let mut replica = self.replica.write().unwrap_or_else(PoisonError::into_inner);
        let before = replica.graph.version();
        let result = Self::apply_locked(&mut replica.graph, records);
        replica.arrived(before, at_us);
        replica.position = Some(position);
        result
    }

    /// Owner side: wakes whoever waits for the versions [`View::publish`] applied.
    pub(crate) fn announce(&self) {
        let replica = self.replica.read().unwrap_or_else(PoisonError::into_inner);
        self.version.send_replace(replica.graph.version());
    }

    /// Owner side, at open: where in the WAL the record after the view's version will start.
    pub(crate) fn set_position(&self, position: Position) {
        let mut replica = self.replica.write().unwrap_or_else(PoisonError::into_inner);
        replica.position = Some(position);
    }

    /// A snapshot of this view and the WAL position right after it (the owner's view only;
    /// `None` elsewhere): what a follower in another process starts from.
    pub(crate) fn snapshot_at(&self) -> (Snapshot, Option<Position>) {
        let replica = self.replica.read().unwrap_or_else(PoisonError::into_inner);
        (replica.graph.snapshot(), replica.position)
    }

    /// Replaces the view's state with `snapshot` (a remote view resubscribing after it fell
    /// behind). A snapshot older than the view is refused: versions never go back.
    pub fn reset(&self, snapshot: Snapshot) -> Result<(), StateError> {
        let mut replica = self.replica.write().unwrap_or_else(PoisonError::into_inner);
        if snapshot.version < replica.graph.version() {
            return Err(StateError(format!(
                "snapshot at version {} is older than the view ({})",
                snapshot.version,
                replica.graph.version()
            )));
        }
        let before = replica.graph.version();
        replica.graph = Graph::from_snapshot(snapshot)?;
        replica.arrived(before, wall_us());
        self.version.send_replace(replica.graph.version());
        Ok(())
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
            version,
            server: "s".into(),
            seen: 0,
            time_ms: 0,
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

    #[test]
    fn the_owners_view_hands_out_snapshots_with_their_wal_position() {
        let view = View::empty();
        assert_eq!(view.snapshot_at().1, None);
        let at = |offset| Position { segment: 1, offset };
        view.set_position(at(0));
        view.publish(&[rec(1, "a")], at(90), 5).unwrap();
        view.announce();
        let (snap, position) = view.snapshot_at();
        assert_eq!((snap.version, position), (1, Some(at(90))));
        assert_eq!(view.visible_at(1), Some(5), "visible from the time given");
        let follower = View::from_snapshot(snap).unwrap();
        follower.apply_batch_at(&[rec(2, "b")], 42).unwrap();
        assert_eq!(follower.visible_at(2), Some(42));
        assert_eq!(follower.snapshot_at().1, None);
    }
}
