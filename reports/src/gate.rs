//! The CI gate: judges run files against a gate config (`ci/gates.toml`) and says pass or
//! fail, with a JUnit XML file for CI test views and a Markdown summary for people.
//! `loadgen gate --config ci/gates.toml [--baseline RUN] RUN...` is a thin wrapper around
//! [`evaluate_files`] (or [`Config::load`], [`load_runs`] and [`evaluate`]).
//!
//! # Three layers, because a shared 2-core CI machine is noisy
//! 1. **Invariants** ([`Invariants`]), checked on every judged run: facts that scheduler noise
//!    cannot break, so a failure is always a real fault: no errors, every requested
//!    connection held, the achieved rate at least 95 % of the intended one, no lost memory
//!    write, the run not interrupted, the required scenarios present.
//! 2. **Relative rules** ([`Relative`]): the runs against baseline runs measured in the same
//!    job (so on the same machine, under the same neighbours). The per-second medians (or
//!    p90s) of all runs of a side are pooled and compared with [`stats::compare`]: a
//!    regression needs a significant Mann-Whitney test *and* a bootstrap interval of the
//!    change lying wholly beyond the minimum effect. p50 and p90 only: p99 on such a machine
//!    measures the scheduler.
//! 3. **Ceilings** ([`Ceilings`]), checked on every judged run: loose absolute bounds that
//!    catch a collapse when there is no baseline.
//!
//! Baseline runs are only compared with, never judged: a broken baseline is not the change's
//! fault.
//!
//! # Exit codes
//! [`EXIT_PASS`] (0) when no check failed ([`Outcome::exit_code`]), [`EXIT_FAIL`] (1) when one
//! did, [`EXIT_USAGE`] (2) for a usage or input error ([`GateError::exit_code`]): an unreadable,
//! corrupt or other-version run file, or a gate config that is not TOML, has an unknown key or
//! an impossible rule. Every such error names the file and the field or key.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    fmt_micros,
    run::{LoadError, Results, RunFile, SyncFigures},
    stats::{self, Comparison},
};

/// Every check passed (skipped ones included).
pub const EXIT_PASS: i32 = 0;
/// At least one check failed.
pub const EXIT_FAIL: i32 = 1;
/// The gate could not judge: bad arguments, run files or config ([`GateError`]).
pub const EXIT_USAGE: i32 = 2;

// ---------------------------------------------------------------------------------------------
// Configuration

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
}

impl Phase {
    /// Every scenario, in the order a run performs them.
    pub const ALL: [Phase; 4] = [
        Phase::Latency,
        Phase::Connections,
        Phase::Capacity,
        Phase::Sync,
    ];

    /// The name in the config and in check names (`latency.errors`).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Latency => "latency",
            Phase::Connections => "connections",
            Phase::Capacity => "capacity",
            Phase::Sync => "sync",
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
    /// interval spans the run-to-run spread ([`stats::compare_runs`]).
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
}

/// Which way a ceiling bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    AtMost,
    AtLeast,
}

/// How one ceiling key reads a run: the figure, or why the run has none.
type Reader = fn(&RunFile) -> Result<f64, String>;

impl Ceilings {
    /// `(key, bound, unit, value, reader)` of every ceiling key, in config order.
    fn rules(&self) -> [(&'static str, Bound, &'static str, Option<f64>, Reader); 7] {
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
fn sync_figures(r: &RunFile) -> Result<&SyncFigures, String> {
    match &r.sync {
        None => Err("no sync phase in this run".into()),
        Some(s) => match (&s.figures, s.available && s.ran) {
            (Some(f), true) => Ok(f),
            _ => Err(format!("the sync scenario did not run: {}", s.reason)),
        },
    }
}

impl Config {
    /// Reads and validates a gate config; errors name `path` and the key.
    pub fn load(path: &Path) -> Result<Config, GateError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GateError::ConfigRead {
            path: name.clone(),
            source,
        })?;
        Self::parse(&text, &name)
    }

    /// [`Config::load`] of text already read; `name` stands for the file in errors.
    pub fn parse(text: &str, name: &str) -> Result<Config, GateError> {
        let syntax = |e: toml::de::Error| GateError::ConfigSyntax {
            path: name.into(),
            message: toml_message(&e, text),
        };
        let de = toml::Deserializer::parse(text).map_err(syntax)?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = toml_message(e.inner(), text);
            if key == "." {
                GateError::ConfigSyntax {
                    path: name.into(),
                    message,
                }
            } else {
                GateError::ConfigKey {
                    path: name.into(),
                    key,
                    message,
                }
            }
        })?;
        config
            .validate()
            .map_err(|(key, value, reason)| GateError::ConfigRule {
                path: name.into(),
                key,
                value,
                reason,
            })?;
        Ok(config)
    }

    /// Rejects rules that are impossible or could never fail: `(key, value, why)`.
    fn validate(&self) -> Result<(), (String, String, String)> {
        let inv = &self.invariants;
        let ratio = inv.min_rate_ratio;
        if !(ratio.is_finite() && ratio > 0.0 && ratio <= 1.0) {
            return Err((
                "invariants.min_rate_ratio".into(),
                ratio.to_string(),
                "must be above 0 and at most 1 (a share of the intended rate)".into(),
            ));
        }
        let rel = &self.relative;
        if !(rel.alpha.is_finite() && rel.alpha > 0.0 && rel.alpha < 1.0) {
            return Err((
                "relative.alpha".into(),
                rel.alpha.to_string(),
                "must be between 0 and 1".into(),
            ));
        }
        let effect = rel.min_effect_percent;
        if !(effect.is_finite() && effect >= 0.0) {
            return Err((
                "relative.min_effect_percent".into(),
                effect.to_string(),
                "must be a percentage of 0 or more".into(),
            ));
        }
        for (i, m) in rel.metrics.iter().enumerate() {
            if rel.metrics[..i].contains(m) {
                return Err((
                    "relative.metrics".into(),
                    format!(
                        "{:?}",
                        rel.metrics.iter().map(|m| m.name()).collect::<Vec<_>>()
                    ),
                    format!("`{}` is listed twice", m.name()),
                ));
            }
        }
        if rel.min_runs == 0 {
            return Err((
                "relative.min_runs".into(),
                "0".into(),
                "must be at least 1 (2 or more to see run-to-run noise)".into(),
            ));
        }
        if stats::min_p_value(rel.min_samples, rel.min_samples) >= rel.alpha {
            let enough = (1..=1_000)
                .find(|n| stats::min_p_value(*n, *n) < rel.alpha)
                .map_or("more".to_string(), |n| format!("at least {n}"));
            return Err((
                "relative.min_samples".into(),
                rel.min_samples.to_string(),
                format!(
                    "with so few samples a side no difference can reach p < {}: the rule could \
                     never fail; use {enough}",
                    rel.alpha
                ),
            ));
        }
        for (key, _, _, value, _) in self.ceilings.rules() {
            if let Some(v) = value
                && !(v.is_finite() && v > 0.0)
            {
                return Err((
                    format!("ceilings.{key}"),
                    v.to_string(),
                    "must be a positive number (leave the key out for no bound)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A TOML error's message with its line and column (not the multi-line snippet).
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} (line {line}, column {column})")
        }
        None => message,
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and inputs

/// Why the gate could not judge (exit code [`EXIT_USAGE`]). Each names the file, and the key
/// or field where there is one.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("cannot read gate config {path}: {source}")]
    ConfigRead {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid gate config: {message}")]
    ConfigSyntax { path: String, message: String },
    #[error("{path}: {key}: {message}")]
    ConfigKey {
        path: String,
        key: String,
        message: String,
    },
    #[error("{path}: {key} = {value}: {reason}")]
    ConfigRule {
        path: String,
        key: String,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Run(#[from] LoadError),
    #[error("no run file to judge: give at least one RUN")]
    NoRuns,
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl GateError {
    /// Always [`EXIT_USAGE`]: the gate could not judge, which is not a failed gate.
    pub fn exit_code(&self) -> i32 {
        EXIT_USAGE
    }
}

/// The process exit code for what [`evaluate_files`] (or the CLI's own sequence) gave:
/// [`EXIT_PASS`], [`EXIT_FAIL`] or, for any [`GateError`], [`EXIT_USAGE`].
pub fn exit_code(result: &Result<Outcome, GateError>) -> i32 {
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => e.exit_code(),
    }
}

/// A run file and the name its findings carry (its path as given).
#[derive(Debug, Clone)]
pub struct NamedRun {
    pub name: String,
    pub file: RunFile,
}

/// Loads run files with [`RunFile::load`] (which checks the schema version first). A directory
/// stands for the `run.json` in it, as loadgen's `--out DIR` writes it; findings name the file.
pub fn load_runs(paths: &[PathBuf]) -> Result<Vec<NamedRun>, GateError> {
    paths
        .iter()
        .map(|p| {
            let path = if p.is_dir() {
                p.join("run.json")
            } else {
                p.clone()
            };
            Ok(NamedRun {
                name: path.display().to_string(),
                file: RunFile::load(&path)?,
            })
        })
        .collect()
}

/// What the CLI does: load the config and every run file, then [`evaluate`]. Input errors come
/// first, so a bad file is reported as such and not as a failed check.
pub fn evaluate_files(
    config: &Path,
    baseline: &[PathBuf],
    runs: &[PathBuf],
) -> Result<Outcome, GateError> {
    let config = Config::load(config)?;
    if runs.is_empty() {
        return Err(GateError::NoRuns);
    }
    let baseline = load_runs(baseline)?;
    let runs = load_runs(runs)?;
    Ok(evaluate(&config, &baseline, &runs))
}

// ---------------------------------------------------------------------------------------------
// Checks

/// A layer of rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Invariants,
    Relative,
    Ceilings,
}

impl Layer {
    /// The layers in the order they are checked and reported.
    pub const ALL: [Layer; 3] = [Layer::Invariants, Layer::Relative, Layer::Ceilings];

    /// The name in reports: the config section and the JUnit suite.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Invariants => "invariants",
            Layer::Relative => "relative",
            Layer::Ceilings => "ceilings",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Layer::Invariants => "Invariants",
            Layer::Relative => "Relative to the baseline",
            Layer::Ceilings => "Ceilings",
        }
    }
}

/// How a check came out. `Skipped` is a check that could not apply (no baseline, phase not
/// run, too few samples): neither a pass nor a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

impl Status {
    /// The word in reports; failures in capitals so they stand out in a terminal.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "pass",
            Status::Failed => "FAIL",
            Status::Skipped => "skipped",
        }
    }

    fn icon(self) -> &'static str {
        match self {
            Status::Passed => "✅",
            Status::Failed => "❌",
            Status::Skipped => "⏭️",
        }
    }
}

/// One rule applied to one run (or, for relative rules, to the pooled runs).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub layer: Layer,
    /// What was checked: `latency.errors`, `connections.held`, `latency_p50`,
    /// `latency_p99_ms`, ...
    pub name: String,
    /// The run file the finding comes from; `None` for relative rules, which pool every run.
    pub run: Option<String>,
    pub status: Status,
    /// What the run showed, for people.
    pub measured: String,
    /// The bound applied, for people.
    pub limit: String,
    /// Why it passed, failed or was skipped.
    pub message: String,
    /// The statistics of a relative rule.
    pub comparison: Option<Comparison>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.status.label(),
            self.layer.name(),
            self.name
        )?;
        if let Some(run) = &self.run {
            write!(f, " [{run}]")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.measured.is_empty() || !self.limit.is_empty() {
            write!(f, " (measured {}; limit {})", self.measured, self.limit)?;
        }
        Ok(())
    }
}

/// Builds the checks of one layer and one run.
struct Checks<'a> {
    layer: Layer,
    run: Option<&'a str>,
    out: &'a mut Vec<Check>,
}

impl Checks<'_> {
    fn push(
        &mut self,
        name: &str,
        status: Status,
        measured: String,
        limit: String,
        message: String,
    ) {
        self.out.push(Check {
            layer: self.layer,
            name: name.into(),
            run: self.run.map(str::to_string),
            status,
            measured,
            limit,
            message,
            comparison: None,
        });
    }

    fn judge(&mut self, name: &str, ok: bool, measured: String, limit: String, message: String) {
        let status = if ok { Status::Passed } else { Status::Failed };
        self.push(name, status, measured, limit, message);
    }

    fn skip(&mut self, name: &str, message: impl Into<String>) {
        self.push(
            name,
            Status::Skipped,
            String::new(),
            String::new(),
            message.into(),
        );
    }
}

/// Judges `runs` against `config`, comparing them with `baseline` (which may be empty: the
/// relative rules are then skipped). Never fails: input problems were found when loading.
pub fn evaluate(config: &Config, baseline: &[NamedRun], runs: &[NamedRun]) -> Outcome {
    let mut checks = Vec::new();
    if runs.is_empty() {
        Checks {
            layer: Layer::Invariants,
            run: None,
            out: &mut checks,
        }
        .judge(
            "runs",
            false,
            "0 runs".into(),
            "at least 1".into(),
            "no run file to judge".into(),
        );
    }
    for r in runs {
        let mut c = Checks {
            layer: Layer::Invariants,
            run: Some(&r.name),
            out: &mut checks,
        };
        invariants(&config.invariants, &r.file, &mut c);
    }
    relative(&config.relative, baseline, runs, &mut checks);
    for r in runs {
        let mut c = Checks {
            layer: Layer::Ceilings,
            run: Some(&r.name),
            out: &mut checks,
        };
        ceilings(&config.ceilings, &r.file, &mut c);
    }
    Outcome {
        checks,
        runs: runs.iter().map(|r| r.name.clone()).collect(),
        baseline: baseline.iter().map(|r| r.name.clone()).collect(),
        config: config.clone(),
    }
}

fn invariants(inv: &Invariants, run: &RunFile, c: &mut Checks) {
    c.judge(
        "run.complete",
        !run.interrupted || inv.allow_interrupted,
        if run.interrupted {
            "interrupted"
        } else {
            "ran to the end"
        }
        .into(),
        if inv.allow_interrupted {
            "interruption allowed"
        } else {
            "not interrupted"
        }
        .into(),
        if run.interrupted {
            "the run was stopped early: its figures cover only part of the plan".into()
        } else {
            "the run completed its plan".into()
        },
    );
    for phase in Phase::ALL {
        let absent = match phase {
            Phase::Latency => run.latency.is_none().then(|| "not in this run".to_string()),
            Phase::Connections => run.connections.is_none().then(|| "not in this run".into()),
            Phase::Capacity => run.capacity.is_none().then(|| "not in this run".into()),
            Phase::Sync => sync_figures(run).err(),
        };
        let required = inv.required_phases.contains(&phase);
        let name = format!("{}.ran", phase.name());
        match absent {
            Some(why) if required => c.judge(
                &name,
                false,
                why.clone(),
                "required".into(),
                format!("the {} scenario is required ({why})", phase.name()),
            ),
            Some(why) if phase != Phase::Capacity => {
                c.skip(&name, format!("{why}: its invariants do not apply"))
            }
            Some(_) => {}
            None if required || phase != Phase::Capacity => c.judge(
                &name,
                true,
                "ran".into(),
                if required { "required" } else { "optional" }.into(),
                format!("the {} scenario ran", phase.name()),
            ),
            None => {}
        }
    }
    if let Some(l) = &run.latency {
        phase_errors(inv, "latency", l, c);
        phase_rate(inv, "latency", l, c);
    }
    if let Some(conn) = &run.connections {
        phase_errors(inv, "connections", &conn.results, c);
        phase_rate(inv, "connections", &conn.results, c);
        if inv.connections_held {
            match conn.held() {
                None => c.skip(
                    "connections.held",
                    "held connections could not be counted (neither /proc nor the servers)",
                ),
                Some(held) => c.judge(
                    "connections.held",
                    held >= conn.asked as u64,
                    format!("{held} held"),
                    format!("≥ {} asked", conn.asked),
                    if held >= conn.asked as u64 {
                        "every connection asked for was held through the window".into()
                    } else {
                        format!(
                            "only {held} of {} connections were held through the window",
                            conn.asked
                        )
                    },
                ),
            }
        }
    }
    if let Ok(f) = sync_figures(run) {
        sync_invariants(inv, f, c);
    }
}

fn phase_errors(inv: &Invariants, phase: &str, r: &Results, c: &mut Checks) {
    let total: u64 = r.errors.values().sum();
    let classes: Vec<String> = r
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(class, n)| format!("{} {n}", class.name()))
        .collect();
    let ok = total <= inv.max_errors;
    c.judge(
        &format!("{phase}.errors"),
        ok,
        if classes.is_empty() {
            format!("{total} errors")
        } else {
            format!("{total} errors ({})", classes.join(", "))
        },
        format!("≤ {}", inv.max_errors),
        if ok {
            format!("{} of {} requests failed", total, r.requests)
        } else {
            format!(
                "{total} of {} requests failed in the {phase} phase ({})",
                r.requests,
                classes.join(", ")
            )
        },
    );
}

fn phase_rate(inv: &Invariants, phase: &str, r: &Results, c: &mut Checks) {
    let name = format!("{phase}.rate");
    let achieved = r.throughput_rps;
    match r.setup.target_rps {
        None => c.judge(
            &name,
            r.ok > 0,
            format!("{achieved:.1} req/s, {} ok", r.ok),
            "> 0 completed (closed loop: no intended rate)".into(),
            if r.ok > 0 {
                "closed loop: requests completed".into()
            } else {
                format!("no request of the {phase} phase succeeded")
            },
        ),
        Some(target) if target.is_finite() && target > 0.0 => {
            rate(inv, &name, achieved, target, "req/s", c)
        }
        Some(target) => c.skip(&name, format!("no usable intended rate ({target})")),
    }
}

fn rate(inv: &Invariants, name: &str, achieved: f64, target: f64, unit: &str, c: &mut Checks) {
    let need = inv.min_rate_ratio * target;
    let ok = achieved >= need;
    c.judge(
        name,
        ok,
        format!(
            "{achieved:.1} {unit} ({:.1} % of {target})",
            100.0 * achieved / target
        ),
        format!(
            "≥ {need:.1} {unit} ({:.0} % of {target})",
            100.0 * inv.min_rate_ratio
        ),
        if ok {
            "the intended rate was achieved".into()
        } else {
            format!(
                "achieved {achieved:.1} {unit} of the {target} intended: the generator or the \
                 servers could not keep up"
            )
        },
    );
}

fn sync_invariants(inv: &Invariants, f: &SyncFigures, c: &mut Checks) {
    let failed: u64 = f.failed.values().sum();
    let ok = failed <= inv.max_errors;
    c.judge(
        "sync.write_errors",
        ok,
        format!("{failed} failed writes"),
        format!("≤ {}", inv.max_errors),
        format!("{failed} of {} writes failed", f.writes),
    );
    if f.rate_wps.is_finite() && f.rate_wps > 0.0 {
        rate(inv, "sync.rate", f.achieved_wps, f.rate_wps, "writes/s", c);
    } else {
        c.skip(
            "sync.rate",
            format!("no usable intended write rate ({})", f.rate_wps),
        );
    }
    let check = &f.check;
    let limit = format!("≤ {} lost", inv.max_lost_writes);
    if let Some(why) = &check.skipped {
        c.skip(
            "sync.lost_writes",
            format!("the end-of-run check did not run: {why}"),
        );
    } else if check.lost > inv.max_lost_writes {
        let examples = if check.lost_examples.is_empty() {
            String::new()
        } else {
            format!(" (e.g. {})", check.lost_examples.join(", "))
        };
        c.judge(
            "sync.lost_writes",
            false,
            format!("{} lost of {}", check.lost, check.acked),
            limit,
            format!("{} acknowledged writes are missing{examples}", check.lost),
        );
    } else if !check.complete {
        c.judge(
            "sync.lost_writes",
            false,
            format!("{} lost, check incomplete", check.lost),
            limit,
            format!(
                "the check could not read every write back ({} read errors): lost writes cannot \
                 be ruled out",
                check.read_errors
            ),
        );
    } else {
        c.judge(
            "sync.lost_writes",
            true,
            format!("{} lost of {}", check.lost, check.acked),
            limit,
            "every acknowledged write was read back".into(),
        );
    }
}

fn relative(rel: &Relative, baseline: &[NamedRun], runs: &[NamedRun], out: &mut Vec<Check>) {
    if rel.metrics.is_empty() {
        return;
    }
    let mut c = Checks {
        layer: Layer::Relative,
        run: None,
        out,
    };
    if baseline.is_empty() {
        c.skip(
            "baseline",
            "no --baseline run given: the relative rules were not applied",
        );
        return;
    }
    let settings = stats::Settings {
        alpha: rel.alpha,
        min_effect_percent: rel.min_effect_percent,
        ..stats::Settings::default()
    };
    let confidence = confidence(rel.alpha);
    let band = rel.min_effect_percent;
    let limit = format!(
        "fails if p < {} and the {confidence} % CI lies above +{band} %",
        rel.alpha
    );
    for metric in &rel.metrics {
        // Per run, runs without a sample left out.
        let per_run = |side: &[NamedRun]| -> Vec<Vec<f64>> {
            side.iter()
                .map(|r| metric.samples(&r.file))
                .filter(|v| !v.is_empty())
                .collect()
        };
        let (b, h) = (per_run(baseline), per_run(runs));
        let count = |v: &[Vec<f64>]| v.iter().map(Vec::len).sum::<usize>();
        let name = metric.name();
        if b.len() < rel.min_runs || h.len() < rel.min_runs {
            c.skip(
                name,
                format!(
                    "too few runs: {} baseline and {} head runs with samples, relative.min_runs \
                     = {} a side (repeat the runs: one run a side cannot tell a regression from \
                     a slow machine)",
                    b.len(),
                    h.len(),
                    rel.min_runs
                ),
            );
            continue;
        }
        if count(&b) < rel.min_samples || count(&h) < rel.min_samples {
            c.skip(
                name,
                format!(
                    "too few samples: {} baseline and {} head seconds, relative.min_samples = {} \
                     a side",
                    count(&b),
                    count(&h),
                    rel.min_samples
                ),
            );
            continue;
        }
        let (bs, hs): (Vec<&[f64]>, Vec<&[f64]>) = (
            b.iter().map(Vec::as_slice).collect(),
            h.iter().map(Vec::as_slice).collect(),
        );
        let cmp = match stats::compare_runs(&bs, &hs, &settings) {
            Ok(cmp) => cmp,
            Err(e) => {
                c.skip(name, format!("cannot compare: {e}"));
                continue;
            }
        };
        let ci = format!(
            "{} to {}",
            fmt_change(cmp.ci_low_percent),
            fmt_change(cmp.ci_high_percent)
        );
        let message = if cmp.regression {
            format!(
                "regression: {} slower ({confidence} % CI {ci}), p = {}: beyond the {band} % \
                 noise band",
                fmt_change(cmp.change_percent),
                fmt_p(cmp.p_value)
            )
        } else if cmp.improvement {
            format!(
                "improvement: {} ({confidence} % CI {ci})",
                fmt_change(cmp.change_percent)
            )
        } else if cmp.significant {
            format!(
                "significant (p = {}) but not beyond the {band} % noise band ({confidence} % \
                 CI {ci})",
                fmt_p(cmp.p_value)
            )
        } else {
            format!("no significant change (p = {})", fmt_p(cmp.p_value))
        };
        c.judge(
            name,
            !cmp.regression,
            format!(
                "{} → {} ({}, {confidence} % CI {ci}, p = {})",
                fmt_us(cmp.baseline_median),
                fmt_us(cmp.head_median),
                fmt_change(cmp.change_percent),
                fmt_p(cmp.p_value)
            ),
            limit.clone(),
            message,
        );
        if let Some(last) = c.out.last_mut() {
            last.comparison = Some(cmp);
        }
    }
}

fn ceilings(ceilings: &Ceilings, run: &RunFile, c: &mut Checks) {
    for (key, bound, unit, value, read) in ceilings.rules() {
        let Some(limit) = value else { continue };
        match read(run) {
            Err(why) => c.skip(key, why),
            Ok(measured) => {
                let (ok, sign, word) = match bound {
                    Bound::AtMost => (measured <= limit, "≤", "above"),
                    Bound::AtLeast => (measured >= limit, "≥", "below"),
                };
                c.judge(
                    key,
                    ok,
                    format!("{measured:.2} {unit}"),
                    format!("{sign} {limit} {unit}"),
                    if ok {
                        "within the bound".into()
                    } else {
                        format!("{measured:.2} {unit} is {word} the bound of {limit} {unit}")
                    },
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The outcome and its reports

/// Every check of one gate evaluation, and the reports made of them.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Invariants of each run, then relative rules, then ceilings of each run.
    pub checks: Vec<Check>,
    /// The judged runs' names.
    pub runs: Vec<String>,
    /// The baseline runs' names.
    pub baseline: Vec<String>,
    pub config: Config,
}

impl Outcome {
    /// True when no check failed; skipped checks do not fail a gate.
    pub fn passed(&self) -> bool {
        self.count(Status::Failed) == 0
    }

    /// [`EXIT_PASS`] or [`EXIT_FAIL`]; input errors ([`GateError`]) are [`EXIT_USAGE`].
    pub fn exit_code(&self) -> i32 {
        if self.passed() { EXIT_PASS } else { EXIT_FAIL }
    }

    /// Checks with that status.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The failed checks, in report order.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Failed)
    }

    /// The verdict in one line, e.g. `gate failed: 2 of 31 checks failed (25 passed, 4
    /// skipped)`.
    pub fn verdict(&self) -> String {
        let (p, f, s) = (
            self.count(Status::Passed),
            self.count(Status::Failed),
            self.count(Status::Skipped),
        );
        let total = self.checks.len();
        if f == 0 {
            format!("gate passed: {p} of {total} checks passed ({s} skipped)")
        } else {
            format!("gate failed: {f} of {total} checks failed ({p} passed, {s} skipped)")
        }
    }

    /// For a terminal: the verdict, then one line per failed check and per skipped one (but
    /// the scenarios a run did not include, which the reports list).
    pub fn summary(&self) -> String {
        let mut s = self.verdict();
        let failed = self.failures();
        let skipped = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Skipped && !c.name.ends_with(".ran"));
        for c in failed.chain(skipped) {
            let _ = write!(s, "\n  {c}");
        }
        s
    }

    /// JUnit XML: one `<testsuite>` per layer, one `<testcase>` per check, `<failure>` for a
    /// failed check and `<skipped>` for one that could not apply, as CI test views read it.
    pub fn junit_xml(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            x,
            "<testsuites name=\"loadgen gate\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" \
             errors=\"0\">",
            self.checks.len(),
            self.count(Status::Failed),
            self.count(Status::Skipped)
        );
        for layer in Layer::ALL {
            let checks: Vec<&Check> = self.checks.iter().filter(|c| c.layer == layer).collect();
            let n = |s: Status| checks.iter().filter(|c| c.status == s).count();
            let _ = writeln!(
                x,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" \
                 errors=\"0\">",
                layer.name(),
                checks.len(),
                n(Status::Failed),
                n(Status::Skipped)
            );
            for c in checks {
                let name = match &c.run {
                    Some(run) => format!("{} [{run}]", c.name),
                    None => c.name.clone(),
                };
                let _ = write!(
                    x,
                    "    <testcase classname=\"gate.{}\" name=\"{}\"",
                    layer.name(),
                    xml(&name)
                );
                let detail = format!("measured: {}\nlimit: {}", c.measured, c.limit);
                match c.status {
                    Status::Passed => {
                        let _ = writeln!(
                            x,
                            ">\n      <system-out>{}</system-out>\n    </testcase>",
                            xml(&format!("{detail}\n{}", c.message))
                        );
                    }
                    Status::Failed => {
                        let _ = writeln!(
                            x,
                            ">\n      <failure message=\"{}\" type=\"gate\">{}</failure>\n    \
                             </testcase>",
                            xml(&c.message),
                            xml(&detail)
                        );
                    }
                    Status::Skipped => {
                        let _ = writeln!(
                            x,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                            xml(&c.message)
                        );
                    }
                }
            }
            x.push_str("  </testsuite>\n");
        }
        x.push_str("</testsuites>\n");
        x
    }

    /// Markdown for a GitHub step summary: the verdict on the first line, then a table per
    /// layer (measured against limit; for relative rules the medians, change, interval and
    /// p-value).
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let icon = if self.passed() { "✅" } else { "❌" };
        let _ = writeln!(m, "## {icon} Performance {}\n", md(&self.verdict()));
        let names = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter().map(|s| md(s)).collect::<Vec<_>>().join(", ")
            }
        };
        let _ = writeln!(
            m,
            "Runs: {}  \nBaseline: {}\n",
            names(&self.runs),
            names(&self.baseline)
        );
        for layer in Layer::ALL {
            let checks: Vec<&Check> = self.checks.iter().filter(|c| c.layer == layer).collect();
            let _ = writeln!(m, "### {}\n", layer.title());
            if checks.is_empty() {
                m.push_str("No rules of this layer are configured.\n\n");
                continue;
            }
            if layer == Layer::Relative {
                relative_table(&mut m, &checks, &self.config.relative);
            } else {
                m.push_str("| | check | run | measured | limit | note |\n");
                m.push_str("|---|---|---|---|---|---|\n");
                for c in checks {
                    let _ = writeln!(
                        m,
                        "| {} {} | {} | {} | {} | {} | {} |",
                        c.status.icon(),
                        c.status.label(),
                        md(&c.name),
                        md(c.run.as_deref().unwrap_or("")),
                        md(&c.measured),
                        md(&c.limit),
                        md(&c.message)
                    );
                }
                m.push('\n');
            }
        }
        m
    }

    /// Writes [`Outcome::junit_xml`] and [`Outcome::markdown`] to the given paths.
    pub fn write_reports(&self, junit: &Path, markdown: &Path) -> Result<(), GateError> {
        for (path, text) in [(junit, self.junit_xml()), (markdown, self.markdown())] {
            std::fs::write(path, text).map_err(|source| GateError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }
}

fn relative_table(m: &mut String, checks: &[&Check], rel: &Relative) {
    let confidence = confidence(rel.alpha);
    let _ = writeln!(
        m,
        "A regression needs p < {} and the whole {confidence} % interval of the change above \
         +{} %.\n",
        rel.alpha, rel.min_effect_percent
    );
    let _ = writeln!(
        m,
        "| | metric | baseline median | head median | change | {confidence} % CI | p-value \
         | samples (baseline / head) | note |"
    );
    m.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for c in checks {
        let cells = match &c.comparison {
            Some(k) => [
                fmt_us(k.baseline_median),
                fmt_us(k.head_median),
                fmt_change(k.change_percent),
                format!(
                    "{} to {}",
                    fmt_change(k.ci_low_percent),
                    fmt_change(k.ci_high_percent)
                ),
                fmt_p(k.p_value),
                format!("{} / {}", k.baseline_n, k.head_n),
            ],
            None => Default::default(),
        };
        let _ = writeln!(
            m,
            "| {} {} | {} | {} | {} |",
            c.status.icon(),
            c.status.label(),
            md(&c.name),
            cells.map(|s| md(&s)).join(" | "),
            md(&c.message)
        );
    }
    m.push('\n');
}

/// The confidence of the interval, `1 - alpha`, in percent without trailing zeros: `99`,
/// `99.9`.
fn confidence(alpha: f64) -> String {
    let s = format!("{:.3}", 100.0 * (1.0 - alpha));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A median of microseconds for people.
fn fmt_us(us: f64) -> String {
    if us.is_finite() && us >= 0.0 {
        fmt_micros(us.round() as u64)
    } else {
        format!("{us} µs")
    }
}

fn fmt_change(percent: f64) -> String {
    if percent.is_finite() {
        format!("{percent:+.1} %")
    } else {
        format!("{percent} %")
    }
}

fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// Text for XML content and attribute values: the five special characters escaped, line
/// breaks kept as character references (attributes would fold them), and characters XML 1.0
/// forbids replaced.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Markdown table cell: pipes escaped, HTML neutralised, one line.
fn md(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn xml_escapes_specials_and_drops_forbidden_characters() {
        assert_eq!(
            xml("a<b>&\"c'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;\u{FFFD}"
        );
        assert_eq!(xml("µs ≤ 5"), "µs ≤ 5");
    }

    #[test]
    fn markdown_cells_stay_one_cell() {
        assert_eq!(md("a|b\nc <i>&"), "a\\|b c &lt;i&gt;&amp;");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(confidence(0.01), "99");
        assert_eq!(confidence(0.05), "95");
        assert_eq!(confidence(0.001), "99.9");
        assert_eq!(fmt_p(0.4321), "0.432");
        assert_eq!(fmt_p(0.000_012), "1.2e-5");
        assert_eq!(fmt_change(30.04), "+30.0 %");
        assert_eq!(fmt_change(-4.0), "-4.0 %");
        assert_eq!(fmt_change(f64::INFINITY), "inf %");
        assert_eq!(fmt_us(2_345.4), "2.35 ms");
    }

    #[test]
    fn toml_errors_carry_line_and_column() {
        let text = "[relative]\nalpha = \"x\"\n";
        let e = toml::from_str::<Config>(text).unwrap_err();
        let m = toml_message(&e, text);
        assert!(m.ends_with("(line 2, column 9)"), "{m}");
        assert!(!m.contains('\n'));
    }

    #[test]
    fn every_ceiling_key_is_validated() {
        let c = Config::default();
        for (key, ..) in c.ceilings.rules() {
            let text = format!("[ceilings]\n{key} = -1.0\n");
            let e = Config::parse(&text, "g.toml").unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "g.toml: ceilings.{key} = -1: must be a positive number (leave the key out \
                     for no bound)"
                )
            );
        }
    }
}
