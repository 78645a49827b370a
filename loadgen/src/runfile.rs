//! The run file, `run.json`: the one contract between loadgen, the report and later tools.
//!
//! # Wire format (schema_version 1)
//! - `schema_version` (1), `tool` {`name`, `version`}, `started_at`/`finished_at` (RFC 3339,
//!   UTC), `interrupted` (Ctrl-C stopped the run early; the numbers cover what ran).
//! - `config`: what was asked: `mode` (`embedded` fleet or `targets`), `servers`, `users`,
//!   `warmup_s`, `duration_s`, `timeout_s`, `ephemeral_ports`, `targets`, `protocol_version`,
//!   `load_model`, `mix` (per group, tool and share in percent).
//! - `environment`: `os`, `arch`, `cpus`, `fd_limit`, `git_commit` (null outside a repository).
//! - `fleet` (embedded mode only): the fleet's own view: `servers`, `healthy_at_start`,
//!   `startup_s`, `healthy_at_end`, `requests_total` (every request the servers counted,
//!   health probes included), `restarts_total`, `open_connections_max` (most connections the
//!   servers reported open at the once-a-second samples of the latency run).
//! - `health`: the sweep of one `tools/list` per server (see [`HealthSweep`]).
//! - `results`: the latency run. Times are microseconds. `requests` = `ok` + all `errors`, by
//!   start time inside the measured window of `measured_s` seconds; `throughput_rps` =
//!   `requests / measured_s`; `latency_us` and `percentiles_us` cover successful requests only;
//!   `per_second` counts by start second; `histogram` is the merged HdrHistogram, V2 deflate
//!   serialised, base64 (standard alphabet): it can be decoded and merged across runs.
//! - `claims`: the seed report's claims with a `verdict` of `pass`, `fail` or `not_measured`,
//!   what was `measured`, the `criterion` applied and a `note`.

use std::{collections::BTreeMap, time::SystemTime};

use anyhow::Context as _;
use base64::Engine as _;
use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer as _, V2DeflateSerializer},
};
use serde::{Deserialize, Serialize};

use crate::{
    claims::Claim,
    mcp::ErrorClass,
    measure::HealthSweep,
    recorder::{Recorder, SecondCounts},
};

pub const SCHEMA_VERSION: u32 = 1;
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
    pub results: Results,
    /// CPU use during the load run (see [`crate::cpu`]).
    #[serde(default)]
    pub cpu: Option<crate::cpu::CpuUse>,
    pub claims: Vec<Claim>,
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
    pub users: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub timeout_s: f64,
    pub ephemeral_ports: bool,
    pub targets: Vec<String>,
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
    #[serde(default)]
    pub by_call: Vec<CallSummary>,
    pub percentiles_us: Vec<Percentile>,
    pub per_second: Vec<SecondCounts>,
    pub histogram: EncodedHistogram,
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

/// One call's line in the run file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call: String,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub latency_us: LatencySummary,
}

impl CallSummary {
    fn of(recorder: &Recorder) -> Vec<Self> {
        let mut calls: Vec<Self> = recorder
            .by_call
            .iter()
            .map(|(call, s)| Self {
                call: call.clone(),
                requests: s.ok + s.errors,
                ok: s.ok,
                errors: s.errors,
                latency_us: LatencySummary::of(&s.latency_us),
            })
            .collect();
        calls.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| a.call.cmp(&b.call))
        });
        calls
    }
}

impl LatencySummary {
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
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
            by_call: CallSummary::of(recorder),
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
            per_second: recorder.per_second.clone(),
            histogram: EncodedHistogram {
                encoding: "HdrHistogram V2 deflate, base64".into(),
                unit: "us".into(),
                data: encode_histogram(h)?,
            },
        })
    }
}

pub fn encode_histogram(h: &Histogram<u64>) -> anyhow::Result<String> {
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
        let json = serde_json::to_string(&results).unwrap();
        assert!(json.contains(r#""connect":1"#), "{json}");
    }
}
