//! One load phase, driven by goose: goose launches the users (spread over the ramp-up), keeps
//! them running for the phase and stops them. Each goose user speaks MCP in its transactions:
//! it opens its connections (and, for 2025-11-25 targets, its sessions) in the on-start
//! transaction, makes one call per iteration and deletes its sessions in the on-stop
//! transaction.
//!
//! Timing is ours, not goose's: goose times a request to its response headers, while an MCP
//! call is done when the matching JSON-RPC response has arrived, so every call is timed to the
//! end of its body and recorded into hdrhistogram ([`Recorder`]), and handed to goose with
//! `record_custom_request_duration`, whose request counts are kept as a cross-check
//! ([`EngineFacts`]). Calls go over each user's own lean connections ([`Conn`]) rather than
//! goose's reqwest client, which costs twice the CPU per request.
//!
//! Clock of a phase: users start over `ramp_up`, then `warmup` (requests started then are not
//! recorded), then `duration` (recorded). Goose's run time is whole seconds, so a fractional
//! phase idles to the next whole second before goose stops the users.

use std::{
    collections::HashSet,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use goose::{
    config::GooseConfiguration,
    goose::{GooseUser, Scenario, Transaction, TransactionResult},
    prelude::{GooseAttack, GooseDefault, GooseDefaultType as _},
};
use tokio_util::sync::CancellationToken;

use crate::{
    mcp::{Channel, ErrorClass, Protocol, Sent},
    measure::Target,
    recorder::Recorder,
    transport::{conn::Conn, http},
};

/// Most recorder shards: users share them, so memory does not grow with the user count.
const MAX_SHARDS: usize = 16;
/// How long before a request's due time its user wakes. Tokio's timer rounds a deadline up to
/// its next millisecond tick and sleeps in whole milliseconds, so a wake lands up to about 2 ms
/// after the deadline asked for (measured: with 1 ms, 40 % of sends at 1k req/s were still late).
const EARLY_WAKE: Duration = Duration::from_millis(2);
/// How often a user that is past the end of the phase looks again whether goose stopped it.
const IDLE: Duration = Duration::from_millis(20);

/// How users pace their requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Each user sends its next request when the previous one completed.
    Closed,
    /// `rate` requests per second in total, each at a fixed intended time, sent by whichever
    /// user is free; latency counts from the intended time (coordinated omission corrected).
    Open { rate: f64 },
    /// Each user sends `rate` requests per second on its own timetable, starting at a random
    /// phase; latency counts from the intended time. For held connections at a modest rate.
    PerUser { rate: f64 },
}

/// What one phase is to do.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Names the phase in goose and in progress lines (`latency`, `connections`, ...).
    pub name: String,
    pub targets: Arc<[Target]>,
    pub users: usize,
    pub ramp_up: Duration,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    pub pacing: Pacing,
    /// The servers run in this process (their CPU shows in ours).
    pub embedded: bool,
    /// The phase's verdict rests on the count of client sockets (the connections scenario):
    /// count at normal CPU priority, so that a busy machine does not starve the count. Other
    /// phases count at the lowest priority, so that the count does not take a core from the
    /// requests they time (see `sockets`).
    pub sockets_are_evidence: bool,
}

pub use reports::run::{ConnectionSample, EngineFacts};

/// The result of a phase.
#[derive(Debug)]
pub struct PhaseOutcome {
    pub recorder: Recorder,
    /// Length of the measured window actually run (shorter than asked when interrupted).
    pub measured: Duration,
    pub interrupted: bool,
    /// Requests completed, warm-up included.
    pub completed: u64,
    pub connections: Vec<ConnectionSample>,
    /// Seconds since the phase started at which the measured window began and ended.
    pub window: (f64, f64),
    pub cpu: Option<crate::cpu::CpuUse>,
    pub engine: EngineFacts,
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    /// When all users have been started: the open model's timetable begins here.
    ramped: Instant,
    /// Requests started before this are warm-up and not recorded.
    measure_from: Instant,
    /// No request is started at or after this.
    deadline: Instant,
}

/// What every user of a phase shares.
struct Shared {
    phase: Phase,
    clock: Clock,
    stop: CancellationToken,
    /// Open model: the number of the next request to send.
    next: AtomicU64,
    completed: AtomicU64,
    users: Vec<Mutex<UserState>>,
    shards: Vec<Mutex<Recorder>>,
}

/// One user's own state: its servers, their sessions, its random stream.
struct UserState {
    servers: Vec<usize>,
    /// This user's connection to each of its servers (taken out while a call uses it).
    conns: Vec<Option<Conn>>,
    sessions: Vec<Option<String>>,
    random: fastrand::Rng,
    sent: u64,
    /// Per-user pacing: when the next request is due.
    due: Option<Instant>,
}

/// The servers user `user` of `users` cycles through: a share of every server when there are
/// more servers than users, else one server, so the whole run holds about max(users, servers)
/// connections and every server gets traffic.
pub fn assigned(user: usize, users: usize, servers: usize) -> Vec<usize> {
    if users >= servers {
        vec![user % servers]
    } else {
        (user..servers).step_by(users).collect()
    }
}

/// Runs one phase. `server_connections` samples the servers' own count of open connections,
/// where it is known (embedded fleet).
pub async fn run(
    phase: Phase,
    stop: &CancellationToken,
    server_connections: &(dyn Fn() -> Option<u64> + Sync),
) -> anyhow::Result<PhaseOutcome> {
    anyhow::ensure!(!phase.targets.is_empty(), "nothing to measure: no servers");
    anyhow::ensure!(phase.users > 0, "a phase needs at least one user");
    let remotes: HashSet<SocketAddr> = phase
        .targets
        .iter()
        .filter_map(|t| t.url.socket_addrs(|| None).ok())
        .flatten()
        .collect();
    let host = {
        let url = &phase.targets[0].url;
        format!("{}://{}", url.scheme(), url.authority())
    };
    let users = phase.users;
    let shards = users.min(MAX_SHARDS);
    let start = Instant::now();
    let ramped = start + phase.ramp_up;
    let clock = Clock {
        start,
        ramped,
        measure_from: ramped + phase.warmup,
        deadline: ramped + phase.warmup + phase.duration,
    };
    let shared = Arc::new(Shared {
        users: (0..users)
            .map(|i| {
                let servers = assigned(i, users, phase.targets.len());
                Mutex::new(UserState {
                    conns: (0..servers.len()).map(|_| None).collect(),
                    sessions: vec![None; servers.len()],
                    servers,
                    random: fastrand::Rng::with_seed(i as u64),
                    sent: 0,
                    due: None,
                })
            })
            .collect(),
        shards: (0..shards)
            .map(|_| Mutex::new(Recorder::default()))
            .collect(),
        next: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        clock,
        stop: stop.clone(),
        phase,
    });
    let attack = build_attack(&shared, &host)?;
    let cpu_before = crate::cpu::CpuSample::now();
    let execute = attack.execute();
    tokio::pin!(execute);
    let second = Duration::from_secs(1);
    let mut ticker = tokio::time::interval_at((start + second).into(), second);
    let (mut last, mut killed) = (0, false);
    let mut connections = Vec::new();
    // Client sockets are counted on a thread of their own (see `sockets`); a count asked for at
    // a tick becomes that tick's sample when it arrives. Ticks while one is still being counted
    // (a saturated machine starves the thread) take no sample, so every sample is a real count.
    let sampler = crate::sockets::Sampler::start(remotes, !shared.phase.sockets_are_evidence);
    let mut counting: Option<(
        ConnectionSample,
        tokio::sync::oneshot::Receiver<Option<u64>>,
    )> = None;
    let mut client_last = None;
    // A live line on a terminal; plain lines in CI and when stderr is a file.
    let live =
        std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("CI").is_none();
    let metrics = loop {
        tokio::select! {
            result = &mut execute => break result,
            () = stop.cancelled(), if !killed => {
                // Goose's killswitch stops its users between transactions.
                goose::trigger_killswitch("loadgen was interrupted");
                killed = true;
            }
            client = async {
                match counting.as_mut() {
                    Some((_, answer)) => answer.await.ok().flatten(),
                    None => std::future::pending().await,
                }
            }, if counting.is_some() => {
                if let Some((sample, _)) = counting.take() {
                    connections.push(ConnectionSample { client, ..sample });
                    client_last = client;
                }
            }
            _ = ticker.tick() => {
                let done = shared.completed.load(Ordering::Relaxed);
                let sample = ConnectionSample {
                    t: start.elapsed().as_secs_f64(),
                    client: None,
                    server: server_connections(),
                };
                if counting.is_none() {
                    counting = Some((sample, sampler.count()));
                }
                let line = progress_line(
                    &shared,
                    done - last,
                    ConnectionSample { client: client_last, ..sample },
                );
                if live {
                    // One line, rewritten in place on a terminal.
                    eprint!("\r\x1b[2K{}", line.trim_start());
                } else {
                    eprintln!("{line}");
                }
                last = done;
            }
        }
    };
    if live {
        eprintln!();
    }
    let metrics = metrics.map_err(|e| anyhow::anyhow!("goose: {e:?}"))?;
    let end = Instant::now().min(clock.deadline);
    let interrupted = stop.is_cancelled() && end < clock.deadline;
    let completed = shared.completed.load(Ordering::Relaxed);
    let cpu = match (cpu_before, crate::cpu::CpuSample::now()) {
        (Some(before), Some(after)) => Some(before.until(&after, completed, shared.phase.embedded)),
        _ => None,
    };
    let mut recorder = Recorder::default();
    for shard in &shared.shards {
        recorder.merge(&lock(shard));
    }
    let measured = end.saturating_duration_since(clock.measure_from);
    let seconds = measured.as_secs_f64().ceil() as usize;
    if recorder.per_second.len() < seconds {
        recorder.per_second.resize_with(seconds, Default::default);
    }
    let since = |at: Instant| at.saturating_duration_since(start).as_secs_f64();
    Ok(PhaseOutcome {
        recorder,
        measured,
        interrupted,
        completed,
        connections,
        window: (since(clock.measure_from), since(end)),
        cpu,
        engine: EngineFacts {
            name: "goose".into(),
            version: GOOSE_SERIES.into(),
            users_max: metrics.maximum_users,
            requests: metrics
                .requests
                .values()
                .map(|r| (r.success_count + r.fail_count) as u64)
                .sum(),
            failures: metrics.requests.values().map(|r| r.fail_count as u64).sum(),
            seconds: metrics.duration as u64,
        },
    })
}

/// The goose release series loadgen is built against (the requirement in Cargo.toml).
const GOOSE_SERIES: &str = "0.19";

type TransactionFuture<'r> = Pin<Box<dyn Future<Output = TransactionResult> + Send + 'r>>;

/// A goose transaction that runs `f` with the phase's shared state.
fn transaction(
    shared: &Arc<Shared>,
    f: for<'r> fn(Arc<Shared>, &'r mut GooseUser) -> TransactionFuture<'r>,
) -> Transaction {
    let shared = shared.clone();
    Transaction::new(Arc::new(move |user| f(shared.clone(), user)))
}

fn build_attack(shared: &Arc<Shared>, host: &str) -> anyhow::Result<GooseAttack> {
    let phase = &shared.phase;
    let scenario = Scenario::new(&phase.name)
        .register_transaction(
            transaction(shared, |s, u| Box::pin(on_start(s, u)))
                .set_name("open sessions")
                .set_on_start(),
        )
        .register_transaction(transaction(shared, |s, u| Box::pin(call(s, u))).set_name("call"))
        .register_transaction(
            transaction(shared, |s, u| Box::pin(on_stop(s, u)))
                .set_name("close sessions")
                .set_on_stop(),
        );
    // All users at once when there is no ramp-up (goose's default is one per second).
    let increase_rate = if phase.ramp_up.is_zero() {
        1_000_000.0
    } else {
        phase.users as f64 / phase.ramp_up.as_secs_f64()
    };
    let run_time = (phase.warmup + phase.duration)
        .as_secs_f64()
        .ceil()
        .max(1.0) as usize;
    // Calls go over our own connections, so goose's users need no client of their own: one
    // shared client spares building one per user (each loads the platform's TLS roots).
    let attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .and_then(|a| {
            a.set_client_builder_without_cookies(
                goose::client::GooseClientBuilder::new().without_cookies(),
            )
        })
        .map_err(|e| anyhow::anyhow!("goose: {e:?}"))?
        .register_scenario(scenario);
    let configure = || -> Result<Box<GooseAttack>, goose::GooseError> {
        attack
            .set_default(GooseDefault::Host, host)?
            .set_default(GooseDefault::Users, phase.users)?
            .set_default(
                GooseDefault::IncreaseRate,
                format!("{increase_rate:.6}").as_str(),
            )?
            .set_default(GooseDefault::RunTime, run_time)?
            .set_default(
                GooseDefault::Timeout,
                format!("{}", phase.timeout.as_secs_f64()).as_str(),
            )?
            // Goose's own log to warnings only; our progress line says what runs.
            .set_default(GooseDefault::Quiet, 1)?
            .set_default(GooseDefault::NoPrintMetrics, true)?
            .set_default(GooseDefault::NoErrorSummary, true)?
            .set_default(GooseDefault::NoResetMetrics, true)?
            .set_default(GooseDefault::NoTransactionMetrics, true)?
            .set_default(GooseDefault::NoScenarioMetrics, true)?
            .set_default(GooseDefault::NoPercentilesOverTime, true)?
            .set_default(GooseDefault::NoTelnet, true)?
            .set_default(GooseDefault::NoGzip, true)
    };
    configure()
        .map(|a| *a)
        .map_err(|e| anyhow::anyhow!("goose configuration: {e:?}"))
}

/// On start: a connection to each of this user's servers (opened now, so the connections are
/// held from the user's start), with a session on each 2025-11-25 one. A session that fails to open is retried by the first call to that server, whose
/// latency and outcome then include it.
async fn on_start(s: Arc<Shared>, user: &mut GooseUser) -> TransactionResult {
    let Some(me) = s.users.get(user.weighted_users_index) else {
        return Ok(());
    };
    let servers = lock(me).servers.clone();
    for (slot, server) in servers.into_iter().enumerate() {
        let target = &s.phase.targets[server];
        let Ok(mut conn) = Conn::new(&target.url, s.phase.timeout) else {
            continue;
        };
        // A failure here is retried, and counted, by the first call.
        let session = match target.protocol {
            Protocol::Session => http::open_session(&mut conn).await.ok(),
            Protocol::Stateless => {
                let _ = conn.open().await;
                None
            }
        };
        let mut state = lock(me);
        state.conns[slot] = Some(conn);
        state.sessions[slot] = session;
    }
    Ok(())
}

/// On stop: DELETE every open session, as a well-behaved client does.
async fn on_stop(s: Arc<Shared>, user: &mut GooseUser) -> TransactionResult {
    let Some(me) = s.users.get(user.weighted_users_index) else {
        return Ok(());
    };
    let open: Vec<(Conn, String)> = {
        let mut state = lock(me);
        let slots = state.servers.len();
        (0..slots)
            .filter_map(|slot| {
                let session = state.sessions[slot].take()?;
                Some((state.conns[slot].take()?, session))
            })
            .collect()
    };
    for (mut conn, session) in open {
        http::close_session(&mut conn, &session).await;
    }
    Ok(())
}

/// One MCP call: wait until it is due (open models), pick a server and a call, send it on this
/// user's connection to that server and read the response to the end, record it, and hand the
/// outcome to goose as well.
async fn call(s: Arc<Shared>, user: &mut GooseUser) -> TransactionResult {
    let index = user.weighted_users_index;
    let Some(me) = s.users.get(index) else {
        return Ok(());
    };
    let due = s.due(&mut lock(me));
    if due >= s.clock.deadline || s.stop.is_cancelled() {
        // Past the end: idle until goose stops this user (it looks between transactions).
        tokio::time::sleep(IDLE).await;
        return Ok(());
    }
    // A request woken at its due time would go out late (see EARLY_WAKE) and carry that into
    // its corrected latency. Woken early, it goes out a little before it is due instead, and
    // its latency is its service time (never less); the rate over time is unchanged.
    if s.phase.pacing != Pacing::Closed
        && let Some(wake) = due.checked_sub(EARLY_WAKE)
        && wake > Instant::now()
    {
        tokio::select! {
            biased;
            () = s.stop.cancelled() => return Ok(()),
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    let (slot, server, pick, id, conn, mut session) = {
        let mut state = lock(me);
        let slot = (state.sent % state.servers.len() as u64) as usize;
        state.sent += 1;
        let pick = state.random.u64(..);
        (
            slot,
            state.servers[slot],
            pick,
            state.sent,
            state.conns[slot].take(),
            state.sessions[slot].take(),
        )
    };
    let target = &s.phase.targets[server];
    let mcp_call = target.mix.pick(pick);
    let start = Instant::now();
    let sent = match conn.map_or_else(|| Conn::new(&target.url, s.phase.timeout), Ok) {
        Err(class) => failed(start, class),
        Ok(mut conn) => {
            // A session opened here (the first was refused, or the last expired) delays this
            // call: count it, headers and all.
            if target.protocol == Protocol::Session && session.is_none() {
                match http::open_session(&mut conn).await {
                    Ok(opened) => session = Some(opened),
                    Err(class) => {
                        lock(me).conns[slot] = Some(conn);
                        let sent = failed(start, class);
                        s.record(index, due, sent, mcp_call.label(), target);
                        return tell_goose(user, mcp_call.label(), sent).await;
                    }
                }
            }
            let channel = match &session {
                Some(id) => Channel::Session(id),
                None => Channel::Stateless,
            };
            let sent_at = Instant::now();
            let sent = http::send(&mut conn, mcp_call, id, channel).await;
            if sent.status == Some(404) {
                // The session is gone: the next call to this server re-initializes.
                session = None;
            }
            let mut state = lock(me);
            state.conns[slot] = Some(conn);
            state.sessions[slot] = session;
            let setup = sent_at.saturating_duration_since(start);
            Sent {
                elapsed: sent.elapsed + setup,
                ttfb: sent.ttfb.map(|t| t + setup),
                ..sent
            }
        }
    };
    s.record(index, due, sent, mcp_call.label(), target);
    tell_goose(user, mcp_call.label(), sent).await
}

/// A call that failed before any response, `class` saying why.
fn failed(start: Instant, class: ErrorClass) -> Sent {
    Sent {
        elapsed: start.elapsed(),
        ttfb: None,
        status: None,
        outcome: Err(class),
    }
}

/// Records the call in goose's own metrics (timed to the whole response, as ours), so goose's
/// request counts cross-check ours.
async fn tell_goose(user: &mut GooseUser, label: &str, sent: Sent) -> TransactionResult {
    let error = sent.outcome.err().map(ErrorClass::name);
    // Goose's answer is the transaction's failure when the call failed; the call is recorded
    // either way, and our own counts carry the verdict.
    let _ = user
        .record_custom_request_duration(
            "POST",
            label,
            sent.elapsed,
            sent.outcome.is_ok(),
            sent.status,
            error,
        )
        .await;
    Ok(())
}

impl Shared {
    /// When this user's next request is due: now (closed loop), the next slot of the shared
    /// timetable (open model), or the user's own next slot (per-user rate).
    fn due(&self, state: &mut UserState) -> Instant {
        match self.phase.pacing {
            Pacing::Closed => Instant::now(),
            Pacing::Open { rate } => {
                let k = self.next.fetch_add(1, Ordering::Relaxed);
                self.clock.ramped + Duration::from_secs_f64(k as f64 / rate)
            }
            Pacing::PerUser { rate } => {
                let interval = Duration::from_secs_f64(1.0 / rate);
                let due = match state.due {
                    Some(due) => due,
                    // A random phase within the first interval, so users do not send in step.
                    None => {
                        let fraction = state.random.u64(..1_000_000) as f64 / 1e6;
                        self.clock.start.max(Instant::now()) + interval.mul_f64(fraction)
                    }
                };
                state.due = Some(due + interval);
                due
            }
        }
    }

    /// Records a finished call that was due at `due`. Latency counts from `due` in the open
    /// models (a stall delays every request scheduled behind it) and from the send otherwise.
    fn record(&self, user: usize, due: Instant, sent: Sent, label: &str, target: &Target) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        let Some(since) = due.checked_duration_since(self.clock.measure_from) else {
            return;
        };
        let latency = match self.phase.pacing {
            Pacing::Closed => sent.elapsed,
            Pacing::Open { .. } | Pacing::PerUser { .. } => due.elapsed().max(sent.elapsed),
        };
        let mut recorder = lock(&self.shards[user % self.shards.len()]);
        recorder.record_open(
            since.as_secs() as usize,
            latency,
            sent.elapsed,
            sent.outcome,
        );
        recorder.record_call(label, latency, sent.outcome);
        recorder.record_group(&target.group, latency, sent.outcome);
        recorder.record_server(&target.id, latency, sent.outcome);
        if let (Ok(()), Some(ttfb)) = (sent.outcome, sent.ttfb) {
            recorder.record_ttfb(ttfb);
        }
    }
}

/// Locks `m`; a panicked holder left counts that are still worth reporting.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn progress_line(s: &Shared, rate: u64, sample: ConnectionSample) -> String {
    let t = s.clock.start.elapsed().as_secs_f64();
    let name = &s.phase.name;
    // The servers' count is of their own sockets: through a gateway that calls them in its
    // process it is 0 while the client's connections (to the gateway) are busy.
    let conns = match (sample.client, sample.server) {
        (Some(c), Some(sv)) => format!("  conns {c} (server sockets {sv})"),
        (Some(c), None) => format!("  conns {c}"),
        (None, Some(sv)) => format!("  conns (server sockets {sv})"),
        (None, None) => String::new(),
    };
    // The tick reports the second that just ended: ramp-up or warm-up if it ended (about)
    // before measuring started.
    let now = Instant::now();
    if now < s.clock.ramped + Duration::from_millis(500) && !s.phase.ramp_up.is_zero() {
        return format!("  {name} {t:>4.0} s  ramp-up  {rate:>6} req/s{conns}");
    }
    if now < s.clock.measure_from + Duration::from_millis(500) {
        return format!("  {name} {t:>4.0} s  warm-up  {rate:>6} req/s{conns}");
    }
    // Only what the line shows: a full merge would also copy the other histograms.
    let mut h = crate::recorder::new_histogram();
    let mut errors = 0;
    for shard in &s.shards {
        let r = lock(shard);
        // Same bounds on both sides, so adding cannot fail.
        let _ = h.add(&r.latency_us);
        errors += r.error_total();
    }
    let at = |q| {
        if h.is_empty() {
            "-".to_string()
        } else {
            crate::fmt_micros(h.value_at_quantile(q))
        }
    };
    format!(
        "  {name} {t:>4.0} s  {rate:>6} req/s  p50 {}  p99 {}  errors {errors}{conns}",
        at(0.5),
        at(0.99),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_server_is_assigned_and_every_user_has_one() {
        for (users, servers) in [(64, 500), (4, 10), (10, 10), (64, 10), (1, 3)] {
            let mut seen = vec![false; servers];
            for w in 0..users {
                let mine = assigned(w, users, servers);
                assert!(!mine.is_empty());
                for s in mine {
                    seen[s] = true;
                }
            }
            assert!(seen.iter().all(|s| *s), "{users} users, {servers} servers");
        }
        assert_eq!(
            assigned(3, 64, 500),
            vec![3, 67, 131, 195, 259, 323, 387, 451]
        );
    }
}
