//! The stdio server processes of a run: a fixed number of slots (one per user by default, or
//! `--stdio-processes N` shared among the users), each kept running by a supervisor task that
//! starts its process, opens it (the handshake) before anyone calls it, and when it exits
//! counts the exit and starts it again after a backoff (at least [`MIN_BACKOFF`], so at most
//! ten restarts a second per slot, doubling while the process keeps dying young). A sampler
//! reads the processes' CPU and memory once a second. Stopping closes every server's stdin,
//! then kills its whole process group: no server outlives the run, also when it ends by an
//! error or an interrupt (the guards kill on drop).

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{process::Child, sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use super::{handshake, process::Process, usage::UsageSampler};
use crate::{
    lock::lock,
    mcp::{ErrorClass, Version},
    runfile::StdioFacts,
};

/// The shortest wait before a process that exited is started again.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between restarts of a process that keeps exiting.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A process that lived this long before exiting is restarted after [`MIN_BACKOFF`] again.
const HEALTHY_LIFE: Duration = Duration::from_secs(5);
/// How long a server may take to exit after its stdin closed before its group is killed.
const GRACE: Duration = Duration::from_millis(500);
/// The least time a process gets to answer its handshake.
const HANDSHAKE: Duration = Duration::from_secs(30);
/// How long the first start of every process may take (a wrapper such as `npx` may install).
pub const STARTUP: Duration = Duration::from_secs(120);

/// What the pool runs.
#[derive(Debug, Clone)]
pub struct StdioSettings {
    /// The server command and its arguments.
    pub command: Vec<String>,
    /// Processes kept running.
    pub processes: usize,
    /// Where `stdio-<n>.log` (each slot's stderr) goes.
    pub log_dir: PathBuf,
    /// Bound of each request, the handshake's included.
    pub timeout: Duration,
    /// The protocol version to open processes in; `None` discovers it.
    pub version: Option<Version>,
}

/// Why the pool could not start.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("cannot start the stdio server `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("the stdio server `{command}` failed its handshake: {}", class.name())]
    Handshake { command: String, class: ErrorClass },
    #[error("the stdio servers were not all open after {0:?}")]
    Startup(Duration),
}

/// A running process as callers see it.
#[derive(Debug, Clone)]
pub struct Live {
    pub process: Arc<Process>,
    /// The version calls to it are sent in.
    pub version: Version,
}

/// One slot: its current process (`None` while it is being started) and that process's group.
#[derive(Debug)]
struct Slot {
    live: watch::Sender<Option<Live>>,
    group: AtomicU32,
}

/// What the supervisors, the sampler, the clients and the pool share.
#[derive(Debug)]
struct Shared {
    settings: StdioSettings,
    slots: Vec<Slot>,
    started: AtomicU64,
    exited: AtomicU64,
    restarts: AtomicU64,
    negotiated: Mutex<Option<Version>>,
    stop: CancellationToken,
    /// The slot the next client gets.
    next_slot: AtomicUsize,
}

/// What clients hold of a pool: cheap to clone, and it does not keep the processes running
/// (the [`StdioPool`] does).
#[derive(Debug, Clone)]
pub struct StdioHandle(Arc<Shared>);

/// The pool: its shared state and its tasks.
#[derive(Debug)]
pub struct StdioPool {
    shared: Arc<Shared>,
    supervisors: Vec<JoinHandle<()>>,
    sampler: Option<JoinHandle<UsageSampler>>,
}

impl StdioPool {
    /// Starts every process and opens it; fails (stopping what started) when a first start
    /// or handshake fails or all are not open within [`STARTUP`].
    pub async fn start(settings: StdioSettings) -> Result<Self, StdioError> {
        let processes = settings.processes.max(1);
        let shared = Arc::new(Shared {
            slots: (0..processes)
                .map(|_| Slot {
                    live: watch::channel(None).0,
                    group: AtomicU32::new(0),
                })
                .collect(),
            settings,
            started: AtomicU64::new(0),
            exited: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            negotiated: Mutex::new(None),
            stop: CancellationToken::new(),
            next_slot: AtomicUsize::new(0),
        });
        let mut firsts = Vec::new();
        let mut supervisors = Vec::new();
        for slot in 0..processes {
            let (tx, rx) = tokio::sync::oneshot::channel();
            firsts.push(rx);
            supervisors.push(tokio::spawn(supervise(shared.clone(), slot, tx)));
        }
        let mut pool = Self {
            sampler: Some(tokio::spawn(sample(shared.clone()))),
            shared,
            supervisors,
        };
        let all_open = tokio::time::timeout(STARTUP, async {
            for first in firsts {
                // A dropped sender: the supervisor stopped, which only `stop` does.
                first.await.unwrap_or(Ok(()))?;
            }
            Ok(())
        })
        .await
        .unwrap_or(Err(StdioError::Startup(STARTUP)));
        if let Err(e) = all_open {
            pool.stop().await;
            return Err(e);
        }
        Ok(pool)
    }

    /// What clients hold.
    pub fn handle(&self) -> StdioHandle {
        StdioHandle(self.shared.clone())
    }

    /// The ids of the running processes (each also its process group's).
    #[cfg(test)]
    pub fn pids(&self) -> Vec<u32> {
        self.shared
            .slots
            .iter()
            .map(|s| s.group.load(Ordering::Relaxed))
            .filter(|g| *g != 0)
            .collect()
    }

    /// The version the processes negotiated (the first one's; they run the same command).
    pub fn version(&self) -> Option<Version> {
        self.handle().version()
    }

    /// Stops every process (stdin closed, then the group killed) and gives what the run file
    /// says about them. Logs are named relative to the log folder.
    pub async fn stop(&mut self) -> StdioFacts {
        self.shared.stop.cancel();
        for supervisor in self.supervisors.drain(..) {
            let _ = supervisor.await;
        }
        let sampler = match self.sampler.take() {
            Some(task) => task.await.ok(),
            None => None,
        };
        let shared = &self.shared;
        let samples = sampler
            .as_ref()
            .map(|s| s.samples().to_vec())
            .unwrap_or_default();
        StdioFacts {
            command: shared.settings.command.clone(),
            processes: shared.slots.len(),
            started: shared.started.load(Ordering::Relaxed),
            exited: shared.exited.load(Ordering::Relaxed),
            restarts: shared.restarts.load(Ordering::Relaxed),
            protocol_version: self
                .version()
                .map(|v| v.as_str().to_string())
                .unwrap_or_default(),
            cpu_s: sampler.as_ref().map_or(0.0, UsageSampler::cpu_s),
            cpu_percent_max: samples.iter().map(|s| s.cpu_percent).fold(0.0, f64::max),
            rss_bytes_max: samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
            logs: (0..shared.slots.len()).map(log_name).collect(),
            samples,
        }
    }
}

impl Drop for StdioPool {
    /// A pool dropped without `stop` (an error or a panic on the way) still leaves no server
    /// behind.
    fn drop(&mut self) {
        self.shared.stop.cancel();
        for slot in &self.shared.slots {
            kill_group(slot.group.load(Ordering::Relaxed));
        }
    }
}

impl StdioHandle {
    pub fn slots(&self) -> usize {
        self.0.slots.len()
    }

    pub fn timeout(&self) -> Duration {
        self.0.settings.timeout
    }

    pub fn version(&self) -> Option<Version> {
        *lock(&self.0.negotiated)
    }

    /// A slot for a new client, round robin.
    pub(super) fn next_slot(&self) -> usize {
        self.0.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots()
    }

    /// The open process of `slot`, waiting up to `wait` while it is (re)started.
    pub(super) async fn live(&self, slot: usize, wait: Duration) -> Result<Live, ErrorClass> {
        let slot = self.0.slots.get(slot).ok_or(ErrorClass::Exited)?;
        let mut rx = slot.live.subscribe();
        let ready = tokio::time::timeout(
            wait,
            rx.wait_for(|l| l.as_ref().is_some_and(|l| !l.process.is_gone())),
        )
        .await
        .map_err(|_| ErrorClass::Exited)?
        .map_err(|_| ErrorClass::Exited)?;
        ready.clone().ok_or(ErrorClass::Exited)
    }
}

fn log_name(slot: usize) -> String {
    format!("stdio-{slot}.log")
}

/// Kills process group `group` (0: none).
fn kill_group(group: u32) {
    if let Some(pid) = i32::try_from(group)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Kills a process group when dropped: a supervisor that is aborted (the runtime shutting
/// down) still takes its server's whole group with it.
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// Keeps slot `index` running until the pool stops; the first start's outcome goes to `first`.
async fn supervise(
    shared: Arc<Shared>,
    index: usize,
    first: tokio::sync::oneshot::Sender<Result<(), StdioError>>,
) {
    let slot = &shared.slots[index];
    let settings = &shared.settings;
    let log = settings.log_dir.join(log_name(index));
    let mut first = Some(first);
    let mut backoff = MIN_BACKOFF;
    let mut starts = 0u64;
    while !shared.stop.is_cancelled() {
        let born = Instant::now();
        match Process::spawn(&settings.command, &log).await {
            Err(source) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Err(StdioError::Spawn {
                        command: settings.command.join(" "),
                        source,
                    }));
                    return;
                }
            }
            Ok((process, child)) => {
                let guard = GroupGuard(process.pid());
                slot.group.store(process.pid(), Ordering::Relaxed);
                shared.started.fetch_add(1, Ordering::Relaxed);
                if starts > 0 {
                    shared.restarts.fetch_add(1, Ordering::Relaxed);
                }
                starts += 1;
                // The handshake is not measured and includes the server's start-up (an
                // interpreter importing its SDK on a busy machine): give it time.
                let bound = settings.timeout.max(HANDSHAKE);
                let opened = handshake::open(&process, settings.version, bound).await;
                match opened {
                    Ok(version) => {
                        lock(&shared.negotiated).get_or_insert(version);
                        slot.live.send_replace(Some(Live {
                            process: process.clone(),
                            version,
                        }));
                        if let Some(first) = first.take() {
                            let _ = first.send(Ok(()));
                        }
                        run_until_exit(&shared, &process, child).await;
                        slot.live.send_replace(None);
                    }
                    Err(class) => {
                        if let Some(first) = first.take() {
                            let _ = first.send(Err(StdioError::Handshake {
                                command: settings.command.join(" "),
                                class,
                            }));
                            end(&process, child).await;
                            return;
                        }
                        end(&process, child).await;
                    }
                }
                slot.group.store(0, Ordering::Relaxed);
                drop(guard);
            }
        }
        backoff = if born.elapsed() >= HEALTHY_LIFE {
            MIN_BACKOFF
        } else {
            (backoff * 2).min(MAX_BACKOFF)
        };
        tokio::select! {
            () = shared.stop.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
    }
}

/// Waits until the process exits (counted) or the pool stops (the process is then ended).
async fn run_until_exit(shared: &Shared, process: &Process, mut child: Child) {
    tokio::select! {
        () = shared.stop.cancelled() => end(process, child).await,
        _ = child.wait() => {
            shared.exited.fetch_add(1, Ordering::Relaxed);
            kill_group(process.pid());
        }
        () = process.gone() => {
            shared.exited.fetch_add(1, Ordering::Relaxed);
            end(process, child).await;
        }
    }
}

/// Ends a process politely: stdin closed, a short grace, then its group killed and reaped.
async fn end(process: &Process, mut child: Child) {
    process.close_stdin().await;
    let _ = tokio::time::timeout(GRACE, child.wait()).await;
    kill_group(process.pid());
    let _ = child.wait().await;
}

/// Samples the processes' CPU and memory once a second until the pool stops.
async fn sample(shared: Arc<Shared>) -> UsageSampler {
    let mut sampler = UsageSampler::new(Instant::now());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let groups: Vec<u64> = shared
            .slots
            .iter()
            .map(|s| u64::from(s.group.load(Ordering::Relaxed)))
            .filter(|g| *g != 0)
            .collect();
        // /proc reads are blocking file I/O, a few hundred small files.
        sampler = match tokio::task::spawn_blocking(move || {
            sampler.sample(&groups);
            sampler
        })
        .await
        {
            Ok(s) => s,
            Err(_) => return UsageSampler::new(Instant::now()),
        };
    }
    sampler
}
