//! The subcommands that read run files rather than measure: `report` (which also writes the
//! run's exports again), `compare`, `gate`, `merge` (in `crate::merge`) and `index`. Each is a thin shell over the
//! `reports` crate, which never measures anything.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use reports::gate;

use crate::{cli::Command, output};

/// Runs a subcommand; the exit code is the subcommand's (see each).
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    // What was written, as (kind, path): `kind: path` lines, or one JSON object under --json.
    let (written, json) = match command {
        Command::Report { run, out, json } => {
            let (file, run) = load(&run)?;
            let out = out.unwrap_or_else(|| beside(&file, "report.html"));
            write(&out, &reports::html::render(&run))?;
            let mut written = vec![("report", shown(&out))];
            // The exports follow the run file, as when the run wrote them.
            let exports = reports::export::write(&beside(&file, ""), &run)?;
            written.extend(exports.paths().map(|p| ("export", p.display().to_string())));
            (written, json)
        }
        Command::Compare {
            base,
            head,
            out,
            json,
        } => {
            let (_, base_run) = load(&base)?;
            let (head_file, head_run) = load(&head)?;
            let out = out.unwrap_or_else(|| beside(&head_file, "compare.html"));
            let names = (base.display().to_string(), head.display().to_string());
            write(
                &out,
                &reports::compare::render((&names.0, &base_run), (&names.1, &head_run)),
            )?;
            (vec![("comparison", shown(&out))], json)
        }
        Command::Gate { .. } => return gate(command),
        Command::Merge {
            runs,
            out,
            claims,
            json,
        } => return crate::merge::run(&runs, out, claims.as_deref(), json),
        Command::Index { dir, json } => {
            let dir = dir.unwrap_or_else(output::default_runs_dir);
            let index = output::write_index(&dir)?;
            (vec![("index", shown(&index))], json)
        }
    };
    if json {
        let written: Vec<_> = written
            .iter()
            .map(|(kind, path)| serde_json::json!({ "kind": kind, "path": path }))
            .collect();
        println!("{:#}", serde_json::json!({ "written": written }));
    } else {
        for (kind, path) in written {
            println!("{kind}: {path}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub use crate::runfile::load;

fn beside(file: &Path, name: &str) -> PathBuf {
    file.parent().unwrap_or(Path::new(".")).join(name)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn shown(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// `loadgen gate`: 0 when every run passes, 1 when a gate failed, 2 for a usage or input
/// error (a bad config or run file, an output that cannot be written).
fn gate(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Gate {
        config,
        baseline,
        runs,
        junit,
        summary,
        json,
    } = command
    else {
        anyhow::bail!("not the gate command");
    };
    let outcome = match gate::evaluate_files(&config, &baseline, &runs) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("loadgen gate: {e}");
            return Ok(ExitCode::from(gate::EXIT_USAGE as u8));
        }
    };
    if !json {
        println!("{}", outcome.summary());
    }
    let first = runs.first().map(|r| {
        let file = if r.is_dir() {
            r.join("run.json")
        } else {
            r.clone()
        };
        beside(&file, "")
    });
    let default = |name: &str| first.clone().unwrap_or_default().join(name);
    let junit = junit.unwrap_or_else(|| default("gate-junit.xml"));
    let summary = summary.unwrap_or_else(|| default("gate-summary.md"));
    if let Err(e) = outcome.write_reports(&junit, &summary) {
        eprintln!("loadgen gate: {e}");
        return Ok(ExitCode::from(gate::EXIT_USAGE as u8));
    }
    // GitHub Actions shows this file on the job's page.
    if let Some(step) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write as _;
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&step)
            .and_then(|mut f| f.write_all(outcome.markdown().as_bytes()));
        if let Err(e) = appended {
            eprintln!(
                "loadgen gate: cannot append to $GITHUB_STEP_SUMMARY ({}): {e}",
                Path::new(&step).display()
            );
        }
    }
    if json {
        println!("{}", gate_json(&outcome, &junit, &summary));
    } else {
        println!("junit: {}\nsummary: {}", shown(&junit), shown(&summary));
    }
    Ok(ExitCode::from(outcome.exit_code() as u8))
}

/// `loadgen gate --json`: the outcome as one JSON object, every check with its layer, run,
/// status (`passed`, `failed`, `skipped`), what was measured, the limit and why.
fn gate_json(outcome: &gate::Outcome, junit: &Path, summary: &Path) -> serde_json::Value {
    let checks: Vec<_> = outcome
        .checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "layer": c.layer.name(),
                "name": c.name,
                "run": c.run,
                "status": match c.status {
                    gate::Status::Passed => "passed",
                    gate::Status::Failed => "failed",
                    gate::Status::Skipped => "skipped",
                },
                "measured": c.measured,
                "limit": c.limit,
                "message": c.message,
            })
        })
        .collect();
    serde_json::json!({
        "exit_status": outcome.exit_code(),
        "passed": outcome.passed(),
        "runs": outcome.runs,
        "baseline": outcome.baseline,
        "checks": checks,
        "paths": { "junit": shown(junit), "summary": shown(summary) },
    })
}
