//! The latency scenario: --users users over all targets with the tool mix, closed loop or open
//! model (--rate).

use crate::{attack::Phase, runfile::Results, verbosity::progress};

use super::context::{Context, latency_pacing, load_model, shard_share};

/// The latency scenario: --users users over all targets with the tool mix, closed loop or
/// open model (--rate).
pub async fn run(cx: &Context<'_>) -> anyhow::Result<(Results, bool)> {
    let mut phase = Phase {
        pacing: latency_pacing(cx.args),
        ..cx.phase_base("latency")
    };
    shard_share(&mut phase, cx.args.shard);
    progress!(
        "latency: {} users, {:.0} s ramp-up + {:.0} s warm-up + {:.0} s measured; {}",
        phase.users,
        phase.ramp_up.as_secs_f64(),
        phase.warmup.as_secs_f64(),
        phase.duration.as_secs_f64(),
        load_model(phase.pacing, phase.users)
    );
    cx.run_phase(&phase).await
}
