//! The servers to measure ([`Target`]) and the health sweep: one `tools/list` to every server,
//! which also finds out which protocol era each one speaks when `--protocol auto` asks.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use reqwest::Url;
use tokio_util::sync::CancellationToken;

use crate::{
    mcp::{Channel, ErrorClass, Protocol},
    mix::Mix,
    transport::{
        conn::Conn,
        http::{self, HttpCall},
    },
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
    /// The era this server is spoken to in: as `--protocol` says, or as the sweep found.
    pub protocol: Protocol,
}

/// What `--protocol` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProtocolChoice {
    /// Try 2026-07-28 first, then 2025-11-25, per server (in the health sweep).
    #[default]
    #[value(name = "auto")]
    Auto,
    #[value(name = "2026-07-28")]
    Stateless,
    #[value(name = "2025-11-25")]
    Session,
}

impl ProtocolChoice {
    pub fn name(self) -> &'static str {
        match self {
            ProtocolChoice::Auto => "auto",
            ProtocolChoice::Stateless => Protocol::Stateless.version(),
            ProtocolChoice::Session => Protocol::Session.version(),
        }
    }
}

pub use crate::runfile::{HealthSweep, SweepFailure};

/// Sends one `tools/list` to every target, a few at a time, and sets each target's protocol
/// to the era it answered in (`--protocol auto`) or to the one asked for.
pub async fn sweep(
    targets: &mut [Target],
    timeout: Duration,
    choice: ProtocolChoice,
    stop: &CancellationToken,
) -> anyhow::Result<HealthSweep> {
    let started = Instant::now();
    let list = HttpCall::tools_list();
    let outcomes: Vec<(usize, Result<Protocol, ErrorClass>)> =
        futures::stream::iter(targets.iter().enumerate())
            .map(|(i, t)| {
                let list = &list;
                async move { (i, detect(&t.url, timeout, list, choice).await) }
            })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .take_until(stop.cancelled())
            .collect()
            .await;
    let mut protocols = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, outcome) in &outcomes {
        let target = &mut targets[*i];
        match outcome {
            Ok(protocol) => {
                target.protocol = *protocol;
                *protocols.entry(protocol.version().to_string()).or_insert(0) += 1;
            }
            Err(error) => failures.push(SweepFailure {
                server: target.id.clone(),
                url: target.url.to_string(),
                error: *error,
            }),
        }
    }
    let ok = outcomes.len() - failures.len();
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
        protocols,
    })
}

/// One `tools/list` in the era asked for; with `auto`, 2026-07-28 first and 2025-11-25 when
/// that is refused. Gives the era the server answered in, or the first failure.
async fn detect(
    url: &Url,
    timeout: Duration,
    list: &HttpCall,
    choice: ProtocolChoice,
) -> Result<Protocol, ErrorClass> {
    let mut conn = Conn::new(url, timeout)?;
    let conn = &mut conn;
    match choice {
        ProtocolChoice::Stateless => probe(conn, list, Protocol::Stateless)
            .await
            .map(|()| Protocol::Stateless),
        ProtocolChoice::Session => probe(conn, list, Protocol::Session)
            .await
            .map(|()| Protocol::Session),
        ProtocolChoice::Auto => match probe(conn, list, Protocol::Stateless).await {
            Ok(()) => Ok(Protocol::Stateless),
            // Nothing there, or nothing in time: the other era will not do better.
            Err(e @ (ErrorClass::Connect | ErrorClass::Timeout)) => Err(e),
            Err(first) => probe(conn, list, Protocol::Session)
                .await
                .map(|()| Protocol::Session)
                .map_err(|_| first),
        },
    }
}

/// One `tools/list` in the given era; in the session era the session is opened and closed
/// around it, as a client that only looks would do.
async fn probe(conn: &mut Conn, list: &HttpCall, protocol: Protocol) -> Result<(), ErrorClass> {
    match protocol {
        Protocol::Stateless => http::send(conn, list, 1, Channel::Stateless).await.outcome,
        Protocol::Session => {
            let session = http::open_session(conn).await?;
            let outcome = http::send(conn, list, 1, Channel::Session(&session))
                .await
                .outcome;
            http::close_session(conn, &session).await;
            outcome
        }
    }
}
