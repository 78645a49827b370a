//! The graph's state: every entity, observation and relation with the version tag of the op
//! that added it, the tombstones of deleted entities, and the journal types a batch records
//! its changes in. [`Graph`] is defined here; its behaviour lives in the sibling files.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::Arc,
};

pub(crate) use super::tags::Tags;

use serde::{Deserialize, Serialize};

use crate::memory::{
    layout::{EntityFile, RelationFile, TombstoneFile},
    op::Relation,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Observation {
    pub(super) text: Arc<str>,
    pub(super) tags: Tags,
}

/// Observations in insertion order, with a set of their texts so that the duplicate check of
/// `add_observations` stays O(1) on entities with thousands of observations.
#[derive(Debug, Clone, Default)]
pub(super) struct Observations {
    pub(super) items: Vec<Observation>,
    pub(super) texts: HashSet<Arc<str>>,
}

impl PartialEq for Observations {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl Eq for Observations {}

impl Observations {
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(super) fn iter(&self) -> std::slice::Iter<'_, Observation> {
        self.items.iter()
    }

    pub(super) fn contains(&self, text: &str) -> bool {
        self.texts.contains(text)
    }

    pub(super) fn position(&self, text: &str) -> Option<usize> {
        if !self.contains(text) {
            return None;
        }
        self.items.iter().position(|o| &*o.text == text)
    }

    pub(super) fn push(&mut self, o: Observation) {
        self.texts.insert(o.text.clone());
        self.items.push(o);
    }

    /// Where `o` belongs: after every observation whose first tag orders before or with its
    /// own (the end, on one node).
    pub(super) fn place_of(&self, o: &Observation, me: &str) -> usize {
        let Some(key) = super::tags::first(&o.tags, me) else {
            return self.items.len();
        };
        let before = |x: &Observation| {
            super::tags::first(&x.tags, me).is_none_or(|k| k.cmp_key(key, me).is_le())
        };
        match self.items.last() {
            Some(last) if !before(last) => self.items.partition_point(before),
            _ => self.items.len(),
        }
    }

    /// Whether observation `i` is still between its neighbours by first tag.
    pub(super) fn in_place(&self, i: usize, me: &str) -> bool {
        let key = |j: usize| {
            self.items
                .get(j)
                .and_then(|o| super::tags::first(&o.tags, me))
        };
        let Some(k) = key(i) else { return true };
        let after_prev = i == 0 || key(i - 1).is_none_or(|p| p.cmp_key(k, me).is_le());
        let before_next = key(i + 1).is_none_or(|n| k.cmp_key(n, me).is_le());
        after_prev && before_next
    }

    pub(super) fn insert(&mut self, i: usize, o: Observation) {
        self.texts.insert(o.text.clone());
        self.items.insert(i.min(self.items.len()), o);
    }

    pub(super) fn remove(&mut self, i: usize) -> Option<Observation> {
        if i >= self.items.len() {
            return None;
        }
        let o = self.items.remove(i);
        self.texts.remove(&o.text);
        Some(o)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EntityState {
    pub(super) entity_type: String,
    /// Which create set `entity_type`: the last writer (by stamp, then node) wins.
    pub(super) type_stamp: TypeStamp,
    /// Tags of the creates that made the entity exist; empty once deletes removed them while
    /// observations they had not seen keep the entity.
    pub(super) created: Tags,
    pub(super) observations: Observations,
}

impl EntityState {
    pub(super) fn is_empty(&self) -> bool {
        self.created.is_empty() && self.observations.is_empty()
    }
}

/// The create an entity's type comes from: its stamp and, if written elsewhere, its node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TypeStamp {
    pub(super) hlc: u64,
    pub(super) node: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tombstone {
    pub(super) entity_type: String,
    /// The stamp of that type, restored if the entity comes back.
    pub(super) type_stamp: TypeStamp,
    pub(super) deleted: u64,
}

/// Keys changed since [`Graph::begin`]: what the committer rewrites.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Touched {
    /// Names whose entity or tombstone changed.
    pub entities: BTreeSet<String>,
    /// `from` names whose relation list changed.
    pub relation_sources: BTreeSet<String>,
}

/// One reversible change: replayed backwards, the log restores the state of `begin`. Costs
/// are per change, not per entity size, so a batch touching huge entities stays cheap.
#[derive(Debug)]
pub(super) enum Undo {
    EntityInserted(String),
    EntityRemoved(String, EntityState),
    Created(String, Tags),
    EntityType(String, String, TypeStamp),
    ObservationInserted(String, usize),
    ObservationRemoved(String, usize, Observation),
    ObservationTags(String, usize, Tags),
    Tombstone(String, Option<Tombstone>),
    Relation(Relation, Option<Tags>),
}

/// Changed keys since `begin`, and with `undo` the log to take them back.
#[derive(Debug)]
pub(super) struct Journal {
    pub(super) undo: Option<Vec<Undo>>,
    pub(super) version: u64,
    /// The other nodes' versions at `begin` (kept only with an undo log).
    pub(super) nodes: Option<BTreeMap<Arc<str>, u64>>,
    pub(super) entities: HashSet<String>,
    pub(super) relation_sources: HashSet<String>,
}

/// The graph with every element's version tag and the tombstones of deleted entities. Cheap
/// to query, deterministic to update through [`Graph::apply`].
#[derive(Debug, Default)]
pub struct Graph {
    pub(super) version: u64,
    /// This node's id (empty when it never replicated): what other nodes call the adds
    /// written here.
    pub(super) me: Arc<str>,
    /// For each other node, the newest of its versions applied here.
    pub(super) nodes: BTreeMap<Arc<str>, u64>,
    pub(super) entities: BTreeMap<String, EntityState>,
    pub(super) relations: BTreeMap<Relation, Tags>,
    /// (to, from, relationType) of every relation, to find the relations to an entity.
    pub(super) incoming: BTreeSet<(String, String, String)>,
    pub(super) tombstones: BTreeMap<String, Tombstone>,
    pub(super) journal: Option<Journal>,
    /// What the last op applied removed ([`Graph::take_removed`]).
    pub(super) removed: Vec<crate::memory::op::Removal>,
}

impl Clone for Graph {
    /// Clones the state; an open journal stays with the original.
    fn clone(&self) -> Self {
        Self {
            version: self.version,
            me: self.me.clone(),
            nodes: self.nodes.clone(),
            entities: self.entities.clone(),
            relations: self.relations.clone(),
            incoming: self.incoming.clone(),
            tombstones: self.tombstones.clone(),
            journal: None,
            removed: Vec::new(),
        }
    }
}

impl PartialEq for Graph {
    /// Equal state and tags; journals are ignored.
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.me == other.me
            && self.nodes == other.nodes
            && self.entities == other.entities
            && self.relations == other.relations
            && self.tombstones == other.tombstones
    }
}

impl Eq for Graph {}

/// The graph at one version with all tags, serialisable: what a remote view starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Version of the last op applied.
    pub version: u64,
    /// The node the graph belongs to (empty if it never replicated).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// For each other node, the newest of its versions applied.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, u64>,
    pub entities: Vec<EntityFile>,
    pub relations: Vec<RelationFile>,
    pub tombstones: Vec<TombstoneFile>,
}

pub(super) fn incoming_key(r: &Relation) -> (String, String, String) {
    (r.to.clone(), r.from.clone(), r.relation_type.clone())
}

pub(super) fn range_start(name: &str) -> Relation {
    Relation {
        from: name.to_string(),
        to: String::new(),
        relation_type: String::new(),
    }
}

impl Graph {
    /// An empty graph at version 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Version of the last op applied.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// This node's id (empty if it never replicated).
    pub fn node(&self) -> &str {
        &self.me
    }

    /// Names the node the graph belongs to: adds written here are this node's adds for the
    /// other nodes. Set once, before the first replicated record.
    pub fn set_node(&mut self, node: &str) {
        self.me = Arc::from(node);
    }

    /// The newest of `node`'s versions applied here (0: none).
    pub fn merged_version(&self, node: &str) -> u64 {
        self.nodes.get(node).copied().unwrap_or(0)
    }

    /// For each other node, the newest of its versions applied here.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, u64)> {
        self.nodes.iter().map(|(n, v)| (&**n, *v))
    }

    /// Entities that exist (for stats and reports).
    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    /// Relations that exist.
    pub fn relation_count(&self) -> usize {
        self.relations.len()
    }

    /// Deleted entities remembered for the add-wins rule (they are never forgotten, so a
    /// late `add_observations` is decided the same way forever).
    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }
}
