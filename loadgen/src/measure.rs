//! Measuring, with no file output: the health sweep (one `tools/list` per server) and the
//! latency run. The latency run is a closed loop: `users` workers, each with its own HTTP client
//! and one request in flight, so a slow response delays that user's next request (no
//! coordinated-omission correction; the report says so). Each worker records into its own
//! [`Recorder`]; a ticker merges them once a second for the progress line, and the result is
//! their merge at the end.

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    mcp::{self, Call, Channel, ErrorClass, Protocol, Sent},
    mix::Mix,
    recorder::{Recorder, SecondCounts},
};

/// `tools/list` requests of the health sweep in flight at once.
const SWEEP_CONCURRENCY: usize = 32;

/// One server to measure.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub group: String,
    pub url: Url,
    pub mix: Arc<Mix>,
}

/// Outcome of the health sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSweep {
    pub servers: usize,
    pub checked: usize,
    pub ok: usize,
    /// `ok / servers`.
    pub availability: f64,
    pub seconds: f64,
    pub interrupted: bool,
    pub failures: Vec<SweepFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepFailure {
    pub server: String,
    pub url: String,
    pub error: ErrorClass,
}

/// Sends one `tools/list` to every target, a few at a time.
pub async fn sweep(
    targets: &[Target],
    timeout: Duration,
    protocol: Protocol,
    stop: &CancellationToken,
) -> anyhow::Result<HealthSweep> {
    let started = Instant::now();
    let client = mcp::client(timeout)?;
    let list = Call::tools_list();
    let outcomes: Vec<(usize, Result<(), ErrorClass>)> =
        futures::stream::iter(targets.iter().enumerate())
            .map(|(i, t)| {
                let (client, list) = (&client, &list);
                async move { (i, probe(client, &t.url, list, protocol).await) }
            })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .take_until(stop.cancelled())
            .collect()
            .await;
    let ok = outcomes.iter().filter(|o| o.1.is_ok()).count();
    let mut failures: Vec<SweepFailure> = outcomes
        .iter()
        .filter_map(|(i, o)| {
            o.err().map(|error| SweepFailure {
                server: targets[*i].id.clone(),
                url: targets[*i].url.to_string(),
                error,
            })
        })
        .collect();
    failures.sort_by(|a, b| a.server.cmp(&b.server));
    Ok(HealthSweep {
        servers: targets.len(),
        checked: outcomes.len(),
        ok,
        availability: if targets.is_empty() {
            0.0
        } else {
            ok as f64 / targets.len() as f64
        },
        seconds: started.elapsed().as_secs_f64(),
        interrupted: outcomes.len() < targets.len(),
        failures,
    })
}

/// One `tools/list` in the given era; in the session era the session is opened and closed
/// around it, as a client that only looks would do.
async fn probe(
    client: &reqwest::Client,
    url: &reqwest::Url,
    list: &Call,
    protocol: Protocol,
) -> Result<(), ErrorClass> {
    match protocol {
        Protocol::Stateless => {
            mcp::send(client, url, list, 1, Channel::Stateless)
                .await
                .outcome
        }
        Protocol::Session => {
            let session = mcp::open_session(client, url).await?;
            let outcome = mcp::send(client, url, list, 1, Channel::Session(&session))
                .await
                .outcome;
            mcp::close_session(client, url, &session).await;
            outcome
        }
    }
}

/// How hard and how long to load.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    pub users: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    pub protocol: Protocol,
    /// Open model: requests per second, scheduled at fixed intended times; `users` is then the
    /// most requests in flight. `None`: closed loop.
    pub rate: Option<f64>,
    /// The servers run in this process (their CPU shows in ours).
    pub embedded: bool,
}

#[derive(Debug)]
pub struct LoadOutcome {
    pub recorder: Recorder,
    /// Length of the measured window actually run (shorter than asked when interrupted).
    pub measured: Duration,
    pub interrupted: bool,
    /// Most connections the servers reported open at a once-a-second sample, if known.
    pub open_connections_max: Option<u64>,
    /// CPU use over the whole load run (warm-up included), if `/proc` could be read.
    pub cpu: Option<crate::cpu::CpuUse>,
}

/// The servers worker `worker` of `users` cycles through: a share of every server when there
/// are more servers than users, else one server, so the whole run holds about
/// max(users, servers) connections and every server gets traffic.
pub fn assigned(worker: usize, users: usize, servers: usize) -> Vec<usize> {
    if users >= servers {
        vec![worker % servers]
    } else {
        (worker..servers).step_by(users).collect()
    }
}

/// Runs the latency measurement. `open_connections` samples the servers' own count, if known.
pub async fn load(
    targets: Arc<[Target]>,
    settings: &LoadSettings,
    stop: &CancellationToken,
    open_connections: impl Fn() -> Option<u64>,
) -> anyhow::Result<LoadOutcome> {
    anyhow::ensure!(!targets.is_empty(), "nothing to measure: no servers");
    let start = Instant::now();
    let clock = Clock {
        measure_from: start + settings.warmup,
        deadline: start + settings.warmup + settings.duration,
    };
    let completed = Arc::new(AtomicU64::new(0));
    let cpu_before = crate::cpu::CpuSample::now();
    // Open model: request k is due at start + k / rate, whoever sends it.
    let schedule = settings.rate.map(|rate| Schedule {
        start,
        rate,
        next: Arc::new(AtomicU64::new(0)),
    });
    let mut recorders = Vec::with_capacity(settings.users);
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..settings.users {
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        recorders.push(recorder.clone());
        let worker = Worker {
            index,
            servers: assigned(index, settings.users, targets.len()),
            targets: targets.clone(),
            client: mcp::client(settings.timeout)?,
            protocol: settings.protocol,
            schedule: schedule.clone(),
            recorder,
            completed: completed.clone(),
        };
        workers.spawn(worker.run(clock, stop.clone()));
    }
    let second = Duration::from_secs(1);
    let mut ticker = tokio::time::interval_at((start + second).into(), second);
    let (mut last, mut open_connections_max) = (0, None);
    // A live line on a terminal; plain lines in CI and when stderr is a file.
    let live =
        std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("CI").is_none();
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                None => break,
                Some(result) => result?,
            },
            _ = ticker.tick() => {
                let done = completed.load(Ordering::Relaxed);
                let open = open_connections();
                open_connections_max = open_connections_max.max(open);
                let line = progress_line(start, clock, done - last, &recorders, open);
                if live {
                    // One line, rewritten in place on a terminal.
                    eprint!("\r\x1b[2K{}", line.trim_start());
                } else {
                    eprintln!("{line}");
                }
                last = done;
            }
        }
    }
    if live {
        eprintln!();
    }
    let end = Instant::now().min(clock.deadline);
    let interrupted = stop.is_cancelled() && end < clock.deadline;
    let mut recorder = Recorder::default();
    for r in &recorders {
        recorder.merge(&lock(r));
    }
    let measured = end.saturating_duration_since(clock.measure_from);
    let seconds = measured.as_secs_f64().ceil() as usize;
    if recorder.per_second.len() < seconds {
        recorder.per_second.resize(seconds, SecondCounts::default());
    }
    let cpu = match (cpu_before, crate::cpu::CpuSample::now()) {
        (Some(before), Some(after)) => {
            Some(before.until(&after, completed.load(Ordering::Relaxed), settings.embedded))
        }
        _ => None,
    };
    Ok(LoadOutcome {
        recorder,
        measured,
        interrupted,
        open_connections_max,
        cpu,
    })
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Requests started before this are warm-up and not recorded.
    measure_from: Instant,
    /// No request is started at or after this.
    deadline: Instant,
}

/// The open model's timetable, shared by all workers.
#[derive(Debug, Clone)]
struct Schedule {
    start: Instant,
    rate: f64,
    next: Arc<AtomicU64>,
}

impl Schedule {
    /// Takes the next request's intended send time.
    fn take(&self) -> Instant {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        self.start + Duration::from_secs_f64(k as f64 / self.rate)
    }
}

struct Worker {
    index: usize,
    servers: Vec<usize>,
    targets: Arc<[Target]>,
    client: reqwest::Client,
    protocol: Protocol,
    schedule: Option<Schedule>,
    recorder: Arc<Mutex<Recorder>>,
    completed: Arc<AtomicU64>,
}

impl Worker {
    async fn run(self, clock: Clock, stop: CancellationToken) {
        let mut random = SplitMix64(self.index as u64);
        let mut n = 0u64;
        // Session-era sessions, one per assigned server, opened on first use.
        let mut sessions: Vec<Option<String>> = vec![None; self.servers.len()];
        loop {
            // Closed loop: now. Open model: the intended time, waited for if still ahead; a
            // request due while every worker was busy goes out late and its latency counts
            // from when it was due (coordinated omission corrected, as wrk2 does).
            let started = match &self.schedule {
                None => Instant::now(),
                Some(schedule) => schedule.take(),
            };
            if started >= clock.deadline || stop.is_cancelled() {
                break;
            }
            if self.schedule.is_some() {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep_until(started.into()) => {}
                }
            }
            let slot = n as usize % self.servers.len();
            let target = &self.targets[self.servers[slot]];
            let call = target.mix.pick(random.next());
            n += 1;
            let Sent {
                elapsed,
                ttfb,
                outcome,
            } = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                r = self.call(target, call, n, &mut sessions[slot]) => r,
            };
            self.completed.fetch_add(1, Ordering::Relaxed);
            if let Some(since) = started.checked_duration_since(clock.measure_from) {
                let latency = match self.schedule {
                    Some(_) => started.elapsed().max(elapsed),
                    None => elapsed,
                };
                let mut recorder = lock(&self.recorder);
                recorder.record_open(since.as_secs() as usize, latency, elapsed, outcome);
                recorder.record_call(call.label(), latency, outcome);
                if let (Ok(()), Some(ttfb)) = (outcome, ttfb) {
                    recorder.record_ttfb(ttfb);
                }
            }
        }
        for (slot, session) in sessions.iter().enumerate() {
            if let Some(session) = session {
                let url = &self.targets[self.servers[slot]].url;
                mcp::close_session(&self.client, url, session).await;
            }
        }
    }

    /// One call in the run's era. A session is opened when there is none (its set-up time
    /// counts towards this call, as a client would feel it) and forgotten after an HTTP error
    /// such as the 404 of an expired session, so the next call re-initializes.
    async fn call(
        &self,
        target: &Target,
        call: &Call,
        id: u64,
        session: &mut Option<String>,
    ) -> Sent {
        match self.protocol {
            Protocol::Stateless => {
                mcp::send(&self.client, &target.url, call, id, Channel::Stateless).await
            }
            Protocol::Session => {
                let start = Instant::now();
                if session.is_none() {
                    match mcp::open_session(&self.client, &target.url).await {
                        Ok(s) => *session = Some(s),
                        Err(e) => {
                            return Sent {
                                elapsed: start.elapsed(),
                                ttfb: None,
                                outcome: Err(e),
                            };
                        }
                    }
                }
                let id_str = session.as_deref().unwrap_or_default();
                let sent = mcp::send(
                    &self.client,
                    &target.url,
                    call,
                    id,
                    Channel::Session(id_str),
                )
                .await;
                if sent.outcome == Err(ErrorClass::HttpStatus) {
                    *session = None;
                }
                // A session opened just now delays this call: count it, headers and all.
                let setup = start.elapsed().saturating_sub(sent.elapsed);
                Sent {
                    elapsed: sent.elapsed + setup,
                    ttfb: sent.ttfb.map(|t| t + setup),
                    outcome: sent.outcome,
                }
            }
        }
    }
}

fn lock(recorder: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(|e| e.into_inner())
}

fn progress_line(
    start: Instant,
    clock: Clock,
    rate: u64,
    recorders: &[Arc<Mutex<Recorder>>],
    open: Option<u64>,
) -> String {
    let t = start.elapsed().as_secs_f64();
    let conns = open.map_or(String::new(), |c| format!("  conns {c}"));
    // The tick reports the second that just ended: warm-up if it ended (about) when warm-up did.
    if Instant::now() < clock.measure_from + Duration::from_millis(500) {
        return format!("  {t:>4.0} s  warm-up  {rate:>6} req/s{conns}");
    }
    // Only what the line shows: a full merge would also copy the service, TTFB and per-call
    // histograms every second.
    let mut h = crate::recorder::new_histogram();
    let mut errors = 0;
    for r in recorders {
        let r = lock(r);
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
        "  {t:>4.0} s  {rate:>6} req/s  p50 {}  p99 {}  errors {}{conns}",
        at(0.5),
        at(0.99),
        errors,
    )
}

/// A tiny deterministic generator for the tool mix (reproducible runs, no dependency).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_server_is_assigned_and_every_worker_has_one() {
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
