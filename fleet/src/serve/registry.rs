//! The registry: one entry per server with its identity, live counters, fault switches and
//! health history. The supervisor, health monitor, admin API and (in task mode) the servers
//! themselves share it; it is the single source of truth for `GET /servers`.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{
    histogram::{self, Histogram},
    profile::Profile,
};

/// Who a server is. `id` is `<group>-<index>` with the index zero-padded to 4 digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub id: String,
    pub group: String,
    pub profile: Profile,
    pub index: u32,
}

impl Identity {
    pub fn new(group: &str, profile: Profile, index: u32) -> Self {
        Self {
            id: format!("{group}-{index:04}"),
            group: group.to_string(),
            profile,
            index,
        }
    }
}

/// Lifecycle state as the admin API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    Starting,
    Healthy,
    Unhealthy,
    Restarting,
    Stopped,
}

/// Counters one instance of a server keeps about its own traffic. In task mode the server
/// updates these directly; in process mode the health monitor copies them from the child's
/// `/healthz`. Each instance gets fresh counters, so late decrements from connections of a
/// killed instance can never corrupt its successor's gauges.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub open_connections: AtomicU64,
    pub open_sessions: AtomicU64,
    /// MCP requests answered with an HTTP error status (>= 400) or abandoned before an answer.
    pub errors: AtomicU64,
    /// Time to answer each MCP request (`/mcp`; not `/healthz`).
    pub latency: Histogram,
}

/// A snapshot of [`Counters`], also the body of `/healthz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    pub requests: u64,
    pub open_connections: u64,
    pub open_sessions: u64,
    #[serde(default)]
    pub errors: u64,
    #[serde(default)]
    pub latency: histogram::Snapshot,
}

impl Counters {
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            open_connections: self.open_connections.load(Ordering::Relaxed),
            open_sessions: self.open_sessions.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
        }
    }

    pub fn store(&self, s: CounterSnapshot) {
        self.requests.store(s.requests, Ordering::Relaxed);
        self.open_connections
            .store(s.open_connections, Ordering::Relaxed);
        self.open_sessions.store(s.open_sessions, Ordering::Relaxed);
        self.errors.store(s.errors, Ordering::Relaxed);
        self.latency.store(&s.latency);
    }
}

/// A server's MCP traffic since it joined the fleet, over all its instances: what the
/// dashboard and `/metrics` turn into rates, error ratios and latency quantiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub requests: u64,
    pub errors: u64,
    pub latency: histogram::Snapshot,
}

impl Traffic {
    /// One instance's traffic, from its counters.
    fn of(c: &CounterSnapshot) -> Self {
        Self {
            requests: c.requests,
            errors: c.errors,
            latency: c.latency,
        }
    }

    fn add(&mut self, other: &Traffic) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latency.add(&other.latency);
    }
}

/// Injected faults for chaos tests. A watch channel so a paused request wakes the moment the
/// server is resumed, and so process-mode children can be told about changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// Requests wait until resumed (the server looks hung, connections stay open).
    pub paused: bool,
    /// Extra delay added before every request is handled.
    pub added_latency_ms: u64,
    /// Bumped by every change, so a running instance can say which change it has applied.
    #[serde(default)]
    pub revision: u64,
}

/// Health probes kept for availability reporting: totals plus the recent state transitions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthHistory {
    pub probes_ok: u64,
    pub probes_failed: u64,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    /// Most recent transitions, oldest first (bounded).
    pub transitions: VecDeque<Transition>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transition {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub state: ServerState,
    pub reason: String,
}

const MAX_TRANSITIONS: usize = 64;

/// Mutable lifecycle facts about one server, guarded by one lock.
#[derive(Debug)]
pub struct Lifecycle {
    pub state: ServerState,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub started_at: Instant,
    pub health: HealthHistory,
}

/// One server of the fleet.
#[derive(Debug)]
pub struct Entry {
    pub identity: Identity,
    /// Port the server is reachable on (resolved, even when the spec asked for an ephemeral one).
    pub port: u16,
    /// Counters of the current instance.
    counters: Mutex<Arc<Counters>>,
    /// Traffic of earlier instances, so the totals survive restarts.
    carried: Mutex<Traffic>,
    pub faults: watch::Sender<Faults>,
    /// The running instance's service, for callers in this process (task mode).
    pub local: Arc<crate::serve::local::Slot>,
    /// The newest [`Faults::revision`] the running instance has applied: a server process
    /// reads changes from a pipe, so a change is in force a moment after it is made.
    faults_applied: watch::Sender<u64>,
    lifecycle: Mutex<Lifecycle>,
    /// Shared by every entry of a registry: bumped on each state change, so followers such as
    /// the gateway react at once instead of polling.
    changes: Arc<watch::Sender<u64>>,
    /// Wakes this server's health monitor when its state changes (one stored permit, so a
    /// change between the monitor's look and its wait is not missed).
    state_changed: tokio::sync::Notify,
}

impl Entry {
    /// An entry whose state changes are announced on `changes` (see [`Registry::changes`]).
    pub fn new(identity: Identity, port: u16, changes: Arc<watch::Sender<u64>>) -> Self {
        Self {
            identity,
            port,
            changes,
            state_changed: tokio::sync::Notify::new(),
            counters: Mutex::default(),
            carried: Mutex::default(),
            faults: watch::channel(Faults::default()).0,
            local: Arc::default(),
            faults_applied: watch::channel(0).0,
            lifecycle: Mutex::new(Lifecycle {
                state: ServerState::Starting,
                pid: None,
                restarts: 0,
                started_at: Instant::now(),
                health: HealthHistory::default(),
            }),
        }
    }

    /// Locks the lifecycle; a poisoned lock is recovered since the data stays consistent
    /// (every writer sets whole fields).
    pub fn lifecycle(&self) -> MutexGuard<'_, Lifecycle> {
        self.lifecycle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counters of the current instance.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fresh counters for the next instance, once the current one has ended; its traffic is
    /// carried over into the server's totals.
    pub fn new_instance_counters(&self) -> Arc<Counters> {
        let mut current = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let ended = Traffic::of(&current.snapshot());
        self.carried
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(&ended);
        *current = Arc::default();
        current.clone()
    }

    /// This server's traffic over all its instances.
    pub fn traffic(&self) -> Traffic {
        self.counts().1
    }

    /// The current instance's counters and the server's traffic over all its instances, read
    /// once.
    pub fn counts(&self) -> (CounterSnapshot, Traffic) {
        // Under the counters' lock, as an instance's end is carried over, so it counts once.
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let current = counters.snapshot();
        let mut total = *self.carried.lock().unwrap_or_else(|e| e.into_inner());
        total.add(&Traffic::of(&current));
        (current, total)
    }

    /// Moves to `state`, recording the transition when it is one.
    pub fn set_state(&self, state: ServerState, reason: impl Into<String>) {
        let mut l = self.lifecycle();
        if l.state == state {
            return;
        }
        l.state = state;
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let t = &mut l.health.transitions;
        if t.len() == MAX_TRANSITIONS {
            t.pop_front();
        }
        t.push_back(Transition {
            at_ms,
            state,
            reason: reason.into(),
        });
        drop(l);
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        self.state_changed.notify_one();
    }

    /// Completes at the next state change (or at once if one happened since the last call).
    /// For the one task that watches this server, its health monitor.
    pub async fn state_changed(&self) {
        self.state_changed.notified().await;
    }

    pub fn state(&self) -> ServerState {
        self.lifecycle().state
    }

    /// Changes the injected faults and waits (at most `within`) until the running instance
    /// has applied the change ([`ServerView::faults_applied`] then says whether it has). A
    /// server that is down never does, and its next instance starts without faults.
    pub async fn set_faults(&self, change: impl FnOnce(&mut Faults), within: Duration) {
        let mut applied = self.faults_applied.subscribe();
        let mut revision = 0;
        self.faults.send_modify(|f| {
            change(f);
            f.revision += 1;
            revision = f.revision;
        });
        let _ = tokio::time::timeout(within, applied.wait_for(|r| *r >= revision)).await;
    }

    /// Clears every fault (a fresh instance is neither hung nor slowed), keeping revisions
    /// increasing.
    pub fn clear_faults(&self) {
        self.faults.send_modify(|f| {
            *f = Faults {
                revision: f.revision + 1,
                ..Faults::default()
            };
        });
    }

    /// Notes that the running instance has applied the faults of `revision`.
    pub fn faults_applied(&self, revision: u64) {
        self.faults_applied.send_if_modified(|r| {
            let newer = revision > *r;
            if newer {
                *r = revision;
            }
            newer
        });
    }

    /// The row `GET /servers` returns for this server.
    pub fn view(&self) -> ServerView {
        self.view_and_traffic().0
    }

    /// [`Entry::view`], and the traffic it was made from (with the latency `/metrics` sums).
    pub fn view_and_traffic(&self) -> (ServerView, Traffic) {
        let (c, traffic) = self.counts();
        let l = self.lifecycle();
        let probes = l.health.probes_ok + l.health.probes_failed;
        let view = ServerView {
            id: self.identity.id.clone(),
            group: self.identity.group.clone(),
            profile: self.identity.profile,
            port: self.port,
            pid: l.pid,
            state: l.state,
            restarts: l.restarts,
            uptime_ms: match l.state {
                ServerState::Stopped | ServerState::Restarting => 0,
                _ => l.started_at.elapsed().as_millis() as u64,
            },
            requests: traffic.requests,
            errors: traffic.errors,
            open_connections: c.open_connections,
            open_sessions: c.open_sessions,
            probes_ok: l.health.probes_ok,
            probes_failed: l.health.probes_failed,
            availability: if probes == 0 {
                None
            } else {
                Some(l.health.probes_ok as f64 / probes as f64)
            },
            last_error: l.health.last_error.clone(),
            faults: *self.faults.borrow(),
            faults_applied: *self.faults_applied.borrow() >= self.faults.borrow().revision,
        };
        (view, traffic)
    }
}

/// The JSON row of `GET /servers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerView {
    pub id: String,
    pub group: String,
    pub profile: Profile,
    pub port: u16,
    pub pid: Option<u32>,
    pub state: ServerState,
    pub restarts: u32,
    pub uptime_ms: u64,
    pub requests: u64,
    /// MCP requests answered with an HTTP error status or abandoned before an answer.
    #[serde(default)]
    pub errors: u64,
    pub open_connections: u64,
    pub open_sessions: u64,
    pub probes_ok: u64,
    pub probes_failed: u64,
    /// Share of health probes that succeeded since start (None before the first probe).
    pub availability: Option<f64>,
    pub last_error: Option<String>,
    pub faults: Faults,
    /// Whether the running instance has applied `faults` (false for a moment after a change,
    /// and while the server is down).
    #[serde(default)]
    pub faults_applied: bool,
}

/// All servers, in spec order (by group, then index). Servers join and leave at runtime
/// (`fleet scale`); readers take a snapshot ([`Registry::entries`]) and followers subscribe to
/// changes ([`Registry::subscribe`]).
#[derive(Debug)]
pub struct Registry {
    entries: std::sync::RwLock<Arc<[Arc<Entry>]>>,
    /// Group names in spec order, which keeps entries sorted after additions.
    group_order: Vec<String>,
    pub started: Option<Instant>,
    changes: Arc<watch::Sender<u64>>,
    /// Traffic of servers that left, by group: a group's totals in `/metrics` must not fall
    /// when it shrinks (Prometheus would read a counter reset).
    departed: Mutex<std::collections::BTreeMap<String, Traffic>>,
}

impl Registry {
    /// An empty registry; `group_order` names the groups in spec order. Servers join with
    /// [`Registry::update`], as entries made with [`Registry::changes`].
    pub fn new(group_order: Vec<String>) -> Self {
        Self {
            entries: std::sync::RwLock::new(Arc::from(Vec::new())),
            group_order,
            started: Some(Instant::now()),
            changes: Arc::new(watch::channel(0).0),
            departed: Mutex::default(),
        }
    }

    /// The channel this registry's entries must be made with.
    pub fn changes(&self) -> Arc<watch::Sender<u64>> {
        self.changes.clone()
    }

    /// Wakes whenever a server changes state, joins or leaves (the value is a change counter).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The servers right now (a snapshot: cheap to take, unaffected by later changes).
    pub fn entries(&self) -> Arc<[Arc<Entry>]> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.entries().iter().find(|e| e.identity.id == id).cloned()
    }

    /// Adds `joining` (each replacing any server with its id) and drops the servers named in
    /// `leaving`, as one change subscribers see at once.
    pub fn update(&self, joining: Vec<Arc<Entry>>, leaving: &[&str]) {
        {
            let mut departed = self.departed.lock().unwrap_or_else(|e| e.into_inner());
            for e in self.entries().iter() {
                if leaving.contains(&e.identity.id.as_str()) {
                    departed
                        .entry(e.identity.group.clone())
                        .or_default()
                        .add(&e.traffic());
                }
            }
        }
        let mut all: Vec<Arc<Entry>> = self
            .entries()
            .iter()
            .filter(|e| {
                let id = e.identity.id.as_str();
                !leaving.contains(&id) && !joining.iter().any(|j| j.identity.id == id)
            })
            .cloned()
            .collect();
        all.extend(joining);
        self.replace(all);
    }

    fn replace(&self, mut all: Vec<Arc<Entry>>) {
        let rank = |group: &str| {
            self.group_order
                .iter()
                .position(|g| g == group)
                .unwrap_or(usize::MAX)
        };
        all.sort_by(|a, b| {
            (rank(&a.identity.group), &a.identity.group, a.identity.index).cmp(&(
                rank(&b.identity.group),
                &b.identity.group,
                b.identity.index,
            ))
        });
        *self.entries.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(all);
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The traffic of servers of `group` that have left the fleet.
    pub fn departed(&self, group: &str) -> Traffic {
        self.departed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(group)
            .copied()
            .unwrap_or_default()
    }

    pub fn healthy(&self) -> usize {
        self.entries()
            .iter()
            .filter(|e| e.state() == ServerState::Healthy)
            .count()
    }

    pub fn uptime(&self) -> Duration {
        self.started.map_or(Duration::ZERO, |s| s.elapsed())
    }
}
