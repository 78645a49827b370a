//! The history check (servers offering `memory_history`): a sample of probes looked up on
//! random servers, each retried until its commit shows (commits follow acknowledgements).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{mcp::ErrorClass, runfile::SyncHistory};

use super::{
    memory::history_entry,
    pool::Pool,
    tally::{Probe, probe_name},
};

/// Probes looked up in the history.
pub(super) const HISTORY_SAMPLE: usize = 20;

/// How long the history check waits for commits, in all.
pub(super) const HISTORY_WAIT: Duration = Duration::from_secs(5);

pub(super) const HISTORY_RETRY: Duration = Duration::from_millis(50);

/// Looks up a sample of probes with `memory_history` on random servers offering it, each
/// retried until the history shows its write (or [`HISTORY_WAIT`] has passed in all).
pub(super) async fn history_check(
    pool: &Pool,
    tag: &str,
    probes: &[Probe],
    history_servers: &[usize],
) -> SyncHistory {
    let started = Instant::now();
    let deadline = started + HISTORY_WAIT;
    let step = (probes.len() / HISTORY_SAMPLE).max(1);
    let sample: Vec<&Probe> = probes
        .iter()
        .step_by(step)
        .filter(|p| p.version.is_some())
        .take(HISTORY_SAMPLE)
        .collect();
    let outcomes = futures::future::join_all(sample.iter().enumerate().map(|(j, p)| async move {
        let name = probe_name(tag, p.k);
        let writer = &pool.targets[p.writer].id;
        let mut attempt = 0;
        loop {
            let at = history_servers[(j + attempt) % history_servers.len()];
            attempt += 1;
            let answer = pool
                .call(
                    at,
                    "memory_history",
                    json!({"entityName": name, "limit": 20}),
                )
                .await;
            let found = match &answer.outcome {
                Ok(r) => history_entry(r, p.version.unwrap_or(0)),
                // An entity not yet committed may be unknown to the history: wait for it.
                Err(f) if f.class == ErrorClass::ToolError => None,
                Err(_) => return HistoryOutcome::Error,
            };
            if let Some(server) = found {
                return HistoryOutcome::Found {
                    attributed: server.as_deref() == Some(writer.as_str()),
                };
            }
            if Instant::now() + HISTORY_RETRY > deadline {
                return HistoryOutcome::NotFound;
            }
            tokio::time::sleep(HISTORY_RETRY).await;
        }
    }))
    .await;
    let mut h = SyncHistory {
        sampled: sample.len() as u64,
        ..SyncHistory::default()
    };
    for o in outcomes {
        match o {
            HistoryOutcome::Found { attributed } => {
                h.found += 1;
                h.attributed += u64::from(attributed);
            }
            HistoryOutcome::NotFound => {}
            HistoryOutcome::Error => h.errors += 1,
        }
    }
    h.waited_s = started.elapsed().as_secs_f64();
    h
}

pub(super) enum HistoryOutcome {
    Found { attributed: bool },
    NotFound,
    Error,
}
