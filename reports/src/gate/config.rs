//! The gate config (`ci/gates.toml`): its three layers of rules with their defaults, and how
//! each ceiling key reads a run. Reading and validating the file is `parse`'s.

use serde::{Deserialize, Serialize};

use crate::run::{RunFile, SyncFigures};

/// A gate config, as `ci/gates.toml` holds it. Every key has a default, so an empty file is the
/// default gate; unknown keys are errors, so a misspelt rule cannot silently not apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub invariants: Invariants,
    pub relative: Relative,
    pub ceilings: Ceilings,
}

/// `[invariants]`: rules noise cannot break, checked on each judged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Invariants {
    /// Most failed requests allowed in each of the latency and connections phases, and failed
    /// writes in the sync phase. A healthy loopback fleet fails none.
    pub max_errors: u64,
    /// Every connection the connections scenario asked for was held through its window.
    pub connections_held: bool,
    /// Achieved over intended rate, for phases with an intended rate (open models, per
    /// connection rates, sync writes); in `(0, 1]`. A closed loop has no intended rate, so its
    /// phase need only have completed a request.
    pub min_rate_ratio: f64,
    /// Most acknowledged memory writes the sync check may find missing.
    pub max_lost_writes: u64,
    /// Scenarios each judged run must contain: a gate whose checks all skip must not pass a
    /// run that measured nothing. Any of `latency`, `connections`, `capacity`, `sync`.
    pub required_phases: Vec<Phase>,
    /// Accept a run stopped early (Ctrl-C); its figures cover only part of the plan.
    pub allow_interrupted: bool,
    /// Most requests of the chaos scenario that may fail, in percent: with failover and the
    /// retry of safe calls, servers dying under load should cost the client (almost) nothing.
    pub chaos_max_failed_percent: f64,
    /// Every server the chaos scenario killed (or paused long enough to be noticed) must be
    /// healthy again before loadgen stops waiting (15 s): one that is not was never recovered.
    pub chaos_all_recovered: bool,
}

impl Default for Invariants {
    fn default() -> Self {
        Self {
            max_errors: 0,
            connections_held: true,
            min_rate_ratio: 0.95,
            max_lost_writes: 0,
            required_phases: vec![Phase::Latency],
            allow_interrupted: false,
            chaos_max_failed_percent: 0.1,
            chaos_all_recovered: true,
        }
    }
}

/// A scenario of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Latency,
    Connections,
    Capacity,
    Sync,
    Chaos,
}

impl Phase {
    /// Every scenario, in the order a run performs them.
    pub const ALL: [Phase; 5] = [
        Phase::Latency,
        Phase::Connections,
        Phase::Capacity,
        Phase::Sync,
        Phase::Chaos,
    ];

    /// The name in the config and in check names (`latency.errors`).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Latency => "latency",
            Phase::Connections => "connections",
            Phase::Capacity => "capacity",
            Phase::Sync => "sync",
            Phase::Chaos => "chaos",
        }
    }
}

/// `[relative]`: the judged runs against baseline runs of the same job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Relative {
    /// Metrics compared (see [`Metric`]); an empty list turns the layer off.
    pub metrics: Vec<Metric>,
    /// Significance level of the Mann-Whitney test, in `(0, 1)`; the bootstrap interval has
    /// confidence `1 - alpha`.
    pub alpha: f64,
    /// The noise band in percent of the baseline median: smaller changes never fail.
    pub min_effect_percent: f64,
    /// Fewest samples (measured seconds) a side needs; with fewer the rule is skipped. Must be
    /// large enough for `alpha` to be reachable at all.
    pub min_samples: usize,
    /// Fewest runs (with samples) a side needs; with fewer the rule is skipped. One run a side
    /// cannot tell a regression from a busy neighbour slowing a whole run: from two on, the
    /// interval spans the run-to-run spread ([`crate::stats::compare_runs`]).
    pub min_runs: usize,
}

impl Default for Relative {
    fn default() -> Self {
        Self {
            metrics: vec![Metric::LatencyP50, Metric::LatencyP90],
            alpha: 0.01,
            min_effect_percent: 15.0,
            min_samples: 10,
            min_runs: 2,
        }
    }
}

/// A metric the relative rules compare. Samples are per-second values of the measured window,
/// pooled over the runs of a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Metric {
    /// The latency phase's per-second p50 (seconds without a success left out).
    LatencyP50,
    /// The latency phase's per-second p90.
    LatencyP90,
    /// The sync phase's per-second p50 of write-to-visible lag (seconds with nothing visible
    /// left out).
    SyncLagP50,
}

impl Metric {
    /// Every metric the relative rules know.
    pub const ALL: [Metric; 3] = [Metric::LatencyP50, Metric::LatencyP90, Metric::SyncLagP50];

    /// The name in the config and the reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::LatencyP50 => "latency_p50",
            Metric::LatencyP90 => "latency_p90",
            Metric::SyncLagP50 => "sync_lag_p50",
        }
    }

    /// The per-second samples of one run, in microseconds.
    pub fn samples(self, run: &RunFile) -> Vec<f64> {
        match self {
            Metric::LatencyP50 | Metric::LatencyP90 => run
                .latency
                .iter()
                .flat_map(|r| &r.per_second)
                .filter(|s| s.ok > 0)
                .map(|s| match self {
                    Metric::LatencyP50 => s.p50_us as f64,
                    _ => s.p90_us as f64,
                })
                .collect(),
            Metric::SyncLagP50 => sync_figures(run)
                .ok()
                .iter()
                .flat_map(|f| &f.per_second)
                .filter(|s| s.acked > s.visibility_failures)
                .map(|s| s.lag_p50_us as f64)
                .collect(),
        }
    }
}

impl TryFrom<String> for Metric {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        if let Some(m) = Metric::ALL.into_iter().find(|m| m.name() == name) {
            return Ok(m);
        }
        let known = Metric::ALL.map(Metric::name).join(", ");
        Err(
            if name.contains("p99") || name.contains("mean") || name.contains("max") {
                format!(
                    "`{name}` is not a relative metric: tails and means on a shared machine measure \
                 the scheduler; bound it with a [ceilings] key instead (relative metrics: {known})"
                )
            } else {
                format!("unknown metric `{name}`, expected one of {known}")
            },
        )
    }
}

impl From<Metric> for String {
    fn from(m: Metric) -> String {
        m.name().into()
    }
}

/// `[ceilings]`: loose absolute bounds, checked on each judged run; each applies only when set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ceilings {
    /// Latency phase, milliseconds, successful requests.
    pub latency_p50_ms: Option<f64>,
    pub latency_p90_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_mean_ms: Option<f64>,
    /// The connections phase's p99, milliseconds.
    pub connections_p99_ms: Option<f64>,
    /// The sync phase's write-to-visible lag p99, milliseconds.
    pub sync_lag_p99_ms: Option<f64>,
    /// A floor, not a ceiling: the latency phase's throughput, requests per second.
    pub min_throughput_rps: Option<f64>,
    /// The chaos scenario's slowest recovery (fault to healthy again), milliseconds.
    pub chaos_recovery_max_ms: Option<f64>,
}

/// Which way a ceiling bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bound {
    AtMost,
    AtLeast,
}

/// How one ceiling key reads a run: the figure, or why the run has none.
pub(super) type Reader = fn(&RunFile) -> Result<f64, String>;

impl Ceilings {
    /// `(key, bound, unit, value, reader)` of every ceiling key, in config order.
    pub(super) fn rules(&self) -> [(&'static str, Bound, &'static str, Option<f64>, Reader); 8] {
        use Bound::*;
        [
            ("latency_p50_ms", AtMost, "ms", self.latency_p50_ms, |r| {
                latency_ms(r, |l| l.p50 as f64)
            }),
            ("latency_p90_ms", AtMost, "ms", self.latency_p90_ms, |r| {
                latency_ms(r, |l| l.p90 as f64)
            }),
            ("latency_p99_ms", AtMost, "ms", self.latency_p99_ms, |r| {
                latency_ms(r, |l| l.p99 as f64)
            }),
            ("latency_mean_ms", AtMost, "ms", self.latency_mean_ms, |r| {
                latency_ms(r, |l| l.mean)
            }),
            (
                "connections_p99_ms",
                AtMost,
                "ms",
                self.connections_p99_ms,
                |r| {
                    let c = r
                        .connections
                        .as_ref()
                        .ok_or("no connections phase in this run")?;
                    summary_ms(&c.results.latency_us, |l| l.p99 as f64)
                },
            ),
            ("sync_lag_p99_ms", AtMost, "ms", self.sync_lag_p99_ms, |r| {
                summary_ms(&sync_figures(r)?.lag_us, |l| l.p99 as f64)
            }),
            (
                "min_throughput_rps",
                AtLeast,
                "req/s",
                self.min_throughput_rps,
                |r| {
                    Ok(r.latency
                        .as_ref()
                        .ok_or("no latency phase in this run")?
                        .throughput_rps)
                },
            ),
            (
                "chaos_recovery_max_ms",
                AtMost,
                "ms",
                self.chaos_recovery_max_ms,
                |r| {
                    let c = r.chaos.as_ref().ok_or("no chaos phase in this run")?;
                    match c.recovery() {
                        (_, never) if never > 0 => Err(format!(
                            "{never} servers never recovered (see the invariants)"
                        )),
                        (Some(ms), _) => Ok(ms as f64),
                        (None, _) => Err("no fault needed a recovery".into()),
                    }
                },
            ),
        ]
    }
}

fn latency_ms(r: &RunFile, f: fn(&crate::run::LatencySummary) -> f64) -> Result<f64, String> {
    summary_ms(
        &r.latency
            .as_ref()
            .ok_or("no latency phase in this run")?
            .latency_us,
        f,
    )
}

fn summary_ms(
    l: &crate::run::LatencySummary,
    f: fn(&crate::run::LatencySummary) -> f64,
) -> Result<f64, String> {
    if l.count == 0 {
        return Err("no successful request to measure".into());
    }
    Ok(f(l) / 1e3)
}

/// The sync figures of a run that ran the scenario, or why there are none.
pub(super) fn sync_figures(r: &RunFile) -> Result<&SyncFigures, String> {
    match &r.sync {
        None => Err("no sync phase in this run".into()),
        Some(s) => match (&s.figures, s.available && s.ran) {
            (Some(f), true) => Ok(f),
            _ => Err(format!("the sync scenario did not run: {}", s.reason)),
        },
    }
}
