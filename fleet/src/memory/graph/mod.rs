//! The knowledge graph and the one deterministic `apply` that the owner, every view, recovery
//! and verify share: replaying the same records always yields the same graph, tags included.
//! See the [module documentation](super) for the merge rules.
//!
//! Its parts: `results` are the shapes `apply` and the queries return, `data` the graph's
//! tagged state and its journal types, `journal` the change log (touched keys, undo) and the
//! primitive mutations that write it, `apply` the merge rules of every op, `query` the
//! reads, `tags` why each element exists, `merge` how other nodes' writes are applied,
//! `files` the conversion to and from the archive's files and snapshots.

mod apply;
mod data;
mod files;
mod journal;
mod merge;
#[cfg(test)]
mod merge_tests;
mod query;
mod results;
mod tags;
#[cfg(test)]
mod tests;

pub(crate) use data::Touched;
pub use data::{Graph, Snapshot};
pub use results::{AddedObservations, ApplyError, Deleted, KnowledgeGraph, OpResult, StateError};
