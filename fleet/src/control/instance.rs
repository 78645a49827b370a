//! One running incarnation of a server: a tokio task in task mode, a child process in process
//! mode. The keeper (see `supervisor`) starts, waits on, kills and stops instances through this
//! one type, so both isolation modes share every other piece of code.

use std::{ffi::OsString, os::fd::OwnedFd, path::PathBuf, process::Stdio, sync::Arc};

use anyhow::Context as _;
use command_fds::{CommandFdExt, FdMapping};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    process::Child,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::{
    control::child::{CHILD_ENV, ChildConfig, LISTEN_FD},
    memory::{Memory, remote::MemorySocket},
    serve::{
        limits::ConnectionLimits,
        listener,
        local::Resident,
        registry::{Entry, Faults},
        server,
        socket::GRACE,
    },
    spec::{Isolation, ServerSpec},
};

/// The program a process-mode server runs: a binary that calls
/// [`crate::control::child::run_if_child`] first thing in `main` (the `fleet` and `loadgen`
/// binaries both do).
#[derive(Debug, Clone)]
pub struct ChildProgram {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl ChildProgram {
    /// This very executable, which is right whenever the running binary embeds the fleet.
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: Vec::new(),
        })
    }
}

/// Starts instances in the fleet's isolation mode.
#[derive(Debug)]
pub struct Launcher {
    pub isolation: Isolation,
    /// What each group's servers are given, by group name.
    pub servers: std::collections::BTreeMap<String, ServerSpec>,
    pub child: Option<ChildProgram>,
    pub memory: Option<ServerMemory>,
    /// What task-mode servers' listeners allow (server processes size their own budget).
    pub limits: ConnectionLimits,
}

/// How the servers this launcher starts reach the fleet's memory.
#[derive(Debug, Clone)]
pub enum ServerMemory {
    /// In this process (task mode).
    Local(Memory),
    /// Through the owner's socket (process mode): each server is given its own access.
    Socket(MemorySocket),
}

pub enum Instance {
    Task {
        handle: JoinHandle<()>,
        stop: CancellationToken,
    },
    Process {
        child: Child,
        /// Forwards fault changes to the child's stdin; dropping it closes stdin, which the
        /// child takes as the order to stop gracefully.
        forwarder: JoinHandle<()>,
    },
}

impl Launcher {
    /// What a server of `group` is given; a group the fleet was not started with cannot be
    /// scaled, so the default is only a fallback.
    fn server_for(&self, group: &str) -> ServerSpec {
        self.servers.get(group).cloned().unwrap_or_default()
    }

    pub fn start(
        &self,
        entry: &Arc<Entry>,
        socket: &std::net::TcpListener,
    ) -> anyhow::Result<Instance> {
        match self.isolation {
            Isolation::Task => self.start_task(entry, socket),
            Isolation::Process => self.start_process(entry, socket),
        }
    }

    fn start_task(
        &self,
        entry: &Arc<Entry>,
        socket: &std::net::TcpListener,
    ) -> anyhow::Result<Instance> {
        let std_listener = socket.try_clone().context("cloning the listening socket")?;
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let counters = entry.counters();
        let router = server::app(
            entry.identity.clone(),
            &self.server_for(&entry.identity.group),
            counters.clone(),
            entry.faults.subscribe(),
            match &self.memory {
                Some(ServerMemory::Local(memory)) => Some(memory.clone()),
                Some(ServerMemory::Socket(_)) | None => None,
            },
        );
        let stop = CancellationToken::new();
        // The gateway calls the server in-process through the entry (see `local`).
        let resident = Resident::enter(entry.local.clone(), router.clone(), stop.clone());
        let serve = listener::serve(
            listener,
            router,
            counters,
            self.limits.clone(),
            stop.clone(),
        );
        // The router reads the faults on every request, so a change is in force as soon as it
        // is made; say so for as long as this instance runs.
        let mut faults = entry.faults.subscribe();
        let applied = entry.clone();
        let mirror = async move {
            loop {
                applied.faults_applied(faults.borrow_and_update().revision);
                if faults.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let handle = tokio::spawn(async move {
            tokio::select! {
                () = serve => {}
                () = mirror => {}
            }
            resident.finish().await;
        });
        Ok(Instance::Task { handle, stop })
    }

    fn start_process(
        &self,
        entry: &Arc<Entry>,
        socket: &std::net::TcpListener,
    ) -> anyhow::Result<Instance> {
        let program = self
            .child
            .as_ref()
            .context("process isolation needs a server program, none was configured")?;
        let config = ChildConfig {
            identity: entry.identity.clone(),
            server: self.server_for(&entry.identity.group),
            http: self.limits.http().clone(),
            memory: match &self.memory {
                Some(ServerMemory::Socket(socket)) => Some(socket.access(&entry.identity.id)),
                Some(ServerMemory::Local(_)) | None => None,
            },
        };
        let fd: OwnedFd = socket
            .try_clone()
            .context("cloning the listening socket")?
            .into();
        let mut cmd = tokio::process::Command::new(&program.program);
        cmd.args(&program.args)
            .env(CHILD_ENV, serde_json::to_string(&config)?)
            // mimalloc commits whole arenas up front by default: ~7 MB per idle server process
            // instead of ~1.4 MB (benches/README.md). Harmless for other allocators.
            .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
            .stdin(Stdio::piped())
            // Acknowledgements of fault changes (see `child`).
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        cmd.fd_mappings(vec![FdMapping {
            parent_fd: fd,
            child_fd: LISTEN_FD,
        }])?;
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", program.program.display()))?;
        let stdin = child.stdin.take().context("child has no stdin")?;
        let stdout = child.stdout.take().context("child has no stdout")?;
        let forwarder = tokio::spawn(forward_faults(entry.clone(), stdin, stdout));
        Ok(Instance::Process { child, forwarder })
    }
}

/// Writes every fault change to a server process's stdin as a JSON line, and notes the
/// revisions the process says it has applied (`applied N` lines on its stdout).
async fn forward_faults(
    entry: Arc<Entry>,
    mut stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
) {
    let mut faults = entry.faults.subscribe();
    let mut acks = BufReader::new(stdout).lines();
    let (mut faults_open, mut acks_open, mut send) = (true, true, true);
    loop {
        if send {
            let current: Faults = *faults.borrow_and_update();
            let Ok(line) = serde_json::to_string(&current) else {
                return;
            };
            if stdin
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
        send = false;
        tokio::select! {
            changed = faults.changed(), if faults_open => match changed {
                Ok(()) => send = true,
                // The fleet is gone: stdin stays open until this task is aborted.
                Err(_) => faults_open = false,
            },
            line = acks.next_line(), if acks_open => match line {
                Ok(Some(line)) => {
                    if let Some(revision) = crate::control::child::parse_applied(&line) {
                        entry.faults_applied(revision);
                    }
                }
                _ => acks_open = false,
            },
            else => std::future::pending::<()>().await,
        }
    }
}

impl Instance {
    pub fn pid(&self) -> Option<u32> {
        match self {
            Instance::Task { .. } => None,
            Instance::Process { child, .. } => child.id(),
        }
    }

    /// Waits until the instance ends by itself; says how.
    pub async fn wait(&mut self) -> String {
        match self {
            Instance::Task { handle, .. } => match handle.await {
                Ok(()) => "server task ended".into(),
                Err(e) => format!("server task failed: {e}"),
            },
            Instance::Process { child, .. } => match child.wait().await {
                Ok(status) => format!("process {status}"),
                Err(e) => format!("waiting for process failed: {e}"),
            },
        }
    }

    /// Ends the instance at once, dropping its connections.
    pub async fn kill(self) {
        match self {
            Instance::Task { handle, .. } => {
                handle.abort();
                let _ = handle.await;
            }
            Instance::Process {
                mut child,
                forwarder,
            } => {
                forwarder.abort();
                kill_now(&mut child).await;
            }
        }
    }

    /// Stops gracefully: in-flight requests finish (bounded by [`GRACE`]).
    pub async fn stop(self) {
        match self {
            Instance::Task { handle, stop } => {
                stop.cancel();
                let _ = handle.await;
            }
            Instance::Process {
                mut child,
                forwarder,
            } => {
                forwarder.abort();
                let _ = forwarder.await;
                let grace = GRACE + std::time::Duration::from_secs(1);
                if tokio::time::timeout(grace, child.wait()).await.is_err() {
                    kill_now(&mut child).await;
                }
            }
        }
    }
}

/// SIGKILL to a server process, then reaps it.
async fn kill_now(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}
