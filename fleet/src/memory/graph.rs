//! The knowledge graph and the one deterministic `apply` that the owner, every view, recovery
//! and verify share: replaying the same records always yields the same graph, tags included.
//! See the [module documentation](super) for the merge rules.

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::Arc,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::layout::{EntityFile, EntityVersions, RelationFile, TombstoneFile};
use super::op::{
    AddObservations, CreateEntities, CreateRelations, DeleteEntities, DeleteObservations,
    DeleteRelations, Entity, Op, Relation,
};

/// What `read_graph`, `search_nodes` and `open_nodes` return, shaped like the official server's
/// output: `{"entities":[...],"relations":[...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KnowledgeGraph {
    /// Entities in name order.
    pub entities: Vec<Entity>,
    /// Relations in (from, to, relationType) order.
    pub relations: Vec<Relation>,
}

/// Observations one `add_observations` entry actually added (official output shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddedObservations {
    pub entity_name: String,
    pub added_observations: Vec<String>,
}

/// What a delete removed, and what it left because it was added by an op the deleter had
/// not seen (`kept`): lets a caller notice that a concurrent write won.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    /// Entities that no longer exist.
    pub entities: usize,
    /// Observations removed (including those of deleted entities).
    pub observations: usize,
    /// Relations removed (including those from and to deleted entities).
    pub relations: usize,
    /// Elements named by the delete that survive because they were added after `seen`.
    pub kept: usize,
}

/// The result of one applied op, returned to its writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OpResult {
    /// `create_entities`: only the entities that did not exist yet.
    CreatedEntities(Vec<Entity>),
    /// `create_relations`: only the relations that did not exist yet.
    CreatedRelations(Vec<Relation>),
    /// `add_observations`: per entry, the observations that were new.
    AddedObservations(Vec<AddedObservations>),
    /// The three deletes.
    Deleted(Deleted),
}

/// Why an op cannot be applied. `EntityNotFound` is the only refusal a valid op can meet; the
/// others mean records arrived out of order or do not fit the graph (corruption).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ApplyError {
    #[error("Entity with name {name} not found")]
    EntityNotFound { name: String },
    #[error("version {version} cannot follow version {current}: versions must be consecutive")]
    OutOfOrder { current: u64, version: u64 },
}

/// A snapshot that cannot become a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid graph state: {0}")]
pub struct StateError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Observation {
    text: Arc<str>,
    version: u64,
}

/// Observations in insertion order, with a set of their texts so that the duplicate check of
/// `add_observations` stays O(1) on entities with thousands of observations.
#[derive(Debug, Clone, Default)]
struct Observations {
    items: Vec<Observation>,
    texts: HashSet<Arc<str>>,
}

impl PartialEq for Observations {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl Eq for Observations {}

impl Observations {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn iter(&self) -> std::slice::Iter<'_, Observation> {
        self.items.iter()
    }

    fn contains(&self, text: &str) -> bool {
        self.texts.contains(text)
    }

    fn position(&self, text: &str) -> Option<usize> {
        if !self.contains(text) {
            return None;
        }
        self.items.iter().position(|o| &*o.text == text)
    }

    fn push(&mut self, o: Observation) {
        self.texts.insert(o.text.clone());
        self.items.push(o);
    }

    fn pop(&mut self) {
        if let Some(o) = self.items.pop() {
            self.texts.remove(&o.text);
        }
    }

    fn insert(&mut self, i: usize, o: Observation) {
        self.texts.insert(o.text.clone());
        self.items.insert(i.min(self.items.len()), o);
    }

    fn remove(&mut self, i: usize) -> Option<Observation> {
        if i >= self.items.len() {
            return None;
        }
        let o = self.items.remove(i);
        self.texts.remove(&o.text);
        Some(o)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EntityState {
    entity_type: String,
    /// Tag of the create that made the entity exist; `None` once removed by a delete while
    /// newer observations keep the entity.
    created: Option<u64>,
    observations: Observations,
}

impl EntityState {
    fn is_empty(&self) -> bool {
        self.created.is_none() && self.observations.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Tombstone {
    entity_type: String,
    deleted: u64,
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
enum Undo {
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
struct Journal {
    undo: Option<Vec<Undo>>,
    version: u64,
    entities: HashSet<String>,
    relation_sources: HashSet<String>,
}

/// The graph with every element's version tag and the tombstones of deleted entities. Cheap
/// to query, deterministic to update through [`Graph::apply`].
#[derive(Debug, Default)]
pub struct Graph {
    version: u64,
    entities: BTreeMap<String, EntityState>,
    relations: BTreeMap<Relation, u64>,
    /// (to, from, relationType) of every relation, to find the relations to an entity.
    incoming: BTreeSet<(String, String, String)>,
    tombstones: BTreeMap<String, Tombstone>,
    journal: Option<Journal>,
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

fn incoming_key(r: &Relation) -> (String, String, String) {
    (r.to.clone(), r.from.clone(), r.relation_type.clone())
}

fn range_start(name: &str) -> Relation {
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

    /// Starts recording changes: the changed keys (what the committer needs) and, with
    /// `undo`, a log for [`Graph::rollback`].
    pub(crate) fn begin(&mut self, undo: bool) {
        self.journal = Some(Journal {
            undo: undo.then(Vec::new),
            version: self.version,
            entities: HashSet::new(),
            relation_sources: HashSet::new(),
        });
    }

    /// Stops recording and returns the changed keys.
    pub(crate) fn finish(&mut self) -> Touched {
        match self.journal.take() {
            Some(j) => Touched {
                entities: j.entities.into_iter().collect(),
                relation_sources: j.relation_sources.into_iter().collect(),
            },
            None => Touched::default(),
        }
    }

    /// Keys changed since `begin`, without ending the recording.
    pub(crate) fn touched(&self) -> Touched {
        match &self.journal {
            Some(j) => Touched {
                entities: j.entities.iter().cloned().collect(),
                relation_sources: j.relation_sources.iter().cloned().collect(),
            },
            None => Touched::default(),
        }
    }

    /// Restores the state of `begin(true)`: the owner's way out of a batch it could not make
    /// durable. Returns false (and changes nothing) without an undo log.
    pub(crate) fn rollback(&mut self) -> bool {
        let Some(Journal {
            undo: Some(log),
            version,
            ..
        }) = self.journal.take()
        else {
            return false;
        };
        for u in log.into_iter().rev() {
            match u {
                Undo::EntityInserted(name) => {
                    self.entities.remove(&name);
                }
                Undo::EntityRemoved(name, state) => {
                    self.entities.insert(name, state);
                }
                Undo::Created(name, prior) => {
                    if let Some(e) = self.entities.get_mut(&name) {
                        e.created = prior;
                    }
                }
                Undo::ObservationPushed(name) => {
                    if let Some(e) = self.entities.get_mut(&name) {
                        e.observations.pop();
                    }
                }
                Undo::ObservationRemoved(name, i, o) => {
                    if let Some(e) = self.entities.get_mut(&name) {
                        e.observations.insert(i, o);
                    }
                }
                Undo::Tombstone(name, prior) => match prior {
                    Some(t) => {
                        self.tombstones.insert(name, t);
                    }
                    None => {
                        self.tombstones.remove(&name);
                    }
                },
                Undo::Relation(rel, prior) => match prior {
                    Some(v) => {
                        self.incoming.insert(incoming_key(&rel));
                        self.relations.insert(rel, v);
                    }
                    None => {
                        self.incoming.remove(&incoming_key(&rel));
                        self.relations.remove(&rel);
                    }
                },
            }
        }
        self.version = version;
        true
    }

    // ---- the only places that change state: each records its change in the journal ----

    fn log(&mut self, name: Option<&str>, undo: impl FnOnce() -> Undo) {
        if let Some(j) = &mut self.journal {
            if let Some(name) = name
                && !j.entities.contains(name)
            {
                j.entities.insert(name.to_string());
            }
            if let Some(log) = &mut j.undo {
                log.push(undo());
            }
        }
    }

    fn insert_entity(&mut self, name: &str, state: EntityState) {
        self.log(Some(name), || Undo::EntityInserted(name.to_string()));
        self.entities.insert(name.to_string(), state);
    }

    fn remove_entity(&mut self, name: &str) -> Option<String> {
        let state = self.entities.remove(name)?;
        let entity_type = state.entity_type.clone();
        self.log(Some(name), || Undo::EntityRemoved(name.to_string(), state));
        Some(entity_type)
    }

    fn set_created(&mut self, name: &str, created: Option<u64>) {
        let Some(prior) = self.entities.get(name).map(|e| e.created) else {
            return;
        };
        self.log(Some(name), || Undo::Created(name.to_string(), prior));
        if let Some(e) = self.entities.get_mut(name) {
            e.created = created;
        }
    }

    fn push_observation(&mut self, name: &str, text: &str, version: u64) {
        let Some(e) = self.entities.get_mut(name) else {
            return;
        };
        e.observations.push(Observation {
            text: Arc::from(text),
            version,
        });
        self.log(Some(name), || Undo::ObservationPushed(name.to_string()));
    }

    fn remove_observation(&mut self, name: &str, i: usize) {
        let Some(o) = self
            .entities
            .get_mut(name)
            .and_then(|e| e.observations.remove(i))
        else {
            return;
        };
        self.log(Some(name), || {
            Undo::ObservationRemoved(name.to_string(), i, o)
        });
    }

    fn set_tombstone(&mut self, name: &str, t: Option<Tombstone>) {
        let prior = match t {
            Some(t) => self.tombstones.insert(name.to_string(), t),
            None => self.tombstones.remove(name),
        };
        self.log(Some(name), || Undo::Tombstone(name.to_string(), prior));
    }

    fn set_relation(&mut self, rel: &Relation, tag: Option<u64>) {
        let prior = match tag {
            Some(v) => {
                self.incoming.insert(incoming_key(rel));
                self.relations.insert(rel.clone(), v)
            }
            None => {
                self.incoming.remove(&incoming_key(rel));
                self.relations.remove(rel)
            }
        };
        if let Some(j) = &mut self.journal
            && !j.relation_sources.contains(&rel.from)
        {
            j.relation_sources.insert(rel.from.clone());
        }
        self.log(None, || Undo::Relation(rel.clone(), prior));
    }

    /// Applies `op` as version `version` written by someone whose view was at `seen`
    /// (clamped below `version`). Deterministic in (state, op, version, seen). A refused op
    /// changes nothing and the graph stays at its version.
    pub fn apply(&mut self, op: &Op, version: u64, seen: u64) -> Result<OpResult, ApplyError> {
        if version != self.version + 1 {
            return Err(ApplyError::OutOfOrder {
                current: self.version,
                version,
            });
        }
        let seen = seen.min(version - 1);
        let result = match op {
            Op::CreateEntities(a) => OpResult::CreatedEntities(self.create_entities(a, version)),
            Op::CreateRelations(a) => OpResult::CreatedRelations(self.create_relations(a, version)),
            Op::AddObservations(a) => {
                OpResult::AddedObservations(self.add_observations(a, version, seen)?)
            }
            Op::DeleteEntities(a) => OpResult::Deleted(self.delete_entities(a, version, seen)),
            Op::DeleteObservations(a) => {
                OpResult::Deleted(self.delete_observations(a, version, seen))
            }
            Op::DeleteRelations(a) => OpResult::Deleted(self.delete_relations(a, seen)),
        };
        self.version = version;
        Ok(result)
    }

    fn create_entities(&mut self, a: &CreateEntities, version: u64) -> Vec<Entity> {
        let mut created = Vec::new();
        for e in &a.entities {
            if self.entities.contains_key(&e.name) {
                continue;
            }
            let mut observations = Observations::default();
            for text in &e.observations {
                if !observations.contains(text) {
                    observations.push(Observation {
                        text: Arc::from(text.as_str()),
                        version,
                    });
                }
            }
            if self.tombstones.contains_key(&e.name) {
                self.set_tombstone(&e.name, None);
            }
            created.push(Entity {
                name: e.name.clone(),
                entity_type: e.entity_type.clone(),
                observations: observations.iter().map(|o| o.text.to_string()).collect(),
            });
            self.insert_entity(
                &e.name,
                EntityState {
                    entity_type: e.entity_type.clone(),
                    created: Some(version),
                    observations,
                },
            );
        }
        created
    }

    fn create_relations(&mut self, a: &CreateRelations, version: u64) -> Vec<Relation> {
        let mut created = Vec::new();
        for r in &a.relations {
            if self.relations.contains_key(r) {
                continue;
            }
            self.set_relation(r, Some(version));
            created.push(r.clone());
        }
        created
    }

    fn add_observations(
        &mut self,
        a: &AddObservations,
        version: u64,
        seen: u64,
    ) -> Result<Vec<AddedObservations>, ApplyError> {
        // Decide first, change after: a refused op leaves no trace.
        for o in &a.observations {
            let revivable = self
                .tombstones
                .get(&o.entity_name)
                .is_some_and(|t| t.deleted > seen);
            if !self.entities.contains_key(&o.entity_name) && !revivable {
                return Err(ApplyError::EntityNotFound {
                    name: o.entity_name.clone(),
                });
            }
        }
        let mut results = Vec::with_capacity(a.observations.len());
        for o in &a.observations {
            let name = o.entity_name.as_str();
            let mut added = Vec::new();
            if !self.entities.contains_key(name) && !o.contents.is_empty() {
                // Add wins over a delete the writer had not seen: the entity comes back with
                // its type and only the new observations.
                if let Some(t) = self.tombstones.get(name).cloned() {
                    self.set_tombstone(name, None);
                    self.insert_entity(
                        name,
                        EntityState {
                            entity_type: t.entity_type,
                            created: None,
                            observations: Observations::default(),
                        },
                    );
                }
            }
            for text in &o.contents {
                let new = self
                    .entities
                    .get(name)
                    .is_some_and(|e| !e.observations.contains(text));
                if new {
                    self.push_observation(name, text, version);
                    added.push(text.clone());
                }
            }
            results.push(AddedObservations {
                entity_name: o.entity_name.clone(),
                added_observations: added,
            });
        }
        Ok(results)
    }

    /// Removes the entity if nothing keeps it, leaving a tombstone.
    fn settle(&mut self, name: &str, version: u64, deleted: &mut Deleted) {
        if self.entities.get(name).is_some_and(EntityState::is_empty)
            && let Some(entity_type) = self.remove_entity(name)
        {
            self.set_tombstone(
                name,
                Some(Tombstone {
                    entity_type,
                    deleted: version,
                }),
            );
            deleted.entities += 1;
        }
    }

    fn remove_relation(&mut self, r: &Relation, seen: u64, deleted: &mut Deleted) {
        match self.relations.get(r) {
            Some(&tag) if tag <= seen => {
                self.set_relation(r, None);
                deleted.relations += 1;
            }
            Some(_) => deleted.kept += 1,
            None => {}
        }
    }

    fn delete_entities(&mut self, a: &DeleteEntities, version: u64, seen: u64) -> Deleted {
        let mut deleted = Deleted::default();
        let mut done = BTreeSet::new();
        for name in &a.entity_names {
            if !done.insert(name.as_str()) {
                continue;
            }
            // Relations from and to the name go even when no entity exists (as officially).
            let mut touching: Vec<Relation> = self
                .relations
                .range(range_start(name)..)
                .take_while(|(r, _)| &r.from == name)
                .map(|(r, _)| r.clone())
                .collect();
            touching.extend(
                self.incoming
                    .range((name.clone(), String::new(), String::new())..)
                    .take_while(|(to, _, _)| to == name)
                    .filter(|(_, from, _)| from != name)
                    .map(|(to, from, rt)| Relation {
                        from: from.clone(),
                        to: to.clone(),
                        relation_type: rt.clone(),
                    }),
            );
            for r in &touching {
                self.remove_relation(r, seen, &mut deleted);
            }
            let Some(e) = self.entities.get(name) else {
                continue;
            };
            let created = e.created;
            // From the newest down, so each removal is cheap and the undo log re-inserts
            // at the right places.
            let old: Vec<usize> = e
                .observations
                .iter()
                .enumerate()
                .filter(|(_, o)| o.version <= seen)
                .map(|(i, _)| i)
                .collect();
            let kept = e.observations.len() - old.len();
            match created {
                Some(tag) if tag <= seen => self.set_created(name, None),
                Some(_) => deleted.kept += 1,
                None => {}
            }
            for &i in old.iter().rev() {
                self.remove_observation(name, i);
            }
            deleted.observations += old.len();
            deleted.kept += kept;
            self.settle(name, version, &mut deleted);
        }
        deleted
    }

    fn delete_observations(&mut self, a: &DeleteObservations, version: u64, seen: u64) -> Deleted {
        let mut deleted = Deleted::default();
        for d in &a.deletions {
            let name = d.entity_name.as_str();
            if !self.entities.contains_key(name) {
                continue;
            }
            for text in &d.observations {
                let found = self.entities.get(name).and_then(|e| {
                    e.observations
                        .position(text)
                        .map(|i| (i, e.observations.items[i].version))
                });
                match found {
                    Some((i, tag)) if tag <= seen => {
                        self.remove_observation(name, i);
                        deleted.observations += 1;
                    }
                    Some(_) => deleted.kept += 1,
                    None => {}
                }
            }
            self.settle(name, version, &mut deleted);
        }
        deleted
    }

    fn delete_relations(&mut self, a: &DeleteRelations, seen: u64) -> Deleted {
        let mut deleted = Deleted::default();
        for r in &a.relations {
            self.remove_relation(r, seen, &mut deleted);
        }
        deleted
    }

    // ---- queries ----

    fn entity_out(name: &str, e: &EntityState) -> Entity {
        Entity {
            name: name.to_string(),
            entity_type: e.entity_type.clone(),
            observations: e.observations.iter().map(|o| o.text.to_string()).collect(),
        }
    }

    /// One entity as the official server shows it.
    pub fn entity(&self, name: &str) -> Option<Entity> {
        self.entities.get(name).map(|e| Self::entity_out(name, e))
    }

    /// The whole graph (`read_graph`).
    pub fn read_graph(&self) -> KnowledgeGraph {
        KnowledgeGraph {
            entities: self
                .entities
                .iter()
                .map(|(n, e)| Self::entity_out(n, e))
                .collect(),
            relations: self.relations.keys().cloned().collect(),
        }
    }

    /// Entities whose name, type or any observation contains `query` (case-insensitive),
    /// with the relations among them (`search_nodes`).
    pub fn search_nodes(&self, query: &str) -> KnowledgeGraph {
        let q = query.to_lowercase();
        let names: BTreeSet<&str> = self
            .entities
            .iter()
            .filter(|(n, e)| {
                n.to_lowercase().contains(&q)
                    || e.entity_type.to_lowercase().contains(&q)
                    || e.observations
                        .iter()
                        .any(|o| o.text.to_lowercase().contains(&q))
            })
            .map(|(n, _)| n.as_str())
            .collect();
        self.subgraph(&names)
    }

    /// The named entities that exist, with the relations among them (`open_nodes`).
    pub fn open_nodes(&self, names: &[String]) -> KnowledgeGraph {
        let names: BTreeSet<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| self.entities.contains_key(*n))
            .collect();
        self.subgraph(&names)
    }

    /// Entities in `names` and the relations whose both ends are in `names`, as officially.
    fn subgraph(&self, names: &BTreeSet<&str>) -> KnowledgeGraph {
        let mut out = KnowledgeGraph::default();
        for &name in names {
            if let Some(e) = self.entities.get(name) {
                out.entities.push(Self::entity_out(name, e));
            }
            out.relations.extend(
                self.relations
                    .range(range_start(name)..)
                    .take_while(|(r, _)| r.from == name)
                    .filter(|(r, _)| names.contains(r.to.as_str()))
                    .map(|(r, _)| r.clone()),
            );
        }
        out
    }

    // ---- files and snapshots ----

    /// The entity's file in the archive, or None if it does not exist.
    pub(crate) fn entity_file(&self, name: &str) -> Option<EntityFile> {
        self.entities.get(name).map(|e| EntityFile {
            name: name.to_string(),
            entity_type: e.entity_type.clone(),
            observations: e.observations.iter().map(|o| o.text.to_string()).collect(),
            versions: EntityVersions {
                entity: e.created,
                observations: e.observations.iter().map(|o| o.version).collect(),
            },
        })
    }

    /// The relations from `from`, sorted: the content of its relations file.
    pub(crate) fn relation_files_from(&self, from: &str) -> Vec<RelationFile> {
        self.relations
            .range(range_start(from)..)
            .take_while(|(r, _)| r.from == from)
            .map(|(r, &version)| RelationFile {
                from: r.from.clone(),
                to: r.to.clone(),
                relation_type: r.relation_type.clone(),
                version,
            })
            .collect()
    }

    pub(crate) fn tombstone_file(&self, name: &str) -> Option<TombstoneFile> {
        self.tombstones.get(name).map(|t| TombstoneFile {
            name: name.to_string(),
            entity_type: t.entity_type.clone(),
            deleted: t.deleted,
        })
    }

    /// Adds an entity read from the archive; refuses what `apply` could never have produced.
    pub(crate) fn insert_entity_file(&mut self, f: EntityFile) -> Result<(), StateError> {
        let bad = |why: &str| Err(StateError(format!("entity {:?}: {why}", f.name)));
        if f.observations.len() != f.versions.observations.len() {
            return bad("observations and their versions differ in length");
        }
        if f.versions.entity.is_none() && f.observations.is_empty() {
            return bad("neither created nor observed");
        }
        if self.entities.contains_key(&f.name) || self.tombstones.contains_key(&f.name) {
            return bad("appears twice");
        }
        let mut observations = Observations::default();
        for (text, &version) in f.observations.iter().zip(&f.versions.observations) {
            if observations.contains(text) {
                return bad("has a duplicate observation");
            }
            observations.push(Observation {
                text: Arc::from(text.as_str()),
                version,
            });
        }
        self.entities.insert(
            f.name,
            EntityState {
                entity_type: f.entity_type,
                created: f.versions.entity,
                observations,
            },
        );
        Ok(())
    }

    pub(crate) fn insert_relation_file(&mut self, f: RelationFile) -> Result<(), StateError> {
        let r = Relation {
            from: f.from,
            to: f.to,
            relation_type: f.relation_type,
        };
        if self.relations.contains_key(&r) {
            return Err(StateError(format!("relation {r:?} appears twice")));
        }
        self.incoming.insert(incoming_key(&r));
        self.relations.insert(r, f.version);
        Ok(())
    }

    pub(crate) fn insert_tombstone_file(&mut self, f: TombstoneFile) -> Result<(), StateError> {
        if self.entities.contains_key(&f.name) || self.tombstones.contains_key(&f.name) {
            return Err(StateError(format!(
                "tombstone {:?} conflicts with an entity or another tombstone",
                f.name
            )));
        }
        self.tombstones.insert(
            f.name,
            Tombstone {
                entity_type: f.entity_type,
                deleted: f.deleted,
            },
        );
        Ok(())
    }

    /// Sets the version after loading files, checking that no tag is from the future.
    pub(crate) fn set_loaded_version(&mut self, version: u64) -> Result<(), StateError> {
        let newest = self
            .entities
            .values()
            .flat_map(|e| {
                e.created
                    .into_iter()
                    .chain(e.observations.iter().map(|o| o.version))
            })
            .chain(self.relations.values().copied())
            .chain(self.tombstones.values().map(|t| t.deleted))
            .max()
            .unwrap_or(0);
        if newest > version {
            return Err(StateError(format!(
                "a tag ({newest}) is newer than the version ({version})"
            )));
        }
        self.version = version;
        Ok(())
    }

    /// The whole state with tags, for a view elsewhere to start from.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: self.version,
            entities: self
                .entities
                .keys()
                .filter_map(|n| self.entity_file(n))
                .collect(),
            relations: self
                .relations
                .iter()
                .map(|(r, &version)| RelationFile {
                    from: r.from.clone(),
                    to: r.to.clone(),
                    relation_type: r.relation_type.clone(),
                    version,
                })
                .collect(),
            tombstones: self
                .tombstones
                .keys()
                .filter_map(|n| self.tombstone_file(n))
                .collect(),
        }
    }

    /// Rebuilds a graph from a snapshot, refusing inconsistent ones.
    pub fn from_snapshot(s: Snapshot) -> Result<Graph, StateError> {
        let mut g = Graph::new();
        for e in s.entities {
            g.insert_entity_file(e)?;
        }
        for r in s.relations {
            g.insert_relation_file(r)?;
        }
        for t in s.tombstones {
            g.insert_tombstone_file(t)?;
        }
        g.set_loaded_version(s.version)?;
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::memory::op::{ObservationAddition, ObservationDeletion};

    fn create(names: &[&str]) -> Op {
        Op::CreateEntities(CreateEntities {
            entities: names
                .iter()
                .map(|n| Entity {
                    name: (*n).into(),
                    entity_type: "person".into(),
                    observations: vec![format!("{n} exists")],
                })
                .collect(),
        })
    }

    fn observe(name: &str, texts: &[&str]) -> Op {
        Op::AddObservations(AddObservations {
            observations: vec![ObservationAddition {
                entity_name: name.into(),
                contents: texts.iter().map(|t| (*t).into()).collect(),
            }],
        })
    }

    fn rel(from: &str, to: &str) -> Relation {
        Relation {
            from: from.into(),
            to: to.into(),
            relation_type: "knows".into(),
        }
    }

    fn relate(pairs: &[(&str, &str)]) -> Op {
        Op::CreateRelations(CreateRelations {
            relations: pairs.iter().map(|(a, b)| rel(a, b)).collect(),
        })
    }

    fn delete(names: &[&str]) -> Op {
        Op::DeleteEntities(DeleteEntities {
            entity_names: names.iter().map(|n| (*n).into()).collect(),
        })
    }

    /// Applies ops as consecutive versions; each with the given `seen`.
    fn run(g: &mut Graph, ops: &[(Op, u64)]) -> Vec<Result<OpResult, ApplyError>> {
        ops.iter()
            .map(|(op, seen)| g.apply(op, g.version() + 1, *seen))
            .collect()
    }

    #[test]
    fn create_ignores_existing_and_reports_only_new() {
        let mut g = Graph::new();
        let r = run(
            &mut g,
            &[(create(&["a", "b"]), 0), (create(&["b", "c", "c"]), 1)],
        );
        let OpResult::CreatedEntities(created) = r[1].clone().unwrap() else {
            panic!()
        };
        assert_eq!(
            created.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(g.entity_count(), 3);
        assert_eq!(g.version(), 2);
    }

    #[test]
    fn add_observations_to_a_missing_entity_is_refused_whole() {
        let mut g = Graph::new();
        run(&mut g, &[(create(&["a"]), 0)]);
        let op = Op::AddObservations(AddObservations {
            observations: vec![
                ObservationAddition {
                    entity_name: "a".into(),
                    contents: vec!["new".into()],
                },
                ObservationAddition {
                    entity_name: "ghost".into(),
                    contents: vec!["x".into()],
                },
            ],
        });
        let err = g.apply(&op, 2, 1).unwrap_err();
        assert_eq!(err.to_string(), "Entity with name ghost not found");
        assert_eq!(g.version(), 1);
        assert_eq!(g.entity("a").unwrap().observations, ["a exists"]);
        assert!(matches!(
            g.apply(&op, 5, 1),
            Err(ApplyError::OutOfOrder { current: 1, .. })
        ));
    }

    #[test]
    fn delete_removes_only_what_the_deleter_saw() {
        // v1 create a; v2 (seen 1) add obs; v3 delete a with seen 1: the create and the
        // first observation go, the unseen observation keeps the entity.
        let mut g = Graph::new();
        let r = run(
            &mut g,
            &[
                (create(&["a"]), 0),
                (observe("a", &["late"]), 1),
                (delete(&["a"]), 1),
            ],
        );
        assert_eq!(
            r[2].clone().unwrap(),
            OpResult::Deleted(Deleted {
                entities: 0,
                observations: 1,
                relations: 0,
                kept: 1
            })
        );
        let a = g.entity("a").unwrap();
        assert_eq!(a.observations, ["late"]);
        assert_eq!(a.entity_type, "person");
        // A delete that saw everything removes it for good and leaves a tombstone.
        run(&mut g, &[(delete(&["a"]), 3)]);
        assert!(g.entity("a").is_none());
        assert_eq!(g.tombstone_count(), 1);
    }

    #[test]
    fn add_racing_a_delete_brings_the_entity_back() {
        // The writer saw v1 (a exists) but not the delete at v2: add wins.
        let mut g = Graph::new();
        let r = run(
            &mut g,
            &[
                (create(&["a", "b"]), 0),
                (relate(&[("a", "b"), ("b", "a")]), 1),
                (delete(&["a"]), 2),
                (observe("a", &["still here"]), 2),
            ],
        );
        assert_eq!(
            r[2].clone().unwrap(),
            OpResult::Deleted(Deleted {
                entities: 1,
                observations: 1,
                relations: 2,
                kept: 0
            })
        );
        assert!(r[3].is_ok());
        let a = g.entity("a").unwrap();
        assert_eq!(a.observations, ["still here"]);
        assert_eq!(a.entity_type, "person");
        assert_eq!(g.relation_count(), 0);
        assert_eq!(g.tombstone_count(), 0);
        // A writer that had seen the delete is refused instead.
        run(&mut g, &[(delete(&["a"]), 4)]);
        let err = g.apply(&observe("a", &["x"]), 6, 5).unwrap_err();
        assert!(matches!(err, ApplyError::EntityNotFound { .. }));
    }

    #[test]
    fn relations_created_after_seen_survive_a_delete() {
        let mut g = Graph::new();
        run(
            &mut g,
            &[
                (create(&["a", "b"]), 0),
                (relate(&[("a", "b")]), 0),
                (relate(&[("b", "a")]), 0),
                (
                    Op::DeleteRelations(DeleteRelations {
                        relations: vec![rel("a", "b"), rel("b", "a"), rel("x", "y")],
                    }),
                    2,
                ),
            ],
        );
        assert_eq!(g.read_graph().relations, [rel("b", "a")]);
    }

    #[test]
    fn delete_observations_can_remove_the_entity() {
        let mut g = Graph::new();
        run(
            &mut g,
            &[
                (create(&["a"]), 0),
                (observe("a", &["late"]), 0),
                (delete(&["a"]), 1),
            ],
        );
        let r = run(
            &mut g,
            &[(
                Op::DeleteObservations(DeleteObservations {
                    deletions: vec![ObservationDeletion {
                        entity_name: "a".into(),
                        observations: vec!["late".into(), "absent".into()],
                    }],
                }),
                3,
            )],
        );
        assert_eq!(
            r[0].clone().unwrap(),
            OpResult::Deleted(Deleted {
                entities: 1,
                observations: 1,
                relations: 0,
                kept: 0
            })
        );
        assert!(g.entity("a").is_none());
    }

    #[test]
    fn queries_follow_the_official_relation_rule() {
        let mut g = Graph::new();
        run(
            &mut g,
            &[
                (create(&["Alice", "bob", "carol"]), 0),
                (
                    relate(&[("Alice", "bob"), ("bob", "carol"), ("Alice", "zed")]),
                    0,
                ),
                (observe("carol", &["Likes ALICE"]), 0),
            ],
        );
        let found = g.search_nodes("alice");
        let names: Vec<_> = found.entities.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Alice", "carol"]);
        assert!(found.relations.is_empty());
        let opened = g.open_nodes(&["bob".into(), "carol".into(), "nobody".into()]);
        assert_eq!(opened.entities.len(), 2);
        assert_eq!(opened.relations, [rel("bob", "carol")]);
        assert_eq!(g.read_graph().relations.len(), 3);
        let json = serde_json::to_value(g.open_nodes(&["bob".into()])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"entities":[{"name":"bob","entityType":"person","observations":["bob exists"]}],"relations":[]})
        );
    }

    #[test]
    fn rollback_restores_the_exact_state() {
        let mut g = Graph::new();
        run(
            &mut g,
            &[(create(&["a", "b"]), 0), (relate(&[("a", "b")]), 0)],
        );
        let before = g.clone();
        g.begin(true);
        run(
            &mut g,
            &[
                (observe("a", &["x"]), 2),
                (delete(&["b"]), 3),
                (create(&["c"]), 0),
                (relate(&[("c", "a")]), 0),
                (delete(&["a"]), 6),
            ],
        );
        assert_ne!(g, before);
        assert!(g.rollback());
        assert_eq!(g, before);
        assert_eq!(g.read_graph(), before.read_graph());
        assert_eq!(g.incoming, before.incoming);
    }

    #[test]
    fn snapshot_round_trips_and_replay_is_deterministic() {
        let ops = [
            (create(&["a", "b", "c"]), 0),
            (relate(&[("a", "b"), ("b", "c")]), 1),
            (observe("a", &["o1", "o2"]), 1),
            (delete(&["b"]), 2),
            (observe("b", &["back"]), 1),
            (delete(&["c"]), 5),
        ];
        let mut g1 = Graph::new();
        let mut g2 = Graph::new();
        let r1 = run(&mut g1, &ops);
        g2.begin(false);
        let r2 = run(&mut g2, &ops);
        assert_eq!(r1, r2);
        assert_eq!(g1, g2);
        let touched = g2.finish();
        assert!(touched.entities.contains("c") && touched.relation_sources.contains("b"));
        let snap = g1.snapshot();
        let json = serde_json::to_string(&snap).unwrap();
        let back = Graph::from_snapshot(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back, g1);
        assert_eq!(back.incoming, g1.incoming);
        assert!(back.tombstone_file("c").is_some());
    }
}
