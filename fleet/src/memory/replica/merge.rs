//! Merging the other nodes' histories into this node's graph. Each round reads, from every
//! other node's fetched head, the commits past the version already merged from that node,
//! takes that node's own writes from their `ops.jsonl` (not the ones it merged from others:
//! those are read from their own origin) and hands them to the owner as `merged` records, like
//! any write: WAL first, then the view, then git.
//!
//! A write goes in only after everything its writer had seen (its `deps`), so a delete never
//! arrives before an add it removed; a write waiting for a node not fetched yet waits for a
//! later round. Each round reads at most [`MAX_RECORDS`] records, so a node that was away a
//! long time catches up in steps without holding the owner.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use git2::{Oid, Repository};
use tokio::sync::{mpsc, oneshot};

use super::node::NodeId;
use crate::memory::{
    archive,
    error::WriteError,
    graph::ApplyError,
    op::{Merged, Op, Record, validate_server},
    owner::{Ack, Request},
    view::View,
};

/// Most records read from the other nodes' histories in one round.
const MAX_RECORDS: usize = 20_000;
/// Most merged writes waiting on the owner at once.
const MAX_IN_FLIGHT: usize = 1_000;
/// Most commits walked back from one node's head in one round.
const MAX_WALK: usize = 200_000;

/// What one round found for one node.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct NodeMerge {
    /// How far its history is taken in here: every write of its own up to this version is
    /// merged (the writes it merged from others come from their origins).
    pub merged: u64,
    /// Its writes read but waiting for another node's writes they had seen.
    pub waiting: usize,
}

/// Feeds the other nodes' writes to the owner.
pub(crate) struct Merger {
    tx: mpsc::UnboundedSender<Request>,
    view: Arc<View>,
    me: NodeId,
    /// Per node, the version its history is read through (its own writes merged, the rest
    /// skipped): where the next round starts reading.
    through: BTreeMap<String, u64>,
}

impl Merger {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Request>, view: Arc<View>, me: NodeId) -> Merger {
        Merger {
            tx,
            view,
            me,
            through: BTreeMap::new(),
        }
    }

    /// One round over the other nodes' heads; returns per node what is merged and waiting.
    pub(super) fn round(
        &mut self,
        repo: &Repository,
        heads: &BTreeMap<String, Oid>,
    ) -> BTreeMap<String, NodeMerge> {
        let mut have = self.view.merged_versions();
        let mut through = self.through.clone();
        for (node, v) in &have {
            let t = through.entry(node.clone()).or_default();
            *t = (*t).max(*v);
        }
        let mut budget = MAX_RECORDS;
        let mut queues: BTreeMap<&str, VecDeque<Record>> = BTreeMap::new();
        for (node, &head) in heads {
            if node == self.me.as_str() || budget == 0 {
                continue;
            }
            let done = through.get(node).copied().unwrap_or(0);
            match read_since(repo, head, done, &mut budget) {
                Ok(records) => {
                    queues.insert(node, records.into());
                }
                Err(e) => {
                    tracing::warn!(node = %node, error = %e, "cannot read another node's memory history")
                }
            }
        }
        let mut batch = Vec::new();
        loop {
            let mut moved = false;
            for (node, queue) in &mut queues {
                while let Some(r) = queue.front() {
                    let ready = r.deps.iter().all(|(n, v)| {
                        n == self.me.as_str() || have.get(n).copied().unwrap_or(0) >= *v
                    });
                    if !ready {
                        break;
                    }
                    if let Some(m) = Merged::of_record(node, r) {
                        have.insert((*node).to_string(), r.version);
                        batch.push(m);
                    }
                    through.insert((*node).to_string(), r.version);
                    queue.pop_front();
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        match self.submit(batch) {
            Ok(()) => self.through = through,
            Err(e) => {
                // Read again from what the graph holds.
                self.through.clear();
                tracing::warn!(error = %e, "cannot merge other nodes' memory writes; trying again next round");
            }
        }
        heads
            .keys()
            .filter(|n| n.as_str() != self.me.as_str())
            .map(|n| {
                let waiting = queues.get(n.as_str()).map_or(0, |q| {
                    q.iter().filter(|r| !matches!(r.op, Op::Merged(_))).count()
                });
                let merged = self.through.get(n).copied().unwrap_or(0);
                (n.clone(), NodeMerge { merged, waiting })
            })
            .collect()
    }

    /// Hands the writes to the owner in order, at most [`MAX_IN_FLIGHT`] at a time, and
    /// waits until each is durable. One merged already (a round that raced another) is fine.
    fn submit(&self, batch: Vec<Merged>) -> Result<(), WriteError> {
        let mut pending = VecDeque::new();
        for m in batch {
            // The server becomes a git author name: only what this node would accept.
            let server = if validate_server(&m.server).is_ok() {
                m.server.clone()
            } else {
                "unknown".to_string()
            };
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(Request::Write {
                    server,
                    seen: 0,
                    op: Op::Merged(Box::new(m)),
                    reply,
                })
                .map_err(|_| WriteError::Closed)?;
            pending.push_back(rx);
            if pending.len() >= MAX_IN_FLIGHT {
                wait(pending.pop_front())?;
            }
        }
        while let Some(rx) = pending.pop_front() {
            wait(Some(rx))?;
        }
        Ok(())
    }
}

fn wait(rx: Option<oneshot::Receiver<Result<Ack, WriteError>>>) -> Result<(), WriteError> {
    let Some(rx) = rx else { return Ok(()) };
    match rx.blocking_recv().map_err(|_| WriteError::Closed)? {
        Ok(_) | Err(WriteError::Rejected(ApplyError::AlreadyMerged { .. })) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The records of the commits after version `done` up to `head` (oldest first), at most
/// `budget` of them (whole commits; the budget is reduced by what was read).
fn read_since(
    repo: &Repository,
    head: Oid,
    done: u64,
    budget: &mut usize,
) -> Result<Vec<Record>, String> {
    let mut commits = Vec::new();
    let mut oid = head;
    loop {
        let commit = repo
            .find_commit(oid)
            .map_err(|e| format!("commit {oid}: {}", e.message()))?;
        let version = super::version_at(repo, oid)
            .ok_or_else(|| format!("commit {oid} has no readable meta.json"))?;
        if version <= done {
            break;
        }
        commits.push(oid);
        if commits.len() > MAX_WALK {
            return Err(format!("more than {MAX_WALK} commits to walk"));
        }
        match commit.parent_id(0) {
            Ok(parent) => oid = parent,
            Err(_) => break,
        }
    }
    let mut records = Vec::new();
    for oid in commits.into_iter().rev() {
        if *budget == 0 {
            break;
        }
        let commit = repo
            .find_commit(oid)
            .map_err(|e| format!("commit {oid}: {}", e.message()))?;
        let ops = archive::commit_ops(repo, &commit)?;
        *budget = budget.saturating_sub(ops.len());
        records.extend(ops.into_iter().filter(|r| r.version > done));
    }
    Ok(records)
}
