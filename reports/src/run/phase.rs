//! One load phase's figures ([`Results`]): counts, latency summaries and percentiles, the
//! breakdowns by call, group and server, each second of the window, connections sampled, CPU
//! used and what goose counted. Every scenario that puts load on the fleet carries one.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::{
    error_class::ErrorClass,
    histogram::{EncodedHistogram, HistogramError, encode_histogram},
};

/// Percentiles listed in the run file and the report.
pub const PERCENTILES: [f64; 7] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99];

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
    /// The histograms behind `service_latency_us` and `ttfb_us`, encoded as `histogram` is, so
    /// that shards of one run merge exactly. Absent from older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_histogram: Option<EncodedHistogram>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_histogram: Option<EncodedHistogram>,
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
    /// When the phase started by the wall clock, milliseconds since the Unix epoch: where
    /// `window_s` (and so `per_second`) sits in time. Absent from older run files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_ms: Option<u64>,
    /// CPU use during the phase (see [`CpuUse`]).
    pub cpu: Option<CpuUse>,
    pub engine: EngineFacts,
    /// Messages servers sent besides the answers (notifications, server-to-client requests),
    /// by kind; a kind that never came is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub asides: BTreeMap<String, u64>,
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

/// One call's (or group's) line in the run file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    pub name: String,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub latency_us: LatencySummary,
    /// The histogram behind `latency_us` (encoded as [`Results::histogram`]'s data), so that
    /// shards of one run merge exactly. Absent from older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
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
