//! The chaos scenario from start to end: plan the faults, run the load while they are injected,
//! wait for recovery and time each fault.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;

use crate::{
    attack::{Pacing, Phase},
    mcp::Version,
    runfile::ChaosResult,
    scenario::{
        admin::Admin,
        context::{Context, SHORT_WARMUP, shard_share},
    },
    verbosity::progress,
};

use super::{
    fault::{INJECT_WITHIN, plan},
    inject::{RECOVERY_WAIT, collect, inject},
};

/// The chaos scenario: open-model load at --chaos-rate for
/// --chaos-time, through the gateway when the fleet has one, while the --chaos faults are
/// injected. `None` (with a line saying why) when there is no admin API to inject them
/// through. Gives whether it was interrupted.
pub async fn run(cx: &Context<'_>) -> anyhow::Result<Option<(ChaosResult, bool)>> {
    let args = cx.args;
    let (admin_url, token, targets, backends_url) = match cx.fleet {
        Some(f) => {
            // The era --protocol names (the gateway answers every one); `auto` is stateless.
            let version = args.protocol.version().unwrap_or(Version::V2026_07_28);
            let (targets, backends) = match f.gateway_target(version)? {
                Some((t, b)) => (Arc::from(vec![t]), Some(b)),
                None => (cx.targets.clone(), None),
            };
            let token = f.fleet.admin_token().clone();
            (f.admin_url()?, token, targets, backends)
        }
        None => {
            let Some(admin) = args.admin.clone() else {
                eprintln!(
                    "chaos: skipped: faults are injected through a fleet admin API; name it with \
                     --admin URL (e.g. http://127.0.0.1:7900 of `fleet up`)"
                );
                return Ok(None);
            };
            // A single target may be a gateway: its `/backends` tells when it reacted.
            let backends = match &*cx.targets {
                [one] => one.url.join("/backends").ok(),
                _ => None,
            };
            let token = fleet::AdminToken::read_from(&args.admin_token_file)?;
            (admin, token, cx.targets.clone(), backends)
        }
    };
    let admin = Arc::new(Admin::new(admin_url.clone(), token)?);
    let view = admin.servers().await?;
    let backends_url = match backends_url {
        Some(u) if admin.gateway_backends(&u).await.is_some() => Some(u),
        _ => None,
    };
    let servers: Vec<String> = view.servers.iter().map(|s| s.id.clone()).collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut planned = plan(&args.chaos, &servers, args.chaos_time, seed)
        .map_err(|e| anyhow::anyhow!("--chaos: {e}"))?;
    // A sharded run's faults are injected once, by shard 1; the others only send their share
    // of the load.
    if args.shard.is_some_and(|s| s.index != 1) {
        planned.clear();
    }
    let specs: Vec<String> = args.chaos.iter().map(ToString::to_string).collect();
    let load_target = match &*targets {
        [one] => one.url.to_string(),
        many => format!("{} targets", many.len()),
    };
    let mut phase = Phase {
        targets,
        users: (args.users as usize).max(64),
        ramp_up: Duration::ZERO,
        warmup: SHORT_WARMUP,
        duration: args.chaos_time,
        pacing: Pacing::Open {
            rate: args.chaos_rate,
        },
        ..cx.phase_base("chaos")
    };
    shard_share(&mut phase, args.shard);
    progress!(
        "chaos: {} faults ({}) among {} servers over the first {:.0} s; load {} req/s to {} \
         for {:.0} s",
        planned.len(),
        specs.join(", "),
        servers.len(),
        args.chaos_time.as_secs_f64() * INJECT_WITHIN,
        args.chaos_rate,
        load_target,
        args.chaos_time.as_secs_f64()
    );
    let window_start = std::time::Instant::now() + SHORT_WARMUP;
    let injector = tokio::spawn(inject(
        admin.clone(),
        planned,
        window_start,
        cx.stop.clone(),
    ));
    let ran = cx.run_phase(&phase).await;
    // Whatever happened to the load, the injector lifts its pauses before it ends.
    let injected = injector.await.context("the chaos injector failed")?;
    let (results, interrupted) = ran?;
    progress!("chaos: load done; waiting for faulted servers to be healthy again");
    let (faults, waited) = collect(&admin, &injected, backends_url.as_ref(), RECOVERY_WAIT).await;
    let result = ChaosResult {
        specs,
        load_target,
        through_gateway: backends_url.is_some(),
        isolation: Some(view.isolation.name().to_string()),
        servers: servers.len(),
        faults,
        recovery_wait_ms: waited.as_millis() as u64,
        results,
    };
    let (slowest, never) = result.recovery();
    let r = &result.results;
    progress!(
        "chaos: {:.3} % of {} requests succeeded; {} of {} servers healthy again{}",
        r.success_percent().unwrap_or(0.0),
        r.requests,
        result.recoverable().count() - never,
        result.recoverable().count(),
        slowest.map_or(String::new(), |ms| format!(", the slowest after {ms} ms")),
    );
    Ok(Some((result, interrupted)))
}
