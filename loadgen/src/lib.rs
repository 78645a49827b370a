//! loadgen: starts the embedded reference fleet (or takes `--target` URLs), measures it, and
//! writes a run folder with `run.json` (see [`runfile`] for the format) and a self-contained
//! `report.html`. Three steps kept apart: measure ([`measure`]), save the run file, render the
//! report from the run file alone ([`report`]). [`run`] is the one entry point, shared by the
//! binary and the tests.

pub mod claims;
pub mod cli;
pub mod cpu;
pub mod embedded;
pub mod mcp;
pub mod measure;
pub mod mix;
pub mod output;
pub mod recorder;
pub mod report;
pub mod runfile;
pub mod target;

use std::{path::PathBuf, sync::Arc, time::SystemTime};

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

pub use cli::Args;
use measure::{LoadSettings, Target};
use runfile::{Config, Environment, FleetFacts, MixShare, Results, RunFile};

/// A finished run: what was written and where.
#[derive(Debug)]
pub struct RunOutcome {
    pub run: RunFile,
    pub run_file: PathBuf,
    pub report: PathBuf,
}

/// Runs everything `loadgen` does and returns the written run. Progress goes to stderr.
pub async fn run(args: Args) -> anyhow::Result<RunOutcome> {
    let started_at = SystemTime::now();
    if let Some(out) = &args.out
        && out.exists()
        && !out.is_dir()
    {
        bail!("--out {} exists and is not a directory", out.display());
    }
    // A bad claims file should fail before a fleet is started or anything is measured.
    let claims = claims::load(args.claims.as_deref())?;
    let fd_limit = fleet::registry::raise_fd_limit();
    let stop = CancellationToken::new();
    let ctrl_c = tokio::spawn(watch_ctrl_c(stop.clone()));
    let result = run_inner(&args, &claims, started_at, fd_limit, &stop).await;
    ctrl_c.abort();
    let run = result?;
    let dir = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => output::new_run_dir(&output::default_runs_dir(), started_at)?,
    };
    let (run_file, report) = output::write(&dir, &run)?;
    Ok(RunOutcome {
        run,
        run_file,
        report,
    })
}

async fn run_inner(
    args: &Args,
    claim_specs: &[claims::ClaimSpec],
    started_at: SystemTime,
    fd_limit: u64,
    stop: &CancellationToken,
) -> anyhow::Result<RunFile> {
    let fleet = if args.targets.is_empty() {
        Some(embedded::start(args, stop).await?)
    } else {
        None
    };
    let targets: Arc<[Target]> = match &fleet {
        Some(f) => f.targets()?,
        None => {
            let targets = target::resolve(&args.targets, args.timeout).await?;
            if targets.is_empty() {
                bail!("the targets name no server (an admin API with an empty fleet?)");
            }
            targets
        }
    };
    let targets: Arc<[Target]> = if args.tools.is_empty() {
        targets
    } else {
        let chosen = Arc::new(mix::Mix::from_choices(&args.tools));
        targets
            .iter()
            .map(|t| Target {
                mix: chosen.clone(),
                ..t.clone()
            })
            .collect()
    };
    let measured = measure_targets(args, &targets, fleet.as_ref(), stop).await;
    let facts = match fleet {
        Some(f) => Some(f.stop().await),
        None => None,
    };
    let (health, load) = measured?;
    let facts = facts.map(|f| FleetFacts {
        open_connections_max: load.open_connections_max,
        ..f
    });
    let config = config(args, &targets);
    let results = Results::new(&load.recorder, load.measured.as_secs_f64())?;
    let claims = claims::evaluate(
        claim_specs,
        &claims::Evidence {
            config: &config,
            fleet: facts.as_ref(),
            health: &health,
            results: &results,
        },
    );
    Ok(RunFile {
        schema_version: runfile::SCHEMA_VERSION,
        tool: runfile::Tool::default(),
        started_at: runfile::utc_timestamp(started_at).0,
        finished_at: runfile::utc_timestamp(SystemTime::now()).0,
        interrupted: health.interrupted || load.interrupted,
        config,
        environment: Environment::detect(fd_limit),
        fleet: facts,
        health,
        results,
        cpu: load.cpu,
        claims,
    })
}

/// The health sweep, then the latency run.
async fn measure_targets(
    args: &Args,
    targets: &Arc<[Target]>,
    fleet: Option<&embedded::Embedded>,
    stop: &CancellationToken,
) -> anyhow::Result<(measure::HealthSweep, measure::LoadOutcome)> {
    eprintln!(
        "health sweep: one tools/list to each of {} servers",
        targets.len()
    );
    let health = measure::sweep(targets, args.timeout, args.protocol, stop).await?;
    eprintln!(
        "health sweep: {}/{} answered in {:.2} s",
        health.ok, health.servers, health.seconds
    );
    if fleet.is_none() && !health.failures.is_empty() {
        let failed: Vec<String> = health
            .failures
            .iter()
            .map(|f| format!("{} ({}: {})", f.url, f.error.name(), f.error.describe()))
            .collect();
        bail!(
            "target(s) did not answer an MCP tools/list (is it an MCP streamable-HTTP endpoint, \
             and is --protocol right?): {}",
            failed.join(", ")
        );
    }
    let what = match (fleet, args.tools.is_empty()) {
        (_, false) => "the --tool mix on every server",
        (Some(_), true) => "tool mix over the fleet",
        (None, true) => {
            "tools/list only: the targets' tools are unknown (choose calls with --tool)"
        }
    };
    eprintln!(
        "latency run: {} users, {:.0} s warm-up + {:.0} s measured ({what})",
        args.users,
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64()
    );
    let settings = LoadSettings {
        users: args.users as usize,
        warmup: args.warmup,
        duration: args.duration,
        timeout: args.timeout,
        protocol: args.protocol,
        rate: args.rate,
        embedded: fleet.is_some(),
    };
    let open_connections = || fleet.map(embedded::Embedded::open_connections);
    let load = measure::load(targets.clone(), &settings, stop, open_connections).await?;
    Ok((health, load))
}

fn config(args: &Args, targets: &[Target]) -> Config {
    let mut mix = Vec::new();
    let mut seen = Vec::new();
    for t in targets {
        if !seen.contains(&t.group) {
            seen.push(t.group.clone());
            mix.extend(t.mix.shares().into_iter().map(|(call, percent)| MixShare {
                group: t.group.clone(),
                call,
                percent,
            }));
        }
    }
    Config {
        mode: if args.targets.is_empty() {
            "embedded"
        } else {
            "targets"
        }
        .into(),
        servers: targets.len(),
        users: args.users as usize,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        timeout_s: args.timeout.as_secs_f64(),
        ephemeral_ports: args.ephemeral_ports,
        targets: args.targets.iter().map(|u| u.to_string()).collect(),
        protocol_version: args.protocol.version().into(),
        load_model: match args.rate {
            None => "closed loop: each user sends its next request when the previous one has \
                     completed (no coordinated-omission correction)"
                .into(),
            Some(rate) => format!(
                "open model: {rate} req/s at fixed intended send times, at most {} in flight; \
                 latency counts from the intended time (coordinated omission corrected), \
                 service_latency_us from the actual send",
                args.users
            ),
        },
        mix,
    }
}

/// First Ctrl-C stops the run early (results are still written); a second one exits at once.
async fn watch_ctrl_c(stop: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("\nCtrl-C: stopping early; results will be marked interrupted (Ctrl-C again quits)");
    stop.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}

/// What the binary prints at the end: headline numbers, the verdict table, the paths.
pub fn summary(outcome: &RunOutcome) -> String {
    let r = &outcome.run.results;
    let l = &r.latency_us;
    let errors: u64 = r.errors.values().sum();
    format!(
        "{}{} requests in {:.1} s ({:.0} req/s), {errors} errors; latency mean {}, p50 {}, \
         p99 {}, max {}\n\n{}\nrun file: {}\nreport: {}\n",
        if outcome.run.interrupted {
            "INTERRUPTED: partial results\n"
        } else {
            ""
        },
        r.requests,
        r.measured_s,
        r.throughput_rps,
        fmt_micros(l.mean.round() as u64),
        fmt_micros(l.p50),
        fmt_micros(l.p99),
        fmt_micros(l.max),
        claims::text_table(&outcome.run.claims),
        outcome.run_file.display(),
        outcome.report.display(),
    )
}

/// A latency for people: `850 µs`, `2.35 ms`, `1.20 s`.
pub fn fmt_micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn formats_latencies() {
        assert_eq!(fmt_micros(850), "850 µs");
        assert_eq!(fmt_micros(2_345), "2.35 ms");
        assert_eq!(fmt_micros(1_200_000), "1.20 s");
    }
}
