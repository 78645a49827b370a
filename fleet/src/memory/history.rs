//! Per-entity history of committed ops: an in-memory index rebuilt at open from the newest
//! commits' `ops.jsonl` and extended by the committer after every durable commit.
//!
//! Bounded on purpose: the rebuild reads at most `scan_ops` of the newest ops and each
//! entity keeps its newest `per_entity` entries. Older history is still in git
//! (`git log -p ops.jsonl`, or `git log -p -- entities/ab/cd/<name>.json` for one entity since
//! its repository moved to format 2; before that, `entities/<name>.json`).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    path::Path,
    sync::Arc,
};

use git2::{Oid, Repository};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::archive::{MAIN, commit_ops};
use super::op::{Op, Record};

/// The tool a merged write came from, as one of the known names (`merged` for any other:
/// the name comes from another node's history).
fn merged_tool(tool: &str) -> &'static str {
    [
        "create_entities",
        "create_relations",
        "add_observations",
        "delete_entities",
        "delete_observations",
        "delete_relations",
    ]
    .into_iter()
    .find(|t| *t == tool)
    .unwrap_or("merged")
}

/// One committed op that named an entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The commit holding the op (hex).
    pub commit: String,
    /// When the owner ordered the op, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The server that wrote it.
    pub server: String,
    pub version: u64,
    /// The tool, e.g. `add_observations`.
    pub operation: String,
    /// The node that wrote it, when another node did (it was merged here); absent for this
    /// node's own writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    version: u64,
    time_ms: u64,
    server: Arc<str>,
    tool: &'static str,
    node: Option<Arc<str>>,
}

/// Index from entity name to its newest ops. Commits are kept as version ranges so an entry
/// costs a few words.
#[derive(Debug)]
pub(crate) struct HistoryIndex {
    per_entity: usize,
    /// (last version, commit) in version order.
    commits: Vec<(u64, Oid)>,
    entries: HashMap<String, VecDeque<Entry>>,
    servers: HashSet<Arc<str>>,
}

impl HistoryIndex {
    pub fn new(per_entity: usize) -> Self {
        Self {
            per_entity: per_entity.max(1),
            commits: Vec::new(),
            entries: HashMap::new(),
            servers: HashSet::new(),
        }
    }

    fn intern(&mut self, server: &str) -> Arc<str> {
        if let Some(s) = self.servers.get(server) {
            return s.clone();
        }
        let s: Arc<str> = Arc::from(server);
        self.servers.insert(s.clone());
        s
    }

    /// Adds a commit's records; commits must come in version order.
    pub fn add_commit<'a>(&mut self, commit: Oid, records: impl IntoIterator<Item = &'a Record>) {
        let mut last = None;
        for r in records {
            let server = self.intern(&r.server);
            let (tool, node) = match &r.op {
                Op::Merged(m) => (merged_tool(&m.from_tool), Some(self.intern(&m.node))),
                op => (op.tool(), None),
            };
            for name in r.op.entity_names() {
                let list = self.entries.entry(name.to_string()).or_default();
                list.push_back(Entry {
                    version: r.version,
                    time_ms: r.time_ms,
                    server: server.clone(),
                    tool,
                    node: node.clone(),
                });
                if list.len() > self.per_entity {
                    list.pop_front();
                }
            }
            last = Some(r.version);
        }
        if let Some(last) = last {
            self.commits.push((last, commit));
        }
    }

    fn commit_of(&self, version: u64) -> Option<Oid> {
        let i = self.commits.partition_point(|(last, _)| *last < version);
        self.commits.get(i).map(|(_, oid)| *oid)
    }

    /// Newest first, at most `limit`.
    pub fn query(&self, name: &str, limit: usize) -> Vec<HistoryEntry> {
        let Some(list) = self.entries.get(name) else {
            return Vec::new();
        };
        list.iter()
            .rev()
            .take(limit)
            .map(|e| HistoryEntry {
                commit: self
                    .commit_of(e.version)
                    .map(|o| o.to_string())
                    .unwrap_or_default(),
                time_ms: e.time_ms,
                server: e.server.to_string(),
                version: e.version,
                operation: e.tool.to_string(),
                node: e.node.as_ref().map(|n| n.to_string()),
            })
            .collect()
    }
}

/// Rebuilds the index from the newest commits of `refs/heads/main`, reading at most about
/// `scan_ops` ops. Unreadable history only shortens the index (and is logged): `verify`
/// is the place that judges history.
pub(crate) fn rebuild(gitdir: &Path, scan_ops: usize, per_entity: usize) -> HistoryIndex {
    let mut index = HistoryIndex::new(per_entity);
    let repo = match Repository::open(gitdir) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "history index left empty: cannot open the repository");
            return index;
        }
    };
    let mut commits: Vec<(Oid, Vec<Record>)> = Vec::new();
    let mut read = 0usize;
    let mut next = repo.refname_to_id(MAIN).ok();
    while let Some(oid) = next {
        if read >= scan_ops {
            break;
        }
        let Ok(commit) = repo.find_commit(oid) else {
            tracing::warn!(%oid, "history index stops at an unreadable commit");
            break;
        };
        match commit_ops(&repo, &commit) {
            Ok(ops) => {
                read += ops.len();
                commits.push((oid, ops));
            }
            Err(e) => {
                tracing::warn!(%oid, error = %e, "history index stops at an unreadable ops.jsonl");
                break;
            }
        }
        next = commit.parent_id(0).ok();
    }
    for (oid, ops) in commits.iter().rev() {
        index.add_commit(*oid, ops);
    }
    index
}
