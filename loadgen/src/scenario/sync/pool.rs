//! Connections to the servers taking part, shared by all users: a stack of idle clients per
//! server, each client one connection (with its session in the 2025-11-25 era) that makes one
//! tool call at a time.

use std::{
    sync::Arc,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use serde_json::Value;

use crate::{
    lock::lock,
    mcp::ErrorClass,
    measure::Target,
    transport::{
        http::{HttpCall, HttpClient},
        settings::HttpSettings,
    },
};

use super::memory::{Failure, parse_reply};

/// Calls in flight during preparation and clean-up.
pub(super) const PREP_CONCURRENCY: usize = 32;

/// Connections to the servers taking part, shared by all users: each server has a stack of
/// idle clients; a call takes one (or opens a new one when all are busy) and gives it back.
pub(super) struct Pool {
    pub(super) targets: Vec<Target>,
    /// The node of a replicating fleet each server's memory belongs to (its `memory_version`
    /// says), parallel to `targets`; `None` where the fleet does not replicate.
    pub(super) nodes: Vec<Option<String>>,
    /// How many distinct nodes `nodes` names.
    pub(super) distinct_nodes: usize,
    pub(super) idle: Vec<Mutex<Vec<Client>>>,
    pub(super) settings: Arc<HttpSettings>,
    /// Clients opened after the preparation.
    pub(super) opened: AtomicU64,
}

impl Pool {
    pub(super) fn len(&self) -> usize {
        self.targets.len()
    }

    /// The distinct nodes among the servers (0 when none replicates).
    pub(super) fn node_count(&self) -> usize {
        self.distinct_nodes
    }

    /// The server a write on `writer` is read back on: another one, on another node when the
    /// servers span several (so the lag measured is the replication's), the writer itself
    /// when it is the only server.
    pub(super) fn reader_for(&self, writer: usize, rng: &mut fastrand::Rng) -> usize {
        let n = self.len();
        if n == 1 {
            return writer;
        }
        let other = |rng: &mut fastrand::Rng| {
            let x = rng.usize(..n - 1);
            if x >= writer { x + 1 } else { x }
        };
        if self.node_count() < 2 {
            return other(rng);
        }
        let apart = |b: usize| self.nodes[b].is_some() && self.nodes[b] != self.nodes[writer];
        for _ in 0..64 {
            let b = other(rng);
            if apart(b) {
                return b;
            }
        }
        (0..n).find(|&b| apart(b)).unwrap_or_else(|| other(rng))
    }

    /// `minVersion` (and `minVersionNode` when `reader` is on another node than `writer`)
    /// of a read on `reader` that must see `version` written on `writer`.
    pub(super) fn wait_args(&self, writer: usize, reader: usize, version: u64) -> Value {
        match (&self.nodes[writer], &self.nodes[reader]) {
            (Some(w), r) if r.as_ref() != Some(w) => {
                serde_json::json!({"minVersion": version, "minVersionNode": w})
            }
            _ => serde_json::json!({"minVersion": version}),
        }
    }

    pub(super) fn take(&self, i: usize) -> Result<Client, ErrorClass> {
        if let Some(c) = lock(&self.idle[i]).pop() {
            return Ok(c);
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Client::new(&self.targets[i], &self.settings)
    }

    pub(super) fn give(&self, i: usize, client: Client) {
        lock(&self.idle[i]).push(client);
    }

    /// One call on a client of server `i`.
    pub(super) async fn call(&self, i: usize, tool: &str, arguments: Value) -> Answer {
        match self.take(i) {
            Ok(mut c) => {
                let answer = c.call(tool, arguments).await;
                self.give(i, c);
                answer
            }
            Err(class) => Answer {
                elapsed: Duration::ZERO,
                done_at: Instant::now(),
                outcome: Err(class.into()),
            },
        }
    }

    /// Closes every session (DELETE), as a well-behaved client does.
    pub(super) async fn close_all(&self) {
        let clients: Vec<Client> = self
            .idle
            .iter()
            .flat_map(|idle| std::mem::take(&mut *lock(idle)))
            .collect();
        futures::stream::iter(clients)
            .for_each_concurrent(PREP_CONCURRENCY, Client::close)
            .await;
    }
}

/// One connection to one server, with its session for the session versions.
pub(super) struct Client {
    pub(super) http: HttpClient,
    pub(super) next_id: u64,
}

/// What one tool call gave.
pub(super) struct Answer {
    /// From sending (opening a session included) to the end of the response body.
    pub(super) elapsed: Duration,
    /// When the response was complete.
    pub(super) done_at: Instant,
    /// The JSON-RPC `result`, or why there is none.
    pub(super) outcome: Result<Value, Failure>,
}

impl Client {
    pub(super) fn new(target: &Target, settings: &Arc<HttpSettings>) -> Result<Self, ErrorClass> {
        Ok(Self {
            http: HttpClient::new(&target.url, settings, target.version)?,
            next_id: 0,
        })
    }

    pub(super) async fn call(&mut self, tool: &str, arguments: Value) -> Answer {
        let start = Instant::now();
        let outcome = self.exchange(tool, arguments).await;
        let done_at = Instant::now();
        Answer {
            elapsed: done_at.saturating_duration_since(start),
            done_at,
            outcome,
        }
    }

    pub(super) async fn exchange(
        &mut self,
        tool: &str,
        arguments: Value,
    ) -> Result<Value, Failure> {
        self.next_id += 1;
        let id = self.next_id;
        // A session is opened first when there is none (the first call, or after a 404).
        let x = self
            .http
            .request(&HttpCall::tool(tool, arguments), id)
            .await?;
        match std::str::from_utf8(&x.body) {
            Ok(text) => parse_reply(x.status, text, id),
            Err(_) if !(200..300).contains(&x.status) => Err(ErrorClass::HttpStatus.into()),
            Err(_) => Err(ErrorClass::Protocol.into()),
        }
    }

    pub(super) async fn close(mut self) {
        self.http.close().await;
    }
}

/// How many distinct nodes `nodes` names.
pub(super) fn distinct_nodes(nodes: &[Option<String>]) -> usize {
    let mut names: Vec<&str> = nodes.iter().flatten().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}
