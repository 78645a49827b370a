//! The run file, `run.json`: the one contract between loadgen, the report and later tools.
//!
//! # Wire format (schema_version 3; version 2 files read with the newer fields empty)
//! - `schema_version` (2), `tool` {`name`, `version`}, `started_at`/`finished_at` (RFC 3339,
//!   UTC), `interrupted` (Ctrl-C stopped the run early; the numbers cover what ran).
//! - `config`: what was asked: `mode` (`embedded` fleet or `targets`), `servers`, `scenarios`
//!   run, `users`, `warmup_s`, `duration_s` (the latency scenario's), `timeout_s`,
//!   `ephemeral_ports`, `targets`, `protocol` (`auto`, `2026-07-28` or `2025-11-25`),
//!   `protocol_version` (the eras the servers were spoken to in), `load_model`, `mix` (per
//!   group, tool and share in percent).
//! - `environment`: `os`, `arch`, `cpus`, `fd_limit`, `git_commit` (null outside a repository).
//! - `fleet` (embedded mode only): the fleet's own view: `servers`, `healthy_at_start`,
//!   `startup_s`, `healthy_at_end`, `requests_total` (every request the servers counted,
//!   health probes included), `restarts_total`, `open_connections_max` (most connections the
//!   servers reported open at the once-a-second samples).
//! - `health`: the sweep of one `tools/list` per server, with the era each answered in.
//! - `latency`, `connections.results`, `capacity.steps[].results`: [`Results`] of one load
//!   phase. Times are microseconds. `requests` = `ok` + all `errors`, by start time inside the
//!   measured window of `measured_s` seconds; `throughput_rps` = `requests / measured_s`;
//!   `latency_us` and `percentiles_us` cover successful requests only; `by_call` and `by_group`
//!   split them by call and by target group; `per_second` has counts and percentiles by start
//!   second, each with its own histogram; `histogram` is the merged HdrHistogram, V2 deflate
//!   serialised, base64 (standard alphabet): it can be decoded and merged across runs.
//!   `connections` samples, once a second, the established client connections to the targets
//!   and the servers' own count; `cpu` is CPU use during the phase, the generator's threads
//!   apart from the embedded fleet's (`generator_cpu_s`, `fleet_cpu_s`); `engine` is what goose
//!   counted (a cross-check of `requests`, warm-up included).
//! - `connections`: the held-connections scenario: how many were asked for, the fewest seen
//!   established during the measured window on both sides, and the latency under them.
//! - `capacity`: the open-model rate search: every step tried and the highest passing rate.
//! - `sync`: the memory sync scenario, or why it could not run (`available`, `ran`, `reason`):
//!   `figures` holds write counts, ack latency, write-to-visible lag and a baseline read
//!   (summaries, HdrHistograms, per second), visibility failures by kind, and the final check
//!   that no acknowledged write is missing (`check.lost`); see loadgen's `sync` module.
//! - `claims`: the claims with a `verdict` of `pass`, `fail` or `not_measured`, what was
//!   `measured`, the `criterion` applied and a `note`.

use std::{collections::BTreeMap, path::Path, time::SystemTime};

use base64::Engine as _;
use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer as _, V2DeflateSerializer},
};
use serde::{Deserialize, Serialize};

/// The version this crate writes.
pub const SCHEMA_VERSION: u32 = 3;
/// The versions this crate reads: version 2 lacks `by_server` and per-second error classes,
/// which read as empty.
pub const READABLE_SCHEMA_VERSIONS: std::ops::RangeInclusive<u32> = 2..=SCHEMA_VERSION;
/// Percentiles listed in the run file and the report.
pub const PERCENTILES: [f64; 7] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFile {
    pub schema_version: u32,
    pub tool: Tool,
    pub started_at: String,
    pub finished_at: String,
    pub interrupted: bool,
    pub config: Config,
    pub environment: Environment,
    pub fleet: Option<FleetFacts>,
    pub health: HealthSweep,
    /// The latency scenario, if it ran.
    pub latency: Option<Results>,
    pub connections: Option<ConnectionsResult>,
    pub capacity: Option<CapacityResult>,
    pub sync: Option<SyncResult>,
    /// The chaos scenario, if it ran (absent from files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<ChaosResult>,
    pub claims: Vec<Claim>,
}

/// The `chaos` scenario: load (through the gateway where there is one) while servers are
/// killed, paused or slowed through the fleet's admin API, and how the fleet coped, timed from
/// each fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosResult {
    /// The faults asked for, as given (`kill:10%`, `pause:5%:2s`, ...).
    pub specs: Vec<String>,
    /// Where the load went (the gateway's `/mcp`, or the targets).
    pub load_target: String,
    /// The load went through a gateway whose `/backends` told when it took servers out.
    pub through_gateway: bool,
    /// The fleet's isolation mode (`task` or `process`) where known.
    pub isolation: Option<String>,
    /// Servers the faults were drawn from.
    pub servers: usize,
    /// One row per fault, in the order they were injected.
    pub faults: Vec<FaultRecord>,
    /// How long loadgen waited after the load for faulted servers to be healthy again.
    pub recovery_wait_ms: u64,
    /// The load while the faults happened (success rate and failures by class are in it).
    pub results: Results,
}

impl ChaosResult {
    /// Faults the fleet had to recover from on its own: kills, and pauses long enough for it
    /// to notice (a shorter pause ends when loadgen lifts it, which is no recovery of the
    /// fleet's; slow-downs never take a server down).
    pub fn recoverable(&self) -> impl Iterator<Item = &FaultRecord> {
        self.faults.iter().filter(|f| {
            f.error.is_none()
                && (f.action == "kill" || (f.action == "pause" && f.fleet_detect_ms.is_some()))
        })
    }

    /// The slowest recovery in milliseconds and how many never recovered within the wait.
    pub fn recovery(&self) -> (Option<u64>, usize) {
        let max = self.recoverable().filter_map(|f| f.recovered_ms).max();
        let never = self
            .recoverable()
            .filter(|f| f.recovered_ms.is_none())
            .count();
        (max, never)
    }
}

/// One injected fault. Times in milliseconds after the fault was injected unless named
/// otherwise; `None` where it did not happen (or could not be seen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub server: String,
    /// `kill`, `pause` or `slow`.
    pub action: String,
    /// When it was injected: ms after the measured window began, and ms since the Unix epoch.
    pub at_ms: u64,
    pub at_unix_ms: u64,
    /// How long a pause or slow-down lasted before loadgen lifted it.
    pub lasted_ms: Option<u64>,
    /// The fleet's supervisor or health monitor marked the server not healthy.
    pub fleet_detect_ms: Option<u64>,
    /// The gateway took the server out of rotation.
    pub gateway_detect_ms: Option<u64>,
    /// The server was healthy again.
    pub recovered_ms: Option<u64>,
    /// The admin API refused the fault (then nothing else is measured for it).
    pub error: Option<String>,
}

/// The `connections` scenario: many users, each on its own connection, held at a modest rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionsResult {
    /// Connections (users) asked for.
    pub asked: usize,
    /// Requests per second each connection sent.
    pub per_connection_rps: f64,
    /// Fewest established client connections to the targets seen during the measured window
    /// (from `/proc`); `None` where it could not be read.
    pub held_min_client: Option<u64>,
    /// Fewest connections the servers reported open during the window (embedded fleet only).
    pub held_min_server: Option<u64>,
    /// Samples taken during the window (one a second).
    pub samples: usize,
    pub results: Results,
}

impl ConnectionsResult {
    /// Connections held for the whole window: the client side's minimum, checked against the
    /// servers' minimum where they report one (the lower of the two counts).
    pub fn held(&self) -> Option<u64> {
        match (self.held_min_client, self.held_min_server) {
            (Some(c), Some(s)) => Some(c.min(s)),
            (c, s) => c.or(s),
        }
    }
}

/// The `capacity` scenario: open-model steps, searching for the highest rate that keeps p99
/// within the bound with no errors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityResult {
    /// The p99 bound each step must keep, in microseconds.
    pub p99_bound_us: u64,
    /// Highest rate that passed, requests per second; `None` when none did.
    pub best_rps: Option<f64>,
    /// Every step, in the order run.
    pub steps: Vec<CapacityStep>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityStep {
    /// Intended rate, requests per second.
    pub rate: f64,
    pub passed: bool,
    /// Why it failed, for people.
    pub reason: String,
    pub results: Results,
}

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
}

/// The sync scenario's histograms, encoded as [`Results::histogram`] is.
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
}

/// The end-of-run check that no acknowledged write is missing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SyncCheck {
    /// Why the check did not run (interrupted, nothing acknowledged); `None` when it ran.
    pub skipped: Option<String>,
    /// Servers every acknowledged probe was read back on.
    pub servers: Vec<String>,
    /// The highest acknowledged version: each read waited for it (`minVersion`).
    pub min_version: u64,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub mode: String,
    pub servers: usize,
    pub scenarios: Vec<String>,
    pub users: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub timeout_s: f64,
    pub ephemeral_ports: bool,
    pub targets: Vec<String>,
    /// What `--protocol` asked for.
    pub protocol: String,
    /// The eras the servers were spoken to in, e.g. `2026-07-28`.
    pub protocol_version: String,
    pub load_model: String,
    pub mix: Vec<MixShare>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixShare {
    pub group: String,
    pub call: String,
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub fd_limit: u64,
    pub git_commit: Option<String>,
}

impl Environment {
    pub fn detect(fd_limit: u64) -> Self {
        let git_commit = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        Self {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fd_limit,
            git_commit,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetFacts {
    pub servers: usize,
    pub healthy_at_start: usize,
    pub startup_s: f64,
    pub healthy_at_end: usize,
    pub requests_total: u64,
    pub restarts_total: u64,
    pub open_connections_max: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub measured_s: f64,
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<ErrorClass, u64>,
    pub throughput_rps: f64,
    pub latency_us: LatencySummary,
    /// Send-to-response time alone; equals `latency_us` in the closed loop and is lower in the
    /// open model when requests queued behind a slow one (the coordinated-omission gap).
    #[serde(default)]
    pub service_latency_us: LatencySummary,
    /// Send to response headers. In the session era headers leave before the tool runs, so
    /// compare it with `latency_us` rather than taking it for the tool's latency.
    #[serde(default)]
    pub ttfb_us: LatencySummary,
    /// Outcomes and latency per call (tool name, or method), most requested first.
    pub by_call: Vec<Breakdown>,
    /// Outcomes and latency per target group.
    pub by_group: Vec<Breakdown>,
    /// Outcomes and latency per target server (its id), most requested first: what the
    /// report's heatmap colours and where tails concentrated on a few servers show.
    #[serde(default)]
    pub by_server: Vec<Breakdown>,
    pub percentiles_us: Vec<Percentile>,
    pub per_second: Vec<SecondSummary>,
    pub histogram: EncodedHistogram,
    /// How the phase was run.
    pub setup: PhaseSetup,
    /// Connections held, sampled once a second over the whole phase.
    pub connections: Vec<ConnectionSample>,
    /// Seconds from the phase's start at which the measured window began and ended.
    pub window_s: [f64; 2],
    /// CPU use during the phase (see [`CpuUse`]).
    pub cpu: Option<CpuUse>,
    pub engine: EngineFacts,
}

impl Results {
    /// Share of the measured requests that succeeded, in percent; `None` without requests.
    pub fn success_percent(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.ok as f64 * 100.0 / self.requests as f64)
    }
}

/// How one phase was run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSetup {
    pub users: usize,
    pub ramp_up_s: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub load_model: String,
    /// Requests per second the phase meant to send (open models); `None` in the closed loop,
    /// which sends as fast as answers come.
    #[serde(default)]
    pub target_rps: Option<f64>,
}

/// One second of the measured window, by start time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondSummary {
    pub ok: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// This second's latency histogram (2 significant digits), encoded as `histogram` is.
    pub histogram: String,
    /// This second's errors by class (classes with none left out).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_class: BTreeMap<ErrorClass, u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean: f64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentile {
    pub percentile: f64,
    pub us: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncodedHistogram {
    pub encoding: String,
    pub unit: String,
    pub data: String,
}

/// One call's (or group's) line in the run file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    pub name: String,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub latency_us: LatencySummary,
}

/// [`PERCENTILES`] of `h`, then its maximum as percentile 100.
pub fn percentiles<T: hdrhistogram::Counter>(h: &Histogram<T>) -> Vec<Percentile> {
    PERCENTILES
        .iter()
        .map(|p| Percentile {
            percentile: *p,
            us: h.value_at_quantile(p / 100.0),
        })
        .chain(std::iter::once(Percentile {
            percentile: 100.0,
            us: h.max(),
        }))
        .collect()
}

impl SecondSummary {
    /// One second's line: its counts, percentiles of `h` (its successes) and `h` encoded.
    pub fn of<T: hdrhistogram::Counter>(
        ok: u64,
        errors: u64,
        errors_by_class: BTreeMap<ErrorClass, u64>,
        h: &Histogram<T>,
    ) -> Result<Self, HistogramError> {
        let at = |q| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        Ok(Self {
            ok,
            errors,
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            max_us: h.max(),
            histogram: encode_histogram(h)?,
            errors_by_class,
        })
    }
}

impl EncodedHistogram {
    /// `h` in the run file's encoding.
    pub fn of<T: hdrhistogram::Counter>(h: &Histogram<T>) -> Result<Self, HistogramError> {
        Ok(Self {
            encoding: "HdrHistogram V2 deflate, base64".into(),
            unit: "us".into(),
            data: encode_histogram(h)?,
        })
    }
}

impl LatencySummary {
    pub fn of<T: hdrhistogram::Counter>(h: &Histogram<T>) -> Self {
        Self {
            count: h.len(),
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            min: h.min(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// A histogram that would not encode or decode.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram does not serialise: {0}")]
    Encode(String),
    #[error("histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram does not decode: {0}")]
    Decode(String),
}

/// HdrHistogram V2 deflate, base64: the form other HdrHistogram tools read and runs merge in.
pub fn encode_histogram<T: hdrhistogram::Counter>(
    h: &Histogram<T>,
) -> Result<String, HistogramError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| HistogramError::Encode(format!("{e:?}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub fn decode_histogram(data: &str) -> Result<Histogram<u64>, HistogramError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramError::Decode(format!("{e:?}")))
}

impl EncodedHistogram {
    pub fn decode(&self) -> Result<Histogram<u64>, HistogramError> {
        decode_histogram(&self.data)
    }
}

/// Why a run file could not be read. Each names the file, and the field where there is one.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read run file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a run file: {message}")]
    NotJson { path: String, message: String },
    #[error("{path} has no schema_version: not a loadgen run file")]
    NoVersion { path: String },
    #[error(
        "{path} is a run file of schema version {found}; this build reads versions {min} to {max} \
         (re-run the measurement, or use the loadgen that wrote it)"
    )]
    Version {
        path: String,
        found: u64,
        min: u32,
        max: u32,
    },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: String,
        field: String,
        message: String,
    },
}

impl RunFile {
    /// Reads and checks a run file: its schema version first (so a file of another version
    /// gets that error, not a confusing missing-field one), then every field.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// [`RunFile::load`] of text already read; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, LoadError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| LoadError::NotJson {
                path: path.into(),
                message: e.to_string(),
            })?;
        let found = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| LoadError::NoVersion { path: path.into() })?;
        if !u32::try_from(found).is_ok_and(|v| READABLE_SCHEMA_VERSIONS.contains(&v)) {
            return Err(LoadError::Version {
                path: path.into(),
                found,
                min: *READABLE_SCHEMA_VERSIONS.start(),
                max: *READABLE_SCHEMA_VERSIONS.end(),
            });
        }
        serde_path_to_error::deserialize(value).map_err(|e| LoadError::Field {
            path: path.into(),
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }
}

/// `(RFC 3339, compact for directory names)` of a UTC time, e.g.
/// `("2025-11-23T21:06:55Z", "20251123T210655Z")`.
pub fn utc_timestamp(t: SystemTime) -> (String, String) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    (
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
        format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}Z"),
    )
}

/// Why a request failed. Counted by kind, never stored one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Could not connect, or the connection broke before the response was complete.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The server answered with an HTTP status other than 2xx.
    HttpStatus,
    /// A JSON-RPC error response (e.g. invalid params, unknown method).
    JsonrpcError,
    /// The tool ran and reported failure (`result.isError: true`).
    ToolError,
    /// HTTP 2xx without a well-formed JSON-RPC response to our request.
    Protocol,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::HttpStatus,
        ErrorClass::JsonrpcError,
        ErrorClass::ToolError,
        ErrorClass::Protocol,
    ];

    /// The name used in the run file and the report.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::JsonrpcError => "jsonrpc_error",
            ErrorClass::ToolError => "tool_error",
            ErrorClass::Protocol => "protocol",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            ErrorClass::Connect => "could not connect, or the connection broke mid-request",
            ErrorClass::Timeout => "no complete response within the request timeout",
            ErrorClass::HttpStatus => "HTTP status other than 2xx",
            ErrorClass::JsonrpcError => "JSON-RPC error response",
            ErrorClass::ToolError => "tool reported failure (result.isError)",
            ErrorClass::Protocol => "2xx without a well-formed JSON-RPC response to the request",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    NotMeasured,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotMeasured => "not measured",
        }
    }

    /// The run file's spelling (`pass`, `fail`, `not_measured`), also the report's CSS class.
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NotMeasured => "not_measured",
        }
    }
}

/// A judged claim, as the run file and the report carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    pub id: String,
    pub title: String,
    /// The claim as its source words it.
    pub quote: String,
    pub verdict: Verdict,
    pub measured: Option<String>,
    pub criterion: String,
    pub note: String,
}

/// Outcome of the health sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSweep {
    pub servers: usize,
    pub checked: usize,
    pub ok: usize,
    /// `ok / servers`.
    pub availability: f64,
    pub seconds: f64,
    pub interrupted: bool,
    pub failures: Vec<SweepFailure>,
    /// Servers that answered, by the protocol era they answered in.
    #[serde(default)]
    pub protocols: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepFailure {
    pub server: String,
    pub url: String,
    pub error: ErrorClass,
}

/// What goose itself saw: a cross-check of our own counts, and the users it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineFacts {
    pub name: String,
    pub version: String,
    /// Most users running at once.
    pub users_max: usize,
    /// Requests goose counted, warm-up included (our `completed` should equal it).
    pub requests: u64,
    /// Of those, the ones goose (or we, through goose) marked failed.
    pub failures: u64,
    /// Goose's run, ramp-up and stop included, in seconds.
    pub seconds: u64,
}

/// One sample of the connections held, taken once a second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConnectionSample {
    /// Seconds since the phase started.
    pub t: f64,
    /// Established TCP connections from this process to the targets (from `/proc`).
    pub client: Option<u64>,
    /// Connections the servers report open (embedded fleet only).
    pub server: Option<u64>,
}

/// CPU use between two samples, as the run file carries it.
///
/// The `process_*` figures and `cpu_us_per_request` are this process's totals (the embedded
/// fleet included when `includes_embedded_fleet`), exact because the kernel keeps the CPU time
/// of exited threads in the process's. The `generator_*` and `fleet_*` figures add up the
/// threads alive at the end of the window, so a thread that exits between the two samples
/// loses its ticks (the tokio worker threads that do the work live as long as the run; idle
/// blocking-pool threads may exit): their sum can fall a little short of `process_cpu_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuUse {
    /// CPU seconds this process used (user + system).
    pub process_cpu_s: f64,
    /// That as a share of all cores over the window (100 % = every core busy).
    pub process_percent_of_machine: f64,
    /// How busy all cores were, whoever used them.
    pub machine_busy_percent: f64,
    /// Process CPU per completed request, in microseconds.
    pub cpu_us_per_request: f64,
    /// True when the measured servers ran in this process (embedded fleet).
    pub includes_embedded_fleet: bool,
    /// CPU seconds of the load generator's own threads (every thread not the fleet's): what
    /// tells a saturated generator from a slow server when the fleet shares the process.
    /// Zero in run files written before it was recorded.
    #[serde(default)]
    pub generator_cpu_s: f64,
    /// That as a share of all cores over the window (100 % = every core busy).
    #[serde(default)]
    pub generator_percent_of_machine: f64,
    /// Generator CPU per completed request, in microseconds: the client-side cost of a call.
    #[serde(default)]
    pub generator_cpu_us_per_request: f64,
    /// CPU seconds of the embedded fleet's threads (its servers, health monitor, admin API and
    /// supervisors, so health probes included); `None` when the servers ran elsewhere, where
    /// this process cannot see their CPU.
    #[serde(default)]
    pub fleet_cpu_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = |s| utc_timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0).0, "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400).0, "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000).0, "2023-11-14T22:13:20Z");
        assert_eq!(at(1_700_000_000).1, "20231114T221320Z");
    }
}
