//! What the balancer is told and what it tells: how a request to a backend ended
//! ([`Outcome`], [`FailureKind`]) and the per-member statistics it reports for `/metrics` and
//! the admin API ([`MemberStats`], [`FailureCounts`]). Plain data, shared by the member state
//! machine, the pool and the gateway.

use serde::{Deserialize, Serialize};

use crate::histogram::Snapshot;

/// Why a request to a backend failed, as far as backend health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The connection could not be made (refused, reset before a response): the server is
    /// most likely gone.
    Connect,
    /// No (complete) response in time.
    Timeout,
    /// The backend answered with an HTTP 5xx.
    Status5xx,
    /// The backend answered with something that is not a valid MCP/JSON-RPC response.
    BadResponse,
}

impl FailureKind {
    /// Every kind, in the order of [`FailureCounts`]' fields.
    pub const ALL: [FailureKind; 4] = [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Status5xx,
        FailureKind::BadResponse,
    ];

    /// Label value for metrics (`kind="connect"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Status5xx => "5xx",
            FailureKind::BadResponse => "bad_response",
        }
    }
}

/// How a request to the leased backend ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The backend answered properly (a JSON-RPC error result from the tool is still a success
    /// for the backend's health).
    Success,
    Failure(FailureKind),
}

/// Failures of one member by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    pub connect: u64,
    pub timeout: u64,
    pub status_5xx: u64,
    pub bad_response: u64,
}

impl FailureCounts {
    /// All failures.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.status_5xx + self.bad_response
    }

    /// Failures of one kind.
    pub fn get(&self, kind: FailureKind) -> u64 {
        match kind {
            FailureKind::Connect => self.connect,
            FailureKind::Timeout => self.timeout,
            FailureKind::Status5xx => self.status_5xx,
            FailureKind::BadResponse => self.bad_response,
        }
    }

    pub(super) fn bump(&mut self, kind: FailureKind) {
        let c = match kind {
            FailureKind::Connect => &mut self.connect,
            FailureKind::Timeout => &mut self.timeout,
            FailureKind::Status5xx => &mut self.status_5xx,
            FailureKind::BadResponse => &mut self.bad_response,
        };
        *c += 1;
    }
}

/// One member's state for `/metrics` and the admin API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberStats {
    pub id: String,
    /// Not marked down by active health checks or the registry.
    pub up: bool,
    /// Leases held right now (requests in flight).
    pub outstanding: u32,
    /// Latency EWMA in microseconds, as last updated (without idle relaxing).
    pub ewma_us: u64,
    /// Passively ejected, including half-open (backoff over, waiting for a successful probe).
    pub ejected: bool,
    pub ejections_total: u64,
    pub failures_total: u64,
    pub failures: FailureCounts,
    pub successes_total: u64,
    /// When the member was last taken out of rotation (marked down or ejected), in
    /// milliseconds since the Unix epoch, oldest first (the last [`TAKEN_OUT_KEPT`]): how a
    /// chaos run times detection against the moment it killed the server.
    pub taken_out_at_ms: Vec<u64>,
    /// Latency of the requests it answered.
    #[serde(skip)]
    pub latency: Snapshot,
}

/// How many taken-out times a member remembers.
pub const TAKEN_OUT_KEPT: usize = 8;
