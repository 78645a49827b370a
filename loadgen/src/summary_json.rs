//! `--json`: the run's summary as one JSON object on stdout, for scripts and CI steps that
//! would otherwise scrape the text summary; and the exit status a run ends with, which it
//! states. It holds what a script decides on (the exit status
//! and its meaning, each claim's verdict, the key figures per load phase) and where everything
//! went; the full figures stay in `run.json`, whose path it gives.
//!
//! # Wire format (`format`: `loadgen-summary/1`)
//! - `exit_status` (0, 1 or 130) and `exit_meaning` in words; `interrupted`. A run that could
//!   not be made prints only `format`, `exit_status` 2, `exit_meaning` and `error`; a usage
//!   error, found while the arguments are parsed, prints nothing on stdout (exit status 2).
//! - `health`: `servers`, `ok`.
//! - `phases[]`: `phase` (the file name of its `.hlog`: `latency`, `connections`,
//!   `capacity-N-RATErps`, `chaos`), `label`, `requests`, `ok`, `errors` (by class),
//!   `measured_s`, `throughput_rps`, `success_percent`, `latency_ms` {`mean`, `p50`, `p90`,
//!   `p99`, `p99_9`, `max`} of the successful requests.
//! - `capacity` {`best_rps`, `p99_bound_ms`}, `sync` {`ran`, `reason`}, `chaos` {`faults`,
//!   `recovered`, `recoverable`, `slowest_recovery_ms`}, `scale` {`ran`, `reason`,
//!   `servers` (the size it grew to), `answered`, `healthy_s`} when those scenarios ran.
//! - `claims[]`: `id`, `title`, `verdict` (`pass`, `fail`, `not_measured`), `measured`,
//!   `criterion`, `note`; `verdicts`: how many of each.
//! - `paths`: `run_dir`, `run_file`, `report`, `csv`, `interval_logs` (phase -> path),
//!   `index` (null unless the run went to the default runs folder).

use std::{collections::BTreeMap, path::Path};

use serde::Serialize;

use crate::{
    RunOutcome,
    runfile::{Claim, ErrorClass, LatencySummary, Results, RunFile, Verdict},
};

#[derive(Debug, Serialize)]
pub struct SummaryJson<'a> {
    format: &'static str,
    exit_status: u8,
    exit_meaning: &'static str,
    interrupted: bool,
    health: Health,
    phases: Vec<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<Capacity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<Sync<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chaos: Option<Chaos>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scale: Option<Scale<'a>>,
    claims: &'a [Claim],
    verdicts: BTreeMap<&'static str, usize>,
    paths: Paths<'a>,
}

#[derive(Debug, Serialize)]
struct Health {
    servers: usize,
    ok: usize,
}

#[derive(Debug, Serialize)]
struct Phase {
    phase: String,
    label: String,
    requests: u64,
    ok: u64,
    errors: BTreeMap<ErrorClass, u64>,
    measured_s: f64,
    throughput_rps: f64,
    success_percent: Option<f64>,
    latency_ms: LatencyMs,
}

#[derive(Debug, Serialize)]
struct Scale<'a> {
    ran: bool,
    reason: &'a str,
    servers: Option<usize>,
    answered: Option<usize>,
    healthy_s: Option<f64>,
}

#[derive(Debug, Serialize)]
struct LatencyMs {
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p99_9: f64,
    max: f64,
}

#[derive(Debug, Serialize)]
struct Capacity {
    best_rps: Option<f64>,
    p99_bound_ms: f64,
}

#[derive(Debug, Serialize)]
struct Sync<'a> {
    ran: bool,
    reason: &'a str,
}

#[derive(Debug, Serialize)]
struct Chaos {
    faults: usize,
    recoverable: usize,
    recovered: usize,
    slowest_recovery_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Paths<'a> {
    run_dir: Option<&'a Path>,
    run_file: &'a Path,
    report: &'a Path,
    csv: &'a Path,
    interval_logs: BTreeMap<&'a str, &'a Path>,
    index: Option<&'a Path>,
}

/// The exit status a run's outcome gives: 130 for an interrupted run (it wrote what it
/// measured, but did not do what was asked: the status a shell gives Ctrl-C), else 1 when a
/// claim failed, else 0 (a claim not measured is not a failure).
pub fn exit_status(run: &RunFile) -> u8 {
    if run.interrupted {
        130
    } else if run.claims.iter().any(|c| c.verdict == Verdict::Fail) {
        1
    } else {
        0
    }
}

/// What an exit status of a run means, in the words of `--help`.
pub fn exit_meaning(status: u8) -> &'static str {
    match status {
        0 => "every claim passed or was not measured",
        1 => "a claim failed",
        130 => "interrupted: the run wrote what it measured before it was stopped",
        _ => "a usage or input error, or a run that could not be made",
    }
}

/// The summary of `outcome`, whose exit status is `status`.
pub fn summary_json(outcome: &RunOutcome, status: u8) -> SummaryJson<'_> {
    let run = &outcome.run;
    let phases = run.load_phases();
    let mut verdicts = BTreeMap::new();
    for claim in &run.claims {
        *verdicts.entry(claim.verdict.key()).or_insert(0) += 1;
    }
    for v in [Verdict::Pass, Verdict::Fail, Verdict::NotMeasured] {
        verdicts.entry(v.key()).or_insert(0);
    }
    let exports = &outcome.exports;
    SummaryJson {
        format: "loadgen-summary/1",
        exit_status: status,
        exit_meaning: exit_meaning(status),
        interrupted: run.interrupted,
        health: Health {
            servers: run.health.servers,
            ok: run.health.ok,
        },
        phases: phases
            .iter()
            .map(|p| phase(p.key(), p.label(), p.results))
            .collect(),
        capacity: run.capacity.as_ref().map(|c| Capacity {
            best_rps: c.best_rps,
            p99_bound_ms: ms(c.p99_bound_us as f64),
        }),
        sync: run.sync.as_ref().map(|s| Sync {
            ran: s.ran,
            reason: &s.reason,
        }),
        chaos: run.chaos.as_ref().map(|c| {
            let (slowest, never) = c.recovery();
            let recoverable = c.recoverable().count();
            Chaos {
                faults: c.faults.len(),
                recoverable,
                recovered: recoverable - never,
                slowest_recovery_ms: slowest,
            }
        }),
        scale: run.scale.as_ref().map(|s| {
            let f = s.figures.as_ref();
            Scale {
                ran: s.ran,
                reason: &s.reason,
                servers: f.map(|f| f.to_servers),
                answered: f.map(|f| f.sweep.ok),
                healthy_s: f.and_then(|f| f.healthy_s),
            }
        }),
        claims: &run.claims,
        verdicts,
        paths: Paths {
            run_dir: outcome.run_file.parent(),
            run_file: &outcome.run_file,
            report: &outcome.report,
            csv: &exports.csv,
            interval_logs: exports
                .interval_logs
                .iter()
                .map(|(phase, path)| (phase.as_str(), path.as_path()))
                .collect(),
            index: outcome.index.as_deref(),
        },
    }
}

fn phase(key: String, label: String, r: &Results) -> Phase {
    let l: &LatencySummary = &r.latency_us;
    Phase {
        phase: key,
        label,
        requests: r.requests,
        ok: r.ok,
        errors: r.errors.clone(),
        measured_s: r.measured_s,
        throughput_rps: r.throughput_rps,
        success_percent: r.success_percent(),
        latency_ms: LatencyMs {
            mean: ms(l.mean),
            p50: ms(l.p50 as f64),
            p90: ms(l.p90 as f64),
            p99: ms(l.p99 as f64),
            p99_9: ms(l.p99_9 as f64),
            max: ms(l.max as f64),
        },
    }
}

/// Microseconds as milliseconds, to the microsecond.
fn ms(us: f64) -> f64 {
    us.round() / 1000.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use reports::synthetic::{Spec, run};

    use super::*;

    fn outcome(dir: &Path, spec: &Spec) -> RunOutcome {
        let run = run(spec);
        let exports = reports::export::write(dir, &run).unwrap();
        RunOutcome {
            run,
            run_file: dir.join("run.json"),
            report: dir.join("report.html"),
            exports,
            index: None,
        }
    }

    #[test]
    fn the_summary_states_verdicts_figures_and_every_export() {
        let tmp = tempfile::tempdir().unwrap();
        let passing = outcome(tmp.path(), &Spec::default());
        let status = exit_status(&passing.run);
        assert_eq!(status, 0);
        let json = serde_json::to_value(summary_json(&passing, status)).unwrap();
        assert_eq!(json["exit_meaning"], exit_meaning(0));
        assert_eq!(json["verdicts"]["pass"], passing.run.claims.len());
        assert_eq!(json["verdicts"]["fail"], 0);
        let latency = passing.run.latency.as_ref().unwrap();
        assert_eq!(json["phases"][0]["requests"], latency.requests);
        assert_eq!(
            json["phases"][0]["latency_ms"]["p99"],
            latency.latency_us.p99 as f64 / 1e3
        );
        let logs = json["paths"]["interval_logs"].as_object().unwrap();
        assert_eq!(logs.keys().collect::<Vec<_>>(), ["latency", "sync"]);
        assert!(
            logs.values()
                .all(|p| Path::new(p.as_str().unwrap()).is_file())
        );
        assert!(json["paths"]["index"].is_null());

        // A slow run fails its latency claim; an interrupted one is 130 whatever its verdicts.
        let mut failing = outcome(
            tmp.path(),
            &Spec {
                median_us: 60_000.0,
                ..Spec::default()
            },
        );
        assert_eq!(exit_status(&failing.run), 1);
        let json = serde_json::to_value(summary_json(&failing, 1)).unwrap();
        assert!(json["verdicts"]["fail"].as_u64().unwrap() >= 1, "{json}");
        failing.run.interrupted = true;
        assert_eq!(exit_status(&failing.run), 130);
    }
}
