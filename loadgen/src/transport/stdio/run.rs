//! The stdio server of a run: the pool behind its `stdio:` target, started (every process
//! opened) before the health sweep, so nothing of the start-up is measured, and attached to
//! the target so its users' clients find it. One `stdio:` target per run: its processes are
//! what the run file's `stdio` section describes.

use std::path::Path;

use anyhow::{Context as _, bail};

use super::{StdioPool, StdioSettings};
use crate::{cli::Args, measure::Target, target::TargetSpec, transport::client::Transport};

/// Starts the pool of the run's `stdio:` target, if it has one, and attaches it to the target.
/// Processes: `--stdio-processes`, else one per user of the latency scenario.
pub async fn start(
    args: &Args,
    targets: &mut [Target],
    dir: &Path,
) -> anyhow::Result<Option<StdioPool>> {
    let mut commands = args.targets.iter().filter_map(|t| match t {
        TargetSpec::Stdio(command) => Some(command),
        _ => None,
    });
    let Some(command) = commands.next() else {
        return Ok(None);
    };
    if commands.next().is_some() {
        bail!("one `stdio:` target per run, please: each is a pool of processes of its own");
    }
    let processes = args
        .stdio_processes
        .map_or(args.users as usize, |n| n as usize);
    eprintln!(
        "stdio: starting {processes} process(es) of `{}`",
        command.join(" ")
    );
    let pool = StdioPool::start(StdioSettings {
        command: command.clone(),
        processes,
        log_dir: dir.to_path_buf(),
        timeout: args.timeout,
        version: args.protocol.version(),
    })
    .await
    .context("starting the stdio server")?;
    let version = pool.version().unwrap_or(crate::mcp::Version::V2026_07_28);
    for t in targets
        .iter_mut()
        .filter(|t| matches!(t.transport, Transport::Stdio(_)))
    {
        t.transport = Transport::Stdio(Some(pool.handle()));
        t.version = version;
    }
    Ok(Some(pool))
}
