//! A peer repository on a path (a local or shared volume): publishing this node's history to
//! it and reading the other nodes' heads from it, with git's own objects and refs but not
//! libgit2's transport (see [`archive::copy_objects`] for why). The other nodes' histories
//! are read where they are published, not fetched into this repository: merging needs only
//! their writes, and a copy of every other node's history per node cost a third of the
//! nodes' CPU and as much disk again as the memory itself.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use git2::{ObjectType, Oid, Repository, Tree};

use super::node::NodeId;
use crate::memory::archive;

/// Packs a peer repository may hold before they are merged (each publish adds one).
const MAX_PEER_PACKS: usize = 32;
/// A lock on merging a peer's packs older than this was left by a killed node.
const STALE_LOCK: Duration = Duration::from_secs(120);
/// Temporary packs older than this in a peer were left by a killed node.
const STALE_TMP: Duration = Duration::from_secs(3600);
const LOCK: &str = "mcpfleet-merge-packs.lock";

/// The directory a peer URL names: a path or a `file://` URL.
pub(super) fn peer_dir(url: &str) -> PathBuf {
    PathBuf::from(url.strip_prefix("file://").unwrap_or(url))
}

/// Opens the peer repository at `url` (which must exist: `fleet memory init-peer` makes a
/// bare one; a clone with a working tree works too).
pub(super) fn open(url: &str) -> Result<Repository, String> {
    Repository::open(peer_dir(url)).map_err(|e| e.message().to_string())
}

/// Drops the copies of other nodes' refs that no peer over ssh of this run fetches
/// (`refs/peers/<slot>/*`; earlier builds fetched from every peer) and the ref earlier
/// builds pushed from: nothing reads them any more.
pub(super) fn forget_fetched(repo: &Repository, keep: &[String]) {
    let Ok(refs) = repo.references_glob("refs/peers/*") else {
        return;
    };
    let mut names: Vec<String> = refs
        .flatten()
        .filter_map(|r| r.name().ok().map(str::to_string))
        .filter(|n| {
            let slot = n["refs/peers/".len()..]
                .split('/')
                .next()
                .unwrap_or_default();
            !keep.iter().any(|k| k == slot)
        })
        .collect();
    names.push("refs/mcpfleet/published".into());
    for name in names {
        if let Ok(mut r) = repo.find_reference(&name) {
            let _ = r.delete();
        }
    }
}

/// The ref a node publishes its history on.
pub(super) fn node_ref(node: &str) -> String {
    format!("refs/heads/nodes/{node}")
}

/// Every node's published head at the peer.
pub(super) fn heads(peer: &Repository) -> Result<Vec<(String, Oid)>, String> {
    refs_under(peer, &node_ref(""))
}

/// The refs of `repo` under `prefix`, by the rest of their names, with what they point at.
pub(super) fn refs_under(repo: &Repository, prefix: &str) -> Result<Vec<(String, Oid)>, String> {
    let mut out = Vec::new();
    for r in repo
        .references_glob(&format!("{prefix}*"))
        .map_err(|e| e.message().to_string())?
        .flatten()
    {
        if let (Ok(name), Some(oid)) = (r.name(), r.target()) {
            out.push((name.trim_start_matches(prefix).to_string(), oid));
        }
    }
    Ok(out)
}

/// Why a publish did not happen.
#[derive(Debug)]
pub(super) enum PublishError {
    /// The peer's ref for this node is not an ancestor of `head`.
    Refused(String),
    Failed(String),
}

/// Publishes `head` on `refs/heads/nodes/<node>` at the peer, fast-forward only: copies the
/// objects the peer's history of this node lacks as one durable pack, then moves the ref by
/// compare-and-swap and makes it durable. Returns the objects copied.
pub(super) fn publish(
    repo: &Repository,
    peer: &Repository,
    node: &NodeId,
    head: Oid,
) -> Result<usize, PublishError> {
    let name = node_ref(node.as_str());
    let failed = |e: git2::Error| PublishError::Failed(e.message().to_string());
    let old = match peer.refname_to_id(&name) {
        Ok(oid) => Some(oid),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(failed(e)),
    };
    if old == Some(head) {
        // Moved by an earlier round whose fsync may have failed.
        archive::sync_named_ref(peer.path(), &name)
            .map_err(|e| PublishError::Failed(e.to_string()))?;
        return Ok(0);
    }
    if let Some(old) = old {
        let ahead =
            repo.find_commit(old).is_ok() && repo.graph_descendant_of(head, old).map_err(failed)?;
        if !ahead {
            return Err(PublishError::Refused(format!(
                "its head there, {old}, is not in this node's history"
            )));
        }
    }
    // Objects are copied past what the peer's ref holds, which assumes the peer holds all of
    // that history; a peer that lost it (pruned, refs restored without their packs) gets
    // everything again rather than a ref to missing objects.
    let held = match old {
        Some(old) if peer.odb().map_err(failed)?.exists(old) => Some(old),
        _ => None,
    };
    let oids = new_objects(repo, head, held).map_err(failed)?;
    let copied = archive::copy_objects(repo, peer.path(), &oids)
        .map_err(|e| PublishError::Failed(e.to_string()))?;
    let msg = "mcpfleet: publish";
    let moved = match old {
        Some(old) => peer.reference_matching(&name, head, true, old, msg),
        None => peer.reference(&name, head, false, msg),
    };
    if let Err(e) = moved {
        return Err(match e.code() {
            git2::ErrorCode::Exists | git2::ErrorCode::Modified => PublishError::Refused(format!(
                "its ref moved while this node published ({})",
                e.message()
            )),
            _ => failed(e),
        });
    }
    archive::sync_named_ref(peer.path(), &name).map_err(|e| PublishError::Failed(e.to_string()))?;
    Ok(copied)
}

/// The objects of `head`'s history that the history at `old` lacks: the new commits, and for
/// each the trees and blobs that differ from its parent's (the parent's are either at the
/// peer or new too, so nothing is missed). An object that reappears after it was replaced
/// (a value set back) is copied again, which git does not mind.
fn new_objects(repo: &Repository, head: Oid, old: Option<Oid>) -> Result<Vec<Oid>, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(head)?;
    if let Some(old) = old {
        walk.hide(old)?;
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        out.push(commit.id());
        let base = match commit.parent(0) {
            Ok(parent) => Some(parent.tree()?),
            Err(_) => None,
        };
        changed(repo, &commit.tree()?, base.as_ref(), &mut out, &mut seen)?;
    }
    Ok(out)
}

/// Adds `tree` and what under it differs from `base` (by entry name) to `out`.
fn changed(
    repo: &Repository,
    tree: &Tree<'_>,
    base: Option<&Tree<'_>>,
    out: &mut Vec<Oid>,
    seen: &mut HashSet<Oid>,
) -> Result<(), git2::Error> {
    if base.is_some_and(|b| b.id() == tree.id()) || !seen.insert(tree.id()) {
        return Ok(());
    }
    out.push(tree.id());
    for entry in tree.iter() {
        let before = base.and_then(|b| b.get_name_bytes(entry.name_bytes()));
        if before.as_ref().is_some_and(|b| b.id() == entry.id()) {
            continue;
        }
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = repo.find_tree(entry.id())?;
                let old = match before.filter(|b| b.kind() == Some(ObjectType::Tree)) {
                    Some(b) => Some(repo.find_tree(b.id())?),
                    None => None,
                };
                changed(repo, &sub, old.as_ref(), out, seen)?;
            }
            Some(ObjectType::Blob) if seen.insert(entry.id()) => out.push(entry.id()),
            _ => {}
        }
    }
    Ok(())
}

/// Keeps a peer's packs few: once it holds more than [`MAX_PEER_PACKS`], merges them, and
/// clears temporary packs a killed node left long ago. Returns packs merged.
///
/// A lock file keeps the nodes from doing the same merge at once; nothing depends on it for
/// correctness: a merge deletes only packs whose objects it has already written into a
/// durable pack, and two merges of the same packs write the same pack. So a stale lock
/// (a killed node's) is simply taken over after [`STALE_LOCK`].
pub(super) fn tidy(peer: &Path) -> Result<usize, String> {
    if archive::pack_count(peer) <= MAX_PEER_PACKS {
        return Ok(0);
    }
    let pack_dir = peer.join("objects").join("pack");
    let lock = pack_dir.join(LOCK);
    if archive::older_than(&lock, STALE_LOCK) {
        let _ = fs::remove_file(&lock);
    }
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(0),
        Err(e) => return Err(format!("cannot lock {}: {e}", lock.display())),
    }
    if let Ok(entries) = fs::read_dir(&pack_dir) {
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with("tmp_")
                && archive::older_than(&p, STALE_TMP)
            {
                let _ = fs::remove_file(&p);
            }
        }
    }
    let merged = archive::consolidate_packs(peer, MAX_PEER_PACKS).map_err(|e| e.to_string());
    let _ = fs::remove_file(&lock);
    Ok(merged?.map_or(0, |(packs, _)| packs))
}
