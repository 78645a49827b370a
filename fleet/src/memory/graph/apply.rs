//! The merge rules: [`Graph::apply`] and one function per op kind, deterministic in (state,
//! op, version, seen). Add wins, deletes remove only what the deleter had seen (see the
//! [memory module documentation](crate::memory)).

use std::{collections::BTreeSet, sync::Arc};

use super::{
    data::{EntityState, Graph, Observation, Observations, Tombstone, range_start},
    results::{AddedObservations, ApplyError, Deleted, OpResult},
};
use crate::memory::op::{
    AddObservations, CreateEntities, CreateRelations, DeleteEntities, DeleteObservations,
    DeleteRelations, Entity, Op, Relation,
};

impl Graph {
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

    pub(super) fn create_entities(&mut self, a: &CreateEntities, version: u64) -> Vec<Entity> {
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

    pub(super) fn create_relations(&mut self, a: &CreateRelations, version: u64) -> Vec<Relation> {
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

    pub(super) fn add_observations(
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
    pub(super) fn settle(&mut self, name: &str, version: u64, deleted: &mut Deleted) {
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

    pub(super) fn remove_relation(&mut self, r: &Relation, seen: u64, deleted: &mut Deleted) {
        match self.relations.get(r) {
            Some(&tag) if tag <= seen => {
                self.set_relation(r, None);
                deleted.relations += 1;
            }
            Some(_) => deleted.kept += 1,
            None => {}
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

    pub(super) fn delete_relations(&mut self, a: &DeleteRelations, seen: u64) -> Deleted {
        let mut deleted = Deleted::default();
        for r in &a.relations {
            self.remove_relation(r, seen, &mut deleted);
        }
        deleted
    }
}
