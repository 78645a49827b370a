//! The graph as the archive's files (one per entity, per relation source, per tombstone) and
//! as a [`Snapshot`](super::data::Snapshot): building them from the state and loading the
//! state back, with the consistency checks a loaded repository must pass.

use std::sync::Arc;

use super::{
    data::{
        EntityState, Graph, Observation, Observations, Snapshot, Tombstone, TypeStamp,
        incoming_key, range_start,
    },
    results::StateError,
    tags,
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
                entity: (!e.created.is_empty()).then(|| tags::to_file(&e.created)),
                observations: e
                    .observations
                    .iter()
                    .map(|o| tags::to_file(&o.tags))
                    .collect(),
                type_hlc: e.type_stamp.hlc,
                type_node: e.type_stamp.node.as_ref().map(|n| n.to_string()),
            },
        })
    }

    /// The relations from `from`, sorted: the content of its relations file.
    pub(crate) fn relation_files_from(&self, from: &str) -> Vec<RelationFile> {
        self.relations
            .range(range_start(from)..)
            .take_while(|(r, _)| r.from == from)
            .map(|(r, t)| RelationFile {
                from: r.from.clone(),
                to: r.to.clone(),
                relation_type: r.relation_type.clone(),
                version: tags::to_file(t),
            })
            .collect()
    }

    pub(crate) fn tombstone_file(&self, name: &str) -> Option<TombstoneFile> {
        self.tombstones.get(name).map(|t| TombstoneFile {
            name: name.to_string(),
            entity_type: t.entity_type.clone(),
            type_hlc: t.type_stamp.hlc,
            type_node: t.type_stamp.node.as_ref().map(|n| n.to_string()),
            deleted: t.deleted,
        })
    }

    /// Adds an entity read from the archive; refuses what `apply` could never have produced.
    pub(crate) fn insert_entity_file(&mut self, f: EntityFile) -> Result<(), StateError> {
        let bad = |why: &str| Err(StateError(format!("entity {:?}: {why}", f.name)));
        if f.observations.len() != f.versions.observations.len() {
            return bad("observations and their versions differ in length");
        }
        let created = match &f.versions.entity {
            None => Default::default(),
            Some(t) => match tags::from_file(t) {
                Some(t) => t,
                None => return bad("an empty list of entity tags"),
            },
        };
        if created.is_empty() && f.observations.is_empty() {
            return bad("neither created nor observed");
        }
        if self.entities.contains_key(&f.name) || self.tombstones.contains_key(&f.name) {
            return bad("appears twice");
        }
        let mut observations = Observations::default();
        for (text, t) in f.observations.iter().zip(&f.versions.observations) {
            if observations.contains(text) {
                return bad("has a duplicate observation");
            }
            let Some(tags) = tags::from_file(t) else {
                return bad("an observation with an empty list of tags");
            };
            observations.push(Observation {
                text: Arc::from(text.as_str()),
                tags,
            });
        }
        self.entities.insert(
            f.name,
            EntityState {
                entity_type: f.entity_type,
                type_stamp: TypeStamp {
                    hlc: f.versions.type_hlc,
                    node: f.versions.type_node.map(|n| Arc::from(n.as_str())),
                },
                created,
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
        let Some(tags) = tags::from_file(&f.version) else {
            return Err(StateError(format!(
                "relation {r:?} has an empty list of tags"
            )));
        };
        self.incoming.insert(incoming_key(&r));
        self.relations.insert(r, tags);
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
                type_stamp: TypeStamp {
                    hlc: f.type_hlc,
                    node: f.type_node.map(|n| Arc::from(n.as_str())),
                },
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
                std::iter::once(tags::newest(&e.created))
                    .chain(e.observations.iter().map(|o| tags::newest(&o.tags)))
            })
            .chain(self.relations.values().map(tags::newest))
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

    /// Sets this node's id and the other nodes' merged versions after loading files.
    pub(crate) fn set_loaded_nodes(
        &mut self,
        node: &str,
        nodes: &std::collections::BTreeMap<String, u64>,
    ) {
        self.me = Arc::from(node);
        self.nodes = nodes
            .iter()
            .map(|(n, v)| (Arc::from(n.as_str()), *v))
            .collect();
    }

    /// The whole state with tags, for a view elsewhere to start from.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: self.version,
            node: self.me.to_string(),
            nodes: self
                .nodes
                .iter()
                .map(|(n, v)| (n.to_string(), *v))
                .collect(),
            entities: self
                .entities
                .keys()
                .filter_map(|n| self.entity_file(n))
                .collect(),
            relations: self
                .relations
                .iter()
                .map(|(r, t)| RelationFile {
                    from: r.from.clone(),
                    to: r.to.clone(),
                    relation_type: r.relation_type.clone(),
                    version: tags::to_file(t),
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
        g.set_loaded_nodes(&s.node, &s.nodes);
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
