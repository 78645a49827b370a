//! Why the log cannot be read back, with enough in the message for an operator to act: the
//! file, the byte, the acknowledged versions at stake and the two ways out (a copy of the log,
//! or `fleet memory salvage-wal`).

use std::{io, path::PathBuf};

/// Why the WAL cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("cannot read WAL {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("WAL {path} is damaged at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Acknowledged writes that git does not hold cannot be read back.
    #[error(
        "WAL {path} is damaged at byte {offset} ({reason}): acknowledged versions {} are not in git (git holds up to version {head}). Nothing was changed. Restore {} from a copy, or accept losing versions {first} and later with `fleet memory salvage-wal --memory-repo {}`",
        versions(*first, *last), path.parent().map_or(path.as_path(), |p| p).display(), repo.display()
    )]
    Damaged {
        path: PathBuf,
        offset: u64,
        reason: String,
        /// First and (if any good frame names it) last version that cannot be recovered.
        first: u64,
        last: Option<u64>,
        head: u64,
        /// Bytes of `path` that hold whole batches before the damage (what salvaging keeps).
        keep: u64,
        repo: PathBuf,
    },
}

fn versions(first: u64, last: Option<u64>) -> String {
    match last {
        Some(last) if last > first => format!("{first}..={last}"),
        Some(_) => format!("{first}"),
        None => format!("from {first} on"),
    }
}
