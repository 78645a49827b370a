//! Errors of the store's public API, each saying what happened to the data.

use std::{
    io,
    path::{Path, PathBuf},
};

use super::graph::ApplyError;
use super::op::InvalidOp;
use super::wal::WalError;

/// Why a memory repository cannot be opened (or verified). Nothing on disk is changed when
/// opening fails, except that a torn WAL tail may have been cut and stale git locks cleared.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path} is not a git repository ({reason}); nothing was changed")]
    NotARepository { path: PathBuf, reason: String },
    #[error(
        "{path} is a git repository but not an mcpfleet memory ({reason}); nothing was changed"
    )]
    NotOurs { path: PathBuf, reason: String },
    #[error("memory repository {path} is already owned by another process (pid {pid})")]
    Owned {
        path: PathBuf,
        /// The owner's pid as it wrote it into the lock file, or `unknown`.
        pid: String,
    },
    #[error("memory repository {path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "memory repository {path} holds the history of node {written:?}, not of node {given:?}: \
         open it as {written:?} (--memory-node-id {written}), or start node {given:?} on an \
         empty repository (it catches up from the peers)"
    )]
    OtherNode {
        path: PathBuf,
        written: String,
        given: String,
    },
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("git failed to {action} in {path}: {source}")]
    Git {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
}

impl OpenError {
    /// Maps an I/O error of `action` on `path` (for `map_err`).
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OpenError {
        wrap_io(action, path, |action, path, source| OpenError::Io {
            action,
            path,
            source,
        })
    }
}

/// The `map_err` closure that wraps an I/O error of `action` on `path` into an error type's
/// `Io` variant, built by `variant`: one body for every error type here with such a variant.
fn wrap_io<E>(
    action: &'static str,
    path: &Path,
    variant: fn(&'static str, PathBuf, io::Error) -> E,
) -> impl FnOnce(io::Error) -> E {
    let path = path.to_path_buf();
    move |source| variant(action, path, source)
}

/// Why a write was not acknowledged. Only `Ok(Ack)` means durable; every error but
/// [`WriteError::Unknown`] means the op was not applied (it has no version and nobody will ever
/// see it).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Refused before submission; the field is named.
    #[error("{0}")]
    Invalid(#[from] InvalidOp),
    /// Refused by the graph, e.g. `Entity with name X not found`.
    #[error("{0}")]
    Rejected(#[from] ApplyError),
    /// The WAL could not be written or synced (e.g. disk full); the batch was rolled back and
    /// the store keeps serving. Retrying later is safe.
    #[error("not written, nothing was applied: {0}")]
    Storage(String),
    /// A storage failure could not be undone; every write fails until the store is reopened
    /// (recovery then decides from the WAL). Reads keep working.
    #[error(
        "the memory owner stopped accepting writes after a storage failure it could not undo (reopen the store to recover): {0}"
    )]
    Poisoned(String),
    #[error("the memory store is closed")]
    Closed,
    /// Sent, but the answer never came (the connection to the owner was lost, or it did not
    /// answer in time): the write may be durable. Read before retrying.
    #[error("the write's outcome is unknown, it may be durable (read before retrying): {0}")]
    Unknown(String),
}

/// Why the git side could not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("git failed to {action}: {source}")]
    Git {
        action: &'static str,
        #[source]
        source: git2::Error,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "refs/heads/main was moved by someone else (expected {expected}, found {found}); the owner will not overwrite it"
    )]
    Moved { expected: String, found: String },
    #[error("a record does not apply to the archived graph: {0}")]
    Apply(#[from] ApplyError),
}

impl ArchiveError {
    pub(crate) fn git(action: &'static str) -> impl FnOnce(git2::Error) -> ArchiveError {
        move |source| ArchiveError::Git { action, source }
    }

    /// Maps an I/O error of `action` on `path` (for `map_err`).
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ArchiveError {
        wrap_io(action, path, |action, path, source| ArchiveError::Io {
            action,
            path,
            source,
        })
    }
}

/// Why closing did not end with everything in git. Acknowledged ops are never lost: what is
/// not committed is in the WAL and is committed by the next open.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error("the memory {0} thread panicked")]
    Panicked(&'static str),
    #[error(
        "acknowledged ops up to version {acked} are safe in the WAL but git has only up to {committed}; the next open commits the rest ({reason})"
    )]
    Uncommitted {
        acked: u64,
        committed: u64,
        reason: String,
    },
}

/// A wait for a version that did not arrive in time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[error("timed out waiting for version {wanted} (at {current})")]
pub struct Timeout {
    pub wanted: u64,
    pub current: u64,
}

/// Why a view could not take a batch of records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// Records are missing between the view's version and the batch: resubscribe.
    #[error("the view is at version {have} but the next record is {next}: records are missing")]
    Gap { have: u64, next: u64 },
    /// A record did not apply: the view is not a replica of this store.
    #[error("record {version} does not apply to the view: {source}")]
    Diverged {
        version: u64,
        #[source]
        source: ApplyError,
    },
}
