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
//!
//! The config and its parsing live in `config`, the outcome and its reports in `report`.

mod config;
mod report;

use std::path::{Path, PathBuf};

pub use config::{Ceilings, Config, Invariants, Metric, Phase, Relative};
pub use report::Outcome;

use crate::{
    run::{LoadError, Results, RunFile, SyncFigures},
    stats::{self, Comparison},
};
use config::{Bound, sync_figures};
use report::{confidence, fmt_change, fmt_p, fmt_us};

/// Every check passed (skipped ones included).
pub const EXIT_PASS: i32 = 0;
/// At least one check failed.
pub const EXIT_FAIL: i32 = 1;
/// The gate could not judge: bad arguments, run files or config ([`GateError`]).
pub const EXIT_USAGE: i32 = 2;

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
    per_run(Layer::Invariants, runs, &mut checks, |file, c| {
        invariants(&config.invariants, file, c)
    });
    relative(&config.relative, baseline, runs, &mut checks);
    per_run(Layer::Ceilings, runs, &mut checks, |file, c| {
        ceilings(&config.ceilings, file, c)
    });
    Outcome {
        checks,
        runs: runs.iter().map(|r| r.name.clone()).collect(),
        baseline: baseline.iter().map(|r| r.name.clone()).collect(),
        config: config.clone(),
    }
}

/// Applies the rules of one layer to each run in turn; the checks carry the run's name.
fn per_run(
    layer: Layer,
    runs: &[NamedRun],
    out: &mut Vec<Check>,
    rules: impl Fn(&RunFile, &mut Checks),
) {
    for r in runs {
        let mut c = Checks {
            layer,
            run: Some(&r.name),
            out,
        };
        rules(&r.file, &mut c);
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
            Phase::Chaos => run.chaos.is_none().then(|| "not in this run".into()),
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
    if let Some(chaos) = &run.chaos {
        chaos_invariants(inv, chaos, c);
    }
}

fn chaos_invariants(inv: &Invariants, chaos: &crate::run::ChaosResult, c: &mut Checks) {
    let r = &chaos.results;
    if r.requests == 0 {
        c.skip("chaos.failed", "the chaos load measured no requests");
    } else {
        let failed = r.requests - r.ok;
        let percent = failed as f64 * 100.0 / r.requests as f64;
        let ok = percent <= inv.chaos_max_failed_percent;
        c.judge(
            "chaos.failed",
            ok,
            format!("{percent:.3} % ({failed} of {})", r.requests),
            format!("≤ {} %", inv.chaos_max_failed_percent),
            if ok {
                format!(
                    "requests kept succeeding while {} faults hit the servers",
                    chaos.faults.len()
                )
            } else {
                format!(
                    "{failed} requests failed during {} faults ({})",
                    chaos.faults.len(),
                    chaos.specs.join(", ")
                )
            },
        );
    }
    if inv.chaos_all_recovered {
        let (_, never) = chaos.recovery();
        let n = chaos.recoverable().count();
        let unreported: Vec<&str> = chaos
            .recoverable()
            .filter(|f| f.recovered_ms.is_none())
            .map(|f| f.server.as_str())
            .take(5)
            .collect();
        c.judge(
            "chaos.recovered",
            never == 0,
            format!("{} of {n}", n - never),
            "all".into(),
            if never == 0 {
                format!("every one of {n} failed servers was healthy again")
            } else {
                format!(
                    "{never} failed servers were not healthy again within {:.1} s (e.g. {})",
                    chaos.recovery_wait_ms as f64 / 1000.0,
                    unreported.join(", ")
                )
            },
        );
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
                // Not `fmt_micros`: the figure stays in the key's unit (ms, req/s), as its limit.
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
