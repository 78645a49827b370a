//! The reads of the official memory server over the graph: the whole graph, a
//! case-insensitive substring search and named nodes, with relations included only when both
//! ends are in the result.

use std::collections::BTreeSet;

use super::{
    data::{EntityState, Graph, range_start},
    results::KnowledgeGraph,
};
use crate::memory::op::Entity;

impl Graph {
    pub(super) fn entity_out(name: &str, e: &EntityState) -> Entity {
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
    pub(super) fn subgraph(&self, names: &BTreeSet<&str>) -> KnowledgeGraph {
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
}
