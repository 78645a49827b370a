//! The change log of a batch: which keys changed since [`Graph::begin`] (what the committer
//! rewrites) and, when asked, an undo log that [`Graph::rollback`] replays backwards. Every
//! mutation of the graph goes through the primitives here so that nothing escapes the log.

use std::{collections::HashSet, sync::Arc};

use super::data::{
    EntityState, Graph, Journal, Observation, Tags, Tombstone, Touched, TypeStamp, Undo,
    incoming_key,
};
use crate::memory::op::Relation;

impl Graph {
    /// Starts recording changes: the changed keys (what the committer needs) and, with
    /// `undo`, a log for [`Graph::rollback`].
    pub(crate) fn begin(&mut self, undo: bool) {
        self.journal = Some(Journal {
            undo: undo.then(Vec::new),
            version: self.version,
            nodes: undo.then(|| self.nodes.clone()),
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
            nodes,
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
                Undo::EntityType(name, prior, stamp) => {
                    if let Some(e) = self.entities.get_mut(&name) {
                        e.entity_type = prior;
                        e.type_stamp = stamp;
                    }
                }
                Undo::ObservationInserted(name, i) => {
                    if let Some(e) = self.entities.get_mut(&name) {
                        e.observations.remove(i);
                    }
                }
                Undo::ObservationRemoved(name, i, o) => {
                    if let Some(e) = self.entities.get_mut(&name) {
                        e.observations.insert(i, o);
                    }
                }
                Undo::ObservationTags(name, i, prior) => {
                    if let Some(o) = self
                        .entities
                        .get_mut(&name)
                        .and_then(|e| e.observations.items.get_mut(i))
                    {
                        o.tags = prior;
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
        if let Some(nodes) = nodes {
            self.nodes = nodes;
        }
        true
    }

    // ---- the only places that change state: each records its change in the journal ----

    pub(super) fn log(&mut self, name: Option<&str>, undo: impl FnOnce() -> Undo) {
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

    pub(super) fn insert_entity(&mut self, name: &str, state: EntityState) {
        self.log(Some(name), || Undo::EntityInserted(name.to_string()));
        self.entities.insert(name.to_string(), state);
    }

    pub(super) fn remove_entity(&mut self, name: &str) -> Option<(String, TypeStamp)> {
        let state = self.entities.remove(name)?;
        let kept = (state.entity_type.clone(), state.type_stamp.clone());
        self.log(Some(name), || Undo::EntityRemoved(name.to_string(), state));
        Some(kept)
    }

    pub(super) fn set_created(&mut self, name: &str, created: Tags) {
        let Some(e) = self.entities.get_mut(name) else {
            return;
        };
        let prior = std::mem::replace(&mut e.created, created);
        self.log(Some(name), || Undo::Created(name.to_string(), prior));
    }

    pub(super) fn set_entity_type(&mut self, name: &str, entity_type: &str, stamp: TypeStamp) {
        let Some(e) = self.entities.get_mut(name) else {
            return;
        };
        let prior = std::mem::replace(&mut e.entity_type, entity_type.to_string());
        let prior_stamp = std::mem::replace(&mut e.type_stamp, stamp);
        self.log(Some(name), || {
            Undo::EntityType(name.to_string(), prior, prior_stamp)
        });
    }

    /// Inserts an observation at its place: after every observation whose first tag orders
    /// before or with its own (on one node that is the end: stamps only grow).
    pub(super) fn insert_observation(&mut self, name: &str, text: &str, tags: Tags) {
        let me = self.me.clone();
        let Some(e) = self.entities.get_mut(name) else {
            return;
        };
        let o = Observation {
            text: Arc::from(text),
            tags,
        };
        let i = e.observations.place_of(&o, &me);
        e.observations.insert(i, o);
        self.log(Some(name), || {
            Undo::ObservationInserted(name.to_string(), i)
        });
    }

    /// Replaces an observation's tags (not with none: remove it instead); its place may
    /// then be wrong until [`Graph::reposition`].
    pub(super) fn set_observation_tags(&mut self, name: &str, i: usize, tags: Tags) {
        let Some(o) = self
            .entities
            .get_mut(name)
            .and_then(|e| e.observations.items.get_mut(i))
        else {
            return;
        };
        let prior = std::mem::replace(&mut o.tags, tags);
        self.log(Some(name), || {
            Undo::ObservationTags(name.to_string(), i, prior)
        });
    }

    /// Moves an observation whose tags changed to the place its first tag gives it.
    pub(super) fn reposition(&mut self, name: &str, text: &str) {
        let me = self.me.clone();
        let Some((i, o)) = self.entities.get(name).and_then(|e| {
            let i = e.observations.position(text)?;
            (!e.observations.in_place(i, &me)).then(|| (i, e.observations.items[i].clone()))
        }) else {
            return;
        };
        self.remove_observation(name, i);
        self.insert_observation(name, text, o.tags);
    }

    pub(super) fn remove_observation(&mut self, name: &str, i: usize) {
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

    pub(super) fn set_tombstone(&mut self, name: &str, t: Option<Tombstone>) {
        let prior = match t {
            Some(t) => self.tombstones.insert(name.to_string(), t),
            None => self.tombstones.remove(name),
        };
        self.log(Some(name), || Undo::Tombstone(name.to_string(), prior));
    }

    pub(super) fn set_relation(&mut self, rel: &Relation, tags: Option<Tags>) {
        let prior = match tags {
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
}
