//! The owner: one OS thread that serialises every write. It takes whatever requests are
//! queued (group commit), applies them in order, appends their records to the WAL with one
//! `fdatasync`, and only then updates the local view, acknowledges the writers and hands the
//! batch to the committer. If the WAL write fails nobody in the batch is acknowledged, the WAL
//! is cut back and the graph rolled back; if even that fails the owner refuses all later
//! writes (poisoned) until the store is reopened and recovery decides from the disk.

use std::{
    collections::VecDeque,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::error::WriteError;
use super::graph::{ApplyError, Graph, OpResult};
use super::hlc;
use super::op::{Deps, Effect, Op, Record};
use super::stats::Stats;
use super::view::View;
use super::wal::{self, AppendError, Wal};

/// Log bytes after which a batch is closed even if more writes are queued, so a burst of
/// large ops cannot make one huge buffer and one very long fsync.
const MAX_BATCH_BYTES: usize = 64 << 20;
/// How far ahead of this node's clock another node's stamp may be and still move this
/// node's clock forward.
const MAX_CLOCK_AHEAD_MS: u64 = 60_000;

/// A durable write: its version in the total order and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Ack {
    pub version: u64,
    pub result: OpResult,
    /// Wall-clock time of the acknowledgement, microseconds since the Unix epoch: with a
    /// view's [`View::visible_at`](super::view::View::visible_at) it times how long a write
    /// took to become visible on another server, without the read's own round trip.
    #[serde(default)]
    pub acked_at_us: u64,
}

pub(crate) enum Request {
    Write {
        server: String,
        seen: u64,
        op: Op,
        reply: oneshot::Sender<Result<Ack, WriteError>>,
    },
    /// Finish what is queued before this, refuse the rest, stop.
    Shutdown,
}

/// A durable batch on its way to git.
pub(crate) struct Batch {
    pub records: Arc<[Record]>,
    pub acked_at: Instant,
}

struct Write {
    server: String,
    seen: u64,
    op: Op,
    reply: oneshot::Sender<Result<Ack, WriteError>>,
}

pub(crate) struct Owner {
    pub graph: Graph,
    pub wal: Wal,
    pub view: Arc<View>,
    pub committer: std::sync::mpsc::Sender<Batch>,
    pub stats: Arc<Stats>,
    pub max_batch: usize,
    pub poisoned: Option<String>,
    /// The last stamp given ([`hlc`]): restored at open from the head commit and the WAL.
    pub hlc: u64,
}

impl Owner {
    /// Serves requests until a `Shutdown` or until every sender is gone.
    pub fn run(mut self, mut rx: mpsc::UnboundedReceiver<Request>) {
        let mut pending: VecDeque<Write> = VecDeque::with_capacity(self.max_batch);
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut committer_gone = false;
        let mut shutdown = false;
        loop {
            if pending.is_empty() {
                if shutdown {
                    break;
                }
                match rx.blocking_recv() {
                    Some(r) => self.take(r, &mut pending, &mut shutdown),
                    None => break,
                }
            }
            while !shutdown && pending.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(r) => self.take(r, &mut pending, &mut shutdown),
                    Err(_) => break,
                }
            }
            if let Some(batch) = self.process(&mut pending, &mut buf)
                && !committer_gone
                && self.committer.send(batch).is_err()
            {
                committer_gone = true;
                tracing::error!(
                    "the memory committer has stopped: acknowledged ops stay in the WAL until the next open"
                );
            }
        }
        rx.close();
        while let Some(r) = rx.blocking_recv() {
            if let Request::Write { reply, .. } = r {
                let _ = reply.send(Err(WriteError::Closed));
            }
        }
    }

    fn take(&self, r: Request, pending: &mut VecDeque<Write>, shutdown: &mut bool) {
        match r {
            Request::Write {
                server,
                seen,
                op,
                reply,
            } if !*shutdown => pending.push_back(Write {
                server,
                seen,
                op,
                reply,
            }),
            Request::Write { reply, .. } => {
                let _ = reply.send(Err(WriteError::Closed));
            }
            Request::Shutdown => *shutdown = true,
        }
    }

    /// The stamp to stamp after: the last one, or a merged write's own if later (so this
    /// node's next writes order after what it has seen), unless that one is further ahead of
    /// this node's clock than [`MAX_CLOCK_AHEAD_MS`] (a peer's broken clock must not drag
    /// every later stamp into the future).
    fn stamp_base(&self, op: &Op, now_ms: u64) -> u64 {
        match op {
            Op::Merged(m) if hlc::wall_ms(m.hlc) <= now_ms.saturating_add(MAX_CLOCK_AHEAD_MS) => {
                self.hlc.max(m.hlc)
            }
            _ => self.hlc,
        }
    }

    fn refuse(&self, refused: Vec<(oneshot::Sender<Result<Ack, WriteError>>, ApplyError)>) {
        self.stats
            .ops_rejected
            .fetch_add(refused.len() as u64, Ordering::Relaxed);
        for (reply, e) in refused {
            let _ = reply.send(Err(WriteError::Rejected(e)));
        }
    }

    /// Applies, logs and acknowledges one batch taken from the front of `pending` (up to
    /// [`MAX_BATCH_BYTES`] of log); returns it for the committer if durable.
    fn process(&mut self, pending: &mut VecDeque<Write>, buf: &mut Vec<u8>) -> Option<Batch> {
        if let Some(reason) = &self.poisoned {
            for w in pending.drain(..) {
                let _ = w.reply.send(Err(WriteError::Poisoned(reason.clone())));
            }
            return None;
        }
        buf.clear();
        let first_version = self.graph.version() + 1;
        let time_ms = hlc::now_ms();
        let mut records = Vec::with_capacity(pending.len());
        let mut acks = Vec::with_capacity(pending.len());
        let mut refused = Vec::new();
        self.graph.begin(true);
        while buf.len() < MAX_BATCH_BYTES
            && let Some(w) = pending.pop_front()
        {
            let version = self.graph.version() + 1;
            let seen = w.seen.min(version - 1);
            let stamp = hlc::next(self.stamp_base(&w.op, time_ms), time_ms);
            match self.graph.apply_at(&w.op, version, seen, stamp) {
                Ok(result) => {
                    // Kept even if the batch is rolled back: stamps only need to increase.
                    self.hlc = stamp;
                    let removed = self.graph.take_removed();
                    let (effect, deps) = if matches!(w.op, Op::Merged(_)) {
                        // Its effect travels in the op; other nodes read it from its origin.
                        (None, Deps::new())
                    } else {
                        let effect = (!Effect::is_plain(&w.op, &result, &removed))
                            .then(|| Effect::of_result(&result, removed));
                        let deps: Deps = self
                            .graph
                            .nodes()
                            .map(|(n, v)| (n.to_string(), v))
                            .collect();
                        (effect, deps)
                    };
                    let record = Record {
                        version,
                        server: w.server,
                        seen,
                        time_ms,
                        hlc: self.hlc,
                        op: w.op,
                        effect,
                        deps,
                    };
                    wal::encode(&record, buf);
                    records.push(record);
                    acks.push((
                        w.reply,
                        Ack {
                            version,
                            result,
                            acked_at_us: 0,
                        },
                    ));
                }
                // Answered with the batch: the refusal depends on earlier ops of the batch,
                // so it only stands if they become durable.
                Err(e) => refused.push((w.reply, e)),
            }
        }
        if records.is_empty() {
            self.graph.finish();
            self.refuse(refused);
            return None;
        }
        // Closes the batch in the same fsync: recovery keeps a batch only with its end.
        wal::end_batch(
            buf,
            first_version,
            u32::try_from(records.len()).unwrap_or(u32::MAX),
        );
        match self.wal.append(buf, first_version) {
            Ok(()) => {
                self.graph.finish();
                let records: Arc<[Record]> = records.into();
                let last = self.graph.version();
                let acked_at = Instant::now();
                let acked_at_us = super::view::wall_us();
                // Before anyone is acknowledged: a read through any server after the ack
                // finds the write.
                if let Err(e) = self.view.publish(&records, acked_at_us) {
                    tracing::error!(error = %e, "the memory view diverged from the owner");
                }
                self.stats.batch_acked(last, records.len() as u64);
                for (reply, mut ack) in acks {
                    ack.acked_at_us = acked_at_us;
                    let _ = reply.send(Ok(ack));
                }
                self.refuse(refused);
                Some(Batch { records, acked_at })
            }
            Err(AppendError::Failed(e)) => {
                self.graph.rollback();
                self.stats.wal_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, ops = acks.len(), "WAL write failed; the batch was rolled back and nobody acknowledged");
                let reason = e.to_string();
                let replies = acks.into_iter().map(|(r, _)| r);
                for reply in replies.chain(refused.into_iter().map(|(r, _)| r)) {
                    let _ = reply.send(Err(WriteError::Storage(reason.clone())));
                }
                None
            }
            Err(e @ AppendError::Poisoned { .. }) => {
                self.graph.rollback();
                self.stats.wal_failures.fetch_add(1, Ordering::Relaxed);
                self.stats.poisoned.store(true, Ordering::Relaxed);
                let reason = e.to_string();
                tracing::error!(error = %reason, "WAL cannot be repaired; refusing writes until reopened");
                for (reply, _) in acks {
                    let _ = reply.send(Err(WriteError::Poisoned(format!(
                        "{reason} (this write may reappear after reopening, as recovery reads what reached the disk)"
                    ))));
                }
                for (reply, _) in refused {
                    let _ = reply.send(Err(WriteError::Poisoned(reason.clone())));
                }
                self.poisoned = Some(reason);
                None
            }
        }
    }
}
