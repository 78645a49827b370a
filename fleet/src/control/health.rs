//! The health monitor: probes every server over the network, exactly as a load balancer would
//! (`GET /healthz`, and every few probes a real MCP `tools/list` round trip), keeps the probe
//! history for availability figures, and asks the supervisor to restart a server after
//! `failures_to_unhealthy` consecutive failures.

use std::{net::IpAddr, sync::Arc, time::Duration};

use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    causes::{self, chain},
    control::supervisor::{Command, Commands},
    serve::registry::{CounterSnapshot, Entry, ServerState},
    spec::{HealthSpec, Isolation},
    wire::{self, Era, Version},
};

/// How often a starting server is probed, so start-up and recovery are noticed within tens of
/// milliseconds rather than a full interval.
const STARTING_PROBE_EVERY: Duration = Duration::from_millis(20);

/// After a failed probe the next comes this soon (at most), so a dead or hung server is
/// confirmed within about `failures_to_unhealthy` probe timeouts instead of as many intervals.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(100);

/// A server still not answering this long after its start counts as failing, so one that never
/// comes up is restarted rather than left starting forever.
const STARTUP_GRACE: Duration = Duration::from_secs(10);

/// How long a probe whose connection was closed unanswered waits before its one retry: a
/// server refusing connections beyond its limits answers them within a quarter second.
const CLOSED_RETRY_AFTER: Duration = Duration::from_millis(300);

/// Protocol era the MCP probe speaks first: the stateless era needs no session to clean up.
pub const PROBE_ERA: Era = Era::Stateless;
/// The JSON-RPC id of the probe's `tools/list`.
const PROBE_ID: u64 = 1;
/// The JSON-RPC id of the `initialize` of a probe in a session.
const INIT_ID: u64 = 0;

/// Probes servers. Cheap to clone (one HTTP client without a connection pool, so the monitor
/// never holds idle connections that would show in the servers' connection counts).
#[derive(Debug, Clone)]
pub struct Prober {
    client: reqwest::Client,
    host: IpAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probe failed")]
    Http(#[from] reqwest::Error),
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("bad MCP answer: {0}")]
    Mcp(String),
    #[error("the server does not speak the stateless era")]
    StatelessRefused,
}

impl Prober {
    pub fn new(host: IpAddr, timeout: Duration) -> Result<Self, reqwest::Error> {
        // Marked, so the servers leave the probes out of their MCP traffic figures.
        let mut marked = reqwest::header::HeaderMap::new();
        marked.insert(
            crate::serve::server::PROBE_HEADER,
            reqwest::header::HeaderValue::from_static("1"),
        );
        let client = reqwest::Client::builder()
            .default_headers(marked)
            .pool_max_idle_per_host(0)
            .tcp_nodelay(true)
            .timeout(timeout)
            .no_proxy()
            .build()?;
        Ok(Self { client, host })
    }

    fn url(&self, port: u16, path: &str) -> String {
        match self.host {
            IpAddr::V4(ip) => format!("http://{ip}:{port}{path}"),
            IpAddr::V6(ip) => format!("http://[{ip}]:{port}{path}"),
        }
    }

    /// `GET /healthz`, returning the server's own counters, or `None` when the server answered
    /// that it is full (HTTP 503: at its connection cap, or its process out of descriptors).
    /// A full server answered, coherently, so it is alive; restarting it would punish it for
    /// its clients' greed and drop every connection it serves.
    pub async fn healthz(&self, port: u16) -> Result<Option<CounterSnapshot>, ProbeError> {
        let resp = send(self.client.get(self.url(port, "/healthz"))).await?;
        if resp.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(ProbeError::Status(resp.status()));
        }
        Ok(Some(resp.json::<CounterSnapshot>().await?))
    }

    /// An MCP `tools/list` round trip in `era`; succeeds when the answer lists at least one
    /// tool. A server that refuses the stateless era (it speaks only the session eras) is asked
    /// again in a session, and `era` remembers that for the next probes.
    pub async fn mcp(&self, port: u16, era: &mut Era) -> Result<usize, ProbeError> {
        if *era == Era::Stateless {
            match self.mcp_stateless(port).await {
                Err(ProbeError::StatelessRefused) => *era = Era::Session,
                other => return other,
            }
        }
        self.mcp_in_session(port).await
    }

    async fn mcp_stateless(&self, port: u16) -> Result<usize, ProbeError> {
        let body = wire::stateless_request(PROBE_ID, "tools/list");
        let resp = send(
            self.client
                .post(self.url(port, "/mcp"))
                .header("accept", wire::ACCEPT_JSON_OR_SSE)
                .header("content-type", "application/json")
                .header(wire::PROTOCOL_VERSION_HEADER, PROBE_ERA.version())
                .header(wire::METHOD_HEADER, "tools/list")
                .json(&body),
        )
        .await?;
        let status = resp.status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            // Full, as for `healthz`.
            return Ok(0);
        }
        let text = resp.text().await?;
        if wire::refuses_stateless(status.as_u16(), &text) {
            return Err(ProbeError::StatelessRefused);
        }
        if !status.is_success() {
            return Err(ProbeError::Status(status));
        }
        listed_tools(&text)
    }

    /// `initialize`, `tools/list` and DELETE, as a session-era client would.
    async fn mcp_in_session(&self, port: u16) -> Result<usize, ProbeError> {
        let url = self.url(port, "/mcp");
        let post = || {
            self.client
                .post(&url)
                .header("accept", wire::ACCEPT_JSON_OR_SSE)
                .header("content-type", "application/json")
        };
        let init =
            send(post().json(&wire::initialize_request(INIT_ID, Version::V2025_11_25))).await?;
        if init.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            // At its session limit (a client filled it): the server answered, coherently, so
            // it is alive; restarting it would punish it for a client's greed.
            return Ok(0);
        }
        if !init.status().is_success() {
            return Err(ProbeError::Status(init.status()));
        }
        let session = init
            .headers()
            .get(wire::SESSION_HEADER)
            .cloned()
            .ok_or_else(|| ProbeError::Mcp("initialize gave no session id".into()))?;
        let answer = wire::message_with_id(&init.text().await?, INIT_ID)
            .ok_or_else(|| ProbeError::Mcp("no answer to initialize".into()))?;
        let version = answer
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| ProbeError::Mcp(format!("initialize failed: {answer}")))?
            .to_string();
        let in_session = |b: reqwest::RequestBuilder| {
            b.header(wire::SESSION_HEADER, session.clone())
                .header(wire::PROTOCOL_VERSION_HEADER, version.as_str())
        };
        let outcome = async {
            in_session(post())
                .body(wire::INITIALIZED_NOTIFICATION)
                .send()
                .await?;
            let list = in_session(post())
                .json(
                    &serde_json::json!({"jsonrpc": "2.0", "id": PROBE_ID, "method": "tools/list"}),
                )
                .send()
                .await?;
            if !list.status().is_success() {
                return Err(ProbeError::Status(list.status()));
            }
            listed_tools(&list.text().await?)
        }
        .await;
        // Ended whatever the outcome, so probes leave no sessions behind; a server that
        // cannot end it expires it.
        let _ = in_session(self.client.delete(&url)).send().await;
        outcome
    }
}

/// Sends a probe's request on a new connection. One closed before any answer is what a server
/// refusing more connections than it can answer at once does (see `serve::limits`): it is sent
/// once more, after the refusals in hand have been answered.
async fn send(request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    let again = request.try_clone();
    match (request.send().await, again) {
        (Err(e), Some(again)) if closed_unanswered(&e) => {
            tokio::time::sleep(CLOSED_RETRY_AFTER).await;
            again.send().await
        }
        (outcome, _) => outcome,
    }
}

/// Whether a request failed because the server closed its connection without answering.
fn closed_unanswered(e: &reqwest::Error) -> bool {
    causes::find::<hyper::Error>(e).is_some_and(hyper::Error::is_incomplete_message)
}

/// The number of tools a `tools/list` answer lists; an error when it lists none.
fn listed_tools(text: &str) -> Result<usize, ProbeError> {
    let message = wire::message_with_id(text, PROBE_ID)
        .ok_or_else(|| ProbeError::Mcp("no JSON-RPC message in the response".into()))?;
    let tools = message
        .pointer("/result/tools")
        .and_then(Value::as_array)
        .ok_or_else(|| ProbeError::Mcp(format!("no result.tools in {message}")))?;
    if tools.is_empty() {
        return Err(ProbeError::Mcp("the server lists no tools".into()));
    }
    Ok(tools.len())
}

/// Slots the fleet's probes are spread over within one interval.
const PHASE_SLOTS: u32 = 97;

/// Where server `index` starts: its first probe's delay within the interval, and its probe
/// count. Both spread the fleet: the probes over the interval instead of 500 at once, and the
/// MCP probes (every `mcp_probe_every`th) over the rounds, since with aligned counts every
/// server's `tools/list` came in the same round, a burst that stalled a loaded 500-server
/// fleet for ~100 ms every `interval * mcp_probe_every` (servers sharing a slot get
/// consecutive counts, so they fall in different rounds).
fn phase(index: u32, interval: Duration) -> (Duration, u64) {
    let slot = index % PHASE_SLOTS;
    (
        interval.mul_f64(f64::from(slot) / f64::from(PHASE_SLOTS)),
        u64::from(index / PHASE_SLOTS),
    )
}

/// The regular probe after the one due `at`: one `interval` later, or as many as it takes to
/// be after `now`. Due times stay on the server's phase however late a probe runs, because
/// waiting an interval from whenever it ran lets the fleet's probes drift together: under
/// load, timers firing late in one batch started their next waits together, and the 500
/// probes came in a burst every interval instead of spread over it (measured: the
/// supervisor's probing in ~0.5 s of each 2 s, stalling a loaded fleet's answers by tens of ms).
fn next_on_phase(at: Instant, interval: Duration, now: Instant) -> Instant {
    let next = at + interval;
    if next > now {
        return next;
    }
    let behind = now.duration_since(next).as_nanos() / interval.as_nanos().max(1);
    next + interval * u32::try_from(behind + 1).unwrap_or(u32::MAX)
}

/// Watches one server until shutdown.
pub(crate) async fn monitor(
    entry: Arc<Entry>,
    prober: Prober,
    spec: HealthSpec,
    isolation: Isolation,
    commands: Commands,
    shutdown: CancellationToken,
) {
    let (offset, mut probes) = phase(entry.identity.index, spec.interval);
    // When the next regular probe is due, on this server's phase; `None` until the server is
    // up and not failing (probes then go at their own pace), and again after.
    let mut regular: Option<Instant> = None;
    // The era the MCP probe speaks: stateless until the server refuses it.
    let mut era = PROBE_ERA;
    loop {
        let state = entry.state();
        let failing = entry.lifecycle().health.consecutive_failures > 0;
        let now = Instant::now();
        let due = match state {
            ServerState::Starting | ServerState::Restarting => {
                regular = None;
                now + STARTING_PROBE_EVERY
            }
            _ if failing => {
                regular = None;
                now + RETRY_AFTER_FAILURE.min(spec.interval)
            }
            _ => *regular.get_or_insert(now + offset),
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(due) => {}
            // Killed or restarted while waiting out a long interval: probe the new instance
            // at the starting pace now, not at the end of the interval.
            () = entry.state_changed() => continue,
        }
        if let Some(at) = regular {
            regular = Some(next_on_phase(at, spec.interval, Instant::now()));
        }
        let state = entry.state();
        if matches!(state, ServerState::Restarting | ServerState::Stopped) {
            continue;
        }
        probes += 1;
        let with_mcp = state == ServerState::Starting
            || probes.is_multiple_of(u64::from(spec.mcp_probe_every));
        // The counters of the instance being probed: if it ends meanwhile, its successor's are
        // fresh ones its figures must not land in (they were carried over already).
        let probed = entry.counters();
        let outcome = probe(&prober, entry.port, with_mcp, &mut era).await;
        if entry.state() != state {
            // The instance changed under the probe (killed, restarted): its result is stale.
            continue;
        }
        match outcome {
            Ok(counters) => {
                if let Some(counters) = counters
                    && isolation == Isolation::Process
                {
                    probed.store(counters);
                }
                {
                    let mut l = entry.lifecycle();
                    l.health.probes_ok += 1;
                    l.health.consecutive_failures = 0;
                }
                entry.set_state(ServerState::Healthy, "probe succeeded");
            }
            Err(e) => {
                // A server that is still starting is not failing, within a grace period.
                if state == ServerState::Starting
                    && entry.lifecycle().started_at.elapsed() < STARTUP_GRACE
                {
                    continue;
                }
                let failures = {
                    let mut l = entry.lifecycle();
                    l.health.probes_failed += 1;
                    l.health.consecutive_failures += 1;
                    l.health.last_error = Some(chain(&e));
                    l.health.consecutive_failures
                };
                // Ask once per incident: a second request could reach the keeper after it has
                // already replaced the instance and kill the fresh one.
                if failures >= spec.failures_to_unhealthy && state != ServerState::Unhealthy {
                    let reason = format!("{failures} failed probes, last: {}", chain(&e));
                    entry.set_state(ServerState::Unhealthy, reason.clone());
                    if commands
                        .send(&entry.identity.id, Command::Restart { reason })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
}

async fn probe(
    prober: &Prober,
    port: u16,
    with_mcp: bool,
    era: &mut Era,
) -> Result<Option<CounterSnapshot>, ProbeError> {
    let counters = prober.healthz(port).await?;
    if with_mcp {
        prober.mcp(port, era).await?;
    }
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_probes_keep_their_phase_when_late() {
        let t0 = Instant::now();
        let s = Duration::from_secs(2);
        let ms = Duration::from_millis;
        // On time, or late by less than an interval: the next is one interval after the due time.
        assert_eq!(next_on_phase(t0, s, t0 + ms(10)), t0 + s);
        assert_eq!(next_on_phase(t0, s, t0 + ms(1999)), t0 + s);
        // Late by more: missed ones are skipped, the phase kept.
        assert_eq!(next_on_phase(t0, s, t0 + s), t0 + 2 * s);
        assert_eq!(next_on_phase(t0, s, t0 + ms(5500)), t0 + 3 * s);
    }

    /// 500 servers, MCP probe every 5th: each round carries about a fifth of the MCP probes,
    /// and within a round they are spread over the interval as the plain probes are.
    #[test]
    fn mcp_probes_are_spread_over_rounds_and_the_interval() {
        let (servers, every, interval) = (500u32, 5u64, Duration::from_secs(2));
        for round in 0..every {
            let mut starts: Vec<Duration> = (0..servers)
                .map(|i| phase(i, interval))
                .filter(|(_, count)| (count + round + 1).is_multiple_of(every))
                .map(|(offset, _)| offset)
                .collect();
            assert!(
                (80..=120).contains(&starts.len()),
                "round {round}: {} MCP probes",
                starts.len()
            );
            starts.sort();
            // No more than two in any one slot of the interval.
            let most_at_once = starts
                .chunk_by(|a, b| a == b)
                .map(<[Duration]>::len)
                .max()
                .unwrap_or(0);
            assert!(most_at_once <= 2, "round {round}: {most_at_once} at once");
        }
    }
}
