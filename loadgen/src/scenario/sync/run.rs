//! The sync scenario from start to end: prepare the servers, run the write/read load, check
//! for loss (and the history), clean up, and sum it up as the run file's `sync` section.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    lock::lock,
    runfile::{SyncCheck, SyncResult},
    scenario::context::Context,
    verbosity::progress,
};

use super::{
    check::final_check,
    cleanup::clean_up,
    figures::{FiguresInput, summary},
    history::history_check,
    load::{USERS, WARMUP, WriteLoad, load},
    prepare::{Prepared, isolation, prepare},
    tally::{Tally, millis, run_tag},
};

/// `timeoutMs` of a `minVersion` read during the load (at most half the request timeout).
pub(super) const VISIBLE_WAIT: Duration = Duration::from_secs(2);
/// The same across nodes: replication publishes and merges in rounds of about a second, so
/// seconds of lag are what it is built for, not a failure.
const CROSS_NODE_WAIT: Duration = Duration::from_secs(10);
/// Across nodes each write keeps its user for about this long (the replication lag): users
/// enough for the rate over it, so the generator's own limit does not delay the writes.
const CROSS_NODE_BUSY: Duration = Duration::from_secs(4);
/// Most users across nodes.
const MAX_USERS: usize = 8192;

/// Runs the scenario; gives its result and whether it was interrupted.
pub async fn run(cx: &Context<'_>) -> anyhow::Result<(SyncResult, bool)> {
    let args = cx.args;
    let prepared = match prepare(cx).await {
        Ok(p) => p,
        Err(reason) => {
            eprintln!("sync: {reason}");
            return Ok((
                SyncResult {
                    available: false,
                    ran: false,
                    reason,
                    figures: None,
                },
                cx.stop.is_cancelled(),
            ));
        }
    };
    if cx.stop.is_cancelled() {
        prepared.pool.close_all().await;
        let reason = "interrupted before the sync scenario started".to_string();
        return Ok((
            SyncResult {
                available: true,
                ran: false,
                reason,
                figures: None,
            },
            true,
        ));
    }
    let Prepared {
        pool,
        left_out,
        history_servers,
        delete_servers,
    } = prepared;
    let isolation = isolation(cx).await;
    let n = pool.len();
    let cross_node = pool.node_count() >= 2;
    let (users, visible_wait) = if cross_node {
        let users = (args.sync_rate * CROSS_NODE_BUSY.as_secs_f64()).ceil() as usize;
        (users.clamp(USERS, MAX_USERS), CROSS_NODE_WAIT)
    } else {
        (USERS, VISIBLE_WAIT)
    };
    let visible_wait = visible_wait.min(args.timeout / 2);
    let tag = run_tag();
    progress!(
        "sync: {n} servers offer the memory tools{}{}; {} writes/s for {:.0} s after a {:.0} s \
         warm-up, at most {users} in flight; each write on a random server, read back with \
         minVersion on {} (probes sync-{tag}-N)",
        if left_out > 0 {
            format!(" ({left_out} targets left out)")
        } else {
            String::new()
        },
        isolation
            .as_deref()
            .map_or(String::new(), |i| format!(", {i} isolation")),
        args.sync_rate,
        args.sync_time.as_secs_f64(),
        WARMUP.as_secs_f64(),
        if n == 1 {
            "the same server (only one server)".to_string()
        } else if cross_node {
            format!(
                "a server of another node ({} replicating nodes)",
                pool.node_count()
            )
        } else {
            "another".to_string()
        }
    );
    let start = Instant::now();
    let started_at = std::time::SystemTime::now();
    let measure_from = start + WARMUP;
    let write_load = Arc::new(WriteLoad {
        pool,
        tag,
        rate: args.sync_rate,
        start,
        measure_from,
        deadline: measure_from + args.sync_time,
        wait_ms: millis(visible_wait),
        stop: cx.stop.clone(),
        next: AtomicU64::new(0),
        tally: Mutex::new(Tally::default()),
    });
    let cpu_before = crate::cpu::CpuSample::now();
    load(&write_load, users).await?;
    let cpu_after = crate::cpu::CpuSample::now();
    let end = Instant::now().min(write_load.deadline);
    let interrupted = cx.stop.is_cancelled() && end < write_load.deadline;
    let measured = end.saturating_duration_since(measure_from);
    let tally = std::mem::take(&mut *lock(&write_load.tally));
    let cpu = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => Some(before.until(&after, tally.calls, cx.fleet.is_some())),
        _ => None,
    };
    let pool = &write_load.pool;
    let mut rng = fastrand::Rng::with_seed(start.elapsed().as_nanos() as u64);
    let check = if interrupted {
        SyncCheck {
            skipped: Some("the run was interrupted".into()),
            ..SyncCheck::default()
        }
    } else {
        final_check(
            pool,
            &write_load.tag,
            &tally.acked_probes,
            &mut rng,
            args.timeout,
        )
        .await
    };
    let history = if interrupted || history_servers.is_empty() || tally.acked_probes.is_empty() {
        None
    } else {
        Some(history_check(pool, &write_load.tag, &tally.acked_probes, &history_servers).await)
    };
    let cleanup = match check.servers.first() {
        Some(checked) if !interrupted && !delete_servers.is_empty() && cx.fleet.is_none() => {
            let at = pool
                .targets
                .iter()
                .position(|t| &t.id == checked)
                .filter(|i| delete_servers.contains(i))
                .unwrap_or(delete_servers[0]);
            Some(clean_up(pool, &write_load.tag, &tally, at).await)
        }
        _ => None,
    };
    pool.close_all().await;
    let figures = FiguresInput {
        tally,
        tag: write_load.tag.clone(),
        servers: pool.len(),
        nodes: pool.node_count(),
        rate_wps: write_load.rate,
        duration: write_load.deadline.duration_since(write_load.measure_from),
        connections_opened: pool.opened.load(Ordering::Relaxed),
        isolation,
        left_out,
        users,
        visible_wait,
        measured,
        check,
        history,
        cleanup,
        cpu,
        started_at,
    }
    .figures()?;
    let reason = summary(&figures);
    progress!("sync: {reason}");
    Ok((
        SyncResult {
            available: true,
            ran: true,
            reason,
            figures: Some(figures),
        },
        interrupted,
    ))
}
