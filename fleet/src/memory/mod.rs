//! Shared memory for the fleet: one knowledge graph (the data model of the official MCP
//! memory server) that every server reads and writes, persisted in a git repository, with no
//! acknowledged write ever lost.
//!
//! # How a write becomes durable
//! One owner thread serialises writes. It takes every queued request (group commit), applies
//! each to the graph, appends the records to a write-ahead log, runs one `fdatasync`, and
//! only then applies them to the fleet's one [`View`] (every server reads from it: in task
//! mode directly, in process mode through the owner's socket, see [`remote`]), acknowledges
//! the writers ([`Ack`]) and passes the batch on. If the log cannot be written nobody in the batch is acknowledged and the batch is
//! rolled back. A committer thread turns acknowledged batches into git commits (one pretty
//! JSON file per entity, so `git log -p` reads as a change log, see [`layout`]), at most one
//! per `commit_interval`, taking everything pending when it lags; the log is trimmed only up
//! to a commit whose pack and ref are fsynced. A kernel lock makes one process the owner;
//! recovery at open replays the log past the last commit.
//!
//! # Versions
//! The owner gives every accepted op the next version (1, 2, 3 ...); this total order is the
//! apply order. Applying is a deterministic function of (graph, op, version, seen), so
//! replaying the log (or `ops.jsonl` of every commit) reproduces the graph exactly, tags
//! included. A refused op takes no version.
//!
//! # Merge semantics (add wins, observed remove)
//! Every element (an entity's existence, each observation, each relation) is tagged with the
//! version of the op that added it. Every write carries `seen`: the version of the writer's
//! view when it decided to write (clamped below the op's own version).
//!
//! - **Deletes remove only what the deleter had seen**: elements with tag <= `seen`.
//!   Elements added by ops the deleter had not seen survive (reported as `kept`).
//! - **`delete_entities`** removes the entity's existence, its observations and the relations
//!   from and to it, each under that rule (relations of a name go even if no such entity
//!   exists, as officially). If an observation added after `seen` survives, the entity stays
//!   with only those observations. Once nothing is left the entity is gone and a tombstone
//!   remembers its type and the delete's version.
//! - **`create_entities`** of a name that exists (in any form) changes nothing and is not in
//!   the result, as officially; of a deleted name it creates a new entity (tombstone gone).
//!   The first of duplicate names within one op wins.
//! - **`create_relations`** adds missing relations; existing ones are ignored (unchanged tag).
//!   Relations may name entities that do not exist, as officially.
//! - **`add_observations`** appends observations not already present (exact text); present
//!   ones are ignored and keep their tag. Add-wins protects what an op actually added (what
//!   its result lists): an op that found an element present added nothing, so a concurrent
//!   delete of that element still removes it.
//!   If an entry names an entity that does not exist, the whole op is refused with
//!   `Entity with name X not found` (nothing applied, no version taken) **unless** the entity
//!   was deleted by an op the writer had not seen (delete version > `seen`): then add wins and
//!   the entity comes back with the type it had and only the new observations. This is the
//!   one surprise of the model: an `add_observations` racing a `delete_entities` resurrects the
//!   entity with just the new observation.
//! - **`delete_observations`** removes matching observations under the rule; unknown
//!   entities and texts are ignored, as officially.
//! - **`delete_relations`** removes matching relations under the rule.
//! - **`entityType`** is a last-writer-wins register ordered by version; since a create of an
//!   existing name is ignored, it changes only when an entity is (re)created.
//!
//! # Across nodes
//! With peers ([`replica`]) each node also merges the other nodes' writes. An element's tag is
//! then a *set* of adds (one per node that added it, see `graph/tags.rs`); local deletes remove
//! the adds at or before `seen` as above, and a write of another node arrives as a `merged`
//! record carrying what it did ([`op::Effect`]): its adds join the element's set, its deletes
//! take away exactly the adds their writer removed. `entityType` is then last-writer-wins by
//! (hybrid logical clock stamp, node id) over every create, and observations are ordered by
//! the (stamp, node, version, place in the write) of their first add. Each node's writes merge
//! in their order and after what their writer had seen, so every node ends with the same graph
//! (`graph/merge_tests.rs` checks it over random writes and delivery orders).
//!
//! Reads (`read_graph`, `search_nodes`, `open_nodes`) follow the official server: search is a
//! case-insensitive substring match over name, type and observations, and relations are
//! included only when both ends are in the result. Entities come in name order,
//! observations in insertion order, relations in (from, to, relationType) order.
//!
//! # Files
//! The repository (bare is recommended; a non-bare clone works and its work tree is left
//! alone) holds the history; `<gitdir>/mcpfleet/` holds what is not history: `owner.lock`
//! and `wal/<first version>.wal2`. `git clone --bare` of the repository is a complete backup
//! of everything committed; [`Store::open`] on such a clone restores it.

mod access;
pub mod archive;
mod committer;
pub mod effect;
pub mod error;
pub mod graph;
pub mod history;
pub mod hlc;
pub mod layout;
mod lock;
pub mod op;
mod owner;
pub mod read;
pub mod remote;
pub mod replica;
mod stats;
mod store;
pub mod verify;
pub mod view;
pub mod wal;

pub use access::Memory;
pub use archive::{Archive, CommitInfo};
pub use error::{ArchiveError, CloseError, OpenError, Timeout, ViewError, WriteError};
pub use graph::{
    AddedObservations, ApplyError, Deleted, Graph, KnowledgeGraph, OpResult, Snapshot,
};
pub use history::HistoryEntry;
pub use op::{
    AddObservations, CreateEntities, CreateRelations, DeleteEntities, DeleteObservations,
    DeleteRelations, Entity, InvalidOp, ObservationAddition, ObservationDeletion, Op, Record,
    Relation,
};
pub use owner::Ack;
pub use read::{MinVersion, Query, ReadAnswer, ReadError};
pub use stats::{LagStats, MemoryStats};
pub use store::{MemoryHandle, Store, StoreOptions};
pub use verify::{VerifyReport, verify};
pub use view::View;
pub use wal::WalFaults;

#[cfg(test)]
mod test_ops;
#[cfg(test)]
mod tests;
