//! Merging the other nodes' histories into this node's graph. Each round reads, from every
//! other node's head at a peer, the commits past the version already taken in from that node,
//! takes that node's own writes from their `ops.jsonl` (not the ones it merged from others:
//! those are read from their own origin) and hands them to the owner as `merged` records, like
//! any write: WAL first, then the view, then git.
//!
//! A write goes in only right after that node's previous write and after everything its
//! writer had seen (its `deps`; the graph checks both again), so a delete never arrives
//! before an add it removed and a write lost on the way is never skipped. A write waiting for
//! a node not published yet waits for a later round. Each round reads at most [`MAX_RECORDS`]
//! records, shared among the nodes, so a node that was away a long time catches up in steps
//! without holding the owner, and a node whose writes all wait cannot starve the others.
//!
//! Another node's history is not trusted: commits written before writes carried their effects
//! cannot be merged (said so, not guessed), an `ops.jsonl` over [`MAX_OPS_BYTES`] is not read,
//! versions must grow, and every write is checked ([`Merged::check`]) before it reaches the
//! owner. A node whose history fails is reported and left alone; the others go on.

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

/// Most records read from the other nodes' histories in one round, shared among them.
const MAX_RECORDS: usize = 20_000;
/// Least share of [`MAX_RECORDS`] each node gets, however many there are.
const MIN_RECORDS_PER_NODE: usize = 1_000;
/// Most merged writes waiting on the owner at once.
const MAX_IN_FLIGHT: usize = 1_000;
/// Largest `ops.jsonl` of another node read.
const MAX_OPS_BYTES: usize = 256 << 20;

/// What one round found for one node.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct NodeMerge {
    /// How far its history is taken in here: every write of its own up to this version is
    /// merged (the writes it merged from others come from their origins).
    pub merged: u64,
    /// Its writes read but waiting for another node's writes they had seen.
    pub waiting: usize,
    /// Why its history cannot be merged, if it cannot.
    pub error: Option<String>,
}

/// The commits of one node's history not yet read through, oldest first, as of `head`:
/// walked once, not again every round.
#[derive(Debug, Default)]
struct Chain {
    head: Option<Oid>,
    commits: VecDeque<(Oid, u64)>,
}

/// Feeds the other nodes' writes to the owner.
pub(crate) struct Merger {
    tx: mpsc::UnboundedSender<Request>,
    view: Arc<View>,
    me: NodeId,
    /// Per node, the version its history is read through (its own writes merged, the rest
    /// skipped): where the next round starts reading.
    through: BTreeMap<String, u64>,
    chains: BTreeMap<String, Chain>,
}

impl Merger {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Request>, view: Arc<View>, me: NodeId) -> Merger {
        Merger {
            tx,
            view,
            me,
            through: BTreeMap::new(),
            chains: BTreeMap::new(),
        }
    }

    /// One round over the other nodes' heads, each with the repository it is read from;
    /// returns per node what is merged and waiting.
    pub(super) fn round(
        &mut self,
        heads: &BTreeMap<String, (&Repository, Oid)>,
    ) -> BTreeMap<String, NodeMerge> {
        let mut have = self.view.merged_versions();
        let mut through = self.through.clone();
        for (node, v) in &have {
            let t = through.entry(node.clone()).or_default();
            *t = (*t).max(*v);
        }
        let others: Vec<&String> = heads.keys().filter(|n| **n != self.me.as_str()).collect();
        let budget = (MAX_RECORDS / others.len().max(1)).max(MIN_RECORDS_PER_NODE);
        let mut report: BTreeMap<String, NodeMerge> = BTreeMap::new();
        let mut queues: BTreeMap<&str, VecDeque<Record>> = BTreeMap::new();
        for node in others {
            let done = through.get(node).copied().unwrap_or(0);
            let chain = self.chains.entry(node.clone()).or_default();
            let (repo, head) = heads[node];
            match read_since(repo, chain, head, done, budget) {
                Ok(records) => {
                    queues.insert(node, records.into());
                }
                Err(e) => {
                    tracing::warn!(node = %node, error = %e, "cannot merge another node's memory history");
                    self.chains.remove(node);
                    report.entry(node.clone()).or_default().error = Some(e);
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
                    let prev = have.get(*node).copied().unwrap_or(0);
                    if let Some(m) = Merged::of_record(node, r, prev) {
                        if let Err(e) = m.check() {
                            let e = format!("its write {} cannot be merged: {e}", r.version);
                            tracing::warn!(node = %node, error = %e, "refusing another node's memory write");
                            report.entry((*node).to_string()).or_default().error = Some(e);
                            break;
                        }
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
                self.chains.clear();
                tracing::warn!(error = %e, "cannot merge other nodes' memory writes; trying again next round");
            }
        }
        for node in heads.keys().filter(|n| **n != self.me.as_str()) {
            let r = report.entry(node.clone()).or_default();
            r.merged = self.through.get(node).copied().unwrap_or(0);
            r.waiting = queues.get(node.as_str()).map_or(0, |q| {
                q.iter().filter(|r| !matches!(r.op, Op::Merged(_))).count()
            });
        }
        report
    }

    /// Hands the writes to the owner in order, at most [`MAX_IN_FLIGHT`] at a time, and
    /// waits until each is durable. One merged already (a round that raced another) is fine;
    /// any other refusal ends the round (the next one reads again from what the graph holds).
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

/// Brings `chain` up to `head`: the commits after version `done`, oldest first. A head that
/// does not lead back to the chain's (a rewritten history) starts the chain afresh.
fn extend(repo: &Repository, chain: &mut Chain, head: Oid, done: u64) -> Result<(), String> {
    while chain.commits.front().is_some_and(|(_, v)| *v <= done) {
        chain.commits.pop_front();
    }
    if chain.head == Some(head) {
        return Ok(());
    }
    let mut newer = Vec::new();
    let mut oid = head;
    let met = loop {
        if chain.head == Some(oid) {
            break true;
        }
        let commit = repo
            .find_commit(oid)
            .map_err(|e| format!("commit {oid}: {}", e.message()))?;
        let version = super::version_at(repo, oid)
            .ok_or_else(|| format!("commit {oid} has no readable meta.json"))?;
        if version <= done {
            break false;
        }
        if newer.last().is_some_and(|(_, later)| *later <= version) {
            return Err(format!(
                "commit {oid}'s version {version} does not precede its child's"
            ));
        }
        newer.push((oid, version));
        match commit.parent_id(0) {
            Ok(parent) => oid = parent,
            Err(_) => break false,
        }
    };
    if !met {
        chain.commits.clear();
    }
    if let (Some((_, oldest)), Some((_, last))) = (newer.last(), chain.commits.back())
        && oldest <= last
    {
        return Err("its history was rewritten".into());
    }
    chain.commits.extend(newer.into_iter().rev());
    chain.head = Some(head);
    Ok(())
}

/// The records after version `done` up to `head` (oldest first), whole commits, about
/// `budget` of them at most.
fn read_since(
    repo: &Repository,
    chain: &mut Chain,
    head: Oid,
    done: u64,
    budget: usize,
) -> Result<Vec<Record>, String> {
    extend(repo, chain, head, done)?;
    let mut records: Vec<Record> = Vec::new();
    for &(oid, version) in &chain.commits {
        if records.len() >= budget {
            break;
        }
        let commit = repo
            .find_commit(oid)
            .map_err(|e| format!("commit {oid}: {}", e.message()))?;
        let (meta, ops) = archive::foreign_commit_ops(repo, &commit, MAX_OPS_BYTES)?;
        if !meta.effects && !ops.is_empty() {
            return Err(format!(
                "commit {oid} was written by an mcpfleet that did not record what writes did, \
                 so its writes cannot be merged (start that node afresh, or from a copy of a \
                 node that merges)"
            ));
        }
        for r in ops {
            let last = records.last().map_or(done, |l| l.version);
            if r.version > version || (r.version <= last && r.version > done) {
                return Err(format!(
                    "commit {oid} holds version {} out of order (after {last}, commit at {version})",
                    r.version
                ));
            }
            if r.version > done {
                records.push(r);
            }
        }
    }
    Ok(records)
}
