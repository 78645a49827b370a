//! Getting hold of a repository: finding (or creating) it, clearing what a killed writer left
//! behind, identifying it, locking it for one owner and writing the root commit of a new one.

use std::{
    fs,
    path::{Path, PathBuf},
};

use git2::{ObjectType, Oid, Repository, RepositoryInitOptions};

use super::{
    objects::{BLOB_MODE, COMMITTER, MAIN, NewObjects, TreeUpdates, commit_bytes, merge_tree},
    pack::{TMP_PACK_PREFIX, fsync, older_than, sync_ref, write_pack},
    read::{Identity, head_tree, identify, load_graph},
};
use crate::memory::{
    error::{ArchiveError, OpenError},
    graph::Graph,
    layout::{self, FORMAT_VERSION, Layout, META, Meta, OPS, README, README_TEXT},
    lock::OwnerLock,
};

/// Finds the repository at `path`: a bare repository, a clone with a work tree (its `.git`
/// is used) or, with `create`, a new bare repository if `path` does not exist or is an empty
/// directory. Never overwrites anything.
pub(crate) fn locate(path: &Path, create: bool) -> Result<Repository, OpenError> {
    let not_repo = |reason: String| OpenError::NotARepository {
        path: path.to_path_buf(),
        reason,
    };
    let empty_dir = path.is_dir()
        && fs::read_dir(path)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    if !path.exists() || empty_dir {
        if !create {
            return Err(not_repo("it does not exist or is empty".into()));
        }
        let mut opts = RepositoryInitOptions::new();
        opts.bare(true).initial_head("main").mkdir(true);
        return Repository::init_opts(path, &opts).map_err(|source| OpenError::Git {
            action: "initialise a bare repository",
            path: path.to_path_buf(),
            source,
        });
    }
    Repository::open(path).map_err(|e| not_repo(e.message().to_string()))
}

/// Removes git lock files a killed writer left behind (libgit2 never expires them, so every
/// later write would fail) and our unfinished packs. Only call while holding the owner lock.
pub(crate) fn clear_stale_locks(gitdir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for name in ["HEAD.lock", "index.lock", "packed-refs.lock", "config.lock"] {
        let p = gitdir.join(name);
        if p.is_file() {
            found.push(p);
        }
    }
    let mut dirs = vec![gitdir.join("refs")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "lock") {
                found.push(p);
            }
        }
    }
    // Packs a killed committer was writing: temporary files, and a pack renamed before its
    // index was (git only finds packs through their index, so neither is referenced).
    let pack_dir = gitdir.join("objects").join("pack");
    if let Ok(entries) = fs::read_dir(&pack_dir) {
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let orphan = name.starts_with("pack-")
                && name.ends_with(".pack")
                && !p.with_extension("idx").exists()
                && !p.with_extension("keep").exists();
            // git's own temporary files, from a fetch from an ssh peer that was stopped; a
            // git still running (bounded to minutes) is younger than this.
            let git_tmp = (name.starts_with("tmp_pack_") || name.starts_with("tmp_idx_"))
                && older_than(&p, std::time::Duration::from_secs(600));
            if name.starts_with(TMP_PACK_PREFIX) || orphan || git_tmp {
                found.push(p);
            }
        }
    }
    found.retain(|p| match fs::remove_file(p) {
        Ok(()) => {
            tracing::warn!(file = %p.display(), "cleared a file a killed writer left behind");
            true
        }
        Err(e) => {
            tracing::warn!(file = %p.display(), error = %e, "cannot clear a leftover file");
            false
        }
    });
    found
}

/// A repository found, locked and identified, with the state at its head.
pub(crate) struct Opened {
    pub gitdir: PathBuf,
    pub lock: OwnerLock,
    pub head: Oid,
    pub graph: Graph,
    /// The layout of the head commit's files.
    pub layout: Layout,
    /// The clock stamp of the head commit's last op (0 if it has none).
    pub hlc: u64,
}

/// Finds (or creates), locks, clears stale git locks, identifies and loads a repository.
pub(crate) fn open_locked(path: &Path) -> Result<Opened, OpenError> {
    let repo = locate(path, true)?;
    let gitdir = repo.path().to_path_buf();
    let lock = OwnerLock::acquire(&gitdir, path)?;
    clear_stale_locks(&gitdir);
    let corrupt = |reason: String| OpenError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let head = match identify(&repo, path)? {
        Identity::Ours { head } => head,
        Identity::Empty => {
            init_root(&gitdir).map_err(|e| corrupt(format!("cannot initialise: {e}")))?
        }
    };
    let tree = head_tree(&repo, head).map_err(corrupt)?;
    let (graph, meta) = load_graph(&repo, &tree).map_err(corrupt)?;
    let layout = meta.layout().map_err(corrupt)?;
    Ok(Opened {
        gitdir,
        lock,
        head,
        graph,
        layout,
        hlc: meta.hlc.unwrap_or(0),
    })
}

/// Writes the root commit of a new repository: README, `meta.json` at version 0, an empty
/// `ops.jsonl`, and points `HEAD` and `refs/heads/main` at it.
pub(super) fn init_root(gitdir: &Path) -> Result<Oid, ArchiveError> {
    let repo = Repository::open(gitdir).map_err(ArchiveError::git("open the repository"))?;
    let mut objects = NewObjects::default();
    let mut updates = TreeUpdates::new();
    for (name, bytes) in [
        (README, README_TEXT.as_bytes().to_vec()),
        (META, layout::pretty(&Meta::new(0))),
        (OPS, Vec::new()),
    ] {
        let id = objects.put(ObjectType::Blob, bytes)?;
        updates.push((name.as_bytes().to_vec(), false, Some((BLOB_MODE, id))));
    }
    let tree = objects.put(
        ObjectType::Tree,
        merge_tree(None, updates).unwrap_or_default(),
    )?;
    let now = crate::memory::hlc::now_ms();
    let commit = objects.put(
        ObjectType::Commit,
        commit_bytes(
            tree,
            None,
            (COMMITTER, now),
            (COMMITTER, now),
            &format!("Initialise the mcpfleet memory (format {FORMAT_VERSION}, empty graph)\n"),
        ),
    )?;
    write_pack(&repo, &objects)?;
    repo.reference(MAIN, commit, false, "mcpfleet-memory: init")
        .map_err(ArchiveError::git("create refs/heads/main"))?;
    repo.set_head(MAIN)
        .map_err(ArchiveError::git("point HEAD at refs/heads/main"))?;
    sync_ref(gitdir)?;
    fsync(&gitdir.join("HEAD"))?;
    // The skeleton libgit2 created (without fsync) must survive a power cut too.
    for dir in [
        gitdir.join("objects"),
        gitdir.join("refs"),
        gitdir.to_path_buf(),
    ] {
        fsync(&dir)?;
    }
    if let Some(parent) = gitdir.parent() {
        fsync(parent)?;
    }
    Ok(commit)
}
