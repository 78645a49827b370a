//! The held-connections scenario of a sharded run: each shard held its share of the
//! connections, so the run held their sum. The connections held over the window are the fewest
//! of the per-second sums (seconds every shard sampled, wholly inside the merged window), as one
//! generator's would be.

use super::{MergeError, ShardRun, phase};
use crate::run::{ConnectionsResult, Results};

pub(super) fn merge(
    shards: &[&ShardRun],
    parts: &[(&str, &Results)],
) -> Result<ConnectionsResult, MergeError> {
    let each: Vec<&ConnectionsResult> = shards
        .iter()
        .filter_map(|s| s.run.connections.as_ref())
        .collect();
    let first = each[0];
    if let Some((s, c)) = shards
        .iter()
        .zip(&each)
        .find(|(_, c)| c.per_connection_rps != first.per_connection_rps)
    {
        return Err(MergeError::DifferentConfig {
            file: s.name.clone(),
            first: shards[0].name.clone(),
            field: "connections.per_connection_rps",
            found: c.per_connection_rps.to_string(),
            expected: first.per_connection_rps.to_string(),
        });
    }
    let results = phase::merge_results(parts)?;
    // Seconds wholly inside the merged window: the merged samples sit on whole seconds.
    let [from, to] = results.window_s;
    let (held_min_client, held_min_server, samples) =
        ConnectionsResult::held_during(&results.connections, from.ceil(), to.floor());
    Ok(ConnectionsResult {
        asked: each.iter().map(|c| c.asked).sum(),
        per_connection_rps: first.per_connection_rps,
        held_min_client,
        held_min_server,
        samples,
        results,
    })
}
