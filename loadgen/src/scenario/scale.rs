//! The scale step: the embedded fleet, which starts at its default size (500), is grown to
//! `--scale-to` servers (1000) through its admin API, `POST /groups/{group}/scale` per group,
//! the same request `fleet scale` sends, proportionally over the groups (346/154 -> 692/308).
//! It then times the wait until every server is healthy, reads the fleet's memory at both
//! sizes, and sweeps every server (one `tools/list` each, the health sweep's call), so a claim
//! about a fleet larger than the default ("scalable to 1000+") is judged in every default run
//! on servers that joined a running fleet. The new servers take the ports the fleet gives
//! servers beyond a group's range (kernel-chosen), so they never collide with the default
//! fleet's fixed ranges or with another fleet. Servers of `--target`s belong to someone else:
//! the step does not run for them and says why.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use fleet::proc_memory::{pss_bytes, rss_bytes};

use crate::{
    embedded::Embedded,
    measure,
    runfile::{FleetMemory, ScaleFigures, ScaleGroup, ScaleResult},
    scenario::{admin::Admin, context::Context},
    verbosity::progress,
};

/// How long the step waits for every server to be healthy after the scale requests.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// How often the wait looks at the fleet's health (the time to healthy is this precise).
const POLL: Duration = Duration::from_millis(5);

/// The scale step; gives its section of the run file and whether it was interrupted.
pub async fn run(cx: &Context<'_>) -> anyhow::Result<(ScaleResult, bool)> {
    let Some(f) = cx.fleet else {
        return Ok(skipped(
            "the servers are --target servers, whose fleet loadgen did not start and cannot \
             scale; a run without --target grows its embedded fleet"
                .into(),
        ));
    };
    let to = cx.args.scale_to as usize;
    let before = group_sizes(f);
    let from: usize = before.iter().map(|(_, n)| *n as usize).sum();
    if from >= to {
        return Ok(skipped(format!(
            "the fleet already has {from} servers (--scale-to {to}): nothing to grow; the \
             health sweep measured them all"
        )));
    }
    // A size the fleet refuses (a group over its limit) is said, not the end of the run.
    let groups = match proportional(f, &before, cx.args.scale_to) {
        Ok(groups) => groups,
        Err(e) => return Ok(skipped(format!("{e:#}"))),
    };
    let memory_before = memory(f);
    let admin = Admin::new(f.admin_url()?, f.fleet.admin_token().clone())?;
    let plan: Vec<String> = groups
        .iter()
        .map(|g| format!("{} {} -> {}", g.group, g.from, g.to))
        .collect();
    progress!(
        "scale: growing the fleet from {from} to {to} servers through its admin API ({})",
        plan.join(", ")
    );
    let started = Instant::now();
    for g in groups.iter().filter(|g| g.to != g.from) {
        if let Err(e) = admin.scale(&g.group, g.to).await {
            return Ok(skipped(format!("the scale request failed: {e:#}")));
        }
    }
    let request_ms = started.elapsed().as_secs_f64() * 1e3;
    let (healthy, all_at, interrupted) = wait_healthy(f, to, started, cx).await;
    match all_at {
        Some(s) => progress!("scale: {healthy}/{to} healthy {s:.2} s after the request"),
        None => eprintln!(
            "scale: only {healthy}/{to} servers healthy {:.0} s after the request",
            started.elapsed().as_secs_f64()
        ),
    }
    let mut targets = f.targets()?.to_vec();
    let sweep = measure::sweep(&mut targets, &cx.settings, cx.args.protocol, cx.stop).await?;
    progress!(
        "scale: {}/{} answered the sweep in {:.2} s",
        sweep.ok,
        sweep.servers,
        sweep.seconds
    );
    let memory_after = memory(f);
    let reason = format!(
        "{}/{} servers answered after growing from {from} to {to}{}",
        sweep.ok,
        sweep.servers,
        all_at.map_or_else(
            || format!(
                "; {healthy}/{to} healthy when loadgen stopped waiting after {:.0} s",
                WAIT_LIMIT.as_secs_f64()
            ),
            |s| format!("; all healthy {s:.2} s after the scale request")
        )
    );
    let interrupted = interrupted || sweep.interrupted;
    let figures = ScaleFigures {
        isolation: f.fleet.spec().isolation.name().to_string(),
        from_servers: from,
        to_servers: to,
        groups,
        request_ms,
        healthy_s: all_at,
        healthy,
        wait_limit_s: WAIT_LIMIT.as_secs_f64(),
        memory_before,
        memory_after,
        sweep,
    };
    let result = ScaleResult {
        ran: true,
        reason,
        figures: Some(figures),
    };
    Ok((result, interrupted))
}

/// The step's section when it did not run, with the reason said once on stderr too.
fn skipped(reason: String) -> (ScaleResult, bool) {
    eprintln!("scale: skipped: {reason}");
    let result = ScaleResult {
        ran: false,
        reason,
        figures: None,
    };
    (result, false)
}

/// Each group's servers now, in the spec's order.
fn group_sizes(f: &Embedded) -> Vec<(String, u32)> {
    let entries = f.fleet.registry().entries();
    f.fleet
        .spec()
        .groups
        .iter()
        .map(|g| {
            let n = entries
                .iter()
                .filter(|e| e.identity.group == g.name)
                .count();
            (g.name.clone(), n as u32)
        })
        .collect()
}

/// The groups' sizes at `total` servers, in proportion to their sizes now (the rounding
/// `--servers N` applies to the default fleet).
fn proportional(
    f: &Embedded,
    now: &[(String, u32)],
    total: u32,
) -> anyhow::Result<Vec<ScaleGroup>> {
    // Ports play no part in the arithmetic; without them the fixed ranges are not checked.
    let mut spec = f.fleet.spec().clone().with_ephemeral_ports();
    for g in &mut spec.groups {
        g.count = now
            .iter()
            .find(|(name, _)| *name == g.name)
            .map_or(0, |n| n.1);
    }
    spec.groups.retain(|g| g.count > 0);
    let grown = spec
        .scaled_to(total)
        .with_context(|| format!("--scale-to {total}"))?;
    Ok(grown
        .groups
        .iter()
        .map(|g| ScaleGroup {
            group: g.name.clone(),
            from: now
                .iter()
                .find(|(name, _)| *name == g.name)
                .map_or(0, |n| n.1),
            to: g.count,
        })
        .collect())
}

/// Waits until `to` servers are in the fleet and healthy, the wait limit passes or the run is
/// interrupted. Gives the servers healthy then, the seconds since `started` at which all were
/// (if they were), and whether it was interrupted.
async fn wait_healthy(
    f: &Embedded,
    to: usize,
    started: Instant,
    cx: &Context<'_>,
) -> (usize, Option<f64>, bool) {
    let registry = f.fleet.registry();
    loop {
        let healthy = registry.healthy();
        if healthy >= to {
            return (healthy, Some(started.elapsed().as_secs_f64()), false);
        }
        if started.elapsed() >= WAIT_LIMIT {
            return (healthy, None, false);
        }
        tokio::select! {
            () = cx.stop.cancelled() => return (healthy, None, true),
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// The fleet's resident memory now: this process (the embedded fleet runs in it) and, in
/// process isolation, every server process.
fn memory(f: &Embedded) -> FleetMemory {
    let entries = f.fleet.registry().entries();
    let pids: Vec<u32> = entries.iter().filter_map(|e| e.view().pid).collect();
    let sum = |read: fn(u32) -> Option<u64>| -> Option<u64> {
        let found: Vec<u64> = pids.iter().filter_map(|p| read(*p)).collect();
        (!found.is_empty()).then(|| found.iter().sum())
    };
    FleetMemory {
        servers: entries.len(),
        fleet_rss_bytes: rss_bytes(std::process::id()),
        server_processes: pids.len(),
        servers_rss_bytes: sum(rss_bytes),
        servers_pss_bytes: sum(pss_bytes),
    }
}
