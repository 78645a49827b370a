//! The writing side of a repository: [`Archive`] keeps the graph at the newest appended record
//! and the batches not yet committed, and turns them into one commit (tree, message, pack,
//! ref move) at a time.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use git2::{ErrorCode, ObjectType, Oid, Repository};

use super::{
    consolidate::{consolidate_packs, pack_count},
    objects::{COMMITTER, MAIN, NewObjects, commit_bytes, email},
    open::open_locked,
    pack::{sync_ref, write_pack},
    tree::commit_tree,
};
use crate::memory::{
    error::{ArchiveError, OpenError},
    graph::Graph,
    layout::Layout,
    lock::{OwnerLock, state_dir},
    op::Record,
    wal,
};

/// Message and author of a commit of `records`: a one-line summary, op counts, and a
/// `Co-authored-by:` trailer for every writer other than the author (the writer with most
/// ops; ties go to the first name).
pub(super) fn describe(records: &[&Record]) -> (String, String, u64) {
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
    /// Tree objects this commit wrote, and their bytes (uncompressed): what a commit costs
    /// beyond its files.
    pub trees_written: usize,
    pub tree_bytes: usize,
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
    /// Layout of `head`'s files, and the layout commits are written in (they differ until
    /// the first commit after opening an older format, which moves every file).
    head_layout: Layout,
    layout: Layout,
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

impl Archive {
    /// Opens (or initialises) the repository at `path` on its own, holding the owner lock.
    /// Refuses a repository whose WAL holds ops not yet in git: only [`Store::open`](crate::memory::Store::open)
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
        let mut a = Archive::new(opened.gitdir, head, opened.graph, opened.layout);
        a._lock = Some(opened.lock);
        Ok(a)
    }

    /// An archive whose head `head` holds `graph` (already loaded by the caller) in files
    /// that follow `head_layout`.
    pub(crate) fn new(
        gitdir: PathBuf,
        head: Oid,
        mut graph: Graph,
        head_layout: Layout,
    ) -> Archive {
        let version = graph.version();
        graph.begin(false);
        Archive {
            gitdir,
            head,
            head_version: version,
            durable_version: version,
            head_layout,
            layout: Layout::CURRENT,
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

    /// Writes the next commits in `layout` instead of the newest format's. Only for tests and
    /// measurements that need a repository in an older format ([`Layout::Flat`]) or a bucket
    /// shape under consideration; a fanned shape other than [`Layout::CURRENT`] makes a
    /// repository this build cannot open again.
    #[doc(hidden)]
    pub fn set_layout(&mut self, layout: Layout) {
        self.layout = layout;
    }

    /// The layout of the head commit's files.
    pub fn head_layout(&self) -> Layout {
        self.head_layout
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
            self.graph.apply_record(r)?;
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
        let tree = commit_tree(
            &repo,
            &parent_tree,
            self.head_layout,
            self.layout,
            &self.graph,
            &records,
            &mut objects,
        )?;
        let (trees_written, tree_bytes) = objects.trees();
        let (message, author, author_ms) = describe(&records);
        let oid = objects.put(
            ObjectType::Commit,
            commit_bytes(
                tree,
                Some(self.head),
                (&author, author_ms),
                (COMMITTER, crate::memory::hlc::now_ms()),
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
        self.head_layout = self.layout;
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
            trees_written,
            tree_bytes,
            oid,
            batches,
        }))
    }
}
