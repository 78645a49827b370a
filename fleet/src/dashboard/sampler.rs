//! Turns the fleet's counters into a [`Frame`] once a tick: each server's and group's requests,
//! errors and latency over the last few seconds (from differences of the lifetime totals the
//! registry keeps), the gateway's pools and the memory. One sampler serves every viewer, so the
//! cost does not grow with them.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use super::frame::{
    Frame, GatewayGroup, GatewayPanel, GroupNow, GroupPoint, GroupSeries, History, MemoryPanel,
    ServerColumns,
};
use crate::{
    gateway::Gateway,
    histogram,
    memory::MemoryHandle,
    serve::registry::{Faults, Registry, ServerState, Traffic},
    spec::Isolation,
};

/// Ticks the rates and quantiles are taken over: long enough to smooth process-mode servers,
/// whose counters reach the supervisor with each health probe, short enough to show a fault.
const WINDOW_TICKS: usize = 5;
/// Points kept per group series: ten minutes at one a second.
pub(super) const SERIES_POINTS: usize = 600;

/// What the dashboard shows.
#[derive(Clone)]
pub struct Sources {
    pub registry: Arc<Registry>,
    pub isolation: Isolation,
    pub memory: Option<MemoryHandle>,
    pub gateway: Option<Gateway>,
}

/// A value at each of the last ticks, oldest first.
#[derive(Debug)]
struct Window<T>(VecDeque<(Instant, T)>);

impl<T> Default for Window<T> {
    fn default() -> Self {
        Self(VecDeque::with_capacity(WINDOW_TICKS + 1))
    }
}

impl<T> Window<T> {
    /// Adds `value` at `now` and returns the oldest value kept and the seconds since it.
    fn push(&mut self, now: Instant, value: T) -> (&T, f64) {
        if self.0.len() > WINDOW_TICKS {
            self.0.pop_front();
        }
        self.0.push_back((now, value));
        let (at, oldest) = &self.0[0];
        (oldest, now.duration_since(*at).as_secs_f64())
    }
}

/// Per second over `span` seconds (0 before there is a span).
fn per_second(delta: u64, span: f64) -> f64 {
    if span > 0.0 { delta as f64 / span } else { 0.0 }
}

fn ms(us: Option<f64>) -> Option<f64> {
    us.map(|us| (us / 10.0).round() / 100.0)
}

/// The state a cell shows: the lifecycle state, except that a server with requests held or
/// latency added says so.
fn shown_state(state: ServerState, faults: &Faults) -> &'static str {
    match state {
        ServerState::Healthy | ServerState::Unhealthy if faults.paused => "paused",
        ServerState::Healthy if faults.added_latency_ms > 0 => "faulted",
        ServerState::Healthy => "healthy",
        ServerState::Unhealthy => "unhealthy",
        ServerState::Starting => "starting",
        ServerState::Restarting => "restarting",
        ServerState::Stopped => "stopped",
    }
}

/// The most recent state other than healthy that a server entered after `since_ms`.
fn trouble_since(
    transitions: &std::collections::VecDeque<crate::serve::registry::Transition>,
    since_ms: u64,
) -> Option<ServerState> {
    transitions
        .iter()
        .rev()
        .take_while(|t| t.at_ms > since_ms)
        .find(|t| t.state != ServerState::Healthy)
        .map(|t| t.state)
}

/// A group's sums while a frame is built.
#[derive(Default)]
struct GroupSums {
    servers: usize,
    healthy: usize,
    errors: u64,
    latency: histogram::Snapshot,
}

/// The sampler's memory between ticks.
pub(super) struct Sampler {
    sources: Sources,
    ticks: Window<()>,
    servers: HashMap<String, Window<Traffic>>,
    gateway_calls: Window<Vec<(String, u64, u64)>>,
    memory_writes: Window<u64>,
    series: Vec<GroupSeries>,
    /// When the last frame was made (ms since the Unix epoch).
    last_ms: u64,
}

impl Sampler {
    pub(super) fn new(sources: Sources) -> Self {
        Self {
            sources,
            ticks: Window::default(),
            servers: HashMap::new(),
            gateway_calls: Window::default(),
            memory_writes: Window::default(),
            series: Vec::new(),
            last_ms: 0,
        }
    }

    /// Each group's recent points.
    pub(super) fn history(&self) -> History {
        History {
            groups: self.series.clone(),
        }
    }

    /// Samples everything now.
    pub(super) fn tick(&mut self, now: Instant, at_ms: u64) -> Frame {
        let (_, span) = self.ticks.push(now, ());
        let entries = self.sources.registry.entries();
        let mut cols = ServerColumns::default();
        let mut names: Vec<&str> = Vec::new();
        let mut sums: Vec<GroupSums> = Vec::new();
        let mut windows = HashMap::with_capacity(entries.len());
        for e in entries.iter() {
            let group = e.identity.group.as_str();
            let gi = match names.iter().position(|n| *n == group) {
                Some(i) => i,
                None => {
                    names.push(group);
                    sums.push(GroupSums::default());
                    names.len() - 1
                }
            };
            let (state, between, restarts, uptime) = {
                let l = e.lifecycle();
                let up = !matches!(l.state, ServerState::Stopped | ServerState::Restarting);
                let uptime = if up {
                    l.started_at.elapsed().as_secs()
                } else {
                    0
                };
                (
                    l.state,
                    trouble_since(&l.health.transitions, self.last_ms),
                    l.restarts,
                    uptime,
                )
            };
            let faults = *e.faults.borrow();
            // A server back to healthy since the last frame (a task-mode restart takes tens of
            // milliseconds) shows what it went through for one frame, or no one would see it.
            let shown = match between {
                Some(went) if state == ServerState::Healthy => {
                    shown_state(went, &Faults::default())
                }
                _ => shown_state(state, &faults),
            };
            let (counters, traffic) = e.counts();
            let mut window = self.servers.remove(&e.identity.id).unwrap_or_default();
            let (oldest, server_span) = window.push(now, traffic);
            let latency = traffic.latency.since(&oldest.latency);
            let errors = traffic.errors.saturating_sub(oldest.errors);
            windows.insert(e.identity.id.clone(), window);

            let sum = &mut sums[gi];
            sum.servers += 1;
            sum.healthy += usize::from(state == ServerState::Healthy);
            sum.errors += errors;
            sum.latency.add(&latency);

            cols.id.push(e.identity.id.clone());
            cols.group.push(u16::try_from(gi).unwrap_or(u16::MAX));
            cols.state.push(shown);
            cols.rps.push(per_second(latency.count, server_span));
            cols.eps.push(per_second(errors, server_span));
            cols.p50_ms.push(ms(latency.quantile_us(0.5)));
            cols.p99_ms.push(ms(latency.quantile_us(0.99)));
            cols.connections.push(counters.open_connections);
            cols.sessions.push(counters.open_sessions);
            cols.restarts.push(restarts);
            cols.uptime_s.push(uptime);
        }
        // Servers that left are forgotten with their windows.
        self.servers = windows;
        self.last_ms = at_ms;

        let groups: Vec<GroupNow> = names
            .iter()
            .zip(&sums)
            .map(|(name, s)| GroupNow {
                name: (*name).to_string(),
                servers: s.servers,
                healthy: s.healthy,
                point: GroupPoint {
                    at_ms,
                    rps: per_second(s.latency.count, span),
                    error_rate: if s.latency.count == 0 {
                        0.0
                    } else {
                        s.errors as f64 / s.latency.count as f64
                    },
                    p50_ms: ms(s.latency.quantile_us(0.5)),
                    p99_ms: ms(s.latency.quantile_us(0.99)),
                },
            })
            .collect();
        self.extend_series(&groups);
        Frame {
            at_ms,
            uptime_ms: u64::try_from(self.sources.registry.uptime().as_millis())
                .unwrap_or(u64::MAX),
            isolation: self.sources.isolation.name(),
            window_s: span,
            servers: cols,
            groups,
            gateway: self.gateway_panel(now),
            memory: self.memory_panel(now),
        }
    }

    /// Appends this tick's point to each group's series (a group new since the last tick
    /// starts one).
    fn extend_series(&mut self, groups: &[GroupNow]) {
        for g in groups {
            let series = match self.series.iter_mut().position(|s| s.name == g.name) {
                Some(i) => &mut self.series[i],
                None => {
                    self.series.push(GroupSeries {
                        name: g.name.clone(),
                        points: Vec::new(),
                    });
                    let last = self.series.len() - 1;
                    &mut self.series[last]
                }
            };
            if series.points.len() == SERIES_POINTS {
                series.points.remove(0);
            }
            series.points.push(g.point);
        }
        self.series
            .retain(|s| groups.iter().any(|g| g.name == s.name));
    }

    fn gateway_panel(&mut self, now: Instant) -> Option<GatewayPanel> {
        let gw = self.sources.gateway.as_ref()?;
        let calls = gw.group_calls();
        let backends = gw.backends();
        let (oldest, span) = self.gateway_calls.push(now, calls.clone());
        let groups = calls
            .iter()
            .map(|(name, calls, retries)| {
                let before = oldest.iter().find(|(n, ..)| n == name);
                let (calls0, retries0) = before.map_or((*calls, *retries), |(_, c, r)| (*c, *r));
                let members = backends.get(name).map(Vec::as_slice).unwrap_or_default();
                let out: Vec<&str> = members
                    .iter()
                    .filter(|m| !m.up || m.ejected)
                    .map(|m| m.id.as_str())
                    .collect();
                GatewayGroup {
                    name: name.clone(),
                    members: members.len(),
                    in_rotation: members.len() - out.len(),
                    ejected: members.iter().filter(|m| m.ejected).count(),
                    out: out
                        .iter()
                        .take(GatewayGroup::OUT_LISTED)
                        .map(|s| (*s).to_string())
                        .collect(),
                    ejections_total: members.iter().map(|m| m.ejections_total).sum(),
                    calls_per_s: per_second(calls.saturating_sub(calls0), span),
                    retries_per_s: per_second(retries.saturating_sub(retries0), span),
                    retries_total: *retries,
                }
            })
            .collect();
        Some(GatewayPanel { groups })
    }

    fn memory_panel(&mut self, now: Instant) -> Option<MemoryPanel> {
        let stats = self.sources.memory.as_ref()?.stats();
        let (oldest, span) = self.memory_writes.push(now, stats.ops_acked);
        let writes = stats.ops_acked.saturating_sub(*oldest);
        Some(MemoryPanel {
            version: stats.acked_version,
            committed_version: stats.committed_version,
            writes_per_s: per_second(writes, span),
            uncommitted: stats.acked_version.saturating_sub(stats.committed_version),
            uncommitted_age_ms: stats.uncommitted_age_ms,
            commit_lag_p50_ms: stats.commit_lag.p50_ms,
            commit_lag_p99_ms: stats.commit_lag.p99_ms,
            wal_bytes: stats.wal_bytes,
            poisoned: stats.poisoned,
            node: stats.node,
            peers: stats.peers,
            nodes: stats.nodes,
        })
    }
}

/// How often a frame is made.
pub(super) const TICK: Duration = Duration::from_secs(1);
