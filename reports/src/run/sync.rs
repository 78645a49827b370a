//! The memory sync scenario's figures: writes, acknowledgements and their visibility on
//! another server, the latencies and histograms, and the end-of-run check that no
//! acknowledged write is missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    error_class::ErrorClass,
    histogram::EncodedHistogram,
    phase::{CpuUse, LatencySummary},
};

/// The `sync` scenario: write on one server, read with `minVersion` on another (see
/// loadgen's `sync` module for how each figure is defined).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResult {
    /// False when the targets lack the memory tools; `reason` says which.
    pub available: bool,
    /// The scenario ran and `figures` holds what it measured.
    #[serde(default)]
    pub ran: bool,
    /// Why the scenario did not run or, when it ran, its outcome in one line.
    pub reason: String,
    #[serde(default)]
    pub figures: Option<SyncFigures>,
}

/// What the sync scenario measured. Latencies in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncFigures {
    /// Names of the probe entities are `sync-<tag>-<n>`.
    pub tag: String,
    /// The fleet's isolation mode (`task` or `process`) where known: the embedded fleet's, or
    /// what a fleet admin API target reports.
    pub isolation: Option<String>,
    /// Servers written to and read from (those offering the memory tools).
    pub servers: usize,
    /// Nodes of a replicating fleet the servers belong to (their `memory_version` says; 0
    /// when none replicates). With two or more, every write is read back on a server of
    /// another node, so the lag is the replication's.
    #[serde(default)]
    pub nodes: usize,
    /// Targets left out: lacking the memory tools, or not answering `tools/list` or
    /// `memory_version` before the run.
    pub servers_left_out: usize,
    /// Only one server: each write was read back on the server that took it.
    pub same_server: bool,
    /// Intended writes per second (open model).
    pub rate_wps: f64,
    /// Most writes in flight at once.
    pub users: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// The measured window actually run.
    pub measured_s: f64,
    /// Writes attempted per second of the measured window.
    pub achieved_wps: f64,
    /// `timeoutMs` of each `minVersion` read.
    pub visible_wait_ms: u64,
    /// Writes due in the measured window: attempted, acknowledged, and failed by class.
    pub writes: u64,
    pub acked: u64,
    pub failed: BTreeMap<ErrorClass, u64>,
    /// Writes of the warm-up (not in the latencies; their acknowledged ones are checked too).
    pub warmup_writes: u64,
    pub warmup_acked: u64,
    /// Acknowledged writes of the window found on the other server by the `minVersion` read.
    pub visible: u64,
    /// Acknowledged writes of the window not seen there, by kind: `wait_timeout` (the server's
    /// view did not reach the version in time), `missing` (answered without the entity),
    /// `unversioned` (the ack carried no version), `read_<error class>` (the read failed).
    pub visibility_failures: BTreeMap<String, u64>,
    /// Ack latency: from the write's intended send time to its acknowledgement (coordinated
    /// omission corrected).
    pub ack_us: LatencySummary,
    /// The write call alone, from its actual send.
    pub ack_service_us: LatencySummary,
    /// Write-to-visible lag: from the ack arriving to the other server's answer containing
    /// the entity; it includes that read's round trip.
    pub lag_us: LatencySummary,
    /// Write-to-visible lag by the servers' own clocks: from A's acknowledgement
    /// (`ackedAtUs` in the write's result) to B's view reaching the write's version
    /// (`visibleAtUs` in the `minVersion` read's result), wall-clock microseconds of one
    /// machine. No read's round trip is in it; a view that already held the version when A
    /// acknowledged (one shared view in task mode) counts 0 (recorded as 1 µs, the
    /// histograms' floor). `None` when the servers report no such clocks.
    #[serde(default)]
    pub server_lag_us: Option<LatencySummary>,
    /// Visible writes left out of `server_lag_us` (a clock missing from either answer).
    #[serde(default)]
    pub server_lag_unknown: u64,
    /// One `open_nodes` round trip of a visible entity on the same server, without
    /// `minVersion`: the part of the lag that is the read itself.
    pub baseline_read_us: LatencySummary,
    pub baseline_failures: u64,
    pub histograms: SyncHistograms,
    pub per_second: Vec<SyncSecond>,
    /// New connections opened during the window (beyond one per server opened before it).
    pub connections_opened: u64,
    pub check: SyncCheck,
    /// The history of a sample of probes (when the servers offer `memory_history`).
    pub history: Option<SyncHistory>,
    /// Probes deleted at the end (`--target` servers offering `delete_entities`; the
    /// embedded fleet's memory belongs to the run and keeps them).
    pub cleanup: Option<SyncCleanup>,
    /// CPU use during the load (not the check).
    pub cpu: Option<CpuUse>,
    /// When the load (its warm-up first) started by the wall clock, milliseconds since the
    /// Unix epoch: where `per_second` sits in time. Absent from older run files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<u64>,
}

/// The sync scenario's histograms, encoded as
/// [`Results::histogram`](super::phase::Results::histogram) is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncHistograms {
    pub ack: EncodedHistogram,
    pub lag: EncodedHistogram,
    pub baseline_read: EncodedHistogram,
    #[serde(default)]
    pub server_lag: Option<EncodedHistogram>,
}

/// One second of the sync scenario's measured window, by intended send time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncSecond {
    pub writes: u64,
    pub acked: u64,
    pub visibility_failures: u64,
    pub ack_p50_us: u64,
    pub ack_p99_us: u64,
    pub lag_p50_us: u64,
    pub lag_p99_us: u64,
    /// This second's ack latency histogram (2 significant digits), encoded as
    /// [`Results::histogram`](super::phase::Results::histogram) is; empty in older files.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ack_histogram: String,
}

/// The end-of-run check that no acknowledged write is missing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncCheck {
    /// Why the check did not run (interrupted, nothing acknowledged); `None` when it ran.
    pub skipped: Option<String>,
    /// Servers every acknowledged probe was read back on.
    pub servers: Vec<String>,
    /// The highest acknowledged version: each read waited for it (`minVersion`). Across
    /// nodes (versions are per node) the highest of each, in `node_versions`.
    pub min_version: u64,
    /// Per node that took writes, its highest acknowledged version: every checked server
    /// waited until it held (had merged) each.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_versions: BTreeMap<String, u64>,
    /// Acknowledged writes checked (warm-up included).
    pub acked: u64,
    /// Every read of the check answered.
    pub complete: bool,
    pub read_errors: u64,
    /// Acknowledged writes missing on at least one of those servers.
    pub lost: u64,
    pub lost_examples: Vec<String>,
    /// Missing probes per server, for the servers with any.
    pub missing_by_server: BTreeMap<String, u64>,
    /// Probes listed more than once in one answer.
    pub duplicates: u64,
    pub seconds: f64,
}

/// A sample of probes looked up with `memory_history`: their write should be in the history
/// (which follows the acknowledgement by up to a commit interval).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncHistory {
    pub sampled: u64,
    /// With an entry of the write's version.
    pub found: u64,
    /// Of those, the entry names the server that took the write.
    pub attributed: u64,
    pub errors: u64,
    /// Seconds the check waited for commits, at most.
    pub waited_s: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncCleanup {
    /// Probes asked to be deleted.
    pub requested: u64,
    pub failed_calls: u64,
}
