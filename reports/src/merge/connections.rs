//! The held-connections scenario of a sharded run: each shard held its share of the
//! connections, so the run held their sum. The connections held over the window are the fewest
//! of the per-second sums (seconds every shard sampled, inside every shard's window), as one
//! generator's would be.

use super::{MergeError, ShardRun, phase, series};
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
    let results = phase::merge_results(parts, "connections")?;
    // Seconds wholly inside every shard's window (the merged samples sit on whole seconds from
    // the earliest start): before it, a late shard may still be opening its connections.
    let (from, to) = series::common_window(parts).map_or((0.0, -1.0), |(a, b)| {
        let origin = results.started_unix_ms.unwrap_or(0) as f64;
        (
            ((a - origin) / 1000.0).ceil(),
            ((b - origin) / 1000.0).floor(),
        )
    });
    let (held_min_client, held_min_server, samples) =
        ConnectionsResult::held_during(&results.connections, from, to);
    Ok(ConnectionsResult {
        asked: each.iter().map(|c| c.asked).sum(),
        per_connection_rps: first.per_connection_rps,
        held_min_client,
        held_min_server,
        samples,
        results,
    })
}
