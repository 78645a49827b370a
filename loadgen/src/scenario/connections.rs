//! The connections scenario: many users, each on its own connection, held at a modest
//! per-connection rate while the connections are counted on both sides.

use crate::{
    attack::{Pacing, Phase},
    runfile::ConnectionsResult,
    verbosity::progress,
};

use super::context::{Context, SHORT_WARMUP, shard_share};

/// The connections scenario: --connections users, each on its own connection, opened over
/// --connections-ramp-up and held for --hold at --connection-rate each. The connections are
/// counted once a second on the client side (established sockets) and, for the embedded fleet,
/// on the servers' side.
pub async fn run(cx: &Context<'_>) -> anyhow::Result<(ConnectionsResult, bool)> {
    let args = cx.args;
    let rate = args.connection_rate;
    let mut phase = Phase {
        users: args.connections as usize,
        ramp_up: args.connections_ramp_up,
        warmup: SHORT_WARMUP,
        duration: args.hold,
        pacing: Pacing::PerUser { rate },
        sockets_are_evidence: true,
        ..cx.phase_base("connections")
    };
    // A shard holds its share of the run's connections.
    shard_share(&mut phase, args.shard);
    progress!(
        "connections: opening {} connections over {:.0} s, holding them {:.0} s at {rate} req/s \
         each",
        phase.users,
        phase.ramp_up.as_secs_f64(),
        phase.duration.as_secs_f64()
    );
    let (results, interrupted) = cx.run_phase(&phase).await?;
    let [from, to] = results.window_s;
    let (held_min_client, held_min_server, samples) =
        ConnectionsResult::held_during(&results.connections, from, to);
    let result = ConnectionsResult {
        asked: phase.users,
        per_connection_rps: rate,
        held_min_client,
        held_min_server,
        samples,
        results,
    };
    progress!(
        "connections: held at least {} client / {} server connections over {} samples",
        result.held_min_client.map_or("?".into(), |n| n.to_string()),
        result.held_min_server.map_or("-".into(), |n| n.to_string()),
        result.samples
    );
    Ok((result, interrupted))
}
