//! Making and reading a peer repository: a bare git repository that nodes push their
//! histories to, one `refs/heads/nodes/<id>` each. Made here rather than with `git init` so
//! that a node's image needs no git installed (an init container runs `fleet memory
//! init-peer`).

use std::path::Path;

use git2::{Repository, RepositoryInitOptions};

/// What [`init_peer`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRepo {
    /// True if this call created the repository.
    pub created: bool,
    /// Each node's id and the version its published head holds.
    pub nodes: Vec<(String, u64)>,
}

/// Errors of [`init_peer`].
#[derive(Debug, thiserror::Error)]
pub enum PeerRepoError {
    #[error(
        "{path}: exists and is not a git repository (an empty directory or a new path is made into one)"
    )]
    NotARepository { path: String },
    #[error("{path}: {source}")]
    Git {
        path: String,
        #[source]
        source: git2::Error,
    },
}

/// Opens the repository at `path`, or creates a bare one if `path` is missing or an empty
/// directory, and lists the node refs it holds.
pub fn init_peer(path: &Path) -> Result<PeerRepo, PeerRepoError> {
    let shown = path.display().to_string();
    let git = |source| PeerRepoError::Git {
        path: shown.clone(),
        source,
    };
    let empty = match std::fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => !path.exists(),
    };
    let (repo, created) = match Repository::open_bare(path) {
        Ok(repo) => (repo, false),
        Err(_) if empty => {
            let mut options = RepositoryInitOptions::new();
            options.bare(true).mkpath(true);
            match Repository::init_opts(path, &options) {
                Ok(repo) => (repo, true),
                // Several nodes starting at once may race to make it: if another made it
                // meanwhile, it opens now.
                Err(e) => {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    (Repository::open_bare(path).map_err(|_| git(e))?, false)
                }
            }
        }
        Err(_) => {
            // Or it is being made by another node right now.
            std::thread::sleep(std::time::Duration::from_millis(200));
            match Repository::open_bare(path) {
                Ok(repo) => (repo, false),
                Err(_) => return Err(PeerRepoError::NotARepository { path: shown }),
            }
        }
    };
    let mut nodes = Vec::new();
    for r in repo.references_glob("refs/heads/nodes/*").map_err(git)? {
        let r = r.map_err(git)?;
        let (Ok(name), Some(oid)) = (r.name(), r.target()) else {
            continue;
        };
        let node = name.trim_start_matches("refs/heads/nodes/").to_string();
        let version = super::version_at(&repo, oid).unwrap_or(0);
        nodes.push((node, version));
    }
    nodes.sort();
    Ok(PeerRepo { created, nodes })
}
