//! The `sync` scenario: memory writes on one server, read back on another with `minVersion`,
//! then a check that no acknowledged write is missing.
//!
//! # What it does
//! 1. **Preparation** (not measured). One `tools/list` to every target: the servers offering
//!    the memory tools ([`MEMORY_TOOLS`]: the memory server's `create_entities` and
//!    `open_nodes`, plus `memory_version`) take part, the others are left out and counted.
//!    Each taking part gets one connection (and, in the 2025-11-25 era, a session), opened by
//!    a `memory_version` call whose answer must carry a version. None left: the scenario does
//!    not run and says why (not an error).
//! 2. **Load** (open model). `--sync-rate` writes per second, write *n* intended at
//!    `start + n / rate`, for a 1 s warm-up and then `--sync-time` measured seconds, at most
//!    [`USERS`] in flight (plain tokio tasks; goose adds nothing to three calls in sequence).
//!    A user stays busy for the write, the read and the baseline read, so the pool is large
//!    enough that the generator's own limit does not show in the ack latency at the rates
//!    this scenario is for.
//!    Write *n*: a random server A and a random server B ≠ A (B = A when there is only one
//!    server, which the run file says). On A, `create_entities` of one entity
//!    `sync-<tag>-<n>` of type `sync-probe` with one observation (the writer and the send
//!    time); its result carries the version N the write created. Then on B,
//!    `open_nodes{names:[name], minVersion:N, timeoutMs}`: B waits until its view has reached
//!    N and answers. Then, on B again, the same `open_nodes` without `minVersion` (the
//!    baseline read). Connections come from a pool per server shared by all users (one
//!    opened per server beforehand, more only when calls to one server overlap), so the run
//!    holds about one connection per server rather than users × servers.
//! 3. **Final check** (after the load). Every acknowledged probe, warm-up ones included, is
//!    read back with `open_nodes` (200 names a call) and `minVersion` = the highest
//!    acknowledged version, on up to 5 servers: one of every target group, the rest at
//!    random. A failed read is tried once more.
//! 4. **History** (servers offering `memory_history`): 20 probes spread over the run are
//!    looked up on random servers; commits follow acknowledgements, so each is retried every
//!    50 ms for up to 5 s in all.
//! 5. **Clean-up**, for `--target` servers offering `delete_entities`: the probes (acknowledged
//!    or not) are deleted on the first checked server (whose view has seen them all), so a
//!    measured fleet's memory is left as it was, but for its history. Nothing is measured
//!    after it. The embedded fleet's memory belongs to the run (it lives in the run folder),
//!    so its probes stay there for inspection (`git log`, `fleet memory verify`).
//!
//! # The figures
//! - **ack latency** (`ack_us`): from the write's intended send time to its acknowledgement
//!   (the whole JSON-RPC response) arriving: coordinated omission corrected, so a stalled
//!   server delays every write scheduled behind it. `ack_service_us` is the call alone.
//! - **write-to-visible lag** (`lag_us`): from A's acknowledgement arriving to B's answer to
//!   the `minVersion` read arriving with the entity in it. It includes that read's round trip;
//!   the **baseline read** (`baseline_read_us`) is the same read of an already visible entity
//!   on the same server and connection, so lag minus baseline approximates what waiting for
//!   the version cost.
//! - **visibility failures**: acknowledged writes of the window that B did not show: the wait
//!   timed out (`wait_timeout`, the server's "timed out waiting for version" tool error), B
//!   answered without the entity (`missing`), the ack carried no version (`unversioned`), or
//!   the read failed (`read_<error class>`).
//! - **failed writes** by error class: writes not acknowledged. They are reported, never
//!   "lost": a write that timed out may or may not have been applied.
//! - **lost**: acknowledged writes missing on at least one server of the final check. With a
//!   read of the check failing twice the check is incomplete, and a verdict of "no loss" is
//!   not given.
//!
//! Latencies go into HdrHistograms in microseconds (1 µs to 60 s, 3 significant digits),
//! summarised and serialised into the run file, with p50/p99 of each second.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    attack::{SplitMix64, lock},
    conn::Conn,
    fmt_micros,
    mcp::{self, Channel, ErrorClass, Protocol},
    measure::Target,
    recorder::{MAX_LATENCY_US, new_histogram},
    runfile::{
        EncodedHistogram, LatencySummary, SyncCheck, SyncCleanup, SyncFigures, SyncHistograms,
        SyncHistory, SyncResult, SyncSecond,
    },
    scenario::{Context, MEMORY_TOOLS},
    target::TargetSpec,
};

/// Most writes in flight: the open model's users (as the capacity scenario's).
const USERS: usize = 256;
/// Writes before the measured window: checked for loss, not in the latencies.
const WARMUP: Duration = Duration::from_secs(1);
/// How long before its due time a user wakes (tokio's timer lands up to ~2 ms late; see
/// `attack::EARLY_WAKE`). A write sent early counts its service time, never less.
const EARLY_WAKE: Duration = Duration::from_millis(2);
/// Calls in flight during preparation and clean-up.
const PREP_CONCURRENCY: usize = 32;
/// `timeoutMs` of a `minVersion` read during the load (at most half the request timeout).
const VISIBLE_WAIT: Duration = Duration::from_secs(2);
/// Servers the final check reads every probe on (more when there are more groups).
const CHECK_SERVERS: usize = 5;
/// Names per `open_nodes` (and `delete_entities`) call of the check and clean-up.
const CHECK_CHUNK: usize = 200;
/// `timeoutMs` of a check read (at most half the request timeout).
const CHECK_WAIT: Duration = Duration::from_secs(5);
/// Probes looked up in the history.
const HISTORY_SAMPLE: usize = 20;
/// How long the history check waits for commits, in all.
const HISTORY_WAIT: Duration = Duration::from_secs(5);
const HISTORY_RETRY: Duration = Duration::from_millis(50);
/// Lost probes named in the run file.
const LOST_EXAMPLES: usize = 10;
/// The type of every probe entity.
pub const PROBE_TYPE: &str = "sync-probe";

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
    let users = USERS;
    let visible_wait = VISIBLE_WAIT.min(args.timeout / 2);
    let tag = run_tag();
    eprintln!(
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
            "the same server (only one server)"
        } else {
            "another"
        }
    );
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let shared = Arc::new(Shared {
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
    load(&shared, users).await?;
    let cpu_after = crate::cpu::CpuSample::now();
    let end = Instant::now().min(shared.deadline);
    let interrupted = cx.stop.is_cancelled() && end < shared.deadline;
    let measured = end.saturating_duration_since(measure_from);
    let tally = std::mem::take(&mut *lock(&shared.tally));
    let cpu = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => Some(before.until(&after, tally.calls, cx.fleet.is_some())),
        _ => None,
    };
    let pool = &shared.pool;
    let mut rng = SplitMix64(start.elapsed().as_nanos() as u64);
    let check = if interrupted {
        SyncCheck {
            skipped: Some("the run was interrupted".into()),
            ..SyncCheck::default()
        }
    } else {
        final_check(
            pool,
            &shared.tag,
            &tally.acked_probes,
            &mut rng,
            args.timeout,
        )
        .await
    };
    let history = if interrupted || history_servers.is_empty() || tally.acked_probes.is_empty() {
        None
    } else {
        Some(history_check(pool, &shared.tag, &tally.acked_probes, &history_servers).await)
    };
    let cleanup = match check.servers.first() {
        Some(checked) if !interrupted && !delete_servers.is_empty() && cx.fleet.is_none() => {
            let at = pool
                .targets
                .iter()
                .position(|t| &t.id == checked)
                .filter(|i| delete_servers.contains(i))
                .unwrap_or(delete_servers[0]);
            Some(clean_up(pool, &shared.tag, &tally, at).await)
        }
        _ => None,
    };
    pool.close_all().await;
    let figures = figures(FiguresInput {
        tally,
        shared: &shared,
        isolation,
        left_out,
        users,
        visible_wait,
        measured,
        check,
        history,
        cleanup,
        cpu,
    })?;
    let reason = summary(&figures);
    eprintln!("sync: {reason}");
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

/// Everything ready for the load.
struct Prepared {
    pool: Pool,
    /// Targets not taking part.
    left_out: usize,
    /// Indexes (into the pool) of the servers offering `memory_history` / `delete_entities`.
    history_servers: Vec<usize>,
    delete_servers: Vec<usize>,
}

/// Finds the servers offering the memory tools and opens a connection to each with a
/// `memory_version` call; or says why the scenario cannot run.
async fn prepare(cx: &Context<'_>) -> Result<Prepared, String> {
    let timeout = cx.args.timeout;
    let listed: Vec<(usize, Result<Vec<String>, ErrorClass>)> =
        futures::stream::iter(cx.targets.iter().enumerate())
            .map(|(i, t)| async move {
                let names = match Conn::new(&t.url, timeout) {
                    Ok(mut conn) => mcp::tool_names(&mut conn, t.protocol).await,
                    Err(class) => Err(class),
                };
                (i, names)
            })
            .buffer_unordered(PREP_CONCURRENCY)
            .take_until(cx.stop.cancelled())
            .collect()
            .await;
    let mut offering = Vec::new();
    let mut lacking: Option<(usize, Vec<&str>)> = None;
    let mut unlisted: Option<(usize, ErrorClass)> = None;
    for (i, names) in &listed {
        match names {
            Ok(names) => {
                let missing: Vec<&str> = MEMORY_TOOLS
                    .iter()
                    .copied()
                    .filter(|t| !names.iter().any(|n| n == t))
                    .collect();
                if missing.is_empty() {
                    let has = |tool: &str| names.iter().any(|n| n == tool);
                    offering.push((*i, has("memory_history"), has("delete_entities")));
                } else if lacking.as_ref().is_none_or(|(j, _)| i < j) {
                    lacking = Some((*i, missing));
                }
            }
            Err(class) => {
                if unlisted.as_ref().is_none_or(|(j, _)| i < j) {
                    unlisted = Some((*i, *class));
                }
            }
        }
    }
    offering.sort_unstable();
    if offering.is_empty() {
        let all = cx.targets.len();
        let prefix = if all > 1 {
            format!("none of the {all} targets offers the memory tools: ")
        } else {
            String::new()
        };
        return Err(match (lacking, unlisted) {
            (Some((i, missing)), _) => format!(
                "{prefix}the target {} lacks the memory tools ({} missing): the sync scenario \
                 needs servers with a shared memory (the memory server's tools plus \
                 memory_version and minVersion reads)",
                cx.targets[i].url,
                missing.join(", ")
            ),
            (None, Some((i, class))) => format!(
                "{prefix}could not list the tools of {} ({}: {})",
                cx.targets[i].url,
                class.name(),
                class.describe()
            ),
            (None, None) => "interrupted before the servers' tools were listed".into(),
        });
    }
    // One connection per server, opened by a call that shows the server keeps the contract.
    let ready: Vec<(usize, bool, bool, Result<Client, String>)> = futures::stream::iter(offering)
        .map(|(i, history, delete)| async move {
            let t = &cx.targets[i];
            let client = match Client::new(t, timeout) {
                Err(class) => Err(class.name().to_string()),
                Ok(mut c) => {
                    let answer = c.call("memory_version", json!({})).await;
                    match answer.outcome {
                        Ok(r) if payload(&r).and_then(|p| version_of(&p)).is_some() => Ok(c),
                        Ok(_) => Err("memory_version answered without a version".into()),
                        Err(f) => Err(format!("memory_version failed: {}", f.describe())),
                    }
                }
            };
            (i, history, delete, client)
        })
        .buffer_unordered(PREP_CONCURRENCY)
        .take_until(cx.stop.cancelled())
        .collect()
        .await;
    let mut ready = ready;
    ready.sort_by_key(|r| r.0);
    let mut targets = Vec::new();
    let mut idle = Vec::new();
    let (mut history_servers, mut delete_servers) = (Vec::new(), Vec::new());
    let mut refused = None;
    for (i, history, delete, client) in ready {
        match client {
            Ok(c) => {
                if history {
                    history_servers.push(targets.len());
                }
                if delete {
                    delete_servers.push(targets.len());
                }
                targets.push(cx.targets[i].clone());
                idle.push(Mutex::new(vec![c]));
            }
            Err(why) => {
                if refused.is_none() {
                    refused = Some(format!("{}: {why}", cx.targets[i].url));
                }
            }
        }
    }
    if targets.is_empty() {
        return Err(format!(
            "no server offering the memory tools answered memory_version (e.g. {})",
            refused.unwrap_or_else(|| "interrupted".into())
        ));
    }
    Ok(Prepared {
        left_out: cx.targets.len() - targets.len(),
        pool: Pool {
            targets,
            idle,
            timeout,
            opened: AtomicU64::new(0),
        },
        history_servers,
        delete_servers,
    })
}

/// The isolation mode of the fleet measured, where known: the embedded fleet's, or what the
/// admin APIs among the targets report.
async fn isolation(cx: &Context<'_>) -> Option<String> {
    if let Some(embedded) = cx.fleet {
        return Some(embedded.fleet.spec().isolation.name().to_string());
    }
    let client = reqwest::Client::builder()
        .timeout(cx.args.timeout)
        .no_proxy()
        .build()
        .ok()?;
    let mut seen = Vec::new();
    for spec in &cx.args.targets {
        if let TargetSpec::Admin(admin) = spec
            && let Ok(url) = admin.join("servers")
            && let Ok(response) = client.get(url).send().await
            && let Ok(view) = response.json::<fleet::FleetView>().await
            && !seen.contains(&view.isolation.name())
        {
            seen.push(view.isolation.name());
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop().map(String::from),
        _ => Some(seen.join("+")),
    }
}

/// Runs the users until the end of the window (or the stop), printing a line a second.
async fn load(shared: &Arc<Shared>, users: usize) -> anyhow::Result<()> {
    let workers: Vec<_> = (0..users)
        .map(|w| tokio::spawn(user(shared.clone(), w as u64)))
        .collect();
    let all = futures::future::join_all(workers);
    tokio::pin!(all);
    let second = Duration::from_secs(1);
    let mut ticker = tokio::time::interval_at((shared.start + second).into(), second);
    let live =
        std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("CI").is_none();
    let mut last = 0;
    let joined = loop {
        tokio::select! {
            joined = &mut all => break joined,
            _ = ticker.tick() => {
                let (line, done) = progress_line(shared, last);
                last = done;
                if live {
                    eprint!("\r\x1b[2K{}", line.trim_start());
                } else {
                    eprintln!("{line}");
                }
            }
        }
    };
    if live {
        eprintln!();
    }
    for j in joined {
        j.map_err(|e| anyhow::anyhow!("a user of the sync scenario failed: {e}"))?;
    }
    Ok(())
}

/// One user: takes the next write of the timetable, waits until it is due, makes it.
async fn user(s: Arc<Shared>, w: u64) {
    let mut rng =
        SplitMix64(w.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ s.start.elapsed().as_nanos() as u64);
    loop {
        let k = s.next.fetch_add(1, Ordering::Relaxed);
        let due = s.start + Duration::from_secs_f64(k as f64 / s.rate);
        if due >= s.deadline || s.stop.is_cancelled() {
            return;
        }
        if let Some(wake) = due.checked_sub(EARLY_WAKE)
            && wake > Instant::now()
        {
            tokio::select! {
                biased;
                () = s.stop.cancelled() => return,
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        s.write(k, due, &mut rng).await;
    }
}

/// What the users share.
struct Shared {
    pool: Pool,
    tag: String,
    rate: f64,
    start: Instant,
    /// Writes due before this are warm-up.
    measure_from: Instant,
    /// No write is due at or after this.
    deadline: Instant,
    wait_ms: u64,
    stop: CancellationToken,
    /// The next write of the timetable.
    next: AtomicU64,
    tally: Mutex<Tally>,
}

impl Shared {
    /// Write `k`, due at `due`: create on A, read with `minVersion` on B, baseline read on B.
    async fn write(&self, k: u64, due: Instant, rng: &mut SplitMix64) {
        let n = self.pool.len();
        let a = rng.below(n);
        let b = if n == 1 {
            a
        } else {
            let x = rng.below(n - 1);
            if x >= a { x + 1 } else { x }
        };
        let slot = due
            .checked_duration_since(self.measure_from)
            .map(|d| d.as_secs() as usize);
        let name = probe_name(&self.tag, k);
        let unix_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let writer = &self.pool.targets[a].id;
        let args = json!({"entities": [{
            "name": name,
            "entityType": PROBE_TYPE,
            "observations": [format!("written on {writer} at unix ms {unix_ms}")],
        }]});
        let wrote = self.pool.call(a, "create_entities", args).await;
        let result = match wrote.outcome {
            Ok(result) => result,
            Err(f) => {
                lock(&self.tally).write_failed(k, slot, f.class);
                return;
            }
        };
        let version = payload(&result).and_then(|p| version_of(&p));
        let acked_at_us = payload(&result).and_then(|p| p.get("ackedAtUs").and_then(Value::as_u64));
        let ack = wrote
            .done_at
            .saturating_duration_since(due)
            .max(wrote.elapsed);
        lock(&self.tally).acked(
            Probe {
                k,
                version,
                writer: a,
            },
            slot,
            ack,
            wrote.elapsed,
        );
        let Some(version) = version else {
            lock(&self.tally).not_visible(slot, "unversioned".into());
            return;
        };
        let mut client = match self.pool.take(b) {
            Ok(c) => c,
            Err(class) => {
                lock(&self.tally).not_visible(slot, Seen::ReadFailed(class).kind());
                return;
            }
        };
        let read = client
            .call(
                "open_nodes",
                json!({"names": [name], "minVersion": version, "timeoutMs": self.wait_ms}),
            )
            .await;
        match seen(&read.outcome, &name) {
            Seen::Visible => {
                let lag = read.done_at.saturating_duration_since(wrote.done_at);
                // The servers' own clocks, where they report them: A's ack to B's view holding
                // the version, with no read's round trip in it.
                let visible_at_us = read.outcome.as_ref().ok().and_then(|r| {
                    payload(r).and_then(|p| p.get("visibleAtUs").and_then(Value::as_u64))
                });
                let server_lag = acked_at_us
                    .zip(visible_at_us)
                    .map(|(acked, visible)| Duration::from_micros(visible.saturating_sub(acked)));
                let base = client.call("open_nodes", json!({"names": [name]})).await;
                let base = (seen(&base.outcome, &name) == Seen::Visible).then_some(base.elapsed);
                lock(&self.tally).visible(slot, lag, server_lag, base);
            }
            other => lock(&self.tally).not_visible(slot, other.kind()),
        }
        self.pool.give(b, client);
    }
}

/// The progress line of the second that just ended, and the writes done so far.
fn progress_line(s: &Shared, last: u64) -> (String, u64) {
    let t = s.start.elapsed().as_secs_f64();
    let tally = lock(&s.tally);
    let done = tally.done;
    let rate = done - last;
    if Instant::now() < s.measure_from + Duration::from_millis(500) {
        return (
            format!("  sync {t:>4.0} s  warm-up  {rate:>6} writes/s"),
            done,
        );
    }
    let at = |h: &Histogram<u64>, q| {
        if h.is_empty() {
            "-".to_string()
        } else {
            fmt_micros(h.value_at_quantile(q))
        }
    };
    let failed: u64 = tally.failed.values().sum();
    let invisible: u64 = tally.visibility_failures.values().sum();
    (
        format!(
            "  sync {t:>4.0} s  {rate:>6} writes/s  ack p50 {} p99 {}  lag p50 {} p99 {}  \
             failed {failed}  not visible {invisible}",
            at(&tally.ack, 0.5),
            at(&tally.ack, 0.99),
            at(&tally.lag, 0.5),
            at(&tally.lag, 0.99),
        ),
        done,
    )
}

/// Reads every acknowledged probe back on up to [`CHECK_SERVERS`] servers (one of each group
/// first), with `minVersion` the highest acknowledged version.
async fn final_check(
    pool: &Pool,
    tag: &str,
    probes: &[Probe],
    rng: &mut SplitMix64,
    timeout: Duration,
) -> SyncCheck {
    if probes.is_empty() {
        return SyncCheck {
            skipped: Some("no write was acknowledged".into()),
            ..SyncCheck::default()
        };
    }
    let started = Instant::now();
    let min_version = probes.iter().filter_map(|p| p.version).max().unwrap_or(0);
    let wait_ms = millis(CHECK_WAIT.min(timeout / 2));
    let servers = check_servers(&pool.targets, rng);
    let names: Vec<String> = probes.iter().map(|p| probe_name(tag, p.k)).collect();
    let per_server = futures::future::join_all(servers.iter().map(|&i| {
        let names = &names;
        async move {
            let mut outcome = ServerCheck::default();
            for chunk in names.chunks(CHECK_CHUNK) {
                let args = json!({"names": chunk, "minVersion": min_version, "timeoutMs": wait_ms});
                let mut found = None;
                for _try in 0..2 {
                    let answer = pool.call(i, "open_nodes", args.clone()).await;
                    if let Some(listed) = answer.outcome.ok().as_ref().and_then(listed_names) {
                        found = Some(listed);
                        break;
                    }
                }
                match found {
                    None => outcome.read_errors += 1,
                    Some(listed) => {
                        let (missing, duplicates) = compare(chunk, &listed);
                        outcome.missing.extend(missing);
                        outcome.duplicates += duplicates;
                    }
                }
            }
            (i, outcome)
        }
    }))
    .await;
    let mut lost: Vec<String> = Vec::new();
    let mut seen_lost = HashSet::new();
    let mut check = SyncCheck {
        skipped: None,
        servers: servers
            .iter()
            .map(|&i| pool.targets[i].id.clone())
            .collect(),
        min_version,
        acked: probes.len() as u64,
        complete: true,
        ..SyncCheck::default()
    };
    for (i, outcome) in per_server {
        check.read_errors += outcome.read_errors;
        check.duplicates += outcome.duplicates;
        if !outcome.missing.is_empty() {
            check
                .missing_by_server
                .insert(pool.targets[i].id.clone(), outcome.missing.len() as u64);
        }
        for name in outcome.missing {
            if seen_lost.insert(name.clone()) {
                lost.push(name);
            }
        }
    }
    check.complete = check.read_errors == 0;
    check.lost = lost.len() as u64;
    lost.sort_unstable();
    lost.truncate(LOST_EXAMPLES);
    check.lost_examples = lost;
    check.seconds = started.elapsed().as_secs_f64();
    check
}

/// What one server's part of the check found.
#[derive(Default)]
struct ServerCheck {
    missing: Vec<String>,
    duplicates: u64,
    read_errors: u64,
}

/// The servers of the final check: one of each group (in random order), then random others
/// up to [`CHECK_SERVERS`]; indexes into `targets`.
fn check_servers(targets: &[Target], rng: &mut SplitMix64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut picked = Vec::new();
    let mut groups = HashSet::new();
    for &i in &order {
        if groups.insert(targets[i].group.as_str()) {
            picked.push(i);
        }
    }
    for &i in &order {
        if picked.len() >= CHECK_SERVERS {
            break;
        }
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked
}

/// The names of `wanted` absent from `listed`, and how many of `wanted` are listed twice or
/// more.
fn compare(wanted: &[String], listed: &[String]) -> (Vec<String>, u64) {
    let mut count: HashMap<&str, u64> = HashMap::new();
    for name in listed {
        *count.entry(name.as_str()).or_default() += 1;
    }
    let missing = wanted
        .iter()
        .filter(|n| !count.contains_key(n.as_str()))
        .cloned()
        .collect();
    let duplicates = wanted
        .iter()
        .filter(|n| count.get(n.as_str()).is_some_and(|c| *c > 1))
        .count() as u64;
    (missing, duplicates)
}

/// Looks up a sample of probes with `memory_history` on random servers offering it, each
/// retried until the history shows its write (or [`HISTORY_WAIT`] has passed in all).
async fn history_check(
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

enum HistoryOutcome {
    Found { attributed: bool },
    NotFound,
    Error,
}

/// Deletes every probe written (acknowledged or not) on server `at`.
async fn clean_up(pool: &Pool, tag: &str, tally: &Tally, at: usize) -> SyncCleanup {
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

/// What the figures are made of.
struct FiguresInput<'a> {
    tally: Tally,
    shared: &'a Shared,
    isolation: Option<String>,
    left_out: usize,
    users: usize,
    visible_wait: Duration,
    measured: Duration,
    check: SyncCheck,
    history: Option<SyncHistory>,
    cleanup: Option<SyncCleanup>,
    cpu: Option<crate::cpu::CpuUse>,
}

fn figures(i: FiguresInput<'_>) -> anyhow::Result<SyncFigures> {
    let FiguresInput {
        mut tally,
        shared,
        isolation,
        left_out,
        users,
        visible_wait,
        measured,
        check,
        history,
        cleanup,
        cpu,
    } = i;
    let measured_s = measured.as_secs_f64();
    let seconds = measured_s.ceil() as usize;
    if tally.seconds.len() < seconds {
        tally.seconds.resize_with(seconds, SecondTally::default);
    }
    let encoded = EncodedHistogram::of::<u64>;
    let quantile = |h: &Histogram<u32>, q| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        }
    };
    Ok(SyncFigures {
        tag: shared.tag.clone(),
        isolation,
        servers: shared.pool.len(),
        servers_left_out: left_out,
        same_server: shared.pool.len() == 1,
        rate_wps: shared.rate,
        users,
        warmup_s: WARMUP.as_secs_f64(),
        duration_s: shared
            .deadline
            .duration_since(shared.measure_from)
            .as_secs_f64(),
        measured_s,
        achieved_wps: if measured_s > 0.0 {
            tally.writes as f64 / measured_s
        } else {
            0.0
        },
        visible_wait_ms: millis(visible_wait),
        writes: tally.writes,
        acked: tally.acked,
        failed: ErrorClass::ALL
            .iter()
            .map(|c| (*c, tally.failed.get(c).copied().unwrap_or(0)))
            .collect(),
        warmup_writes: tally.warmup_writes,
        warmup_acked: tally.warmup_acked,
        visible: tally.visible,
        visibility_failures: tally.visibility_failures.clone(),
        ack_us: LatencySummary::of(&tally.ack),
        ack_service_us: LatencySummary::of(&tally.ack_service),
        lag_us: LatencySummary::of(&tally.lag),
        server_lag_us: (!tally.server_lag.is_empty())
            .then(|| LatencySummary::of(&tally.server_lag)),
        server_lag_unknown: tally.server_lag_unknown,
        baseline_read_us: LatencySummary::of(&tally.baseline),
        baseline_failures: tally.baseline_failures,
        histograms: SyncHistograms {
            ack: encoded(&tally.ack)?,
            lag: encoded(&tally.lag)?,
            baseline_read: encoded(&tally.baseline)?,
            server_lag: if tally.server_lag.is_empty() {
                None
            } else {
                Some(encoded(&tally.server_lag)?)
            },
        },
        per_second: tally
            .seconds
            .iter()
            .map(|s| SyncSecond {
                writes: s.writes,
                acked: s.acked,
                visibility_failures: s.visibility_failures,
                ack_p50_us: quantile(&s.ack, 0.5),
                ack_p99_us: quantile(&s.ack, 0.99),
                lag_p50_us: quantile(&s.lag, 0.5),
                lag_p99_us: quantile(&s.lag, 0.99),
            })
            .collect(),
        connections_opened: shared.pool.opened.load(Ordering::Relaxed),
        check,
        history,
        cleanup,
        cpu,
    })
}

/// The outcome in one line, for the summary and the run file's `reason`.
pub fn summary(f: &SyncFigures) -> String {
    let failed: u64 = f.failed.values().sum();
    let invisible: u64 = f.visibility_failures.values().sum();
    let server = f.server_lag_us.map_or(String::new(), |l| {
        format!(
            "; by the servers' clocks p50 {} p99 {}",
            fmt_micros(l.p50),
            fmt_micros(l.p99)
        )
    });
    let check = &f.check;
    let lost = match &check.skipped {
        Some(why) => format!("final check skipped ({why})"),
        None if check.lost > 0 => format!(
            "LOST {} of {} acknowledged writes (read back on {} servers)",
            check.lost,
            check.acked,
            check.servers.len()
        ),
        None if !check.complete => format!(
            "final check incomplete ({} reads failed; none missing among the rest)",
            check.read_errors
        ),
        None => format!(
            "no loss: all {} acknowledged writes on each of {} servers",
            check.acked,
            check.servers.len()
        ),
    };
    format!(
        "{} writes in {:.1} s ({:.0}/s), {} acknowledged, {failed} failed; ack p50 {} p99 {}; \
         write-to-visible lag p50 {} p99 {} (baseline read p50 {} p99 {}){server}, {invisible} \
         not visible; {lost}",
        f.writes,
        f.measured_s,
        f.achieved_wps,
        f.acked,
        fmt_micros(f.ack_us.p50),
        fmt_micros(f.ack_us.p99),
        fmt_micros(f.lag_us.p50),
        fmt_micros(f.lag_us.p99),
        fmt_micros(f.baseline_read_us.p50),
        fmt_micros(f.baseline_read_us.p99),
    )
}

/// What the load recorded (behind one lock: a few thousand writes a second do not contend).
struct Tally {
    ack: Histogram<u64>,
    ack_service: Histogram<u64>,
    lag: Histogram<u64>,
    /// Lag by the servers' clocks (see [`SyncFigures::server_lag_us`]).
    server_lag: Histogram<u64>,
    /// Visible writes whose servers did not report both clocks.
    server_lag_unknown: u64,
    baseline: Histogram<u64>,
    seconds: Vec<SecondTally>,
    /// Writes finished, warm-up included (for the progress line).
    done: u64,
    /// Calls made (for CPU per call).
    calls: u64,
    writes: u64,
    acked: u64,
    failed: BTreeMap<ErrorClass, u64>,
    warmup_writes: u64,
    warmup_acked: u64,
    visible: u64,
    visibility_failures: BTreeMap<String, u64>,
    baseline_failures: u64,
    /// Every acknowledged write, warm-up included.
    acked_probes: Vec<Probe>,
    /// Every write not acknowledged (for the clean-up).
    failed_probes: Vec<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            ack: new_histogram(),
            ack_service: new_histogram(),
            lag: new_histogram(),
            server_lag: new_histogram(),
            server_lag_unknown: 0,
            baseline: new_histogram(),
            seconds: Vec::new(),
            done: 0,
            calls: 0,
            writes: 0,
            acked: 0,
            failed: BTreeMap::new(),
            warmup_writes: 0,
            warmup_acked: 0,
            visible: 0,
            visibility_failures: BTreeMap::new(),
            baseline_failures: 0,
            acked_probes: Vec::new(),
            failed_probes: Vec::new(),
        }
    }
}

/// One second of the window.
struct SecondTally {
    writes: u64,
    acked: u64,
    visibility_failures: u64,
    ack: Histogram<u32>,
    lag: Histogram<u32>,
}

impl Default for SecondTally {
    fn default() -> Self {
        let h = || {
            Histogram::new_with_bounds(1, MAX_LATENCY_US, 2)
                .expect("constant histogram bounds are valid")
        };
        Self {
            writes: 0,
            acked: 0,
            visibility_failures: 0,
            ack: h(),
            lag: h(),
        }
    }
}

/// An acknowledged write.
#[derive(Debug, Clone, Copy)]
struct Probe {
    k: u64,
    /// The version its ack carried.
    version: Option<u64>,
    /// The pool index of the server that took it.
    writer: usize,
}

impl Tally {
    /// This second's tally (`slot` is `None` for the warm-up).
    fn second(&mut self, slot: usize) -> &mut SecondTally {
        if self.seconds.len() <= slot {
            self.seconds.resize_with(slot + 1, SecondTally::default);
        }
        &mut self.seconds[slot]
    }

    fn write_failed(&mut self, k: u64, slot: Option<usize>, class: ErrorClass) {
        self.done += 1;
        self.calls += 1;
        self.failed_probes.push(k);
        match slot {
            None => self.warmup_writes += 1,
            Some(s) => {
                self.writes += 1;
                *self.failed.entry(class).or_default() += 1;
                self.second(s).writes += 1;
            }
        }
    }

    fn acked(&mut self, probe: Probe, slot: Option<usize>, ack: Duration, service: Duration) {
        self.done += 1;
        self.calls += 1;
        self.acked_probes.push(probe);
        match slot {
            None => {
                self.warmup_writes += 1;
                self.warmup_acked += 1;
            }
            Some(s) => {
                self.writes += 1;
                self.acked += 1;
                self.ack.saturating_record(micros(ack));
                self.ack_service.saturating_record(micros(service));
                let second = self.second(s);
                second.writes += 1;
                second.acked += 1;
                second.ack.saturating_record(micros(ack));
            }
        }
    }

    fn visible(
        &mut self,
        slot: Option<usize>,
        lag: Duration,
        server_lag: Option<Duration>,
        baseline: Option<Duration>,
    ) {
        self.calls += 2;
        let Some(s) = slot else { return };
        self.visible += 1;
        self.lag.saturating_record(micros(lag));
        match server_lag {
            Some(l) => self.server_lag.saturating_record(micros(l)),
            None => self.server_lag_unknown += 1,
        }
        self.second(s).lag.saturating_record(micros(lag));
        match baseline {
            Some(b) => self.baseline.saturating_record(micros(b)),
            None => self.baseline_failures += 1,
        }
    }

    fn not_visible(&mut self, slot: Option<usize>, kind: String) {
        self.calls += 1;
        let Some(s) = slot else { return };
        *self.visibility_failures.entry(kind).or_default() += 1;
        self.second(s).visibility_failures += 1;
    }
}

/// Connections to the servers taking part, shared by all users: each server has a stack of
/// idle clients; a call takes one (or opens a new one when all are busy) and gives it back.
struct Pool {
    targets: Vec<Target>,
    idle: Vec<Mutex<Vec<Client>>>,
    timeout: Duration,
    /// Clients opened after the preparation.
    opened: AtomicU64,
}

impl Pool {
    fn len(&self) -> usize {
        self.targets.len()
    }

    fn take(&self, i: usize) -> Result<Client, ErrorClass> {
        if let Some(c) = lock(&self.idle[i]).pop() {
            return Ok(c);
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Client::new(&self.targets[i], self.timeout)
    }

    fn give(&self, i: usize, client: Client) {
        lock(&self.idle[i]).push(client);
    }

    /// One call on a client of server `i`.
    async fn call(&self, i: usize, tool: &str, arguments: Value) -> Answer {
        match self.take(i) {
            Ok(mut c) => {
                let answer = c.call(tool, arguments).await;
                self.give(i, c);
                answer
            }
            Err(class) => Answer {
                elapsed: Duration::ZERO,
                done_at: Instant::now(),
                outcome: Err(class.into()),
            },
        }
    }

    /// Closes every session (DELETE), as a well-behaved client does.
    async fn close_all(&self) {
        let clients: Vec<Client> = self
            .idle
            .iter()
            .flat_map(|idle| std::mem::take(&mut *lock(idle)))
            .collect();
        futures::stream::iter(clients)
            .for_each_concurrent(PREP_CONCURRENCY, Client::close)
            .await;
    }
}

/// One connection to one server, with its session in the 2025-11-25 era.
struct Client {
    conn: Conn,
    protocol: Protocol,
    session: Option<String>,
    next_id: u64,
}

/// What one tool call gave.
struct Answer {
    /// From sending (opening a session included) to the end of the response body.
    elapsed: Duration,
    /// When the response was complete.
    done_at: Instant,
    /// The JSON-RPC `result`, or why there is none.
    outcome: Result<Value, Failure>,
}

/// A failed call: its class, and for a tool error the tool's text.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    class: ErrorClass,
    text: String,
}

impl From<ErrorClass> for Failure {
    fn from(class: ErrorClass) -> Self {
        Self {
            class,
            text: String::new(),
        }
    }
}

impl Failure {
    fn describe(&self) -> String {
        if self.text.is_empty() {
            self.class.name().to_string()
        } else {
            format!("{}: {}", self.class.name(), self.text)
        }
    }
}

impl Client {
    fn new(target: &Target, timeout: Duration) -> Result<Self, ErrorClass> {
        Ok(Self {
            conn: Conn::new(&target.url, timeout)?,
            protocol: target.protocol,
            session: None,
            next_id: 0,
        })
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Answer {
        let start = Instant::now();
        let outcome = self.exchange(tool, arguments).await;
        let done_at = Instant::now();
        Answer {
            elapsed: done_at.saturating_duration_since(start),
            done_at,
            outcome,
        }
    }

    async fn exchange(&mut self, tool: &str, arguments: Value) -> Result<Value, Failure> {
        if self.protocol == Protocol::Session && self.session.is_none() {
            self.session = Some(mcp::open_session(&mut self.conn).await?);
        }
        self.next_id += 1;
        let id = self.next_id;
        let call = mcp::Call::tool(tool, arguments);
        let channel = match (self.protocol, &self.session) {
            (Protocol::Session, Some(session)) => Channel::Session(session),
            (Protocol::Session, None) => return Err(ErrorClass::Protocol.into()),
            (Protocol::Stateless, _) => Channel::Stateless,
        };
        let x = mcp::post(&mut self.conn, &call, id, channel).await?;
        if x.status == 404 && self.protocol == Protocol::Session {
            // The session is gone: the next call opens another.
            self.session = None;
        }
        match std::str::from_utf8(&x.body) {
            Ok(text) => parse_reply(x.status, text, id),
            Err(_) if !(200..300).contains(&x.status) => Err(ErrorClass::HttpStatus.into()),
            Err(_) => Err(ErrorClass::Protocol.into()),
        }
    }

    async fn close(mut self) {
        if let Some(session) = self.session.take() {
            mcp::close_session(&mut self.conn, &session).await;
        }
    }
}

/// The `result` of a complete response to request `id`, or the failure's class (and, for a
/// tool error, its text).
fn parse_reply(status: u16, body: &str, id: u64) -> Result<Value, Failure> {
    let result = || {
        fleet::wire::first_jsonrpc_message(body)
            .and_then(|mut m| m.get_mut("result").map(Value::take))
    };
    match mcp::classify_response(status, body, id) {
        Ok(()) => result().ok_or_else(|| ErrorClass::Protocol.into()),
        Err(ErrorClass::ToolError) => Err(Failure {
            class: ErrorClass::ToolError,
            text: result().map(|r| content_text(&r)).unwrap_or_default(),
        }),
        Err(class) => Err(class.into()),
    }
}

/// The text contents of a tool result, joined.
fn content_text(result: &Value) -> String {
    result
        .get("content")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The JSON a memory tool answered: `structuredContent`, else the first text content that is
/// a JSON object.
fn payload(result: &Value) -> Option<Cow<'_, Value>> {
    if let Some(structured) = result.get("structuredContent").filter(|v| v.is_object()) {
        return Some(Cow::Borrowed(structured));
    }
    result
        .get("content")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .find_map(|t| {
            serde_json::from_str::<Value>(t)
                .ok()
                .filter(Value::is_object)
        })
        .map(Cow::Owned)
}

/// The `version` of a memory payload: the version a write created, or a read's view.
fn version_of(payload: &Value) -> Option<u64> {
    payload.get("version").and_then(Value::as_u64)
}

/// The entity names of a read's result; `None` if it has no `entities` list.
fn listed_names(result: &Value) -> Option<Vec<String>> {
    let p = payload(result)?;
    let entities = p.get("entities")?.as_array()?;
    Some(
        entities
            .iter()
            .filter_map(|e| e.get("name").and_then(Value::as_str).map(String::from))
            .collect(),
    )
}

/// Whether a read of `name` saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Visible,
    /// Answered, without the entity.
    Missing,
    /// The server's view did not reach `minVersion` within `timeoutMs`.
    WaitTimeout,
    ReadFailed(ErrorClass),
}

impl Seen {
    fn kind(self) -> String {
        match self {
            Seen::Visible => "visible".into(),
            Seen::Missing => "missing".into(),
            Seen::WaitTimeout => "wait_timeout".into(),
            Seen::ReadFailed(class) => format!("read_{}", class.name()),
        }
    }
}

fn seen(outcome: &Result<Value, Failure>, name: &str) -> Seen {
    match outcome {
        Ok(result) => match listed_names(result) {
            Some(names) if names.iter().any(|n| n == name) => Seen::Visible,
            Some(_) => Seen::Missing,
            None => Seen::ReadFailed(ErrorClass::Protocol),
        },
        Err(f) if f.class == ErrorClass::ToolError && f.text.contains("timed out waiting") => {
            Seen::WaitTimeout
        }
        Err(f) => Seen::ReadFailed(f.class),
    }
}

/// Whether a `memory_history` result has an entry of `version`: `Some(writing server)` if so.
fn history_entry(result: &Value, version: u64) -> Option<Option<String>> {
    let p = payload(result)?;
    p.get("entries")?
        .as_array()?
        .iter()
        .find(|e| e.get("version").and_then(Value::as_u64) == Some(version))
        .map(|e| e.get("server").and_then(Value::as_str).map(String::from))
}

/// The name of probe `k` of the run tagged `tag`.
fn probe_name(tag: &str, k: u64) -> String {
    format!("sync-{tag}-{k}")
}

/// A tag telling this run's probes from any other's: 8 hex digits of the time and process.
fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = SplitMix64(nanos ^ u64::from(std::process::id()).rotate_left(32));
    format!("{:08x}", rng.next() as u32)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A latency in whole microseconds, at least 1 (the histograms' lowest value).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Figures as a run would give them, for the tests of the claims and the report.
#[cfg(test)]
pub(crate) fn example_figures(lags_us: &[u64], invisible: u64, lost: u64) -> SyncFigures {
    let mut tally = Tally::default();
    for (k, lag) in lags_us.iter().enumerate() {
        let probe = Probe {
            k: k as u64,
            version: Some(k as u64 + 1),
            writer: 0,
        };
        tally.acked(
            probe,
            Some(0),
            Duration::from_micros(900),
            Duration::from_micros(800),
        );
        tally.visible(
            Some(0),
            Duration::from_micros(*lag),
            None,
            Some(Duration::from_micros(150)),
        );
    }
    for _ in 0..invisible {
        tally.not_visible(Some(0), "wait_timeout".into());
    }
    let encoded = |h: &Histogram<u64>| EncodedHistogram::of(h).expect("encodes");
    let acked = lags_us.len() as u64 + invisible;
    SyncFigures {
        tag: "0a1b2c3d".into(),
        isolation: Some("task".into()),
        servers: 4,
        servers_left_out: 0,
        same_server: false,
        rate_wps: 1000.0,
        users: 64,
        warmup_s: 1.0,
        duration_s: 1.0,
        measured_s: 1.0,
        achieved_wps: acked as f64,
        visible_wait_ms: 2000,
        writes: acked,
        acked,
        failed: ErrorClass::ALL.iter().map(|c| (*c, 0)).collect(),
        warmup_writes: 0,
        warmup_acked: 0,
        visible: tally.visible,
        visibility_failures: tally.visibility_failures.clone(),
        ack_us: LatencySummary::of(&tally.ack),
        ack_service_us: LatencySummary::of(&tally.ack_service),
        lag_us: LatencySummary::of(&tally.lag),
        server_lag_us: (!tally.server_lag.is_empty())
            .then(|| LatencySummary::of(&tally.server_lag)),
        server_lag_unknown: tally.server_lag_unknown,
        baseline_read_us: LatencySummary::of(&tally.baseline),
        baseline_failures: 0,
        histograms: SyncHistograms {
            ack: encoded(&tally.ack),
            lag: encoded(&tally.lag),
            baseline_read: encoded(&tally.baseline),
            server_lag: None,
        },
        per_second: vec![],
        connections_opened: 0,
        check: SyncCheck {
            skipped: None,
            servers: vec!["community-0001".into(), "security-0001".into()],
            min_version: acked,
            acked,
            complete: true,
            read_errors: 0,
            lost,
            lost_examples: (0..lost.min(3))
                .map(|k| probe_name("0a1b2c3d", k))
                .collect(),
            missing_by_server: BTreeMap::new(),
            duplicates: 0,
            seconds: 0.1,
        },
        history: None,
        cleanup: None,
        cpu: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A tool result as the fleet answers: the payload as structured content and as text.
    fn result(payload: Value) -> Value {
        json!({
            "content": [{"type": "text", "text": payload.to_string()}],
            "structuredContent": payload,
            "isError": false,
        })
    }

    fn reply(id: u64, result: Value) -> String {
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
    }

    #[test]
    fn versions_come_from_structured_content_or_text() {
        let created = json!({
            "entities": [{"name": "sync-ab-1", "entityType": "sync-probe", "observations": ["x"]}],
            "version": 42,
        });
        let r = parse_reply(200, &reply(3, result(created.clone())), 3).unwrap();
        assert_eq!(payload(&r).and_then(|p| version_of(&p)), Some(42));
        // Text content only (a server that does not send structured content).
        let text_only = json!({"content": [{"type": "text", "text": created.to_string()}]});
        assert_eq!(payload(&text_only).and_then(|p| version_of(&p)), Some(42));
        // Every write's result shape carries it.
        for payload_ in [
            json!({"relations": [{"from": "a", "to": "b", "relationType": "r"}], "version": 7}),
            json!({"results": [{"entityName": "a", "addedObservations": ["o"]}], "version": 8}),
            json!({"success": true, "message": "Entities deleted", "deleted": {}, "version": 9}),
            json!({"version": 10, "server": "community-0001"}),
        ] {
            let want = payload_["version"].as_u64();
            assert_eq!(
                payload(&result(payload_)).and_then(|p| version_of(&p)),
                want
            );
        }
        // No version, or text that is not JSON: none.
        assert_eq!(
            payload(&result(json!({"entities": []}))).and_then(|p| version_of(&p)),
            None
        );
        let prose = json!({"content": [{"type": "text", "text": "created 1 entity"}]});
        assert!(payload(&prose).is_none());
        // Over SSE as well.
        let sse = format!(
            "event: message\ndata: {}\n\n",
            reply(4, result(json!({"version": 5})))
        );
        let r = parse_reply(200, &sse, 4).unwrap();
        assert_eq!(payload(&r).and_then(|p| version_of(&p)), Some(5));
    }

    #[test]
    fn reads_show_the_entity_or_not() {
        let name = "sync-ab-7";
        let read = |entities: Value| {
            Ok(result(
                json!({"entities": entities, "relations": [], "version": 12}),
            ))
        };
        let one = json!([{"name": name, "entityType": "sync-probe", "observations": ["x"]}]);
        assert_eq!(seen(&read(one), name), Seen::Visible);
        let other = json!([{"name": "sync-ab-8", "entityType": "sync-probe", "observations": []}]);
        assert_eq!(seen(&read(other), name), Seen::Missing);
        assert_eq!(seen(&read(json!([])), name), Seen::Missing);
        // A result without an entity list breaks the contract.
        assert_eq!(
            seen(&Ok(result(json!({"version": 1}))), name),
            Seen::ReadFailed(ErrorClass::Protocol)
        );
        assert_eq!(
            listed_names(&read(json!([{"name": "a"}, {"name": "b"}, {"name": "a"}])).unwrap()),
            Some(vec!["a".into(), "b".into(), "a".into()])
        );
    }

    #[test]
    fn a_wait_timeout_is_told_from_other_failures() {
        let timed_out = json!({
            "jsonrpc": "2.0", "id": 9,
            "result": {
                "content": [{"type": "text", "text": "timed out waiting for version 120 (at 118)"}],
                "isError": true,
            },
        })
        .to_string();
        let outcome = parse_reply(200, &timed_out, 9);
        let failure = outcome.as_ref().unwrap_err();
        assert_eq!(failure.class, ErrorClass::ToolError);
        assert!(failure.text.contains("version 120"), "{failure:?}");
        assert_eq!(seen(&outcome, "x"), Seen::WaitTimeout);
        assert_eq!(Seen::WaitTimeout.kind(), "wait_timeout");

        let not_found = timed_out.replace(
            "timed out waiting for version 120 (at 118)",
            "Entity with name x not found",
        );
        let outcome = parse_reply(200, &not_found, 9);
        assert_eq!(seen(&outcome, "x"), Seen::ReadFailed(ErrorClass::ToolError));
        assert_eq!(
            Seen::ReadFailed(ErrorClass::ToolError).kind(),
            "read_tool_error"
        );

        let invalid = r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32602,"message":"minVersion: invalid type"}}"#;
        assert_eq!(
            parse_reply(200, invalid, 9).unwrap_err().class,
            ErrorClass::JsonrpcError
        );
        assert_eq!(
            parse_reply(503, "busy", 9).unwrap_err().class,
            ErrorClass::HttpStatus
        );
        assert_eq!(
            parse_reply(200, &reply(8, json!({})), 9).unwrap_err().class,
            ErrorClass::Protocol,
            "another request's answer"
        );
    }

    #[test]
    fn history_entries_are_matched_by_version() {
        let h = result(json!({
            "entityName": "sync-ab-1",
            "entries": [
                {"commit": "3f2a", "timeMs": 1, "server": "community-0003", "version": 41, "operation": "add_observations"},
                {"commit": "9c1d", "timeMs": 1, "server": "security-0001", "version": 40, "operation": "create_entities"},
            ],
        }));
        assert_eq!(history_entry(&h, 40), Some(Some("security-0001".into())));
        assert_eq!(history_entry(&h, 39), None);
        assert_eq!(history_entry(&result(json!({"entries": []})), 1), None);
    }

    #[test]
    fn the_check_finds_missing_and_duplicated_names() {
        let wanted: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let listed: Vec<String> = ["a", "c", "c", "z"].map(String::from).to_vec();
        let (missing, duplicates) = compare(&wanted, &listed);
        assert_eq!(missing, ["b"]);
        assert_eq!(duplicates, 1);
    }

    #[test]
    fn check_servers_cover_every_group() {
        let target = |i: usize, group: &str| Target {
            id: format!("{group}-{i}"),
            group: group.into(),
            url: format!("http://127.0.0.1:{}/mcp", 8000 + i)
                .parse()
                .unwrap(),
            mix: Arc::new(crate::mix::Mix::list_only()),
            protocol: Protocol::default(),
        };
        let mut targets: Vec<Target> = (0..20).map(|i| target(i, "community")).collect();
        targets.push(target(20, "security"));
        for seed in 0..50 {
            let picked = check_servers(&targets, &mut SplitMix64(seed));
            assert_eq!(picked.len(), CHECK_SERVERS);
            assert!(picked.contains(&20), "the one security server");
            let unique: HashSet<_> = picked.iter().collect();
            assert_eq!(unique.len(), picked.len());
        }
        assert_eq!(check_servers(&targets[..2], &mut SplitMix64(1)).len(), 2);
    }

    #[test]
    fn pairs_are_distinct_and_spread() {
        let mut rng = SplitMix64(7);
        let mut hits = [0u32; 4];
        for _ in 0..4000 {
            hits[rng.below(4)] += 1;
        }
        assert!(hits.iter().all(|h| (800..1200).contains(h)), "{hits:?}");
        assert_eq!(probe_name("0a1b2c3d", 12), "sync-0a1b2c3d-12");
        assert_eq!(run_tag().len(), 8);
    }
}
