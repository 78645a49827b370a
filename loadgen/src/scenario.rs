//! The scenarios: each turns the run's arguments into load phases ([`attack::Phase`]) and
//! their outcomes into a section of the run file. Claims are judged on these sections
//! ([`crate::claims`]); nothing here decides a verdict.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::{
    Args,
    attack::{self, Pacing, Phase, PhaseOutcome},
    embedded::Embedded,
    measure::Target,
    runfile::{
        CapacityResult, CapacityStep, ChaosResult, ConnectionsResult, PhaseSetup, Results,
        SyncResult,
    },
};

/// Warm-up of the connections scenario and of each capacity step.
const SHORT_WARMUP: Duration = Duration::from_secs(1);
/// Most requests in flight during a capacity step (the open model's users).
const CAPACITY_USERS: usize = 256;
/// Capacity steps at most, doubling then bisecting (a step confirmed by a second try counts
/// once).
const CAPACITY_MAX_STEPS: usize = 8;
/// The search stops when the failing rate is within this factor of the passing one.
const CAPACITY_RESOLUTION: f64 = 1.1;
/// A step whose achieved rate falls below this share of the intended one did not keep up.
const CAPACITY_MIN_ACHIEVED: f64 = 0.95;
/// Tools a server must offer for the sync scenario (the memory server's, plus ours).
pub const MEMORY_TOOLS: [&str; 3] = ["create_entities", "open_nodes", "memory_version"];

/// What every scenario needs.
pub struct Context<'a> {
    pub args: &'a Args,
    pub targets: Arc<[Target]>,
    pub fleet: Option<&'a Embedded>,
    pub stop: &'a CancellationToken,
}

impl Context<'_> {
    /// Runs one phase; gives the run file's view of it and whether it was interrupted.
    async fn run_phase(&self, phase: &Phase) -> anyhow::Result<(Results, bool)> {
        let fleet = self.fleet;
        let server_connections = move || fleet.map(Embedded::open_connections);
        let outcome = attack::run(phase.clone(), self.stop, &server_connections).await?;
        let interrupted = outcome.interrupted;
        Ok((results(phase, outcome)?, interrupted))
    }

    fn phase_base(&self, name: &str) -> Phase {
        Phase {
            name: name.into(),
            targets: self.targets.clone(),
            users: self.args.users as usize,
            ramp_up: self.args.ramp_up,
            warmup: self.args.warmup,
            duration: self.args.duration,
            timeout: self.args.timeout,
            pacing: Pacing::Closed,
            embedded: self.fleet.is_some(),
            sockets_are_evidence: false,
        }
    }
}

/// The run file's view of a phase.
fn results(phase: &Phase, outcome: PhaseOutcome) -> anyhow::Result<Results> {
    let mut r = crate::runfile::results(&outcome.recorder, outcome.measured.as_secs_f64())?;
    r.setup = PhaseSetup {
        users: phase.users,
        ramp_up_s: phase.ramp_up.as_secs_f64(),
        warmup_s: phase.warmup.as_secs_f64(),
        duration_s: phase.duration.as_secs_f64(),
        load_model: load_model(phase.pacing, phase.users),
        target_rps: match phase.pacing {
            Pacing::Closed => None,
            Pacing::Open { rate } => Some(rate),
            Pacing::PerUser { rate } => Some(rate * phase.users as f64),
        },
    };
    r.connections = outcome.connections;
    r.window_s = [outcome.window.0, outcome.window.1];
    r.cpu = outcome.cpu;
    r.engine = outcome.engine;
    Ok(r)
}

/// The load model in words, as the report shows it.
pub fn load_model(pacing: Pacing, users: usize) -> String {
    match pacing {
        Pacing::Closed => "closed loop: each user sends its next request when the previous one \
                           has completed (no coordinated-omission correction)"
            .into(),
        Pacing::Open { rate } => format!(
            "open model: {rate} req/s at fixed intended send times, at most {users} in flight; \
             latency counts from the intended time (coordinated omission corrected), \
             service_latency_us from the actual send",
        ),
        Pacing::PerUser { rate } => format!(
            "per-connection rate: each of {users} users sends {rate} req/s on its own timetable; \
             latency counts from the intended time",
        ),
    }
}

/// How the latency scenario paces: the open model at --rate, else a closed loop.
pub fn latency_pacing(args: &Args) -> Pacing {
    match args.rate {
        Some(rate) => Pacing::Open { rate },
        None => Pacing::Closed,
    }
}

/// The latency scenario: --users users over all targets with the tool mix, closed loop or
/// open model (--rate).
pub async fn latency(cx: &Context<'_>) -> anyhow::Result<(Results, bool)> {
    let phase = Phase {
        pacing: latency_pacing(cx.args),
        ..cx.phase_base("latency")
    };
    eprintln!(
        "latency: {} users, {:.0} s ramp-up + {:.0} s warm-up + {:.0} s measured; {}",
        phase.users,
        phase.ramp_up.as_secs_f64(),
        phase.warmup.as_secs_f64(),
        phase.duration.as_secs_f64(),
        load_model(phase.pacing, phase.users)
    );
    cx.run_phase(&phase).await
}

/// The connections scenario: --connections users, each on its own connection, opened over
/// --connections-ramp-up and held for --hold at --connection-rate each. The connections are
/// counted once a second on the client side (established sockets) and, for the embedded fleet,
/// on the servers' side.
pub async fn connections(cx: &Context<'_>) -> anyhow::Result<(ConnectionsResult, bool)> {
    let args = cx.args;
    let rate = args.connection_rate;
    let phase = Phase {
        users: args.connections as usize,
        ramp_up: args.connections_ramp_up,
        warmup: SHORT_WARMUP,
        duration: args.hold,
        pacing: Pacing::PerUser { rate },
        sockets_are_evidence: true,
        ..cx.phase_base("connections")
    };
    eprintln!(
        "connections: opening {} connections over {:.0} s, holding them {:.0} s at {rate} req/s \
         each",
        phase.users,
        phase.ramp_up.as_secs_f64(),
        phase.duration.as_secs_f64()
    );
    let (results, interrupted) = cx.run_phase(&phase).await?;
    let [from, to] = results.window_s;
    let during: Vec<_> = results
        .connections
        .iter()
        .filter(|s| s.t >= from && s.t <= to)
        .copied()
        .collect();
    let min = |f: fn(&attack::ConnectionSample) -> Option<u64>| {
        during
            .iter()
            .map(f)
            .collect::<Option<Vec<u64>>>()?
            .into_iter()
            .min()
    };
    let result = ConnectionsResult {
        asked: phase.users,
        per_connection_rps: rate,
        held_min_client: min(|s| s.client),
        held_min_server: min(|s| s.server),
        samples: during.len(),
        results,
    };
    eprintln!(
        "connections: held at least {} client / {} server connections over {} samples",
        result.held_min_client.map_or("?".into(), |n| n.to_string()),
        result.held_min_server.map_or("-".into(), |n| n.to_string()),
        result.samples
    );
    Ok((result, interrupted))
}

/// The capacity scenario: open-model steps of --capacity-step each, doubling from `start` until
/// a step fails, then bisecting; a step passes with no error, p99 within `p99_bound` and the
/// intended rate achieved. A step that failed on latency or rate alone is run a second time
/// and fails only if that fails too.
pub async fn capacity(
    cx: &Context<'_>,
    p99_bound: Duration,
    start: f64,
) -> anyhow::Result<(CapacityResult, bool)> {
    let bound_us = u64::try_from(p99_bound.as_micros()).unwrap_or(u64::MAX);
    eprintln!(
        "capacity: searching the highest rate with p99 <= {} and no errors ({} s steps)",
        crate::fmt_micros(bound_us),
        cx.args.capacity_step.as_secs_f64()
    );
    let (mut pass, mut fail): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = start.max(1.0);
    let mut steps = Vec::new();
    let mut interrupted = false;
    while steps.len() < CAPACITY_MAX_STEPS && !cx.stop.is_cancelled() {
        let phase = Phase {
            users: CAPACITY_USERS,
            ramp_up: Duration::ZERO,
            warmup: SHORT_WARMUP,
            duration: cx.args.capacity_step,
            pacing: Pacing::Open { rate },
            ..cx.phase_base(&format!("capacity {rate:.0}/s"))
        };
        let (mut results, stopped) = cx.run_phase(&phase).await?;
        interrupted |= stopped;
        let (mut passed, mut reason) = judge_step(&results, rate, bound_us);
        if !passed && results.ok == results.requests && !cx.stop.is_cancelled() {
            // Only p99 (or the rate) missed: a transient stall of this shared machine can do
            // that, so a failure counts only if it repeats.
            eprintln!("capacity: {rate:.0} req/s missed ({reason}); running it again to confirm");
            let stopped;
            (results, stopped) = cx.run_phase(&phase).await?;
            interrupted |= stopped;
            (passed, reason) = judge_step(&results, rate, bound_us);
            reason = format!("{reason} (second try)");
        }
        eprintln!(
            "capacity: {rate:.0} req/s {}: {reason}",
            if passed { "passed" } else { "failed" }
        );
        steps.push(CapacityStep {
            rate,
            passed,
            reason,
            results,
        });
        if passed {
            pass = Some(pass.map_or(rate, |p: f64| p.max(rate)));
        } else {
            fail = Some(fail.map_or(rate, |f: f64| f.min(rate)));
        }
        rate = match (pass, fail) {
            (Some(_), None) => rate * 2.0,
            (None, Some(f)) => f / 2.0,
            (Some(p), Some(f)) if f / p > CAPACITY_RESOLUTION => (p * f).sqrt(),
            _ => break,
        };
        if rate < 1.0 {
            break;
        }
    }
    if let Some(best) = pass {
        eprintln!("capacity: {best:.0} req/s is the highest rate that passed");
    }
    Ok((
        CapacityResult {
            p99_bound_us: bound_us,
            best_rps: pass,
            steps,
        },
        interrupted,
    ))
}

/// The chaos scenario (see [`crate::chaos`]): open-model load at --chaos-rate for
/// --chaos-time, through the gateway when the fleet has one, while the --chaos faults are
/// injected. `None` (with a line saying why) when there is no admin API to inject them
/// through. Gives whether it was interrupted.
pub async fn chaos(cx: &Context<'_>) -> anyhow::Result<Option<(ChaosResult, bool)>> {
    use crate::chaos;
    let args = cx.args;
    let (admin_url, targets, backends_url) = match cx.fleet {
        Some(f) => {
            let (targets, backends) = match f.gateway_target()? {
                Some((t, b)) => (Arc::from(vec![t]), Some(b)),
                None => (cx.targets.clone(), None),
            };
            (f.admin_url()?, targets, backends)
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
            (admin, cx.targets.clone(), backends)
        }
    };
    let admin = Arc::new(chaos::Admin::new(admin_url.clone())?);
    let view = admin.servers().await?;
    let backends_url = match backends_url {
        Some(u) if admin.gateway_backends(&u).await.is_some() => Some(u),
        _ => None,
    };
    let servers: Vec<String> = view.servers.iter().map(|s| s.id.clone()).collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let planned = chaos::plan(&args.chaos, &servers, args.chaos_time, seed)
        .map_err(|e| anyhow::anyhow!("--chaos: {e}"))?;
    let specs: Vec<String> = args.chaos.iter().map(ToString::to_string).collect();
    let load_target = match &*targets {
        [one] => one.url.to_string(),
        many => format!("{} targets", many.len()),
    };
    let phase = Phase {
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
    eprintln!(
        "chaos: {} faults ({}) among {} servers over the first {:.0} s; load {} req/s to {} \
         for {:.0} s",
        planned.len(),
        specs.join(", "),
        servers.len(),
        args.chaos_time.as_secs_f64() * chaos::INJECT_WITHIN,
        args.chaos_rate,
        load_target,
        args.chaos_time.as_secs_f64()
    );
    let window_start = std::time::Instant::now() + SHORT_WARMUP;
    let injector = tokio::spawn(chaos::inject(
        admin.clone(),
        planned,
        window_start,
        cx.stop.clone(),
    ));
    let ran = cx.run_phase(&phase).await;
    // Whatever happened to the load, the injector lifts its pauses before it ends.
    let injected = injector.await.context("the chaos injector failed")?;
    let (results, interrupted) = ran?;
    eprintln!("chaos: load done; waiting for faulted servers to be healthy again");
    let (faults, waited) = chaos::collect(
        &admin,
        &injected,
        backends_url.as_ref(),
        chaos::RECOVERY_WAIT,
    )
    .await;
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
    eprintln!(
        "chaos: {:.3} % of {} requests succeeded; {} of {} servers healthy again{}",
        r.success_percent().unwrap_or(0.0),
        r.requests,
        result.recoverable().count() - never,
        result.recoverable().count(),
        slowest.map_or(String::new(), |ms| format!(", the slowest after {ms} ms")),
    );
    Ok(Some((result, interrupted)))
}

/// Whether a capacity step passed, and why in words.
fn judge_step(r: &Results, rate: f64, bound_us: u64) -> (bool, String) {
    let errors = r.requests - r.ok;
    let achieved = r.throughput_rps;
    let p99 = r.latency_us.p99;
    let facts = format!(
        "achieved {achieved:.0} req/s, p99 {}, {errors} errors",
        crate::fmt_micros(p99)
    );
    if r.ok == 0 {
        (false, format!("no request succeeded ({facts})"))
    } else if errors > 0 {
        (false, format!("errors ({facts})"))
    } else if p99 > bound_us {
        (false, format!("p99 above the bound ({facts})"))
    } else if achieved < rate * CAPACITY_MIN_ACHIEVED {
        (false, format!("did not keep up with the rate ({facts})"))
    } else {
        (true, facts)
    }
}

/// The sync scenario (see [`crate::sync`]): memory writes on one server read with
/// `minVersion` on another, then a check that no acknowledged write is missing. Against
/// servers without the memory tools it says why it did not run. Gives whether it was
/// interrupted.
pub async fn sync(cx: &Context<'_>) -> anyhow::Result<(SyncResult, bool)> {
    crate::sync::run(cx).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use super::*;
    use crate::{mcp::ErrorClass, recorder::Recorder};

    fn step(latencies_ms: &[u64], errors: u64, seconds: f64) -> Results {
        let mut r = Recorder::default();
        for ms in latencies_ms {
            r.record(0, Duration::from_millis(*ms), Ok(()));
        }
        for _ in 0..errors {
            r.record(0, Duration::from_millis(1), Err(ErrorClass::Timeout));
        }
        crate::runfile::results(&r, seconds).unwrap()
    }

    #[test]
    fn capacity_steps_are_judged_on_errors_p99_and_achieved_rate() {
        let fast = vec![5; 100];
        assert!(judge_step(&step(&fast, 0, 1.0), 100.0, 25_000).0);
        let (ok, why) = judge_step(&step(&fast, 1, 1.0), 100.0, 25_000);
        assert!(!ok && why.starts_with("errors"), "{why}");
        let slow = vec![30; 100];
        let (ok, why) = judge_step(&step(&slow, 0, 1.0), 100.0, 25_000);
        assert!(!ok && why.starts_with("p99"), "{why}");
        let (ok, why) = judge_step(&step(&fast, 0, 1.0), 200.0, 25_000);
        assert!(!ok && why.starts_with("did not keep up"), "{why}");
        assert!(!judge_step(&step(&[], 0, 1.0), 100.0, 25_000).0);
    }
}
