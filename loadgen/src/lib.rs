//! loadgen: starts the embedded reference fleet (or takes `--target` URLs), measures it with
//! goose-driven scenarios, and writes a run folder with `run.json` (see [`runfile`] for the
//! format) and a self-contained `report.html`. Three steps kept apart: measure ([`scenario`],
//! [`attack`]), save the run file, render the report from the run file alone ([`report`]).
//! [`run`] is the one entry point, shared by the binary and the tests.

pub use reports::fmt_micros;

pub mod attack;
pub mod chaos;
pub mod claims;
pub mod cli;
pub mod commands;
pub mod conn;
pub mod cpu;
pub mod embedded;
pub mod mcp;
pub mod measure;
pub mod mix;
pub mod output;
pub mod recorder;
pub mod runfile;
pub mod scenario;
pub mod sockets;
pub mod sync;
pub mod target;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

pub use cli::Args;
use cli::ScenarioChoice;
use measure::Target;
use runfile::{Config, Environment, FleetFacts, MixShare, RunFile};

/// The capacity search's p99 bound when neither --capacity-p99 nor a latency claim gives one:
/// the seed report's "sub-25ms".
const DEFAULT_CAPACITY_P99_MS: f64 = 25.0;

/// A finished run: what was written and where.
#[derive(Debug)]
pub struct RunOutcome {
    pub run: RunFile,
    pub run_file: PathBuf,
    pub report: PathBuf,
    /// The runs folder's index, when the run went to the default folder.
    pub index: Option<PathBuf>,
}

/// Runs everything `loadgen` does and returns the written run. Progress goes to stderr.
/// Cancelling `stop` (the binary does on Ctrl-C) ends the run early; what was measured is still
/// written, marked interrupted.
pub async fn run(args: Args, stop: CancellationToken) -> anyhow::Result<RunOutcome> {
    let started_at = SystemTime::now();
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
    let run = run_inner(&args, &claims, started_at, fd_limit, &dir, &stop).await?;
    let (run_file, report) = output::write(&dir, &run)?;
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
        index,
    })
}

async fn run_inner(
    args: &Args,
    claim_specs: &[claims::ClaimSpec],
    started_at: SystemTime,
    fd_limit: u64,
    dir: &Path,
    stop: &CancellationToken,
) -> anyhow::Result<RunFile> {
    let fleet = if args.targets.is_empty() {
        // The embedded fleet's memory lives in the run folder: each run starts empty, and
        // the repository stays for inspection (`git log`, `fleet memory verify`).
        Some(embedded::start(args, &dir.join("memory"), stop).await?)
    } else {
        None
    };
    let mut targets: Vec<Target> = match &fleet {
        Some(f) => f.targets()?.to_vec(),
        None => {
            let targets = target::resolve(&args.targets, args.timeout).await?;
            if targets.is_empty() {
                bail!("the targets name no server (an admin API with an empty fleet?)");
            }
            targets.to_vec()
        }
    };
    if !args.tools.is_empty() {
        let chosen = Arc::new(mix::Mix::from_choices(&args.tools));
        for t in &mut targets {
            t.mix = chosen.clone();
        }
    }
    let capacity_bound_ms = args
        .capacity_p99
        .or_else(|| claims::latency_bound_ms(claim_specs))
        .unwrap_or(DEFAULT_CAPACITY_P99_MS);
    let measured = measure_all(args, &mut targets, fleet.as_ref(), capacity_bound_ms, stop).await;
    let facts = match fleet {
        Some(f) => Some(f.stop().await),
        None => None,
    };
    let mut m = measured?;
    let facts = facts.map(|f| FleetFacts {
        open_connections_max: m.server_connections_max,
        ..f
    });
    let config = config(args, &targets, &m.health);
    let claims = claims::evaluate(
        claim_specs,
        &claims::Evidence {
            config: &config,
            fleet: facts.as_ref(),
            health: &m.health,
            latency: m.latency.as_ref(),
            connections: m.connections.as_ref(),
            capacity: m.capacity.as_ref(),
            sync: m.sync.as_ref(),
            chaos: m.chaos.as_ref(),
        },
    );
    m.interrupted |= m.health.interrupted;
    Ok(RunFile {
        schema_version: runfile::SCHEMA_VERSION,
        tool: runfile::Tool {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        started_at: runfile::utc_timestamp(started_at).0,
        finished_at: runfile::utc_timestamp(SystemTime::now()).0,
        interrupted: m.interrupted,
        config,
        environment: Environment::detect(fd_limit),
        fleet: facts,
        health: m.health,
        latency: m.latency,
        connections: m.connections,
        capacity: m.capacity,
        sync: m.sync,
        chaos: m.chaos,
        claims,
    })
}

/// Everything the scenarios measured.
struct Measured {
    health: measure::HealthSweep,
    latency: Option<runfile::Results>,
    connections: Option<runfile::ConnectionsResult>,
    capacity: Option<runfile::CapacityResult>,
    sync: Option<runfile::SyncResult>,
    chaos: Option<runfile::ChaosResult>,
    interrupted: bool,
    server_connections_max: Option<u64>,
}

/// The health sweep (always: it also finds each server's protocol era), then the scenarios
/// asked for, in order, until one is interrupted.
async fn measure_all(
    args: &Args,
    targets: &mut [Target],
    fleet: Option<&embedded::Embedded>,
    capacity_bound_ms: f64,
    stop: &CancellationToken,
) -> anyhow::Result<Measured> {
    eprintln!(
        "health: one tools/list to each of {} servers (protocol {})",
        targets.len(),
        args.protocol.name()
    );
    let health = measure::sweep(targets, args.timeout, args.protocol, stop).await?;
    let eras: Vec<String> = health
        .protocols
        .iter()
        .map(|(era, n)| format!("{n} in {era}"))
        .collect();
    eprintln!(
        "health: {}/{} answered in {:.2} s ({})",
        health.ok,
        health.servers,
        health.seconds,
        eras.join(", ")
    );
    if fleet.is_none() && !health.failures.is_empty() {
        let failed: Vec<String> = health
            .failures
            .iter()
            .map(|f| format!("{} ({}: {})", f.url, f.error.name(), f.error.describe()))
            .collect();
        bail!(
            "target(s) did not answer an MCP tools/list (is it an MCP streamable-HTTP endpoint, \
             and does --protocol match?): {}",
            failed.join(", ")
        );
    }
    if fleet.is_none() && args.tools.is_empty() {
        eprintln!(
            "the targets' tools are unknown: the load uses only tools/list (choose calls with \
             --tool NAME[:JSON])"
        );
    }
    let cx = scenario::Context {
        args,
        targets: targets.to_vec().into(),
        fleet,
        stop,
    };
    let mut m = Measured {
        interrupted: health.interrupted,
        health,
        latency: None,
        connections: None,
        capacity: None,
        sync: None,
        chaos: None,
        server_connections_max: None,
    };
    let max_server = |r: &runfile::Results| r.connections.iter().filter_map(|c| c.server).max();
    for choice in args.scenario_list() {
        if stop.is_cancelled() {
            m.interrupted = true;
            break;
        }
        match choice {
            ScenarioChoice::Health | ScenarioChoice::All => {}
            ScenarioChoice::Latency => {
                let (r, interrupted) = scenario::latency(&cx).await?;
                m.server_connections_max = m.server_connections_max.max(max_server(&r));
                m.interrupted |= interrupted;
                m.latency = Some(r);
            }
            ScenarioChoice::Connections => {
                let (r, interrupted) = scenario::connections(&cx).await?;
                m.server_connections_max = m.server_connections_max.max(max_server(&r.results));
                m.interrupted |= interrupted;
                m.connections = Some(r);
            }
            ScenarioChoice::Capacity => {
                let start = m
                    .latency
                    .as_ref()
                    .map(|l| (l.throughput_rps / 2.0).round())
                    .filter(|r| *r >= 1.0)
                    .unwrap_or(500.0);
                let (r, interrupted) = scenario::capacity(
                    &cx,
                    Duration::from_secs_f64(capacity_bound_ms / 1e3),
                    start,
                )
                .await?;
                m.interrupted |= interrupted;
                m.capacity = Some(r);
            }
            ScenarioChoice::Sync => {
                let (r, interrupted) = scenario::sync(&cx).await?;
                m.interrupted |= interrupted;
                m.sync = Some(r);
            }
            ScenarioChoice::Chaos => {
                if let Some((r, interrupted)) = scenario::chaos(&cx).await? {
                    m.interrupted |= interrupted;
                    m.chaos = Some(r);
                }
            }
        }
    }
    Ok(m)
}

fn config(args: &Args, targets: &[Target], health: &measure::HealthSweep) -> Config {
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
    let eras: BTreeSet<&str> = health.protocols.keys().map(String::as_str).collect();
    Config {
        mode: if args.targets.is_empty() {
            "embedded"
        } else {
            "targets"
        }
        .into(),
        servers: targets.len(),
        scenarios: args
            .scenario_list()
            .iter()
            .map(|s| s.name().to_string())
            .collect(),
        users: args.users as usize,
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        timeout_s: args.timeout.as_secs_f64(),
        ephemeral_ports: args.ephemeral_ports,
        targets: args.targets.iter().map(|u| u.to_string()).collect(),
        protocol: args.protocol.name().into(),
        protocol_version: eras.into_iter().collect::<Vec<_>>().join(", "),
        load_model: scenario::load_model(scenario::latency_pacing(args), args.users as usize),
        mix,
    }
}

/// What the binary prints at the end: headline numbers, the verdict table, the paths.
pub fn summary(outcome: &RunOutcome) -> String {
    let run = &outcome.run;
    let mut lines = String::new();
    if run.interrupted {
        lines.push_str("INTERRUPTED: partial results\n");
    }
    let headline = |name: &str, r: &runfile::Results| {
        let l = &r.latency_us;
        format!(
            "{name}: {} requests in {:.1} s ({:.0} req/s), {} errors; latency mean {}, p50 {}, \
             p99 {}, max {}\n",
            r.requests,
            r.measured_s,
            r.throughput_rps,
            r.requests - r.ok,
            fmt_micros(l.mean.round() as u64),
            fmt_micros(l.p50),
            fmt_micros(l.p99),
            fmt_micros(l.max),
        )
    };
    lines.push_str(&format!(
        "health: {}/{} servers answered\n",
        run.health.ok, run.health.servers
    ));
    if let Some(r) = &run.latency {
        lines.push_str(&headline("latency", r));
    }
    if let Some(c) = &run.connections {
        lines.push_str(&format!(
            "connections: {} asked, {} held (client side {}, servers {})\n",
            c.asked,
            c.held().map_or("?".into(), |n| n.to_string()),
            c.held_min_client.map_or("?".into(), |n| n.to_string()),
            c.held_min_server.map_or("-".into(), |n| n.to_string()),
        ));
        lines.push_str(&headline("  under them", &c.results));
    }
    if let Some(c) = &run.capacity {
        lines.push_str(&format!(
            "capacity: {} with p99 <= {} ({} steps)\n",
            c.best_rps
                .map_or("no rate passed".into(), |r| format!("{r:.0} req/s")),
            fmt_micros(c.p99_bound_us),
            c.steps.len()
        ));
    }
    if let Some(s) = &run.sync {
        lines.push_str(&format!("sync: {}\n", s.reason));
    }
    if let Some(c) = &run.chaos {
        let (slowest, never) = c.recovery();
        let n = c.recoverable().count();
        lines.push_str(&format!(
            "chaos: {} faults; {} requests, {} errors; {}/{n} servers healthy again{}\n",
            c.faults.len(),
            c.results.requests,
            c.results.requests - c.results.ok,
            n - never,
            slowest.map_or(String::new(), |ms| format!(" (slowest {ms} ms)")),
        ));
    }
    format!(
        "{lines}\n{}\nrun file: {}\nreport: {}\n{}",
        claims::text_table(&outcome.run.claims),
        outcome.run_file.display(),
        outcome.report.display(),
        outcome
            .index
            .as_ref()
            .map_or(String::new(), |i| format!("all runs: {}\n", i.display())),
    )
}
