//! What the dashboard page receives each second: one [`Frame`] for every viewer, as JSON. Per
//! server it is columns (one array per field, in registry order) rather than an object per
//! server, which keeps a 1000-server frame near 60 kB.

use serde::Serialize;

/// The fleet at one moment, with rates over the last few seconds.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub uptime_ms: u64,
    pub isolation: &'static str,
    /// The window rates and quantiles are taken over, in seconds.
    pub window_s: f64,
    pub servers: ServerColumns,
    pub groups: Vec<GroupNow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayPanel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryPanel>,
}

/// Every server, one array per field, in registry order (by group, then index).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerColumns {
    pub id: Vec<String>,
    /// Index into [`Frame::groups`].
    pub group: Vec<u16>,
    /// starting, healthy, unhealthy, restarting, stopped, paused (requests held), faulted
    /// (latency added).
    pub state: Vec<&'static str>,
    /// MCP requests per second over the window.
    pub rps: Vec<f64>,
    /// Errors per second over the window.
    pub eps: Vec<f64>,
    /// Latency quantiles over the window in milliseconds; `null` without requests.
    pub p50_ms: Vec<Option<f64>>,
    pub p99_ms: Vec<Option<f64>>,
    pub connections: Vec<u64>,
    pub sessions: Vec<u64>,
    pub restarts: Vec<u32>,
    /// Seconds since the running instance started (0 while down).
    pub uptime_s: Vec<u64>,
}

/// One group now; its recent history is a list of [`GroupPoint`]s.
#[derive(Debug, Clone, Serialize)]
pub struct GroupNow {
    pub name: String,
    pub servers: usize,
    pub healthy: usize,
    #[serde(flatten)]
    pub point: GroupPoint,
}

/// A group's traffic over one window: a point of its time series.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GroupPoint {
    pub at_ms: u64,
    pub rps: f64,
    /// Errors over requests in the window (0 without requests).
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The gateway's view of each group's pool.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayPanel {
    pub groups: Vec<GatewayGroup>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GatewayGroup {
    pub name: String,
    pub members: usize,
    /// Up and not ejected: members a call can go to.
    pub in_rotation: usize,
    pub ejected: usize,
    /// Members out of rotation (at most [`GatewayGroup::OUT_LISTED`]).
    pub out: Vec<String>,
    pub ejections_total: u64,
    pub calls_per_s: f64,
    pub retries_per_s: f64,
    pub retries_total: u64,
}

impl GatewayGroup {
    /// How many out-of-rotation members a frame names.
    pub const OUT_LISTED: usize = 24;
}

/// The shared memory.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryPanel {
    /// Newest acknowledged write.
    pub version: u64,
    pub committed_version: u64,
    /// Acknowledged writes per second over the window.
    pub writes_per_s: f64,
    /// Acknowledged writes not yet in a durable git commit, and how long the oldest has waited.
    pub uncommitted: u64,
    pub uncommitted_age_ms: f64,
    /// Acknowledgement to durable commit since start.
    pub commit_lag_p50_ms: f64,
    pub commit_lag_p99_ms: f64,
    pub wal_bytes: u64,
    pub poisoned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub peers: Vec<crate::memory::replica::PeerStatus>,
    pub nodes: Vec<crate::memory::replica::NodeSeen>,
}

/// What a new viewer gets first: each group's points of the last minutes, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub groups: Vec<GroupSeries>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupSeries {
    pub name: String,
    pub points: Vec<GroupPoint>,
}
