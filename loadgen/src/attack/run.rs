//! Runs one phase: builds the users' shared state, lets goose drive them, samples the
//! connections and prints progress once a second, and gathers the outcome.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::{lock::lock, recorder::Recorder};

use super::{
    goose::{GOOSE_SERIES, build_attack},
    phase::{ConnectionSample, EngineFacts, Phase, PhaseOutcome},
    progress::progress_line,
    users::{Clock, PhaseRun, UserState, assigned},
};

/// Most recorder shards: users share them, so memory does not grow with the user count.
const MAX_SHARDS: usize = 16;

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
    let phase_run = Arc::new(PhaseRun {
        users: (0..users)
            .map(|i| {
                let servers = assigned(i, users, phase.targets.len());
                Mutex::new(UserState {
                    clients: (0..servers.len()).map(|_| None).collect(),
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
    let attack = build_attack(&phase_run, &host)?;
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
    let sampler = crate::sockets::Sampler::start(remotes, !phase_run.phase.sockets_are_evidence);
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
                let done = phase_run.completed.load(Ordering::Relaxed);
                let sample = ConnectionSample {
                    t: start.elapsed().as_secs_f64(),
                    client: None,
                    server: server_connections(),
                };
                if counting.is_none() {
                    counting = Some((sample, sampler.count()));
                }
                let line = progress_line(
                    &phase_run,
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
    let completed = phase_run.completed.load(Ordering::Relaxed);
    let cpu = match (cpu_before, crate::cpu::CpuSample::now()) {
        (Some(before), Some(after)) => {
            Some(before.until(&after, completed, phase_run.phase.embedded))
        }
        _ => None,
    };
    let mut recorder = Recorder::default();
    for shard in &phase_run.shards {
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
