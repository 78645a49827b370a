//! Integrity check of a memory repository that is not open: every commit of `main` and
//! every tree and blob they reach is read with hash verification, the ops of every commit
//! are replayed from the root and each commit's files are compared with what its ops
//! produce, where the layout its `meta.json` states puts them (a file elsewhere, e.g. in the
//! wrong bucket, is reported by name; a commit that changes the layout must hold exactly the
//! replayed graph), the whole head tree is compared with the full replay, versions must be
//! consecutive, and the WAL past the head must be readable and apply. Each tree is read and
//! hash-checked once (a commit's data directories are loaded once and kept, see `trees`; the
//! checks of a commit's files are in `files`), so the time grows with the bytes of the
//! history, as `git fsck --full`'s does, not with ops x entities.

use std::{collections::HashSet, path::Path};

use git2::{Oid, Repository, Tree};
use serde::Serialize;

use super::archive::{self, Identity};
use super::error::OpenError;
use super::graph::Graph;
use super::layout::OPS;
use super::lock::{OwnerLock, state_dir};
use super::wal;

mod files;
mod trees;

use trees::Dirs;

/// Problems listed in full; beyond this they are only counted.
const MAX_PROBLEMS: usize = 100;

/// What [`verify`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Head commit of `refs/heads/main`.
    pub head: String,
    /// Version at the head commit.
    pub version: u64,
    pub commits: u64,
    pub ops: u64,
    pub entities: usize,
    pub relations: usize,
    pub tombstones: usize,
    /// Distinct commits, trees and blobs read and hash-checked.
    pub objects_checked: u64,
    /// Acknowledged ops in the WAL not yet in git (committed by the next open).
    pub wal_pending: u64,
    /// Facts worth knowing that are not damage (e.g. a torn WAL tail).
    pub notes: Vec<String>,
    /// Damage found; empty means the repository is sound.
    pub problems: Vec<String>,
    /// Problems beyond the ones listed.
    pub more_problems: usize,
}

impl VerifyReport {
    /// True when no damage was found (notes do not count).
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.more_problems += 1;
        }
    }
}

/// Verifies the repository at `path`, taking the owner lock (so it fails with
/// [`OpenError::Owned`] while a store has it open). Changes nothing on disk. `Err` means it
/// could not be checked at all (not a repository, not ours, locked); damage is reported in
/// [`VerifyReport::problems`].
pub fn verify(path: &Path) -> Result<VerifyReport, OpenError> {
    let repo = archive::locate(path, false)?;
    let gitdir = repo.path().to_path_buf();
    let _lock = OwnerLock::acquire(&gitdir, path)?;
    git2::opts::strict_hash_verification(true);
    let head = match archive::identify(&repo, path)? {
        Identity::Ours { head } => head,
        Identity::Empty => {
            return Err(OpenError::NotOurs {
                path: path.to_path_buf(),
                reason: "it is empty".into(),
            });
        }
    };
    let mut report = VerifyReport {
        head: head.to_string(),
        ..VerifyReport::default()
    };
    let replay = check_history(&repo, head, &mut report);
    report.version = replay.version();
    report.entities = replay.entity_count();
    report.relations = replay.relation_count();
    report.tombstones = replay.tombstone_count();
    check_wal(&state_dir(&gitdir).join("wal"), replay, &mut report);
    Ok(report)
}

/// Commits of `main` from the root, first parent only (the owner writes a straight line).
fn chain(repo: &Repository, head: Oid, report: &mut VerifyReport) -> Vec<Oid> {
    let mut out = Vec::new();
    let mut next = Some(head);
    while let Some(oid) = next {
        match repo.find_commit(oid) {
            Ok(c) => {
                if c.parent_count() > 1 {
                    report.problem(format!("commit {oid} is a merge; the owner never merges"));
                }
                next = c.parent_id(0).ok();
                out.push(oid);
            }
            Err(e) => {
                report.problem(format!("commit {oid} is unreadable: {}", e.message()));
                break;
            }
        }
    }
    out.reverse();
    out
}

/// Reads every tree and blob of a commit not read before (its data directories are already
/// loaded: they are only walked).
fn check_objects(
    repo: &Repository,
    dirs: &Dirs<'_>,
    visited: &mut HashSet<Oid>,
    report: &mut VerifyReport,
) {
    let mut stack: Vec<(String, Oid)> = Vec::new();
    for e in dirs.root.iter() {
        stack.push((e.name().unwrap_or("?").to_string(), e.id()));
    }
    while let Some((path, oid)) = stack.pop() {
        if !visited.insert(oid) {
            continue;
        }
        report.objects_checked += 1;
        let push_entries = |t: &Tree<'_>, stack: &mut Vec<(String, Oid)>| {
            // Most entries (untouched buckets, unchanged files) were checked with an
            // earlier commit: skip them before building their path.
            for e in t.iter().filter(|e| !visited.contains(&e.id())) {
                let name = e.name().unwrap_or("?");
                stack.push((format!("{path}/{name}"), e.id()));
            }
        };
        if let Some(t) = dirs.loaded(oid) {
            push_entries(t, &mut stack);
            continue;
        }
        match repo.find_object(oid, None) {
            Ok(obj) => {
                if let Some(t) = obj.as_tree() {
                    push_entries(t, &mut stack);
                } else if obj.as_blob().is_none() {
                    report.problem(format!("{path} ({oid}) is neither a tree nor a blob"));
                }
            }
            Err(e) => report.problem(format!("{path} ({oid}) is unreadable: {}", e.message())),
        }
    }
}

/// Replays every commit, checking objects, versions and files; returns the replayed graph.
fn check_history(repo: &Repository, head: Oid, report: &mut VerifyReport) -> Graph {
    let commits = chain(repo, head, report);
    let mut visited = HashSet::new();
    let mut replay = Graph::new();
    let mut prev: Option<Dirs<'_>> = None;
    let mut prev_layout = None;
    for (i, &oid) in commits.iter().enumerate() {
        report.commits += 1;
        report.objects_checked += 1;
        let Ok(commit) = repo.find_commit(oid) else {
            report.problem(format!("commit {oid} is unreadable"));
            return replay;
        };
        let tree = match commit.tree() {
            Ok(t) => t,
            Err(e) => {
                report.problem(format!("the tree of {oid} is unreadable: {}", e.message()));
                return replay;
            }
        };
        let dirs = Dirs::load(repo, tree, prev.as_ref());
        check_objects(repo, &dirs, &mut visited, report);
        let tree = &dirs.root;
        let (meta, layout) = match archive::read_meta(repo, tree)
            .map_err(|(_, e)| e)
            .and_then(|m| m.layout().map(|l| (m, l)))
        {
            Ok(m) => m,
            Err(e) => {
                report.problem(format!("commit {oid}: {e}"));
                return replay;
            }
        };
        // The node is named from the first commit that replicated on: before it, no write
        // of another node was merged and nothing depends on the name.
        if replay.node().is_empty()
            && let Some(node) = &meta.node
        {
            replay.set_node(node);
        }
        let ops_id = |t: &Tree<'_>| t.get_path(Path::new(OPS)).map(|e| e.id()).ok();
        let ops = if i > 0 && prev.as_ref().and_then(|p| ops_id(&p.root)) == ops_id(tree) {
            // The owner replaces ops.jsonl in every commit; this one was made by someone else.
            report.problem(format!(
                "commit {oid} was not written by the owner: it has no ops of its own"
            ));
            Vec::new()
        } else {
            match archive::commit_ops(repo, &commit) {
                Ok(ops) => ops,
                Err(e) => {
                    report.problem(format!("commit {oid}: {e}"));
                    return replay;
                }
            }
        };
        report.ops += ops.len() as u64;
        if i == 0 && (meta.version != 0 || !ops.is_empty()) {
            report.problem(format!(
                "root commit {oid} does not start an empty graph at version 0"
            ));
        }
        replay.begin(false);
        for r in &ops {
            if let Err(e) = replay.apply_record(r) {
                report.problem(format!("commit {oid}: op {}: {e}", r.version));
                return replay;
            }
        }
        let touched = replay.finish();
        if meta.version != replay.version() {
            report.problem(format!(
                "commit {oid}: meta.json says version {} but its ops end at {}",
                meta.version,
                replay.version()
            ));
        }
        let commit = files::Commit {
            oid,
            root: i == 0,
            layout,
            moved: prev_layout.is_some_and(|l| l != layout),
        };
        prev_layout = Some(layout);
        let mut problems = Vec::new();
        files::check(
            repo,
            prev.as_ref(),
            &dirs,
            &commit,
            &touched,
            &replay,
            &mut problems,
        );
        for p in problems {
            report.problem(p);
        }
        prev = Some(dirs);
    }
    if let Some(last) = &prev {
        match archive::load_graph(repo, &last.root) {
            Ok((loaded, _)) if loaded == replay => {}
            Ok(_) => report.problem(format!(
                "the head tree ({head}) differs from the replay of its history"
            )),
            Err(e) => report.problem(format!("the head tree ({head}) does not load: {e}")),
        }
    }
    replay
}

fn check_wal(dir: &Path, mut graph: Graph, report: &mut VerifyReport) {
    match wal::recover(dir, graph.version(), false) {
        Ok(r) => {
            report.wal_pending = r.records.len() as u64;
            if let Some((path, offset, bytes)) = r.torn {
                report.notes.push(format!(
                    "{} has a torn tail of {bytes} bytes at {offset} (never acknowledged; the next open cuts it off)",
                    path.display()
                ));
            }
            report.notes.extend(r.notes);
            for rec in &r.records {
                if let Err(e) = graph.apply_record(rec) {
                    report.problem(format!("WAL record {} does not apply: {e}", rec.version));
                    break;
                }
            }
        }
        Err(e) => report.problem(e.to_string()),
    }
}
