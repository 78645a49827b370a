//! What applying an op and querying the graph return, in the official memory server's output
//! shapes, and the two error types of the graph (a refused op, an inconsistent stored state).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::memory::op::{Entity, Relation};

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
    #[error("node {node:?}'s version {version} is merged already")]
    AlreadyMerged { node: String, version: u64 },
    #[error("a write of node {node:?} cannot be merged into that node's own memory")]
    OwnNode { node: String },
    #[error("a write of node {merged:?} must wait for node {node:?}'s version {version}")]
    NotReady {
        node: String,
        version: u64,
        merged: String,
    },
}

/// A snapshot that cannot become a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid graph state: {0}")]
pub struct StateError(pub String);
