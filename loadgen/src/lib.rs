//! loadgen: starts the embedded reference fleet (or takes `--target` URLs), measures it with
//! goose-driven scenarios, and writes a run folder with `run.json` (see [`runfile`] for the
//! format), a self-contained `report.html` and exports for other tools
//! ([`reports::export`]). Three steps kept apart: measure (`scenario` over the engine,
//! `attack`), save the run file, render the report and the exports from the run file alone
//! ([`reports::html`]). [`run`] is the one entry point, shared by the binary and the tests;
//! `assemble` builds the run file a run writes.

pub(crate) use reports::fmt_micros;

mod assemble;
mod attack;
mod claims;
mod cli;
mod clock;
pub mod commands;
mod cpu;
mod embedded;
mod lock;
mod mcp;
mod measure;
mod merge;
mod mix;
mod output;
mod recorder;
mod results;
pub mod runfile;
mod scenario;
mod sockets;
mod summary;
mod summary_json;
mod target;
mod transport;
mod verbosity;

use std::{path::PathBuf, time::SystemTime};

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

use cli::ScenarioChoice;
pub use cli::{Args, Command};
use runfile::RunFile;
pub use summary::summary;
pub use summary_json::{SummaryJson, exit_meaning, exit_status, summary_json};

/// A finished run: what was written and where.
#[derive(Debug)]
pub struct RunOutcome {
    pub run: RunFile,
    pub run_file: PathBuf,
    pub report: PathBuf,
    /// `phases.csv` and the `.hlog` files beside the run file.
    pub exports: reports::export::Exports,
    /// The runs folder's index, when the run went to the default folder.
    pub index: Option<PathBuf>,
}

/// Runs everything `loadgen` does and returns the written run. Progress goes to stderr.
/// Cancelling `stop` (the binary does on Ctrl-C) ends the run early; what was measured is still
/// written, marked interrupted.
pub async fn run(args: Args, stop: CancellationToken) -> anyhow::Result<RunOutcome> {
    let started_at = SystemTime::now();
    verbosity::set_quiet(args.quiet);
    // Bad claims or an unusable --out fail before a fleet is started or anything is measured.
    let claims = claims::load(args.claims.as_deref())?;
    let dir = match &args.out {
        Some(dir) => {
            if dir.exists() && !dir.is_dir() {
                bail!("--out {} exists and is not a directory", dir.display());
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => output::new_run_dir(&output::default_runs_dir(), started_at)?,
    };
    if !args.targets.is_empty()
        && args.admin.is_none()
        && args.scenarios.contains(&ScenarioChoice::Chaos)
    {
        bail!(
            "--scenario chaos against --target servers needs their fleet's admin API to inject \
             faults through: add --admin URL (e.g. http://127.0.0.1:7900 of `fleet up`)"
        );
    }
    let fd_limit = fleet::raise_fd_limit();
    let run =
        assemble::measure_and_judge(&args, &claims, started_at, fd_limit, &dir, &stop).await?;
    let output::Written {
        run_file,
        report,
        exports,
    } = output::write(&dir, &run)?;
    // Runs in the default folder get an index of them all; a run written elsewhere (--out)
    // leaves that folder's other contents alone.
    let index = match &args.out {
        None => dir.parent().map(output::write_index).transpose()?,
        Some(_) => None,
    };
    Ok(RunOutcome {
        run,
        run_file,
        report,
        exports,
        index,
    })
}
