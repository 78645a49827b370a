//! The owner lock: a kernel lock on `<gitdir>/mcpfleet/owner.lock`, so exactly one process
//! writes a repository, and a killed owner (even `kill -9`) releases it with its last file
//! descriptor.

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, Write},
    path::{Path, PathBuf},
};

use super::error::OpenError;

/// How often, and how long apart, a lock held by this same process is tried again.
const SELF_RETRIES: u32 = 25;
const SELF_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Held for as long as a store (or verify) uses the repository.
#[derive(Debug)]
pub(crate) struct OwnerLock {
    _file: File,
}

/// Directory inside the git dir holding what is not history: WAL and lock.
pub(crate) fn state_dir(gitdir: &Path) -> PathBuf {
    gitdir.join("mcpfleet")
}

impl OwnerLock {
    /// Takes the lock or says who holds it. `repo` is the path shown in the error.
    pub fn acquire(gitdir: &Path, repo: &Path) -> Result<OwnerLock, OpenError> {
        let dir = state_dir(gitdir);
        fs::create_dir_all(&dir).map_err(OpenError::io("create", &dir))?;
        let path = dir.join("owner.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(OpenError::io("open", &path))?;
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(OpenError::io("lock", &path)(e));
                }
            }
            let mut text = String::new();
            let _ = file.rewind();
            let _ = file.read_to_string(&mut text);
            let pid = text.trim();
            // Held by this very process: a store here may just have closed while a child
            // process being spawned (between fork and exec) still shares the lock's file
            // description. That passes within moments; another owner does not.
            if pid == std::process::id().to_string() && tries < SELF_RETRIES {
                tries += 1;
                std::thread::sleep(SELF_RETRY_PAUSE);
                continue;
            }
            return Err(OpenError::Owned {
                path: repo.to_path_buf(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.to_string()
                },
            });
        }
        // Best effort: the pid only improves the message a second owner gets.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.sync_data();
        Ok(OwnerLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_second_owner_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = OwnerLock::acquire(dir.path(), dir.path()).unwrap();
        let err = OwnerLock::acquire(dir.path(), dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("already owned by another process")
                && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(dir.path().join("mcpfleet/owner.lock").is_file());
        drop(first);
        OwnerLock::acquire(dir.path(), dir.path()).unwrap();
    }
}
