//! A run from its servers to its run file: start the embedded fleet (or resolve `--target`s),
//! measure, stop the fleet, judge the claims on what was measured, and put it all into a
//! [`RunFile`] with the run's configuration and environment.

use std::{collections::BTreeSet, path::Path, sync::Arc, time::SystemTime};

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use crate::{
    claims::{self, ClaimSpec},
    cli::Args,
    embedded, measure,
    measure::Target,
    mix, runfile,
    runfile::{Config, Environment, FleetFacts, MixShare, RunFile},
    scenario::{
        context::{latency_pacing, load_model},
        sequence::measure_all,
    },
    target,
    transport::oauth::setup as oauth,
    transport::tls,
};

/// The capacity search's p99 bound when neither --capacity-p99 nor a latency claim gives one:
/// the seed report's "sub-25ms".
const DEFAULT_CAPACITY_P99_MS: f64 = 25.0;

/// Measures the run `args` asks for and judges `claim_specs` on it; the embedded fleet (if
/// any) keeps its memory in `dir`. Gives the run file to write.
pub(crate) async fn measure_and_judge(
    args: &Args,
    claim_specs: &[ClaimSpec],
    started_at: SystemTime,
    fd_limit: u64,
    dir: &Path,
    stop: &CancellationToken,
) -> anyhow::Result<RunFile> {
    if let Some(shard) = args.shard {
        let others: Vec<&str> = args
            .scenario_list()
            .iter()
            .map(|s| s.name())
            .filter(|s| !matches!(*s, "health" | "latency" | "connections" | "chaos"))
            .collect();
        if !others.is_empty() {
            bail!(
                "--shard measures the health sweep and the latency, connections and chaos \
                 scenarios; leave out {} (e.g. --scenario health,latency,connections,chaos): \
                 the capacity search picks each step from the last, and the sync scenario's \
                 final check reads back its own writes, so neither splits over shards",
                others.join(", ")
            );
        }
        let connections = args
            .scenario_list()
            .contains(&crate::cli::ScenarioChoice::Connections);
        let shared = [
            ("--users", args.users, true),
            ("--connections", args.connections, connections),
        ];
        for (flag, n, _) in shared.into_iter().filter(|(_, _, used)| *used) {
            if (n as usize) < shard.count as usize {
                bail!(
                    "{flag} {n} cannot be shared by {} shards: give every shard at least one",
                    shard.count
                );
            }
        }
    }
    // Credentials are read first: a missing secret or a bad key fails before anything starts.
    let oauth = oauth::client_from_args(args)?;
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
    if let Some(oauth) = &oauth {
        // Tokens before measuring: the sweep and the load then only read them.
        let http = targets
            .iter()
            .map(|t| &t.url)
            .filter(|url| matches!(url.scheme(), "http" | "https"));
        oauth::prepare_targets(oauth, http).await?;
    }
    if !args.tools.is_empty() || !args.requests.is_empty() {
        let chosen = Arc::new(mix::Mix::from_choices(&args.tools, &args.requests));
        for t in &mut targets {
            t.mix = chosen.clone();
        }
    }
    let capacity_bound_ms = args
        .capacity_p99
        .or_else(|| claims::latency_bound_ms(claim_specs))
        .unwrap_or(DEFAULT_CAPACITY_P99_MS);
    // A `stdio:` target's processes run from before the sweep to the end of the load.
    let mut stdio = crate::transport::stdio::run::start(args, &mut targets, dir).await?;
    let measured = measure_all(
        args,
        &mut targets,
        fleet.as_ref(),
        capacity_bound_ms,
        oauth.clone(),
        stop,
    )
    .await;
    let stdio = match &mut stdio {
        Some(pool) => Some(pool.stop().await),
        None => None,
    };
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
    m.interrupted |= m.health.interrupted;
    // The first load phase is the one that waited for --start-at.
    let latency_started = [
        m.latency.as_ref(),
        m.connections.as_ref().map(|c| &c.results),
        m.chaos.as_ref().map(|c| &c.results),
    ]
    .into_iter()
    .flatten()
    .find_map(|r| r.started_unix_ms);
    let mut run = RunFile {
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
        scale: m.scale,
        auth: oauth.as_deref().and_then(oauth::facts),
        stdio,
        shard: args.shard.map(|s| runfile::ShardFacts {
            index: s.index,
            count: s.count,
            run_id: args.run_id.clone().unwrap_or_default(),
            host: host_name(),
            start_at: args.start_at.as_ref().map(|s| s.text.clone()),
            start_late_ms: start_late_ms(args, latency_started),
            clock: m.clock,
        }),
        merged_from: Vec::new(),
        claims: Vec::new(),
    };
    run.claims = claims::evaluate(claim_specs, &claims::Evidence::of(&run));
    Ok(run)
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
        load_model: load_model(latency_pacing(args), args.users as usize),
        mix,
        tls: args
            .uses_tls()
            .then(|| tls::describe_trust(args.cacert.as_ref(), args.insecure)),
    }
}

/// This machine's name, as a shard's run file records it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// How late the first load phase began against `--start-at`, in ms (never negative: a shard
/// waits for the instant).
fn start_late_ms(args: &Args, started_unix_ms: Option<u64>) -> Option<f64> {
    let at = runfile::unix_ms(args.start_at.as_ref()?.at)?;
    Some(started_unix_ms?.saturating_sub(at) as f64)
}
