//! The graph's state: every entity, observation and relation with the version tag of the op
//! that added it, the tombstones of deleted entities, and the journal types a batch records
//! its changes in. [`Graph`] is defined here; its behaviour lives in the sibling files.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::Arc,
};

use serde::{Deserialize, Serialize};

use crate::memory::{
    layout::{EntityFile, RelationFile, TombstoneFile},
    op::Relation,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Observation {
    pub(super) text: Arc<str>,
    pub(super) version: u64,
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

    pub(super) fn pop(&mut self) {
        if let Some(o) = self.items.pop() {
            self.texts.remove(&o.text);
        }
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
    /// Tag of the create that made the entity exist; `None` once removed by a delete while
    /// newer observations keep the entity.
    pub(super) created: Option<u64>,
    pub(super) observations: Observations,
}

impl EntityState {
    pub(super) fn is_empty(&self) -> bool {
        self.created.is_none() && self.observations.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tombstone {
    pub(super) entity_type: String,
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
    Created(String, Option<u64>),
    ObservationPushed(String),
    ObservationRemoved(String, usize, Observation),
    Tombstone(String, Option<Tombstone>),
    Relation(Relation, Option<u64>),
}

/// Changed keys since `begin`, and with `undo` the log to take them back.
#[derive(Debug)]
pub(super) struct Journal {
    pub(super) undo: Option<Vec<Undo>>,
    pub(super) version: u64,
    pub(super) entities: HashSet<String>,
    pub(super) relation_sources: HashSet<String>,
}

/// The graph with every element's version tag and the tombstones of deleted entities. Cheap
/// to query, deterministic to update through [`Graph::apply`].
#[derive(Debug, Default)]
pub struct Graph {
    pub(super) version: u64,
    pub(super) entities: BTreeMap<String, EntityState>,
    pub(super) relations: BTreeMap<Relation, u64>,
    /// (to, from, relationType) of every relation, to find the relations to an entity.
    pub(super) incoming: BTreeSet<(String, String, String)>,
    pub(super) tombstones: BTreeMap<String, Tombstone>,
    pub(super) journal: Option<Journal>,
}

impl Clone for Graph {
    /// Clones the state; an open journal stays with the original.
    fn clone(&self) -> Self {
        Self {
            version: self.version,
            entities: self.entities.clone(),
            relations: self.relations.clone(),
            incoming: self.incoming.clone(),
            tombstones: self.tombstones.clone(),
            journal: None,
        }
    }
}

impl PartialEq for Graph {
    /// Equal state and tags; journals are ignored.
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
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
