//! The git side: a bare (or cloned) repository whose `refs/heads/main` holds the graph after
//! every committed batch (layout in [`super::layout`]). This module finds and identifies the
//! repository, initialises a new one, loads the state at a commit, and turns batches of
//! acknowledged records into commits.
//!
//! A commit is made durable in the order that makes a crash harmless: its new objects
//! (blobs, trees, commit) are written as one packfile with its index, each fsynced under a
//! temporary name and renamed, then the pack directory is fsynced; only then is
//! `refs/heads/main` moved by compare-and-swap from the previous commit (libgit2, under the
//! ref's lock file) and the ref file and its directory fsynced. The WAL is trimmed only up
//! to what such a durable commit holds.
//!
//! Objects are built and packed here, not through libgit2's object writer: that path
//! rescans the pack directory for every new object, deltifies large trees and re-hashes
//! everything, which measured 5-10x slower on the two cores that also acknowledge writes.
//! libgit2 reads (with hash verification), moves the ref and opens repositories. One pack
//! per commit; packs are merged geometrically by verbatim copy, so their number stays small
//! (history is not delta-compressed; `git gc` on a backup clone does that if space matters).
//!
//! Its parts: `objects` builds git objects (trees, commits) and holds the names the archive
//! writes under, `pack` writes them as a durable packfile, `consolidate` keeps the number
//! of packs small, `copy` copies objects into another repository (publishing to a peer), `read` loads what a commit holds, `tree` builds a commit's tree in the layout, `open` finds, locks and initialises a
//! repository, `writer` is the [`Archive`] that turns batches into commits.

mod consolidate;
mod copy;
mod objects;
mod open;
mod pack;
mod read;
#[cfg(test)]
mod tests;
mod tree;
mod writer;

pub(crate) use consolidate::{consolidate_packs, pack_count};
pub(crate) use copy::copy_objects;
pub(crate) use objects::{MAIN, git_order};
pub(crate) use open::{locate, open_locked};
pub(crate) use pack::{older_than, sync_named_ref};
pub(crate) use read::{Identity, commit_ops, foreign_commit_ops, identify, load_graph, read_meta};
pub use writer::{Archive, CommitInfo};
