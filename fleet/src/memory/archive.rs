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

use std::{
    collections::{BTreeMap, HashSet},
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use git2::{Commit, ErrorCode, ObjectType, Odb, Oid, Repository, RepositoryInitOptions, Tree};

use super::error::{ArchiveError, OpenError};
use super::graph::{Graph, StateError, Touched};
use super::layout::{
    self, ENTITIES, EntityFile, FORMAT, FORMAT_VERSION, META, Meta, OPS, README, README_TEXT,
    RELATIONS, RelationFile, TOMBSTONES, TombstoneFile,
};
use super::lock::{OwnerLock, state_dir};
use super::op::Record;
use super::wal;

pub(crate) const MAIN: &str = "refs/heads/main";
const COMMITTER: &str = "mcpfleet-memory";
const EMAIL_DOMAIN: &str = "mcpfleet.invalid";
/// Name prefix of packs being written (in `objects/pack`).
const TMP_PACK_PREFIX: &str = "tmp_mcpfleet_";

/// Finds the repository at `path`: a bare repository, a clone with a work tree (its `.git`
/// is used) or, with `create`, a new bare repository if `path` does not exist or is an empty
/// directory. Never overwrites anything.
/// The tree of commit `head`, or why it cannot be read.
fn head_tree(repo: &Repository, head: Oid) -> Result<git2::Tree<'_>, String> {
    let commit = repo
        .find_commit(head)
        .map_err(|e| format!("cannot read commit {head}: {}", e.message()))?;
    commit
        .tree()
        .map_err(|e| format!("cannot read the tree of {head}: {}", e.message()))
}

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
                && !p.with_extension("idx").exists();
            if name.starts_with(TMP_PACK_PREFIX) || orphan {
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

/// What a located repository holds.
pub(crate) enum Identity {
    /// No refs at all: a new repository to initialise.
    Empty,
    /// One of ours: `refs/heads/main` with a `meta.json` of our format.
    Ours { head: Oid },
}

fn read_blob(repo: &Repository, tree: &Tree<'_>, path: &str) -> Result<Option<Vec<u8>>, String> {
    match tree.get_path(Path::new(path)) {
        Ok(entry) => {
            let blob = repo
                .find_blob(entry.id())
                .map_err(|e| format!("cannot read {path}: {}", e.message()))?;
            Ok(Some(blob.content().to_vec()))
        }
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {path}: {}", e.message())),
    }
}

/// Reads and checks `meta.json` of a tree: Err(NotOurs reason) or Err(Corrupt reason).
pub(crate) fn read_meta(repo: &Repository, tree: &Tree<'_>) -> Result<Meta, (bool, String)> {
    let bytes = read_blob(repo, tree, META)
        .map_err(|e| (false, e))?
        .ok_or((true, format!("it has no {META}")))?;
    let meta: Meta = serde_json::from_slice(&bytes)
        .map_err(|e| (true, format!("{META} is not an mcpfleet memory's: {e}")))?;
    if meta.format != FORMAT {
        return Err((true, format!("{META} has format {:?}", meta.format)));
    }
    if meta.format_version != FORMAT_VERSION {
        return Err((
            true,
            format!(
                "{META} has format_version {}, this build reads {FORMAT_VERSION}",
                meta.format_version
            ),
        ));
    }
    Ok(meta)
}

/// Decides whether the repository is ours, empty, or neither. Reads only.
pub(crate) fn identify(repo: &Repository, path: &Path) -> Result<Identity, OpenError> {
    let not_ours = |reason: String| OpenError::NotOurs {
        path: path.to_path_buf(),
        reason,
    };
    let corrupt = |reason: String| OpenError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    match repo.find_reference(MAIN) {
        Ok(r) => {
            let head = r
                .target()
                .ok_or_else(|| not_ours(format!("{MAIN} is a symbolic reference")))?;
            let tree = head_tree(repo, head).map_err(corrupt)?;
            read_meta(repo, &tree).map_err(|(ours, reason)| {
                if ours {
                    not_ours(reason)
                } else {
                    corrupt(reason)
                }
            })?;
            Ok(Identity::Ours { head })
        }
        Err(e) if e.code() == ErrorCode::NotFound => {
            let no_refs = repo
                .references()
                .map(|mut refs| refs.next().is_none())
                .map_err(|e| corrupt(format!("cannot list references: {}", e.message())))?;
            if no_refs {
                Ok(Identity::Empty)
            } else {
                Err(not_ours(format!("it has no {MAIN}")))
            }
        }
        Err(e) => Err(corrupt(format!("cannot read {MAIN}: {}", e.message()))),
    }
}

fn parse_entries<T: serde::de::DeserializeOwned>(
    repo: &Repository,
    tree: &Tree<'_>,
    dir: &str,
    mut each: impl FnMut(&str, T) -> Result<(), String>,
) -> Result<(), String> {
    let sub = match tree.get_path(Path::new(dir)) {
        Ok(entry) => repo
            .find_tree(entry.id())
            .map_err(|e| format!("cannot read {dir}/: {}", e.message()))?,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {dir}/: {}", e.message())),
    };
    for entry in sub.iter() {
        let name = entry
            .name()
            .map_err(|_| format!("{dir}/ has a non-UTF-8 file name"))?
            .to_string();
        let blob = repo
            .find_blob(entry.id())
            .map_err(|e| format!("cannot read {dir}/{name}: {}", e.message()))?;
        let value: T = serde_json::from_slice(blob.content())
            .map_err(|e| format!("{dir}/{name} is not valid: {e}"))?;
        each(&name, value).map_err(|e| format!("{dir}/{name}: {e}"))?;
    }
    Ok(())
}

fn expect_file(file: &str, path: &str) -> Result<(), String> {
    match path.rsplit_once('/') {
        Some((_, expected)) if expected == file => Ok(()),
        _ => Err(format!("holds data that belongs in {path}")),
    }
}

fn state(e: StateError) -> String {
    e.0
}

/// Loads the graph (with tags and tombstones) stored in a commit's tree.
pub(crate) fn load_graph(repo: &Repository, tree: &Tree<'_>) -> Result<(Graph, Meta), String> {
    let meta = read_meta(repo, tree).map_err(|(_, e)| e)?;
    let mut g = Graph::new();
    parse_entries(repo, tree, ENTITIES, |file, e: EntityFile| {
        expect_file(file, &layout::entity_path(&e.name))?;
        g.insert_entity_file(e).map_err(state)
    })?;
    parse_entries(repo, tree, RELATIONS, |file, rs: Vec<RelationFile>| {
        if rs.is_empty() {
            return Err("is empty".into());
        }
        for r in rs {
            expect_file(file, &layout::relation_path(&r.from))?;
            g.insert_relation_file(r).map_err(state)?;
        }
        Ok(())
    })?;
    parse_entries(repo, tree, TOMBSTONES, |file, t: TombstoneFile| {
        expect_file(file, &layout::tombstone_path(&t.name))?;
        g.insert_tombstone_file(t).map_err(state)
    })?;
    g.set_loaded_version(meta.version).map_err(state)?;
    Ok((g, meta))
}

/// Parses a commit's `ops.jsonl`.
pub(crate) fn parse_ops(bytes: &[u8]) -> Result<Vec<Record>, String> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            serde_json::from_slice(line).map_err(|e| format!("{OPS} line {}: {e}", i + 1))
        })
        .collect()
}

/// The records of a commit (its `ops.jsonl`).
pub(crate) fn commit_ops(repo: &Repository, commit: &Commit<'_>) -> Result<Vec<Record>, String> {
    let tree = commit
        .tree()
        .map_err(|e| format!("cannot read the tree of {}: {}", commit.id(), e.message()))?;
    match read_blob(repo, &tree, OPS)? {
        Some(bytes) => parse_ops(&bytes),
        None => Ok(Vec::new()),
    }
}

fn fsync(path: &Path) -> Result<(), ArchiveError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(ArchiveError::io("fsync", path))
}

/// Git object id of `data` as an object of `kind`: SHA-1 of `<kind> <len>\0<data>`.
fn object_id(kind: ObjectType, data: &[u8]) -> Result<Oid, ArchiveError> {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(format!("{} {}\0", kind.str(), data.len()).as_bytes());
    h.update(data);
    let digest: [u8; 20] = h.finalize().into();
    Oid::from_bytes(&digest).map_err(ArchiveError::git("make an object id"))
}

/// The new objects of one commit, each once, with their content. Built here rather than
/// through libgit2: its object writes rescan the pack directory for every new object.
#[derive(Default)]
struct NewObjects {
    seen: HashSet<Oid>,
    items: Vec<(Oid, ObjectType, Vec<u8>)>,
}

impl NewObjects {
    fn put(&mut self, kind: ObjectType, data: Vec<u8>) -> Result<Oid, ArchiveError> {
        let oid = object_id(kind, &data)?;
        if self.seen.insert(oid) {
            self.items.push((oid, kind, data));
        }
        Ok(oid)
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

const BLOB_MODE: i32 = 0o100644;
const TREE_MODE: i32 = 0o040000;

/// Changes to the entries of one tree: (name, is a tree, Some((mode, id)) to set or None to
/// remove).
type TreeUpdates = Vec<(Vec<u8>, bool, Option<(i32, Oid)>)>;

/// Git's tree order: names compared bytewise, a tree's name as if it ended in `/`.
fn git_order(a: &[u8], a_tree: bool, b: &[u8], b_tree: bool) -> std::cmp::Ordering {
    let n = a.len().min(b.len());
    a[..n].cmp(&b[..n]).then_with(|| {
        let next = |s: &[u8], tree: bool| s.get(n).copied().or(tree.then_some(b'/'));
        next(a, a_tree).cmp(&next(b, b_tree))
    })
}

fn push_entry(out: &mut Vec<u8>, mode: i32, name: &[u8], oid: Oid) {
    out.extend_from_slice(format!("{mode:o} ").as_bytes());
    out.extend_from_slice(name);
    out.push(0);
    out.extend_from_slice(oid.as_bytes());
}

/// The content of `base` with `updates` applied (a merge of two sorted lists), or None if
/// the tree ends up empty.
fn merge_tree(base: Option<&Tree<'_>>, mut updates: TreeUpdates) -> Option<Vec<u8>> {
    updates.sort_by(|a, b| git_order(&a.0, a.1, &b.0, b.1));
    let mut out = Vec::with_capacity(base.map_or(0, |t| t.len() * 48) + updates.len() * 64);
    let mut ups = updates.into_iter().peekable();
    let emit = |out: &mut Vec<u8>, u: (Vec<u8>, bool, Option<(i32, Oid)>)| {
        if let (name, _, Some((mode, oid))) = u {
            push_entry(out, mode, &name, oid);
        }
    };
    for e in base.into_iter().flat_map(|t| t.iter()) {
        let name = e.name_bytes();
        let is_tree = e.kind() == Some(ObjectType::Tree);
        while let Some(u) = ups.next_if(|u| {
            u.0 != name && git_order(&u.0, u.1, name, is_tree) == std::cmp::Ordering::Less
        }) {
            emit(&mut out, u);
        }
        if let Some(u) = ups.next_if(|u| u.0 == name) {
            emit(&mut out, u);
        } else {
            push_entry(&mut out, e.filemode(), name, e.id());
        }
    }
    for u in ups {
        emit(&mut out, u);
    }
    (!out.is_empty()).then_some(out)
}

/// A name usable in a git signature (`<`, `>` and newlines would break the header).
fn ident(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "unknown".into() } else { s }
}

/// A commit object's content.
fn commit_bytes(
    tree: Oid,
    parent: Option<Oid>,
    author: (&str, u64),
    committer: (&str, u64),
    message: &str,
) -> Vec<u8> {
    let mut s = format!("tree {tree}\n");
    if let Some(p) = parent {
        s.push_str(&format!("parent {p}\n"));
    }
    for (role, (name, ms)) in [("author", author), ("committer", committer)] {
        let name = ident(name);
        s.push_str(&format!(
            "{role} {name} <{}> {} +0000\n",
            email(&name),
            ms / 1000
        ));
    }
    s.push('\n');
    s.push_str(message);
    if !message.ends_with('\n') {
        s.push('\n');
    }
    s.into_bytes()
}

/// Writes a version-2 packfile of whole (undeltified) objects, zlib-compressed at the fast
/// level, and its version-2 index, then makes both durable: `objects/pack/pack-<hash>.pack`
/// and `.idx`, each written under a temporary name, fsynced and renamed, pack first (git
/// only looks for packs through their index). Memory use is about one object.
///
/// Why not libgit2: its packbuilder spends seconds searching deltas in large trees and its
/// indexer inflates and re-hashes every object, all on the two cores that acknowledge
/// writes. We already know every object's id, so the index is a sort away.
struct PackWriter {
    dir: PathBuf,
    tmp: PathBuf,
    file: std::io::BufWriter<File>,
    sha: sha1::Sha1,
    z: flate2::Compress,
    entry: Vec<u8>,
    offset: u64,
    /// (id, crc32 of the entry, offset)
    index: Vec<(Oid, u32, u64)>,
    left: u32,
}

impl PackWriter {
    fn new(dir: &Path, count: usize) -> Result<PackWriter, ArchiveError> {
        use sha1::Digest;
        let left = u32::try_from(count).map_err(|_| ArchiveError::Io {
            action: "pack so many objects into",
            path: dir.to_path_buf(),
            source: std::io::Error::other("more than 2^32 objects"),
        })?;
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(
            "{TMP_PACK_PREFIX}{}_{serial}.pack",
            std::process::id()
        ));
        let file = File::create(&tmp).map_err(ArchiveError::io("create", &tmp))?;
        let mut header = Vec::with_capacity(12);
        header.extend_from_slice(b"PACK");
        header.extend_from_slice(&2u32.to_be_bytes());
        header.extend_from_slice(&left.to_be_bytes());
        let mut w = PackWriter {
            dir: dir.to_path_buf(),
            tmp,
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            sha: sha1::Sha1::new(),
            z: flate2::Compress::new(flate2::Compression::fast(), true),
            entry: Vec::new(),
            offset: 0,
            index: Vec::with_capacity(count),
            left,
        };
        w.write(&header)?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        use sha1::Digest;
        self.sha.update(bytes);
        self.file
            .write_all(bytes)
            .map_err(ArchiveError::io("write", &self.tmp))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn add(&mut self, oid: Oid, kind: ObjectType, data: &[u8]) -> Result<(), ArchiveError> {
        let code: u8 = match kind {
            ObjectType::Commit => 1,
            ObjectType::Tree => 2,
            ObjectType::Blob => 3,
            ObjectType::Tag => 4,
            _ => {
                return Err(ArchiveError::Io {
                    action: "pack an object of unknown type into",
                    path: self.tmp.clone(),
                    source: std::io::Error::other(format!("{kind:?}")),
                });
            }
        };
        self.left = self.left.checked_sub(1).ok_or_else(|| ArchiveError::Io {
            action: "pack more objects than announced into",
            path: self.tmp.clone(),
            source: std::io::Error::other("object count exceeded"),
        })?;
        let mut entry = std::mem::take(&mut self.entry);
        entry.clear();
        // Header: type and size, little-endian base 128 with a continuation bit.
        let mut size = data.len();
        let mut byte = (code << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size > 0 {
            entry.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        entry.push(byte);
        self.z.reset();
        loop {
            entry.reserve(data.len() / 2 + 64);
            let done = usize::try_from(self.z.total_in()).unwrap_or(usize::MAX);
            let rest = data.get(done..).unwrap_or_default();
            let status = self
                .z
                .compress_vec(rest, &mut entry, flate2::FlushCompress::Finish)
                .map_err(|e| ArchiveError::Io {
                    action: "compress an object for",
                    path: self.tmp.clone(),
                    source: std::io::Error::other(e),
                })?;
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
        self.index.push((oid, crc32fast::hash(&entry), self.offset));
        let written = self.write(&entry);
        self.entry = entry;
        written
    }

    /// Appends an entry copied from another pack (a whole object: header and zlib data).
    fn add_raw(&mut self, oid: Oid, crc: u32, entry: &[u8]) -> Result<(), ArchiveError> {
        self.left = self.left.checked_sub(1).ok_or_else(|| ArchiveError::Io {
            action: "pack more objects than announced into",
            path: self.tmp.clone(),
            source: std::io::Error::other("object count exceeded"),
        })?;
        self.index.push((oid, crc, self.offset));
        self.write(entry)
    }

    /// Writes the trailer and the index, fsyncs and renames both, fsyncs the directory.
    /// Returns the index path.
    fn finish(mut self) -> Result<PathBuf, ArchiveError> {
        use sha1::Digest;
        if self.left != 0 {
            return Err(ArchiveError::Io {
                action: "finish a pack in",
                path: self.tmp.clone(),
                source: std::io::Error::other("fewer objects than announced"),
            });
        }
        let checksum: [u8; 20] = self.sha.clone().finalize().into();
        self.file
            .write_all(&checksum)
            .map_err(ArchiveError::io("write", &self.tmp))?;
        self.file
            .flush()
            .map_err(ArchiveError::io("write", &self.tmp))?;
        self.file
            .get_ref()
            .sync_all()
            .map_err(ArchiveError::io("fsync", &self.tmp))?;
        let name: String = checksum.iter().map(|b| format!("{b:02x}")).collect();
        let pack = self.dir.join(format!("pack-{name}.pack"));
        let idx = self.dir.join(format!("pack-{name}.idx"));
        fs::rename(&self.tmp, &pack).map_err(ArchiveError::io("rename a pack to", &pack))?;

        self.index
            .sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let n = self.index.len();
        let mut out = Vec::with_capacity(8 + 1024 + n * 28 + 40);
        out.extend_from_slice(&[0xff, b't', b'O', b'c']);
        out.extend_from_slice(&2u32.to_be_bytes());
        let mut fanout = [0u32; 256];
        for (oid, _, _) in &self.index {
            fanout[usize::from(oid.as_bytes()[0])] += 1;
        }
        let mut total = 0u32;
        for f in fanout {
            total += f;
            out.extend_from_slice(&total.to_be_bytes());
        }
        for (oid, _, _) in &self.index {
            out.extend_from_slice(oid.as_bytes());
        }
        for (_, crc, _) in &self.index {
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut large: Vec<u64> = Vec::new();
        for (_, _, offset) in &self.index {
            match u32::try_from(*offset) {
                Ok(o) if o < 0x8000_0000 => out.extend_from_slice(&o.to_be_bytes()),
                _ => {
                    let i = u32::try_from(large.len()).unwrap_or(u32::MAX) | 0x8000_0000;
                    out.extend_from_slice(&i.to_be_bytes());
                    large.push(*offset);
                }
            }
        }
        for o in large {
            out.extend_from_slice(&o.to_be_bytes());
        }
        out.extend_from_slice(&checksum);
        let idx_checksum: [u8; 20] = sha1::Sha1::digest(&out).into();
        out.extend_from_slice(&idx_checksum);
        let tmp_idx = self.tmp.with_extension("idx");
        let mut f = File::create(&tmp_idx).map_err(ArchiveError::io("create", &tmp_idx))?;
        f.write_all(&out)
            .and_then(|()| f.sync_all())
            .map_err(ArchiveError::io("write", &tmp_idx))?;
        drop(f);
        fs::rename(&tmp_idx, &idx).map_err(ArchiveError::io("rename an index to", &idx))?;
        fsync(&self.dir)?;
        Ok(idx)
    }
}

impl Drop for PackWriter {
    /// An unfinished pack leaves no file behind (a finished one was renamed away).
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
        let _ = fs::remove_file(self.tmp.with_extension("idx"));
    }
}

/// Writes one commit's new objects as one durable packfile, then lets libgit2 see it.
fn write_pack(repo: &Repository, objects: &NewObjects) -> Result<PathBuf, ArchiveError> {
    let pack_dir = repo.path().join("objects").join("pack");
    let mut w = PackWriter::new(&pack_dir, objects.len())?;
    for (oid, kind, data) in &objects.items {
        w.add(*oid, *kind, data)?;
    }
    let idx = w.finish()?;
    repo.odb()
        .and_then(|odb| odb.refresh())
        .map_err(ArchiveError::git("refresh the object database"))?;
    Ok(idx)
}

/// Makes `refs/heads/main` (as written by libgit2) and its directories durable.
fn sync_ref(gitdir: &Path) -> Result<(), ArchiveError> {
    let loose = gitdir.join(MAIN);
    if loose.is_file() {
        fsync(&loose)?;
        if let Some(dir) = loose.parent() {
            fsync(dir)?;
        }
    } else {
        // Packed (as in a fresh clone): the packed-refs file holds it.
        fsync(&gitdir.join("packed-refs"))?;
        fsync(gitdir)?;
    }
    Ok(())
}

fn email(server: &str) -> String {
    format!("{server}@{EMAIL_DOMAIN}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Message and author of a commit of `records`: a one-line summary, op counts, and a
/// `Co-authored-by:` trailer for every writer other than the author (the writer with most
/// ops; ties go to the first name).
fn describe(records: &[&Record]) -> (String, String, u64) {
    let mut by_server: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    let mut by_tool: BTreeMap<&str, usize> = BTreeMap::new();
    for r in records {
        let e = by_server.entry(r.server.as_str()).or_default();
        e.0 += 1;
        e.1 = e.1.max(r.time_ms);
        *by_tool.entry(r.op.tool()).or_default() += 1;
    }
    let mut servers: Vec<(&str, usize, u64)> =
        by_server.into_iter().map(|(s, (n, t))| (s, n, t)).collect();
    servers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let (author, _, author_time) = servers.first().copied().unwrap_or((COMMITTER, 0, 0));
    let first = records.first().map_or(0, |r| r.version);
    let last = records.last().map_or(0, |r| r.version);
    let range = if first == last {
        format!("v{first}")
    } else {
        format!("v{first}..v{last}")
    };
    let n = records.len();
    let mut names: Vec<&str> = servers.iter().take(5).map(|s| s.0).collect();
    names.sort_unstable();
    let mut who = names.join(", ");
    if servers.len() > 5 {
        who.push_str(&format!(" and {} more", servers.len() - 5));
    }
    let mut msg = format!(
        "{range}: {n} op{} from {who}\n\n",
        if n == 1 { "" } else { "s" }
    );
    let tools: Vec<String> = by_tool.iter().map(|(t, n)| format!("{t}: {n}")).collect();
    msg.push_str(&tools.join(", "));
    msg.push('\n');
    let others: Vec<&str> = servers.iter().skip(1).map(|s| s.0).collect();
    if !others.is_empty() {
        msg.push('\n');
        for s in others {
            msg.push_str(&format!("Co-authored-by: {s} <{}>\n", email(s)));
        }
    }
    (msg, author.to_string(), author_time)
}

/// A commit the archive made.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// Commit id (hex).
    pub commit: String,
    pub first_version: u64,
    pub last_version: u64,
    pub ops: usize,
    /// Whether the ref update is known to be on disk; if not, [`Archive::sync`] retries.
    pub durable: bool,
    /// Packs merged after this commit to keep their number low (0 if none).
    pub merged_packs: usize,
    pub(crate) oid: Oid,
    pub(crate) batches: Vec<Arc<[Record]>>,
}

/// The writing side of a repository: the graph at the newest appended record, the batches
/// not yet committed, and the commit they will follow. Used by the store's committer thread;
/// public so that the commit path can be measured and reused on its own.
pub struct Archive {
    gitdir: PathBuf,
    head: Oid,
    /// Version that `head` holds.
    head_version: u64,
    /// Version whose commit is known durable (== head_version unless a ref fsync failed).
    durable_version: u64,
    graph: Graph,
    pending: Vec<Arc<[Record]>>,
    max_packs: usize,
    _lock: Option<OwnerLock>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("gitdir", &self.gitdir)
            .field("head", &self.head)
            .field("head_version", &self.head_version)
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// A repository found, locked and identified, with the state at its head.
pub(crate) struct Opened {
    pub gitdir: PathBuf,
    pub lock: OwnerLock,
    pub head: Oid,
    pub graph: Graph,
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
    let (graph, _) = load_graph(&repo, &tree).map_err(corrupt)?;
    Ok(Opened {
        gitdir,
        lock,
        head,
        graph,
    })
}

/// Writes the root commit of a new repository: README, `meta.json` at version 0, an empty
/// `ops.jsonl`, and points `HEAD` and `refs/heads/main` at it.
fn init_root(gitdir: &Path) -> Result<Oid, ArchiveError> {
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
    let now = now_ms();
    let commit = objects.put(
        ObjectType::Commit,
        commit_bytes(
            tree,
            None,
            (COMMITTER, now),
            (COMMITTER, now),
            "Initialise the mcpfleet memory (format 1, empty graph)\n",
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

impl Archive {
    /// Opens (or initialises) the repository at `path` on its own, holding the owner lock.
    /// Refuses a repository whose WAL holds ops not yet in git: only [`super::Store::open`]
    /// may recover those.
    pub fn open(path: &Path) -> Result<Archive, OpenError> {
        let opened = open_locked(path)?;
        let pending = wal::recover(
            &state_dir(&opened.gitdir).join("wal"),
            opened.graph.version(),
            false,
        )?;
        if !pending.records.is_empty() {
            return Err(OpenError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "its WAL holds {} ops not yet in git; open it with Store::open to recover them",
                    pending.records.len()
                ),
            });
        }
        let head = opened.head;
        let mut a = Archive::new(opened.gitdir, head, opened.graph);
        a._lock = Some(opened.lock);
        Ok(a)
    }

    /// An archive whose head `head` holds `graph` (already loaded by the caller).
    pub(crate) fn new(gitdir: PathBuf, head: Oid, mut graph: Graph) -> Archive {
        let version = graph.version();
        graph.begin(false);
        Archive {
            gitdir,
            head,
            head_version: version,
            durable_version: version,
            graph,
            pending: Vec::new(),
            max_packs: 16,
            _lock: None,
        }
    }

    /// Pack count above which a commit merges packs (each commit writes one; reads and
    /// object writes slow down with many). At least 2.
    pub fn set_max_packs(&mut self, max_packs: usize) {
        self.max_packs = max_packs.max(2);
    }

    /// Version of the newest appended record.
    pub fn version(&self) -> u64 {
        self.graph.version()
    }

    /// Version that the newest durable commit holds.
    pub fn durable_version(&self) -> u64 {
        self.durable_version
    }

    /// Ops appended and not yet committed.
    pub fn pending_ops(&self) -> usize {
        self.pending.iter().map(|b| b.len()).sum()
    }

    /// The graph at [`Archive::version`].
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The git directory (of a non-bare clone: its `.git`).
    pub fn gitdir(&self) -> &Path {
        &self.gitdir
    }

    /// Applies a batch of records (the next versions) to the archive's graph; the next
    /// [`Archive::commit`] writes them. A record that does not apply means the caller's
    /// stream is not this archive's: the archive must not be used further.
    pub fn append(&mut self, batch: Arc<[Record]>) -> Result<(), ArchiveError> {
        for r in batch.iter() {
            self.graph.apply(&r.op, r.version, r.seen)?;
        }
        if !batch.is_empty() {
            self.pending.push(batch);
        }
        Ok(())
    }

    /// Retries making an earlier commit's ref update durable. Returns the durable version.
    pub fn sync(&mut self) -> Result<u64, ArchiveError> {
        if self.durable_version < self.head_version {
            sync_ref(&self.gitdir)?;
            self.durable_version = self.head_version;
        }
        Ok(self.durable_version)
    }

    /// Commits every appended batch as one commit. `Ok(None)` if there was nothing to commit.
    /// On error nothing moved and the batches stay pending for the next try.
    pub fn commit(&mut self) -> Result<Option<CommitInfo>, ArchiveError> {
        self.sync()?;
        if self.pending.is_empty() {
            return Ok(None);
        }
        let repo =
            Repository::open(&self.gitdir).map_err(ArchiveError::git("open the repository"))?;
        let parent_tree = repo
            .find_commit(self.head)
            .and_then(|c| c.tree())
            .map_err(ArchiveError::git("read the head tree"))?;
        let records: Vec<&Record> = self.pending.iter().flat_map(|b| b.iter()).collect();
        let mut objects = NewObjects::default();
        let tree = self.build_tree(&repo, &parent_tree, &records, &mut objects)?;
        let (message, author, author_ms) = describe(&records);
        let oid = objects.put(
            ObjectType::Commit,
            commit_bytes(
                tree,
                Some(self.head),
                (&author, author_ms),
                (COMMITTER, now_ms()),
                &message,
            ),
        )?;
        write_pack(&repo, &objects)?;
        let summary = message.lines().next().unwrap_or_default();
        if let Err(e) = repo.reference_matching(MAIN, oid, true, self.head, summary) {
            if e.code() == ErrorCode::Modified {
                let found = repo
                    .refname_to_id(MAIN)
                    .map(|o| o.to_string())
                    .unwrap_or_else(|e| e.message().to_string());
                return Err(ArchiveError::Moved {
                    expected: self.head.to_string(),
                    found,
                });
            }
            return Err(ArchiveError::Git {
                action: "move refs/heads/main",
                source: e,
            });
        }
        let first_version = records.first().map_or(0, |r| r.version);
        let last_version = self.graph.version();
        let ops = records.len();
        self.head = oid;
        self.head_version = last_version;
        self.graph.finish();
        self.graph.begin(false);
        let batches = std::mem::take(&mut self.pending);
        let durable = match sync_ref(&self.gitdir) {
            Ok(()) => {
                self.durable_version = last_version;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "commit {oid} is not known to be durable yet");
                false
            }
        };
        let mut merged_packs = 0;
        if pack_count(&self.gitdir) > self.max_packs {
            match consolidate_packs(&self.gitdir, self.max_packs) {
                Ok(Some((packs, objects))) => {
                    merged_packs = packs;
                    tracing::debug!(packs, objects, "merged packs");
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot merge packs (reads get slower)"),
            }
        }
        Ok(Some(CommitInfo {
            commit: oid.to_string(),
            first_version,
            last_version,
            ops,
            durable,
            merged_packs,
            oid,
            batches,
        }))
    }

    /// The head tree with every touched file rewritten (or removed), plus this commit's
    /// `ops.jsonl` and `meta.json`; new objects go to `objects`. Returns the root tree id.
    fn build_tree(
        &self,
        repo: &Repository,
        base: &Tree<'_>,
        records: &[&Record],
        objects: &mut NewObjects,
    ) -> Result<Oid, ArchiveError> {
        let Touched {
            entities,
            relation_sources,
        } = self.graph.touched();
        let mut dirs: BTreeMap<&str, TreeUpdates> = BTreeMap::new();
        let mut file = |objects: &mut NewObjects,
                        dir: &'static str,
                        name: &str,
                        bytes: Option<Vec<u8>>|
         -> Result<(), ArchiveError> {
            let entry = match bytes {
                Some(b) => Some((BLOB_MODE, objects.put(ObjectType::Blob, b)?)),
                None => None,
            };
            let file = format!("{}.json", layout::file_stem(name)).into_bytes();
            dirs.entry(dir).or_default().push((file, false, entry));
            Ok(())
        };
        for name in &entities {
            let entity = self.graph.entity_file(name).map(|f| layout::pretty(&f));
            file(objects, ENTITIES, name, entity)?;
            let tomb = self.graph.tombstone_file(name).map(|f| layout::pretty(&f));
            file(objects, TOMBSTONES, name, tomb)?;
        }
        for from in &relation_sources {
            let rels = self.graph.relation_files_from(from);
            let bytes = (!rels.is_empty()).then(|| layout::pretty(&rels));
            file(objects, RELATIONS, from, bytes)?;
        }
        let mut root = TreeUpdates::new();
        for (dir, updates) in dirs {
            let sub = match base.get_name(dir) {
                Some(e) if e.kind() == Some(ObjectType::Tree) => Some(
                    repo.find_tree(e.id())
                        .map_err(ArchiveError::git("read a tree of the head"))?,
                ),
                _ => None,
            };
            let entry = match merge_tree(sub.as_ref(), updates) {
                Some(bytes) => Some((TREE_MODE, objects.put(ObjectType::Tree, bytes)?)),
                None => None,
            };
            root.push((dir.as_bytes().to_vec(), true, entry));
        }
        let mut ops = Vec::with_capacity(records.len() * 200);
        for r in records {
            let _ = serde_json::to_writer(&mut ops, r);
            ops.push(b'\n');
        }
        let meta = layout::pretty(&Meta::new(self.graph.version()));
        for (name, bytes) in [(OPS, ops), (META, meta)] {
            let id = objects.put(ObjectType::Blob, bytes)?;
            root.push((name.as_bytes().to_vec(), false, Some((BLOB_MODE, id))));
        }
        let bytes = merge_tree(Some(base), root).unwrap_or_default();
        objects.put(ObjectType::Tree, bytes)
    }
}

/// Number of packs in the repository (each commit adds one until they are merged).
pub(crate) fn pack_count(gitdir: &Path) -> usize {
    fs::read_dir(gitdir.join("objects").join("pack"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
                .count()
        })
        .unwrap_or(0)
}

/// One object's place in a pack, from the pack's index.
struct IdxEntry {
    oid: Oid,
    crc: u32,
    offset: u64,
}

/// Reads a version-2 pack index.
fn read_idx(path: &Path) -> Result<Vec<IdxEntry>, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let bad = || format!("{} is not a valid version-2 pack index", path.display());
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(bad)
    };
    if bytes.get(0..8) != Some(&[0xff, b't', b'O', b'c', 0, 0, 0, 2][..]) {
        return Err(bad());
    }
    let n = u32_at(8 + 255 * 4)? as usize;
    let ids = 8 + 256 * 4;
    let crcs = ids + n * 20;
    let offsets = crcs + n * 4;
    let large = offsets + n * 4;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = bytes.get(ids + i * 20..ids + i * 20 + 20).ok_or_else(bad)?;
        let oid = Oid::from_bytes(id).map_err(|_| bad())?;
        let crc = u32_at(crcs + i * 4)?;
        let o = u32_at(offsets + i * 4)?;
        let offset = if o & 0x8000_0000 == 0 {
            u64::from(o)
        } else {
            let at = large + (o & 0x7fff_ffff) as usize * 8;
            let b = bytes.get(at..at + 8).ok_or_else(bad)?;
            u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        };
        out.push(IdxEntry { oid, crc, offset });
    }
    Ok(out)
}

/// Appends the objects of one pack to `w`, skipping those in `done`: whole objects as their
/// compressed bytes (CRC-checked), deltas (from a `git gc`) resolved through the odb.
fn copy_pack(
    pack: &Path,
    entries: &mut [IdxEntry],
    odb: &Odb<'_>,
    done: &mut HashSet<Oid>,
    w: &mut PackWriter,
) -> Result<(), ArchiveError> {
    use std::io::Read;
    let io = |e| ArchiveError::io("read", pack)(e);
    let len = fs::metadata(pack).map_err(io)?.len();
    let mut r = std::io::BufReader::with_capacity(1 << 20, File::open(pack).map_err(io)?);
    entries.sort_unstable_by_key(|e| e.offset);
    let mut at = 0u64;
    let mut buf = Vec::new();
    for i in 0..entries.len() {
        let start = entries[i].offset;
        let end = entries
            .get(i + 1)
            .map_or(len.saturating_sub(20), |e| e.offset);
        if start < at.max(12) || end <= start {
            return Err(io(std::io::Error::other(
                "pack index offsets are out of order",
            )));
        }
        std::io::copy(&mut (&mut r).take(start - at), &mut std::io::sink()).map_err(io)?;
        buf.resize(
            usize::try_from(end - start).map_err(|e| io(std::io::Error::other(e)))?,
            0,
        );
        r.read_exact(&mut buf).map_err(io)?;
        at = end;
        let e = &entries[i];
        if !done.insert(e.oid) {
            continue;
        }
        if crc32fast::hash(&buf) != e.crc {
            return Err(io(std::io::Error::other(format!(
                "object {} fails its CRC check",
                e.oid
            ))));
        }
        match (buf[0] >> 4) & 7 {
            1..=4 => w.add_raw(e.oid, e.crc, &buf)?,
            _ => {
                let o = odb
                    .read(e.oid)
                    .map_err(ArchiveError::git("read an object to merge"))?;
                w.add(e.oid, o.kind(), o.data())?;
            }
        }
    }
    Ok(())
}

/// Keeps the number of packs logarithmic: once there are more than `max_packs`, merges the
/// smallest packs until every pack is at least twice as big as all smaller ones together
/// (geometric repacking: each object is rewritten O(log n) times). Whole objects are copied
/// verbatim (checked against their CRC), so a merge costs about a file copy; the merged
/// pack has no deltas, and `git gc` on a backup clone compresses history if space matters.
/// Returns (packs merged, objects in the new pack), or None if nothing needed merging.
pub(crate) fn consolidate_packs(
    gitdir: &Path,
    max_packs: usize,
) -> Result<Option<(usize, usize)>, ArchiveError> {
    let pack_dir = gitdir.join("objects").join("pack");
    let mut packs: Vec<(usize, PathBuf, Vec<IdxEntry>)> = Vec::new();
    let entries = fs::read_dir(&pack_dir).map_err(ArchiveError::io("list", &pack_dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "idx") || path.with_extension("keep").exists() {
            continue;
        }
        match read_idx(&path) {
            Ok(entries) => packs.push((entries.len(), path, entries)),
            Err(e) => tracing::debug!(%e, "pack left out of merging"),
        }
    }
    if packs.len() <= max_packs {
        return Ok(None);
    }
    packs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut prefix = 0usize;
    let mut merge = 0usize;
    for (i, (n, _, _)) in packs.iter().enumerate() {
        if *n < 2 * prefix {
            merge = i + 1;
        }
        prefix += n;
    }
    // Always make progress once over the limit.
    let merge = merge.max(packs.len() - max_packs / 2).min(packs.len());
    if merge < 2 {
        return Ok(None);
    }
    let repo = Repository::open(gitdir).map_err(ArchiveError::git("open the repository"))?;
    let odb = repo
        .odb()
        .map_err(ArchiveError::git("open the object database"))?;
    let mut unique = HashSet::new();
    for (_, _, entries) in &packs[..merge] {
        unique.extend(entries.iter().map(|e| e.oid));
    }
    let objects = unique.len();
    let mut w = PackWriter::new(&pack_dir, objects)?;
    let mut done: HashSet<Oid> = HashSet::with_capacity(objects);
    for (_, idx, entries) in &mut packs[..merge] {
        copy_pack(
            &idx.with_extension("pack"),
            entries,
            &odb,
            &mut done,
            &mut w,
        )?;
    }
    let new_idx = w.finish()?;
    for (_, idx, _) in &packs[..merge] {
        if *idx == new_idx {
            continue;
        }
        for ext in ["pack", "idx", "rev", "bitmap", "mtimes"] {
            let p = idx.with_extension(ext);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ArchiveError::io("remove", &p)(e)),
            }
        }
    }
    fsync(&pack_dir)?;
    Ok(Some((merge, objects)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::memory::op::{
        CreateEntities, CreateRelations, DeleteEntities, Entity, Op, Relation,
    };

    fn rec(version: u64, server: &str, op: Op) -> Record {
        Record {
            version,
            server: server.into(),
            seen: version - 1,
            time_ms: 1_700_000_000_000 + version,
            op,
        }
    }

    fn create(name: &str) -> Op {
        Op::CreateEntities(CreateEntities {
            entities: vec![Entity {
                name: name.into(),
                entity_type: "thing".into(),
                observations: vec![format!("{name} is a thing")],
            }],
        })
    }

    #[test]
    fn commits_load_back_and_describe_their_authors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        let mut a = Archive::open(&path).unwrap();
        assert_eq!(a.version(), 0);
        a.append(Arc::from(vec![
            rec(1, "srv-b", create("a/b")),
            rec(2, "srv-a", create(".hidden")),
            rec(
                3,
                "srv-b",
                Op::CreateRelations(CreateRelations {
                    relations: vec![Relation {
                        from: "a/b".into(),
                        to: ".hidden".into(),
                        relation_type: "links".into(),
                    }],
                }),
            ),
        ]))
        .unwrap();
        let info = a.commit().unwrap().unwrap();
        assert!(info.durable);
        assert_eq!((info.first_version, info.last_version, info.ops), (1, 3, 3));
        a.append(Arc::from(vec![rec(
            4,
            "srv-a",
            Op::DeleteEntities(DeleteEntities {
                entity_names: vec![".hidden".into()],
            }),
        )]))
        .unwrap();
        a.commit().unwrap().unwrap();
        assert!(a.commit().unwrap().is_none());
        let expected = a.graph().clone();
        drop(a);

        let repo = Repository::open(&path).unwrap();
        let head = repo.find_reference(MAIN).unwrap().peel_to_commit().unwrap();
        let (g, meta) = load_graph(&repo, &head.tree().unwrap()).unwrap();
        assert_eq!(meta.version, 4);
        assert_eq!(g, expected);
        let tree = head.tree().unwrap();
        assert!(
            tree.get_path(Path::new("tombstones/%2Ehidden.json"))
                .is_ok()
        );
        assert!(tree.get_path(Path::new("entities/%2Ehidden.json")).is_err());
        assert!(
            tree.get_path(Path::new("relations")).is_err(),
            "empty dir removed"
        );
        let first = head.parent(0).unwrap();
        assert_eq!(first.author().name().unwrap(), "srv-b");
        assert_eq!(first.committer().name().unwrap(), COMMITTER);
        let msg = first.message().unwrap();
        assert!(
            msg.starts_with("v1..v3: 3 ops from srv-a, srv-b\n"),
            "{msg}"
        );
        assert!(msg.contains("Co-authored-by: srv-a <srv-a@mcpfleet.invalid>"));
        assert_eq!(commit_ops(&repo, &first).unwrap().len(), 3);
        assert!(head.message().unwrap().starts_with("v4: 1 op from srv-a\n"));
        // Every commit is one pack; nothing loose.
        assert_eq!(pack_count(&gitdir_of(&repo)), 3);
    }

    fn gitdir_of(repo: &Repository) -> PathBuf {
        repo.path().to_path_buf()
    }

    #[test]
    fn packs_are_merged_geometrically() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Archive::open(dir.path()).unwrap();
        for v in 1..=40u64 {
            a.append(Arc::from(vec![rec(v, "srv-a", create(&format!("e{v}")))]))
                .unwrap();
            a.commit().unwrap().unwrap();
            consolidate_packs(a.gitdir(), 8).unwrap();
            assert!(pack_count(a.gitdir()) <= 9);
        }
        // A pack with deltas (as `git gc` leaves) merges too.
        let gc = std::process::Command::new("git")
            .args(["repack", "-adq", "--window=50"])
            .current_dir(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        for v in 41..=50u64 {
            a.append(Arc::from(vec![rec(v, "srv-a", create(&format!("e{v}")))]))
                .unwrap();
            a.commit().unwrap().unwrap();
            consolidate_packs(a.gitdir(), 2).unwrap();
        }
        assert!(pack_count(a.gitdir()) <= 3, "gc ran: {gc}");
        let repo = Repository::open(dir.path()).unwrap();
        let head = repo.find_reference(MAIN).unwrap().peel_to_commit().unwrap();
        let (g, _) = load_graph(&repo, &head.tree().unwrap()).unwrap();
        assert_eq!(g.entity_count(), 50);
        let mut walk = repo.revwalk().unwrap();
        walk.push(head.id()).unwrap();
        assert_eq!(walk.count(), 51);
        drop(a);
        let report = crate::memory::verify(dir.path()).unwrap();
        assert!(report.is_ok(), "{:?}", report.problems);
        if let Ok(out) = std::process::Command::new("git")
            .args(["fsck", "--full", "--strict"])
            .current_dir(dir.path())
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn foreign_and_broken_repositories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A plain directory with a file in it.
        let plain = dir.path().join("plain");
        fs::create_dir(&plain).unwrap();
        fs::write(plain.join("notes.txt"), "hello").unwrap();
        assert!(matches!(
            Archive::open(&plain),
            Err(OpenError::NotARepository { .. })
        ));
        assert_eq!(
            fs::read_to_string(plain.join("notes.txt")).unwrap(),
            "hello"
        );
        // Somebody else's repository.
        let other = dir.path().join("other");
        let repo = Repository::init(&other).unwrap();
        let sig = git2::Signature::now("me", "me@example.com").unwrap();
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert("README", repo.blob(b"mine").unwrap(), 0o100644)
            .unwrap();
        let tree = repo.find_tree(tb.write().unwrap()).unwrap();
        let c = repo.commit(None, &sig, &sig, "mine", &tree, &[]).unwrap();
        repo.reference(MAIN, c, true, "").unwrap();
        let err = Archive::open(&other).unwrap_err();
        assert!(matches!(err, OpenError::NotOurs { .. }), "{err}");
        assert_eq!(repo.refname_to_id(MAIN).unwrap(), c);
    }
}
