//! The clean-up for `--target` servers offering `delete_entities`: the run's probes deleted, so
//! a measured fleet's memory is left as it was (but for its history).

use futures::StreamExt as _;
use serde_json::json;

use crate::runfile::SyncCleanup;

use super::{
    check::CHECK_CHUNK,
    pool::Pool,
    tally::{Tally, probe_name},
};

/// Deletes every probe written (acknowledged or not) on server `at`.
pub(super) async fn clean_up(pool: &Pool, tag: &str, tally: &Tally, at: usize) -> SyncCleanup {
    let names: Vec<String> = tally
        .acked_probes
        .iter()
        .map(|p| p.k)
        .chain(tally.failed_probes.iter().copied())
        .map(|k| probe_name(tag, k))
        .collect();
    let failed_calls = futures::stream::iter(names.chunks(CHECK_CHUNK))
        .map(|chunk| async move {
            let answer = pool
                .call(at, "delete_entities", json!({"entityNames": chunk}))
                .await;
            u64::from(answer.outcome.is_err())
        })
        .buffer_unordered(4)
        .fold(0, |a, b| async move { a + b })
        .await;
    SyncCleanup {
        requested: names.len() as u64,
        failed_calls,
    }
}
