//! The graph as the archive's files (one per entity, per relation source, per tombstone) and
//! as a [`Snapshot`](super::data::Snapshot): building them from the state and loading the
//! state back, with the consistency checks a loaded repository must pass.

use std::sync::Arc;

use super::{
    data::{
        EntityState, Graph, Observation, Observations, Snapshot, Tombstone, incoming_key,
        range_start,
    },
    results::StateError,
};
use crate::memory::{
    layout::{EntityFile, EntityVersions, RelationFile, TombstoneFile},
    op::Relation,
};

impl Graph {
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
