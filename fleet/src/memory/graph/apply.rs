//! The merge rules: [`Graph::apply`] and one function per op kind, deterministic in (state,
//! op, version, seen, stamp). Add wins, deletes remove only what the deleter had seen (see
//! the [memory module documentation](crate::memory)).

use std::{collections::BTreeSet, sync::Arc};

use super::{
    data::{
        EntityState, Graph, Observation, Observations, Tags, Tombstone, TypeStamp, range_start,
    },
    results::{AddedObservations, ApplyError, Deleted, OpResult},
    tags::{self, Tag},
};
use crate::memory::op::{
    AddObservations, CreateEntities, CreateRelations, DeleteEntities, DeleteObservations,
    DeleteRelations, DotRef, Entity, Op, Record, Relation, Removal,
};

/// Splits `tags` into those added at or before `seen` (removed) and the rest (kept).
fn split(tags: &Tags, seen: u64) -> (Tags, Tags) {
    tags.iter().cloned().partition(|t| t.local <= seen)
}

impl Graph {
    /// Applies `op` as version `version` written by someone whose view was at `seen`
    /// (clamped below `version`), without a stamp. Deterministic in (state, op, version,
    /// seen). A refused op changes nothing and the graph stays at its version.
    pub fn apply(&mut self, op: &Op, version: u64, seen: u64) -> Result<OpResult, ApplyError> {
        self.apply_at(op, version, seen, 0)
    }

    /// Applies a record as the owner ordered it (its stamp included).
    pub fn apply_record(&mut self, r: &Record) -> Result<OpResult, ApplyError> {
        self.apply_at(&r.op, r.version, r.seen, r.hlc)
    }

    /// Applies `op` as version `version`, seen `seen`, stamped `hlc`.
    pub fn apply_at(
        &mut self,
        op: &Op,
        version: u64,
        seen: u64,
        hlc: u64,
    ) -> Result<OpResult, ApplyError> {
        if version != self.version + 1 {
            return Err(ApplyError::OutOfOrder {
                current: self.version,
                version,
            });
        }
        self.removed.clear();
        let seen = seen.min(version - 1);
        let tag = Tag::here(version, hlc);
        let result = match op {
            Op::CreateEntities(a) => OpResult::CreatedEntities(self.create_entities(a, &tag)),
            Op::CreateRelations(a) => OpResult::CreatedRelations(self.create_relations(a, &tag)),
            Op::AddObservations(a) => {
                OpResult::AddedObservations(self.add_observations(a, &tag, seen)?)
            }
            Op::DeleteEntities(a) => OpResult::Deleted(self.delete_entities(a, version, seen)),
            Op::DeleteObservations(a) => {
                OpResult::Deleted(self.delete_observations(a, version, seen))
            }
            Op::DeleteRelations(a) => OpResult::Deleted(self.delete_relations(a, seen)),
            Op::Merged(m) => OpResult::Deleted(self.merge(m, version)?),
        };
        self.version = version;
        Ok(result)
    }

    /// What the last op applied removed, as dots other nodes can find: empty unless it was
    /// a delete.
    pub fn take_removed(&mut self) -> Vec<Removal> {
        std::mem::take(&mut self.removed)
    }

    /// The dot other nodes know a tag by ("" for this node: the record's origin).
    pub(super) fn dot_ref(t: &Tag) -> DotRef {
        match &t.from {
            None => DotRef(String::new(), t.local),
            Some(d) => DotRef(d.node.to_string(), d.version),
        }
    }

    pub(super) fn note_removed(
        &mut self,
        removal: impl FnOnce(Vec<DotRef>) -> Removal,
        gone: &Tags,
    ) {
        if !gone.is_empty() {
            self.removed
                .push(removal(gone.iter().map(Self::dot_ref).collect()));
        }
    }

    pub(super) fn create_entities(&mut self, a: &CreateEntities, tag: &Tag) -> Vec<Entity> {
        let mut created = Vec::new();
        let mut index = 0;
        for e in &a.entities {
            if self.entities.contains_key(&e.name) {
                continue;
            }
            let mut observations = Observations::default();
            for text in &e.observations {
                if !observations.contains(text) {
                    observations.push(Observation {
                        text: Arc::from(text.as_str()),
                        tags: tags::one(tag.at(index)),
                    });
                    index += 1;
                }
            }
            let mut entity_type = e.entity_type.clone();
            let mut type_stamp = TypeStamp {
                hlc: tag.hlc,
                node: tag.from.as_ref().map(|d| d.node.clone()),
            };
            if let Some(t) = self.tombstones.get(&e.name).cloned() {
                // A type from a create stamped later (another node's clock ahead of this
                // one's) still wins, as it does on the nodes that merge this create.
                if self.stamp_key(&t.type_stamp) > self.stamp_key(&type_stamp) {
                    (entity_type, type_stamp) = (t.entity_type, t.type_stamp);
                }
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
                    entity_type,
                    type_stamp,
                    created: tags::one(tag.clone()),
                    observations,
                },
            );
        }
        created
    }

    pub(super) fn create_relations(&mut self, a: &CreateRelations, tag: &Tag) -> Vec<Relation> {
        let mut created = Vec::new();
        for r in &a.relations {
            if self.relations.contains_key(r) {
                continue;
            }
            self.set_relation(r, Some(tags::one(tag.clone())));
            created.push(r.clone());
        }
        created
    }

    pub(super) fn add_observations(
        &mut self,
        a: &AddObservations,
        tag: &Tag,
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
        let mut index = 0;
        for o in &a.observations {
            let name = o.entity_name.as_str();
            let mut added = Vec::new();
            if !self.entities.contains_key(name) && !o.contents.is_empty() {
                // Add wins over a delete the writer had not seen: the entity comes back with
                // its type and only the new observations.
                self.revive(name);
            }
            for text in &o.contents {
                let new = self
                    .entities
                    .get(name)
                    .is_some_and(|e| !e.observations.contains(text));
                if new {
                    self.insert_observation(name, text, tags::one(tag.at(index)));
                    index += 1;
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

    /// Brings a deleted entity back, empty, with the type it had (none if it never existed
    /// here: only a write from another node can name such an entity).
    pub(super) fn revive(&mut self, name: &str) {
        let (entity_type, type_stamp) = match self.tombstones.get(name).cloned() {
            Some(t) => {
                self.set_tombstone(name, None);
                (t.entity_type, t.type_stamp)
            }
            None => (String::new(), TypeStamp::default()),
        };
        self.insert_entity(
            name,
            EntityState {
                entity_type,
                type_stamp,
                created: Tags::new(),
                observations: Observations::default(),
            },
        );
    }

    /// Removes the entity if nothing keeps it, leaving a tombstone.
    pub(super) fn settle(&mut self, name: &str, version: u64, deleted: &mut Deleted) {
        if self.entities.get(name).is_some_and(EntityState::is_empty)
            && let Some((entity_type, type_stamp)) = self.remove_entity(name)
        {
            self.set_tombstone(
                name,
                Some(Tombstone {
                    entity_type,
                    type_stamp,
                    deleted: version,
                }),
            );
            deleted.entities += 1;
        }
    }

    pub(super) fn remove_relation(&mut self, r: &Relation, seen: u64, deleted: &mut Deleted) {
        let Some(tags) = self.relations.get(r) else {
            return;
        };
        let (gone, kept) = split(tags, seen);
        self.note_removed(
            |dots| Removal::Relation {
                relation: r.clone(),
                dots,
            },
            &gone,
        );
        if kept.is_empty() {
            self.set_relation(r, None);
            deleted.relations += 1;
        } else {
            if !gone.is_empty() {
                self.set_relation(r, Some(kept));
            }
            deleted.kept += 1;
        }
    }

    /// Removes the observation's tags added at or before `seen`, and the observation if none
    /// is left. Returns its text if it kept some tags but lost others: its place may have
    /// changed ([`Graph::reposition`] it once the indexes no longer matter).
    pub(super) fn remove_observation_seen(
        &mut self,
        name: &str,
        i: usize,
        seen: u64,
        deleted: &mut Deleted,
    ) -> Option<String> {
        let o = self
            .entities
            .get(name)
            .and_then(|e| e.observations.items.get(i))?;
        let text = o.text.to_string();
        let (gone, kept) = split(&o.tags, seen);
        self.note_removed(
            |dots| Removal::Observation {
                entity: name.to_string(),
                text,
                dots,
            },
            &gone,
        );
        deleted.kept += usize::from(!kept.is_empty());
        if kept.is_empty() {
            self.remove_observation(name, i);
            deleted.observations += 1;
            None
        } else if gone.is_empty() {
            None
        } else {
            let text = self
                .entities
                .get(name)?
                .observations
                .items
                .get(i)?
                .text
                .to_string();
            self.set_observation_tags(name, i, kept);
            Some(text)
        }
    }

    pub(super) fn delete_entities(
        &mut self,
        a: &DeleteEntities,
        version: u64,
        seen: u64,
    ) -> Deleted {
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
            let (gone, kept) = split(&e.created, seen);
            let count = e.observations.len();
            if !e.created.is_empty() {
                self.note_removed(
                    |dots| Removal::Entity {
                        name: name.clone(),
                        dots,
                    },
                    &gone,
                );
                if !kept.is_empty() {
                    deleted.kept += 1;
                }
                if !gone.is_empty() {
                    self.set_created(name, kept);
                }
            }
            // From the newest down, so each removal leaves the indexes still to visit alone
            // and the undo log re-inserts at the right places.
            let mut moved = Vec::new();
            for i in (0..count).rev() {
                moved.extend(self.remove_observation_seen(name, i, seen, &mut deleted));
            }
            for text in moved {
                self.reposition(name, &text);
            }
            self.settle(name, version, &mut deleted);
        }
        deleted
    }

    pub(super) fn delete_observations(
        &mut self,
        a: &DeleteObservations,
        version: u64,
        seen: u64,
    ) -> Deleted {
        let mut deleted = Deleted::default();
        for d in &a.deletions {
            let name = d.entity_name.as_str();
            if !self.entities.contains_key(name) {
                continue;
            }
            for text in &d.observations {
                let found = self
                    .entities
                    .get(name)
                    .and_then(|e| e.observations.position(text));
                if let Some(i) = found
                    && let Some(text) = self.remove_observation_seen(name, i, seen, &mut deleted)
                {
                    self.reposition(name, &text);
                }
            }
            self.settle(name, version, &mut deleted);
        }
        deleted
    }

    pub(super) fn delete_relations(&mut self, a: &DeleteRelations, seen: u64) -> Deleted {
        let mut deleted = Deleted::default();
        for r in &a.relations {
            self.remove_relation(r, seen, &mut deleted);
        }
        deleted
    }
}
