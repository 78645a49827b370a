//! The `loadgen` binary: a fleet child process serves and exits here; otherwise the arguments
//! are parsed, a subcommand reads run files, or a run measures (Ctrl-C stops it early) and its
//! summary is printed on stdout. Everything else lives in the library ([`loadgen::run`]).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

/// mimalloc: the servers' per-request work is allocation-heavy (rmcp builds a service per
/// stateless request); measured +13-17 % `echo` throughput over glibc malloc (benches/README.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A process-mode fleet child serves and exits here.
    let result = match fleet::run_if_child() {
        Some(result) => result.map(|()| None),
        None => run(),
    };
    match result {
        Ok(Some(Finished { summary, status })) => {
            print!("{summary}");
            ExitCode::from(status)
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the cause chain on one line and no backtrace: errors here are for
            // people running a command, not for debugging loadgen. Exit 2, as `loadgen gate`
            // does for what it cannot judge: 1 is kept for "measured, and a claim failed".
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `ExitCode` hides its number; the subcommands only use these three.
fn exit_status(code: ExitCode) -> i32 {
    if code == ExitCode::SUCCESS {
        0
    } else if code == ExitCode::from(1) {
        1
    } else {
        2
    }
}

/// A run that was made: the summary for stdout and the exit status its verdicts give, so a
/// script or CI step learns of a failed claim without reading the summary.
struct Finished {
    summary: String,
    status: u8,
}

/// Runs loadgen; gives what a finished run prints and its exit status.
fn run() -> anyhow::Result<Option<Finished>> {
    fleet::init_logging();
    let mut args = loadgen::Args::parse();
    if let Some(command) = args.command.take() {
        // The subcommands read files: what goes wrong there is an input error (exit 2, as
        // for a usage error), and the gate's own verdict is its exit code.
        let code = loadgen::commands::run(command).unwrap_or_else(|e| {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        });
        std::process::exit(exit_status(code));
    }
    let stop = tokio_util::sync::CancellationToken::new();
    // Installed before goose's own handler, which then stands aside: the first Ctrl-C stops
    // the run (goose's users through its killswitch) and keeps what was measured; a second
    // one quits at once.
    let first = stop.clone();
    ctrlc::set_handler(move || {
        if first.is_cancelled() {
            std::process::exit(130);
        }
        eprintln!(
            "\nCtrl-C: stopping early; results will be marked interrupted (Ctrl-C again quits)"
        );
        first.cancel();
    })?;
    let json = args.json;
    let measured = {
        let _stdout = StdoutAside::start(args.quiet);
        tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(loadgen::run(args, stop)))
    };
    let outcome = match measured {
        Ok(outcome) => outcome,
        // A script reading --json gets an object whatever happened; the error goes to stderr
        // as always.
        Err(e) if json => {
            eprintln!("error: {e:#}");
            let failed = serde_json::json!({
                "format": "loadgen-summary/1",
                "exit_status": 2,
                "exit_meaning": loadgen::exit_meaning(2),
                "error": format!("{e:#}"),
            });
            return Ok(Some(Finished {
                summary: format!("{failed:#}\n"),
                status: 2,
            }));
        }
        Err(e) => return Err(e),
    };
    let status = loadgen::exit_status(&outcome.run);
    let summary = if json {
        serde_json::to_string_pretty(&loadgen::summary_json(&outcome, status))
            .context("serialising the summary")?
            + "\n"
    } else {
        loadgen::summary(&outcome)
    };
    Ok(Some(Finished { summary, status }))
}

/// Points stdout elsewhere while it lives: at stderr, or at nothing under `--quiet`. Goose
/// prints "All N users launched." on stdout once per load phase, with no setting to stop it,
/// and stdout is where the run's summary goes (to be piped or saved, or parsed under
/// `--json`): while the run goes, such lines join the progress lines on stderr, or go with
/// them under `--quiet`. Best effort: where stdout cannot be moved, it is left as it is.
struct StdoutAside(Option<std::os::fd::OwnedFd>);

impl StdoutAside {
    fn start(quiet: bool) -> Self {
        let Ok(saved) = rustix::io::dup(rustix::stdio::stdout()) else {
            return Self(None);
        };
        let moved = if quiet {
            std::fs::File::create("/dev/null")
                .map_err(drop)
                .and_then(|null| rustix::stdio::dup2_stdout(null).map_err(drop))
        } else {
            rustix::stdio::dup2_stdout(std::io::stderr()).map_err(drop)
        };
        match moved {
            Ok(()) => Self(Some(saved)),
            Err(()) => Self(None),
        }
    }
}

impl Drop for StdoutAside {
    fn drop(&mut self) {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        if let Some(saved) = self.0.take() {
            let _ = rustix::stdio::dup2_stdout(&saved);
        }
    }
}
