//! What every scenario shares: the run's [`Context`], running one load phase
//! ([`attack::Phase`]) and turning its outcome into the run file's [`Results`], and the load
//! model in words.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{
    attack::{self, Pacing, Phase, PhaseOutcome},
    cli::Args,
    embedded::Embedded,
    measure::Target,
    runfile::{PhaseSetup, Results},
    transport::settings::HttpSettings,
};

/// Warm-up of the connections scenario and of each capacity step.
pub(crate) const SHORT_WARMUP: Duration = Duration::from_secs(1);

/// What every scenario needs.
pub struct Context<'a> {
    pub args: &'a Args,
    pub targets: Arc<[Target]>,
    /// What every HTTP request carries, built once from the arguments.
    pub settings: Arc<HttpSettings>,
    pub fleet: Option<&'a Embedded>,
    pub stop: &'a CancellationToken,
}

impl Context<'_> {
    /// Runs one phase; gives the run file's view of it and whether it was interrupted.
    pub(crate) async fn run_phase(&self, phase: &Phase) -> anyhow::Result<(Results, bool)> {
        let fleet = self.fleet;
        let server_connections = move || fleet.map(Embedded::open_connections);
        let outcome = attack::run(phase.clone(), self.stop, &server_connections).await?;
        let interrupted = outcome.interrupted;
        Ok((results(phase, outcome)?, interrupted))
    }

    pub(crate) fn phase_base(&self, name: &str) -> Phase {
        Phase {
            name: name.into(),
            targets: self.targets.clone(),
            users: self.args.users as usize,
            ramp_up: self.args.ramp_up,
            warmup: self.args.warmup,
            duration: self.args.duration,
            settings: self.settings.clone(),
            pacing: Pacing::Closed,
            open_offset: Duration::ZERO,
            embedded: self.fleet.is_some(),
            sockets_are_evidence: false,
        }
    }
}

/// This shard's part of `phase` in a sharded run (none otherwise): its share of the users
/// (at least one), and in the open model its share of the rate, its send times offset by
/// (I-1)/R so that the N shards together keep the schedule of one generator at R.
pub(crate) fn shard_share(phase: &mut Phase, shard: Option<crate::cli::Shard>) {
    let Some(shard) = shard else {
        return;
    };
    phase.users = shard.share(phase.users).max(1);
    if let Pacing::Open { rate } = phase.pacing {
        phase.pacing = Pacing::Open {
            rate: rate / f64::from(shard.count),
        };
        phase.open_offset = Duration::from_secs_f64(f64::from(shard.index - 1) / rate);
    }
}

/// The run file's view of a phase.
fn results(phase: &Phase, outcome: PhaseOutcome) -> anyhow::Result<Results> {
    let mut r = crate::results::of(&outcome.recorder, outcome.measured.as_secs_f64())?;
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
    r.started_unix_ms = crate::runfile::unix_ms(outcome.started_at);
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
