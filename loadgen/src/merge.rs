//! `loadgen merge`: one run from the run files of a sharded run's shards (`--shard I/N`):
//! the shards' histograms added (exact), counts summed, seconds lined up by the wall clock
//! (see `reports::merge`), the claims judged again on the merged figures, and the run folder
//! written as a run's is (run.json, report.html, exports), so `report`, `compare` and `gate`
//! take it like any run.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use reports::merge::{ShardRun, merge};

use crate::{
    attack::Pacing,
    claims,
    runfile::{Results, RunFile},
    scenario::context::load_model,
};

/// Merges `runs` into `out` (a new run folder under the runs folder when `None`). Exit 0
/// when every claim holds, 1 when one failed, 2 for files that do not make one run.
pub fn run(
    runs: &[PathBuf],
    out: Option<PathBuf>,
    claims_file: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut shards = Vec::with_capacity(runs.len());
    for path in runs {
        let (file, run) = crate::runfile::load(path)?;
        shards.push(ShardRun {
            name: file.display().to_string(),
            run,
        });
    }
    let mut merged = match merge(&shards) {
        Ok(merged) => merged,
        Err(e) => {
            eprintln!("loadgen merge: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    describe_load(&mut merged);
    let specs = claims::load(claims_file)?;
    merged.claims = claims::evaluate(&specs, &claims::Evidence::of(&merged));
    let dir = match out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir
        }
        None => crate::output::new_run_dir(
            &crate::output::default_runs_dir(),
            std::time::SystemTime::now(),
        )?,
    };
    let written = crate::output::write(&dir, &merged)?;
    let status = crate::exit_status(&merged);
    if json {
        println!(
            "{:#}",
            serde_json::json!({
                "shards": merged.merged_from.len(),
                "exit_status": status,
                "run_file": written.run_file,
                "report": written.report,
            })
        );
    } else {
        print!("{}", claims::text_table(&merged.claims));
        for s in &merged.merged_from {
            for flag in &s.flags {
                println!("shard {} ({}): {flag}", s.index, s.host);
            }
        }
        println!(
            "merged {} shards\nrun file: {}\nreport: {}",
            merged.merged_from.len(),
            written.run_file.display(),
            written.report.display()
        );
    }
    Ok(ExitCode::from(status))
}

/// The load model of the whole run in words, per phase: the shards' wording names each one's
/// share.
fn describe_load(run: &mut RunFile) {
    let open = |r: &Results| match r.setup.target_rps {
        Some(rate) => Pacing::Open { rate },
        None => Pacing::Closed,
    };
    if let Some(r) = run.latency.as_mut() {
        r.setup.load_model = load_model(open(r), r.setup.users);
        run.config.load_model = r.setup.load_model.clone();
    }
    if let Some(c) = run.connections.as_mut() {
        let pacing = Pacing::PerUser {
            rate: c.per_connection_rps,
        };
        c.results.setup.load_model = load_model(pacing, c.results.setup.users);
    }
    if let Some(c) = run.chaos.as_mut() {
        c.results.setup.load_model = load_model(open(&c.results), c.results.setup.users);
    }
}
