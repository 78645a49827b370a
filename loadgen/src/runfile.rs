//! The run file, `run.json`: the one contract between loadgen, the report and later tools.
//!
//! # Wire format (schema_version 2)
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
//!   that no acknowledged write is missing (`check.lost`); see [`crate::sync`].
//! - `claims`: the claims with a `verdict` of `pass`, `fail` or `not_measured`, what was
//!   `measured`, the `criterion` applied and a `note`.

use std::{collections::BTreeMap, time::SystemTime};

use anyhow::Context as _;
use base64::Engine as _;
use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer as _, V2DeflateSerializer},
};
use serde::{Deserialize, Serialize};

use crate::{
    attack::{ConnectionSample, EngineFacts},
    claims::Claim,
    mcp::ErrorClass,
    measure::HealthSweep,
    recorder::{CallStats, Recorder},
};

pub const SCHEMA_VERSION: u32 = 2;
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
    pub claims: Vec<Claim>,
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
/// [`crate::sync`] for how each figure is defined).
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
    pub cpu: Option<crate::cpu::CpuUse>,
}

/// The sync scenario's histograms, encoded as [`Results::histogram`] is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncHistograms {
    pub ack: EncodedHistogram,
    pub lag: EncodedHistogram,
    pub baseline_read: EncodedHistogram,
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

impl Default for Tool {
    fn default() -> Self {
        Self {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
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
    pub percentiles_us: Vec<Percentile>,
    pub per_second: Vec<SecondSummary>,
    pub histogram: EncodedHistogram,
    /// How the phase was run.
    pub setup: PhaseSetup,
    /// Connections held, sampled once a second over the whole phase.
    pub connections: Vec<ConnectionSample>,
    /// Seconds from the phase's start at which the measured window began and ended.
    pub window_s: [f64; 2],
    /// CPU use during the phase (see [`crate::cpu`]).
    pub cpu: Option<crate::cpu::CpuUse>,
    pub engine: EngineFacts,
}

/// How one phase was run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSetup {
    pub users: usize,
    pub ramp_up_s: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub load_model: String,
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

impl Breakdown {
    fn of(map: &BTreeMap<String, CallStats>) -> Vec<Self> {
        let mut calls: Vec<Self> = map
            .iter()
            .map(|(name, s)| Self {
                name: name.clone(),
                requests: s.ok + s.errors,
                ok: s.ok,
                errors: s.errors,
                latency_us: LatencySummary::of(&s.latency_us),
            })
            .collect();
        calls.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| a.name.cmp(&b.name))
        });
        calls
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

impl Results {
    /// The run file's view of what a phase recorded; the phase's other facts are set by the
    /// caller (`setup`, `connections`, `window_s`, `cpu`, `engine`).
    pub fn new(recorder: &Recorder, measured_s: f64) -> anyhow::Result<Self> {
        let h = &recorder.latency_us;
        let at = |p: f64| h.value_at_quantile(p / 100.0);
        let requests = recorder.requests();
        Ok(Self {
            measured_s,
            requests,
            ok: recorder.ok,
            errors: ErrorClass::ALL
                .iter()
                .map(|c| (*c, recorder.errors[*c as usize]))
                .collect(),
            throughput_rps: if measured_s > 0.0 {
                requests as f64 / measured_s
            } else {
                0.0
            },
            latency_us: LatencySummary::of(h),
            service_latency_us: LatencySummary::of(&recorder.service_us),
            ttfb_us: LatencySummary::of(&recorder.ttfb_us),
            by_call: Breakdown::of(&recorder.by_call),
            by_group: Breakdown::of(&recorder.by_group),
            percentiles_us: PERCENTILES
                .iter()
                .map(|p| Percentile {
                    percentile: *p,
                    us: at(*p),
                })
                .chain(std::iter::once(Percentile {
                    percentile: 100.0,
                    us: h.max(),
                }))
                .collect(),
            per_second: recorder
                .per_second
                .iter()
                .map(|s| {
                    let h = &s.latency_us;
                    let at = |q| {
                        if h.is_empty() {
                            0
                        } else {
                            h.value_at_quantile(q)
                        }
                    };
                    Ok(SecondSummary {
                        ok: s.ok,
                        errors: s.errors,
                        p50_us: at(0.5),
                        p90_us: at(0.9),
                        p99_us: at(0.99),
                        max_us: h.max(),
                        histogram: encode_histogram(h)?,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            histogram: EncodedHistogram {
                encoding: "HdrHistogram V2 deflate, base64".into(),
                unit: "us".into(),
                data: encode_histogram(h)?,
            },
            setup: PhaseSetup::default(),
            connections: Vec::new(),
            window_s: [0.0, measured_s],
            cpu: None,
            engine: EngineFacts::default(),
        })
    }
}

pub fn encode_histogram<T: hdrhistogram::Counter>(h: &Histogram<T>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| anyhow::anyhow!("serialising the latency histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub fn decode_histogram(data: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .context("histogram is not base64")?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("histogram does not decode: {e:?}"))
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

    #[test]
    fn histogram_round_trips_and_results_add_up() {
        let mut r = Recorder::default();
        for us in [100, 200, 300, 400, 10_000] {
            r.record(0, Duration::from_micros(us), Ok(()));
        }
        r.record(1, Duration::from_micros(5), Err(ErrorClass::Connect));
        let results = Results::new(&r, 2.0).unwrap();
        assert_eq!((results.requests, results.ok), (6, 5));
        assert_eq!(results.throughput_rps, 3.0);
        assert_eq!(results.errors[&ErrorClass::Connect], 1);
        assert_eq!(results.errors.len(), ErrorClass::ALL.len());
        assert_eq!(results.percentiles_us.len(), PERCENTILES.len() + 1);
        let decoded = decode_histogram(&results.histogram.data).unwrap();
        assert_eq!(decoded.len(), 5);
        assert_eq!(decoded.max(), r.latency_us.max());
        assert_eq!(results.per_second.len(), 2);
        assert_eq!(results.per_second[0].ok, 5);
        assert_eq!(
            decode_histogram(&results.per_second[0].histogram)
                .unwrap()
                .len(),
            5
        );
        assert_eq!(results.per_second[1].errors, 1);
        let json = serde_json::to_string(&results).unwrap();
        assert!(json.contains(r#""connect":1"#), "{json}");
    }
}
