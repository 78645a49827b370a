//! The chaos scenario: load runs (through the gateway when the fleet has one) while a share of
//! the servers is killed, paused or slowed through the fleet's admin API; then, per fault, when
//! the fleet noticed (the server's state history), when the gateway took the server out of
//! rotation (its `/backends`) and when the server was healthy again. The client side, success
//! rate and failures by class, is the load's own result.
//!
//! Every time is taken against the wall clock of this machine, which the fleet shares (chaos
//! needs the admin API, which answers on loopback only).

use std::{
    fmt,
    str::FromStr,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context as _;
use fleet::{
    admin::{FleetView, HistoryView},
    gateway::BackendsView,
    registry::State as ServerState,
};
use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::runfile::FaultRecord;

/// Faults happen within this share of the measured window, so the rest shows the recovery.
pub const INJECT_WITHIN: f64 = 0.6;
/// How long, after the load, loadgen waits for faulted servers to be healthy again.
pub const RECOVERY_WAIT: Duration = Duration::from_secs(15);
const DEFAULT_PAUSE: Duration = Duration::from_secs(2);
const DEFAULT_SLOW: Duration = Duration::from_secs(5);
/// Admin API requests are quick; a hung admin API must not hang the run.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What one fault does to a server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// SIGKILL (process mode) or abort (task mode); the supervisor restarts the server.
    Kill,
    /// The server stops answering for `lasting`, then resumes (unless restarted before).
    Pause { lasting: Duration },
    /// `ms` added to every request for `lasting`.
    Slow { ms: u64, lasting: Duration },
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Pause { .. } => "pause",
            Action::Slow { .. } => "slow",
        }
    }

    fn lasting(self) -> Option<Duration> {
        match self {
            Action::Kill => None,
            Action::Pause { lasting } | Action::Slow { lasting, .. } => Some(lasting),
        }
    }
}

/// How many servers a fault spec takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Share {
    Percent(f64),
    Count(usize),
}

impl Share {
    /// Servers out of `n`; a positive percentage takes at least one.
    pub fn of(self, n: usize) -> usize {
        match self {
            Share::Count(c) => c,
            Share::Percent(p) => ((n as f64 * p / 100.0).round() as usize).max(1),
        }
    }
}

/// One `--chaos` value: `kill:10%`, `pause:5%:2s`, `slow:3:200:5s`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub action: Action,
    pub share: Share,
    text: String,
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let usage = "expected kill:SHARE, pause:SHARE[:FOR] or slow:SHARE:MS[:FOR] (SHARE as 10% \
                     or a count)";
        let share = |p: &str| -> Result<Share, String> {
            if let Some(pct) = p.strip_suffix('%') {
                match pct.parse::<f64>() {
                    Ok(v) if v > 0.0 && v <= 100.0 => Ok(Share::Percent(v)),
                    _ => Err(format!(
                        "`{s}`: share `{p}` is not a percentage in (0, 100]"
                    )),
                }
            } else {
                match p.parse::<usize>() {
                    Ok(n) if n > 0 => Ok(Share::Count(n)),
                    _ => Err(format!(
                        "`{s}`: share `{p}` is neither N% nor a positive count"
                    )),
                }
            }
        };
        let lasting = |p: Option<&&str>, default: Duration| -> Result<Duration, String> {
            match p {
                None => Ok(default),
                Some(p) => match p
                    .strip_suffix("ms")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .map(Duration::from_millis)
                    .map_or_else(|| crate::cli::span(p), Ok)
                {
                    Ok(d) if !d.is_zero() => Ok(d),
                    Ok(_) => Err(format!("`{s}`: duration `{p}` must be positive")),
                    Err(e) => Err(format!("`{s}`: {e}")),
                },
            }
        };
        let (action, share) = match parts.as_slice() {
            ["kill", sh] => (Action::Kill, share(sh)?),
            ["pause", sh, rest @ ..] if rest.len() <= 1 => (
                Action::Pause {
                    lasting: lasting(rest.first(), DEFAULT_PAUSE)?,
                },
                share(sh)?,
            ),
            ["slow", sh, ms, rest @ ..] if rest.len() <= 1 => {
                let ms = ms
                    .parse::<u64>()
                    .ok()
                    .filter(|m| (1..=600_000).contains(m))
                    .ok_or_else(|| format!("`{s}`: MS `{ms}` is not a whole number 1-600000"))?;
                (
                    Action::Slow {
                        ms,
                        lasting: lasting(rest.first(), DEFAULT_SLOW)?,
                    },
                    share(sh)?,
                )
            }
            _ => return Err(format!("`{s}`: {usage}")),
        };
        Ok(Self {
            action,
            share,
            text: s.trim().to_string(),
        })
    }
}

/// A fault with its server and its time after the measured window begins.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub at: Duration,
    pub server: String,
    pub action: Action,
}

/// Draws distinct servers for the faults (each server at most one) and spreads the faults
/// evenly, in random order, over the first [`INJECT_WITHIN`] of `window`.
pub fn plan(
    specs: &[FaultSpec],
    servers: &[String],
    window: Duration,
    seed: u64,
) -> Result<Vec<Planned>, String> {
    let wanted: usize = specs.iter().map(|s| s.share.of(servers.len())).sum();
    if wanted > servers.len() {
        return Err(format!(
            "the faults ask for {wanted} servers, but there are {} (each server gets at most \
             one fault)",
            servers.len()
        ));
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut pool: Vec<&String> = servers.iter().collect();
    rng.shuffle(&mut pool);
    let mut actions: Vec<Action> = specs
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.action, s.share.of(servers.len())))
        .collect();
    rng.shuffle(&mut actions);
    let span = window.mul_f64(INJECT_WITHIN);
    let n = actions.len();
    Ok(actions
        .into_iter()
        .zip(pool)
        .enumerate()
        .map(|(i, (action, server))| Planned {
            at: span.mul_f64((i as f64 + 0.5) / n as f64),
            server: server.clone(),
            action,
        })
        .collect())
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A client of the fleet's admin API (and of a gateway's `/backends`).
#[derive(Debug, Clone)]
pub struct Admin {
    base: Url,
    http: reqwest::Client,
}

impl Admin {
    pub fn new(base: Url) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(ADMIN_TIMEOUT)
            .no_proxy()
            .build()
            .context("cannot build the admin API client")?;
        Ok(Self { base, http })
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path)
            .with_context(|| format!("admin URL {} + {path}", self.base))
    }

    /// Every server of the fleet, as `GET /servers` lists them.
    pub async fn servers(&self) -> anyhow::Result<FleetView> {
        let url = self.url("/servers")?;
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .with_context(|| format!("cannot reach the fleet admin API at {url}"))?;
        if !resp.status().is_success() {
            anyhow::bail!("{url} answered {}", resp.status());
        }
        resp.json()
            .await
            .with_context(|| format!("{url} did not answer a fleet's server list"))
    }

    async fn history(&self, id: &str) -> anyhow::Result<HistoryView> {
        let url = self.url(&format!("/servers/{id}/history"))?;
        let resp = self.http.get(url.clone()).send().await?;
        if !resp.status().is_success() {
            anyhow::bail!("{url} answered {}", resp.status());
        }
        Ok(resp.json().await?)
    }

    /// Sends one admin command; the error names what the API said.
    async fn post(&self, path: &str, body: Option<serde_json::Value>) -> Result<(), String> {
        let url = self.url(path).map_err(|e| format!("{e:#}"))?;
        let mut req = self.http.post(url.clone());
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                Err(format!("{url}: {status} {}", text.trim()))
            }
            Err(e) => Err(format!("{url}: {e}")),
        }
    }

    /// A gateway's `/backends` (when the load goes through one); `None` when `url` does not
    /// answer one.
    pub async fn gateway_backends(&self, url: &Url) -> Option<BackendsView> {
        let resp = self.http.get(url.clone()).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    async fn inject(&self, server: &str, action: Action) -> Result<(), String> {
        match action {
            Action::Kill => self.post(&format!("/servers/{server}/kill"), None).await,
            Action::Pause { .. } => self.post(&format!("/servers/{server}/pause"), None).await,
            Action::Slow { ms, .. } => {
                let body = serde_json::json!({ "ms": ms });
                self.post(&format!("/servers/{server}/latency"), Some(body))
                    .await
            }
        }
    }

    async fn lift(&self, server: &str, action: Action) -> Result<(), String> {
        match action {
            Action::Kill => Ok(()),
            Action::Pause { .. } => self.post(&format!("/servers/{server}/resume"), None).await,
            Action::Slow { .. } => {
                let body = serde_json::json!({ "ms": 0 });
                self.post(&format!("/servers/{server}/latency"), Some(body))
                    .await
            }
        }
    }
}

/// A fault as it was carried out.
#[derive(Debug, Clone)]
pub struct Injected {
    pub planned: Planned,
    pub at_ms: u64,
    pub at_unix_ms: u64,
    pub lasted_ms: Option<u64>,
    pub error: Option<String>,
}

/// Injects the planned faults at their times after `window_start`, lifting pauses and
/// slow-downs when they are due. Cancelling `stop` injects no more, but still lifts what was
/// injected: no server is left paused.
pub async fn inject(
    admin: Arc<Admin>,
    planned: Vec<Planned>,
    window_start: Instant,
    stop: CancellationToken,
) -> Vec<Injected> {
    let mut lifts = tokio::task::JoinSet::new();
    let mut done = Vec::with_capacity(planned.len());
    for p in planned {
        tokio::select! {
            () = tokio::time::sleep_until((window_start + p.at).into()) => {}
            () = stop.cancelled() => break,
        }
        let now = Instant::now();
        let at_unix_ms = unix_ms(SystemTime::now());
        let error = admin.inject(&p.server, p.action).await.err();
        if let Some(e) = &error {
            eprintln!("chaos: {} {} failed: {e}", p.action.name(), p.server);
        }
        let index = done.len();
        if let (Some(lasting), None) = (p.action.lasting(), &error) {
            let admin = admin.clone();
            let (server, action) = (p.server.clone(), p.action);
            lifts.spawn(async move {
                tokio::time::sleep(lasting).await;
                let lifted = admin.lift(&server, action).await;
                if let Err(e) = &lifted {
                    eprintln!("chaos: lifting {} of {server} failed: {e}", action.name());
                }
                (index, now.elapsed())
            });
        }
        done.push(Injected {
            at_ms: now.saturating_duration_since(window_start).as_millis() as u64,
            at_unix_ms,
            planned: p,
            lasted_ms: None,
            error,
        });
    }
    while let Some(lifted) = lifts.join_next().await {
        if let Ok((index, lasted)) = lifted
            && let Some(d) = done.get_mut(index)
        {
            d.lasted_ms = Some(lasted.as_millis() as u64);
        }
    }
    done
}

/// Waits (up to `wait`) until every server that was killed or paused is healthy again, then
/// reads the histories and the gateway's view, and times each fault. Gives the records and how
/// long it waited.
pub async fn collect(
    admin: &Admin,
    injected: &[Injected],
    gateway: Option<&Url>,
    wait: Duration,
) -> (Vec<FaultRecord>, Duration) {
    let started = Instant::now();
    let must_recover: Vec<&str> = injected
        .iter()
        .filter(|i| i.error.is_none() && !matches!(i.planned.action, Action::Slow { .. }))
        .map(|i| i.planned.server.as_str())
        .collect();
    while started.elapsed() < wait {
        match admin.servers().await {
            Ok(view) => {
                let healthy = view.servers.iter().filter(|s| {
                    must_recover.contains(&s.id.as_str()) && s.state == ServerState::Healthy
                });
                if healthy.count() == must_recover.len() {
                    break;
                }
            }
            Err(e) => eprintln!("chaos: {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waited = started.elapsed();
    let backends = match gateway {
        Some(url) => admin.gateway_backends(url).await,
        None => None,
    };
    let mut records = Vec::with_capacity(injected.len());
    for i in injected {
        let mut r = FaultRecord {
            server: i.planned.server.clone(),
            action: i.planned.action.name().into(),
            at_ms: i.at_ms,
            at_unix_ms: i.at_unix_ms,
            lasted_ms: i.lasted_ms,
            fleet_detect_ms: None,
            gateway_detect_ms: None,
            recovered_ms: None,
            error: i.error.clone(),
        };
        if i.error.is_none() {
            match admin.history(&i.planned.server).await {
                Ok(h) => time_fault(&mut r, &h),
                Err(e) => r.error = Some(format!("history: {e:#}")),
            }
            r.gateway_detect_ms = backends.as_ref().and_then(|b| {
                b.groups
                    .values()
                    .flatten()
                    .find(|m| m.id == r.server)?
                    .taken_out_at_ms
                    .iter()
                    .find(|&&t| t >= r.at_unix_ms)
                    .map(|t| t - r.at_unix_ms)
            });
        }
        records.push(r);
    }
    (records, waited)
}

/// Fills in when the fleet noticed the fault and when the server was healthy again, from its
/// state transitions.
pub fn time_fault(r: &mut FaultRecord, history: &HistoryView) {
    let after: Vec<_> = history
        .transitions
        .iter()
        .filter(|t| t.at_ms >= r.at_unix_ms)
        .collect();
    let down = after.iter().find(|t| t.state != ServerState::Healthy);
    r.fleet_detect_ms = down.map(|t| t.at_ms - r.at_unix_ms);
    r.recovered_ms = match (down, r.action.as_str()) {
        (Some(d), _) => after
            .iter()
            .find(|t| t.at_ms >= d.at_ms && t.state == ServerState::Healthy)
            .map(|t| t.at_ms - r.at_unix_ms),
        // A pause too short for the health monitor to notice ended when it was lifted.
        (None, "pause") => r.lasted_ms,
        (None, _) => None,
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use fleet::registry::Transition;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let k: FaultSpec = "kill:10%".parse().unwrap();
        assert_eq!(k.action, Action::Kill);
        assert_eq!(k.share.of(500), 50);
        assert_eq!(k.to_string(), "kill:10%");
        let p: FaultSpec = "pause:3".parse().unwrap();
        assert_eq!(
            p.action,
            Action::Pause {
                lasting: DEFAULT_PAUSE
            }
        );
        assert_eq!(p.share.of(500), 3);
        let s: FaultSpec = "slow:1%:250:3s".parse().unwrap();
        assert_eq!(
            s.action,
            Action::Slow {
                ms: 250,
                lasting: Duration::from_secs(3)
            }
        );
        assert_eq!(Share::Percent(0.1).of(10), 1, "a share takes at least one");
        let p: FaultSpec = "pause:1:300ms".parse().unwrap();
        assert_eq!(
            p.action,
            Action::Pause {
                lasting: Duration::from_millis(300)
            }
        );
        for (bad, why) in [
            ("", "expected"),
            ("explode:10%", "expected"),
            ("kill", "expected"),
            ("kill:0%", "percentage"),
            ("kill:150%", "percentage"),
            ("kill:x", "count"),
            ("pause:2:0", "positive"),
            ("pause:2:soon", "soon"),
            ("pause:2:0ms", "positive"),
            ("slow:2", "expected"),
            ("slow:2:0", "MS"),
            ("kill:1:2", "expected"),
        ] {
            let err = bad.parse::<FaultSpec>().expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn plans_use_distinct_servers_spread_over_the_window() {
        let servers: Vec<String> = (0..20).map(|i| format!("s-{i:02}")).collect();
        let specs: Vec<FaultSpec> = vec!["kill:25%".parse().unwrap(), "pause:2".parse().unwrap()];
        let window = Duration::from_secs(10);
        let p = plan(&specs, &servers, window, 7).unwrap();
        assert_eq!(p.len(), 7);
        let mut names: Vec<&str> = p.iter().map(|f| f.server.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 7, "each server at most once");
        assert_eq!(p.iter().filter(|f| f.action == Action::Kill).count(), 5);
        assert!(p.windows(2).all(|w| w[0].at < w[1].at));
        assert!(p.iter().all(|f| f.at < window.mul_f64(INJECT_WITHIN)));
        assert_ne!(p, plan(&specs, &servers, window, 8).unwrap(), "seeded");
        let err = plan(&["kill:21".parse().unwrap()], &servers, window, 1).unwrap_err();
        assert!(err.contains("21 servers") && err.contains("20"), "{err}");
    }

    fn transition(at_ms: u64, state: ServerState) -> Transition {
        Transition {
            at_ms,
            state,
            reason: String::new(),
        }
    }

    #[test]
    fn faults_are_timed_from_the_servers_history() {
        let mut r = FaultRecord {
            server: "s".into(),
            action: "kill".into(),
            at_ms: 100,
            at_unix_ms: 10_000,
            lasted_ms: None,
            fleet_detect_ms: None,
            gateway_detect_ms: None,
            recovered_ms: None,
            error: None,
        };
        let history = HistoryView {
            id: "s".into(),
            transitions: vec![
                transition(9_000, ServerState::Healthy),
                transition(10_002, ServerState::Restarting),
                transition(10_015, ServerState::Starting),
                transition(10_040, ServerState::Healthy),
            ],
        };
        time_fault(&mut r, &history);
        assert_eq!(r.fleet_detect_ms, Some(2));
        assert_eq!(r.recovered_ms, Some(40));

        // Never healthy again: no recovery time.
        let mut r2 = r.clone();
        let mut h2 = history.clone();
        h2.transitions.pop();
        time_fault(&mut r2, &h2);
        assert_eq!((r2.fleet_detect_ms, r2.recovered_ms), (Some(2), None));

        // A pause the monitor never noticed recovered when it was lifted.
        let mut p = r.clone();
        p.action = "pause".into();
        p.lasted_ms = Some(2_000);
        time_fault(
            &mut p,
            &HistoryView {
                id: "s".into(),
                transitions: vec![transition(9_000, ServerState::Healthy)],
            },
        );
        assert_eq!((p.fleet_detect_ms, p.recovered_ms), (None, Some(2_000)));
    }
}
