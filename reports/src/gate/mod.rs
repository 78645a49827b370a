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
//!    p90s) of all runs of a side are pooled and compared with
//!    [`stats::compare`](crate::stats::compare): a regression needs a significant
//!    Mann-Whitney test *and* a bootstrap interval of the change lying wholly beyond the
//!    minimum effect. p50 and p90 only: p99 on such a machine measures the scheduler.
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
//! # Layout
//! `config` holds the rules, `parse` reads and validates them; `invariants`, `relative` and
//! `ceilings` one layer each; `check` the record every layer writes; `input` the run files;
//! `report` the outcome and its reports; `error` the input errors and exit codes.
//! [`evaluate`] here runs the layers in order.

mod ceilings;
mod check;
mod config;
mod error;
mod input;
mod invariants;
mod parse;
mod relative;
mod report;

use std::path::{Path, PathBuf};

pub use check::{Check, Layer, Status};
pub use config::{Ceilings, Config, Invariants, Metric, Phase, Relative};
pub use error::{EXIT_FAIL, EXIT_PASS, EXIT_USAGE, GateError};
pub use input::{NamedRun, load_runs};
pub use report::Outcome;

use crate::run::RunFile;
use check::Checks;

/// The process exit code for what [`evaluate_files`] (or the CLI's own sequence) gave:
/// [`EXIT_PASS`], [`EXIT_FAIL`] or, for any [`GateError`], [`EXIT_USAGE`].
pub fn exit_code(result: &Result<Outcome, GateError>) -> i32 {
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => e.exit_code(),
    }
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
        invariants::check(&config.invariants, file, c)
    });
    relative::check(&config.relative, baseline, runs, &mut checks);
    per_run(Layer::Ceilings, runs, &mut checks, |file, c| {
        ceilings::check(&config.ceilings, file, c)
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
