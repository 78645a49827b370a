//! The measuring part of a run: the health sweep (always: it also finds each server's protocol
//! era), then the scenarios asked for, in their fixed order, until one is interrupted.

use std::{sync::Arc, time::Duration};

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use crate::{
    cli::{Args, ScenarioChoice},
    embedded::Embedded,
    measure::{self, HealthSweep, Target},
    runfile,
    transport::{oauth::client::OAuthClient, settings::HttpSettings},
    verbosity::progress,
};

use super::{capacity, chaos, connections, context::Context, latency, scale, sync};

/// Everything the scenarios measured.
pub(crate) struct Measured {
    pub(crate) health: HealthSweep,
    pub(crate) latency: Option<runfile::Results>,
    pub(crate) connections: Option<runfile::ConnectionsResult>,
    pub(crate) capacity: Option<runfile::CapacityResult>,
    pub(crate) sync: Option<runfile::SyncResult>,
    pub(crate) chaos: Option<runfile::ChaosResult>,
    pub(crate) scale: Option<runfile::ScaleResult>,
    pub(crate) interrupted: bool,
    pub(crate) server_connections_max: Option<u64>,
    /// A shard's clock against the servers', measured after the sweep.
    pub(crate) clock: Option<runfile::ClockOffset>,
}

/// The health sweep (always: it also finds each server's protocol era), then the scenarios
/// asked for, in order, until one is interrupted.
pub(crate) async fn measure_all(
    args: &Args,
    targets: &mut [Target],
    fleet: Option<&Embedded>,
    capacity_bound_ms: f64,
    oauth: Option<Arc<OAuthClient>>,
    stop: &CancellationToken,
) -> anyhow::Result<Measured> {
    progress!(
        "health: one tools/list to each of {} servers (protocol {})",
        targets.len(),
        args.protocol.name()
    );
    let settings = Arc::new(HttpSettings {
        auth: oauth,
        ..args.http_settings()?
    });
    let health = measure::sweep(targets, &settings, args.protocol, stop).await?;
    let eras: Vec<String> = health
        .protocols
        .iter()
        .map(|(era, n)| format!("{n} in {era}"))
        .collect();
    progress!(
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
            .map(|f| match f.status {
                Some(401) => format!(
                    "{} (HTTP status 401: it wants credentials; pass --oauth-client-id ID with \
                     --oauth-client-secret-env VAR or --oauth-private-key FILE, or -H \
                     'Authorization: Bearer TOKEN')",
                    f.url
                ),
                Some(status) => format!("{} ({}: HTTP status {status})", f.url, f.error.name()),
                None => format!("{} ({}: {})", f.url, f.error.name(), f.error.describe()),
            })
            .collect();
        bail!(
            "target(s) did not answer an MCP tools/list (is it an MCP streamable-HTTP endpoint, \
             and does --protocol match?): {}",
            failed.join(", ")
        );
    }
    if fleet.is_none() && args.tools.is_empty() && args.requests.is_empty() {
        eprintln!(
            "the targets' tools are unknown: the load uses only tools/list (choose calls with \
             --tool NAME[:JSON] or --request METHOD[:JSON])"
        );
    }
    let clock = match (args.shard, targets.first()) {
        (Some(_), Some(first)) => match crate::clock::estimate(first, &settings).await {
            Ok(c) => {
                progress!(
                    "shard: this clock is {:+.0} ms (± {:.0}) from the servers'",
                    c.offset_ms,
                    c.error_ms
                );
                Some(c)
            }
            Err(why) => {
                eprintln!("shard: clock not compared with the servers': {why}");
                None
            }
        },
        _ => None,
    };
    let cx = Context {
        args,
        targets: targets.to_vec().into(),
        settings,
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
        scale: None,
        server_connections_max: None,
        clock,
    };
    let max_server = |r: &runfile::Results| r.connections.iter().filter_map(|c| c.server).max();
    // Shards measure from one agreed instant: the first load phase starts then.
    if let Some(start) = &args.start_at {
        wait_until(start, stop).await;
    }
    for choice in args.scenario_list() {
        if stop.is_cancelled() {
            m.interrupted = true;
            break;
        }
        match choice {
            ScenarioChoice::Health | ScenarioChoice::All => {}
            ScenarioChoice::Latency => {
                let (r, interrupted) = latency::run(&cx).await?;
                m.server_connections_max = m.server_connections_max.max(max_server(&r));
                m.interrupted |= interrupted;
                m.latency = Some(r);
            }
            ScenarioChoice::Connections => {
                let (r, interrupted) = connections::run(&cx).await?;
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
                let (r, interrupted) =
                    capacity::run(&cx, Duration::from_secs_f64(capacity_bound_ms / 1e3), start)
                        .await?;
                m.interrupted |= interrupted;
                m.capacity = Some(r);
            }
            ScenarioChoice::Sync => {
                let (r, interrupted) = sync::run(&cx).await?;
                m.interrupted |= interrupted;
                m.sync = Some(r);
            }
            ScenarioChoice::Chaos => {
                if let Some((r, interrupted)) = chaos::run(&cx).await? {
                    m.interrupted |= interrupted;
                    m.chaos = Some(r);
                }
            }
            ScenarioChoice::Scale => {
                let (r, interrupted) = scale::run(&cx).await?;
                m.interrupted |= interrupted;
                m.scale = Some(r);
            }
        }
    }
    Ok(m)
}

/// Waits for `--start-at` (or Ctrl-C); a time already past is said and not waited for.
async fn wait_until(start: &crate::cli::StartAt, stop: &CancellationToken) {
    match start.at.duration_since(std::time::SystemTime::now()) {
        Ok(ahead) => {
            progress!(
                "waiting {:.1} s, until {} (--start-at), to start measuring with the other shards",
                ahead.as_secs_f64(),
                start.text
            );
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(ahead) => {}
            }
        }
        Err(past) => progress!(
            "--start-at {} was {:.1} s ago: starting now, late (the run file says by how much)",
            start.text,
            past.duration().as_secs_f64()
        ),
    }
}
