//! The supervisor keeps every server of the fleet running: one keeper task per server starts an
//! instance (a task or a child process), waits for it to exit or be killed, and restarts it with
//! backoff. It also carries out the admin API's and the health monitor's commands.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    control::instance::Launcher,
    serve::registry::{Entry, ServerState},
};

/// What the admin API or the health monitor asks of a server's keeper.
#[derive(Debug, Clone)]
pub enum Command {
    /// Kill the instance abruptly (SIGKILL, or abort in task mode); it is restarted as after
    /// any crash.
    Kill,
    /// Replace the instance, e.g. because it failed its health probes.
    Restart { reason: String },
}

/// Sends commands to keepers by server id; servers join and leave with `fleet scale`.
#[derive(Debug, Clone, Default)]
pub struct Commands {
    senders: Arc<std::sync::RwLock<HashMap<String, mpsc::UnboundedSender<Command>>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no server with id `{0}`")]
    UnknownServer(String),
    #[error("server `{0}` is shutting down")]
    ShuttingDown(String),
}

impl Commands {
    pub fn new(senders: HashMap<String, mpsc::UnboundedSender<Command>>) -> Self {
        Self {
            senders: Arc::new(std::sync::RwLock::new(senders)),
        }
    }

    pub fn send(&self, id: &str, command: Command) -> Result<(), CommandError> {
        let senders = self.senders.read().unwrap_or_else(|e| e.into_inner());
        let sender = senders
            .get(id)
            .ok_or_else(|| CommandError::UnknownServer(id.to_string()))?;
        sender
            .send(command)
            .map_err(|_| CommandError::ShuttingDown(id.to_string()))
    }

    /// Routes commands for `id` to a new keeper.
    pub fn insert(&self, id: String, sender: mpsc::UnboundedSender<Command>) {
        self.senders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, sender);
    }

    /// Forgets a server that left the fleet.
    pub fn remove(&self, id: &str) {
        self.senders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// Restart delays: immediate for a server that ran a while (so recovery is fast), doubling up to
/// a cap for one that keeps dying right after start (so a crash loop does not eat the CPU).
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// An instance that ran this long is considered stable: its next crash restarts immediately.
const STABLE_AFTER: Duration = Duration::from_secs(10);

impl Backoff {
    fn new() -> Self {
        Self {
            next: BACKOFF_FIRST,
        }
    }

    fn delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= STABLE_AFTER {
            self.next = BACKOFF_FIRST;
        }
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d
    }
}

/// Runs one server for the life of the fleet.
pub(crate) async fn keep(
    entry: Arc<Entry>,
    socket: Arc<std::net::TcpListener>,
    launcher: Arc<Launcher>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new();
    loop {
        let mut instance = match launcher.start(&entry, &socket) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(server = %entry.identity.id, "cannot start: {e:#}");
                entry.lifecycle().health.last_error = Some(format!("cannot start: {e:#}"));
                entry.set_state(ServerState::Restarting, format!("start failed: {e}"));
                let delay = backoff.delay(Duration::ZERO);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => continue,
                }
            }
        };
        let started = Instant::now();
        {
            let mut l = entry.lifecycle();
            l.pid = instance.pid();
            l.started_at = started;
            l.health.consecutive_failures = 0;
        }
        entry.set_state(ServerState::Starting, "instance started");
        let reason = tokio::select! {
            () = shutdown.cancelled() => {
                instance.stop().await;
                break;
            }
            exit = instance.wait() => format!("instance exited: {exit}"),
            Some(command) = commands.recv() => {
                instance.kill().await;
                match command {
                    Command::Kill => "killed through the admin API".to_string(),
                    Command::Restart { reason } => reason,
                }
            }
        };
        tracing::warn!(server = %entry.identity.id, "{reason}; restarting");
        // A fresh instance is not hung or slowed: injected faults end with the instance.
        entry.clear_faults();
        {
            let mut l = entry.lifecycle();
            l.pid = None;
            l.restarts += 1;
        }
        // The next instance counts afresh; late decrements from the dead one's connections and
        // sessions land on counters nobody reads any more.
        entry.new_instance_counters();
        entry.set_state(ServerState::Restarting, reason);
        // Drain commands that piled up for the instance that is gone.
        while commands.try_recv().is_ok() {}
        let delay = backoff.delay(started.elapsed());
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    entry.lifecycle().pid = None;
    entry.set_state(ServerState::Stopped, "fleet shut down");
}

/// A group of tasks stopped together (the keepers, or the health monitors): the tracker that
/// waits for them and the token that tells them to stop.
#[derive(Debug, Default)]
pub struct TaskGroup {
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}

impl TaskGroup {
    /// Stops every server gracefully and waits until all have stopped.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_resets_when_stable() {
        let mut b = Backoff::new();
        assert_eq!(b.delay(Duration::ZERO), Duration::from_millis(10));
        assert_eq!(b.delay(Duration::ZERO), Duration::from_millis(20));
        assert_eq!(b.delay(Duration::ZERO), Duration::from_millis(40));
        for _ in 0..20 {
            b.delay(Duration::ZERO);
        }
        assert_eq!(b.delay(Duration::ZERO), BACKOFF_MAX);
        assert_eq!(b.delay(STABLE_AFTER), BACKOFF_FIRST);
    }
}
