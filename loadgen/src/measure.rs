//! The servers to measure ([`Target`]) and the health sweep: one `tools/list` to every server,
//! which also finds out which protocol version each one speaks when `--protocol auto` asks
//! (`server/discover` for 2026-07-28, else `initialize` and the version the server negotiates).

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use futures::StreamExt as _;
use reqwest::Url;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{
    mcp::{Call, ErrorClass, Version},
    mix::Mix,
    transport::{
        client::{Client, Transport},
        http::HttpCall,
        settings::HttpSettings,
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
    /// The version this server is spoken to in: as `--protocol` says, or as the sweep found
    /// (negotiated).
    pub version: Version,
    pub transport: Transport,
}

/// What `--protocol` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProtocolChoice {
    /// Per server: `server/discover` or a stateless `tools/list` (2026-07-28), else
    /// `initialize` asking for 2025-11-25 and speaking the version the server answers with.
    #[default]
    #[value(name = "auto")]
    Auto,
    #[value(name = "2026-07-28")]
    V2026_07_28,
    #[value(name = "2025-11-25")]
    V2025_11_25,
    #[value(name = "2025-06-18")]
    V2025_06_18,
    #[value(name = "2025-03-26")]
    V2025_03_26,
    #[value(name = "2024-11-05")]
    V2024_11_05,
}

impl ProtocolChoice {
    /// The version asked for; `None` for `auto`.
    pub fn version(self) -> Option<Version> {
        match self {
            ProtocolChoice::Auto => None,
            ProtocolChoice::V2026_07_28 => Some(Version::V2026_07_28),
            ProtocolChoice::V2025_11_25 => Some(Version::V2025_11_25),
            ProtocolChoice::V2025_06_18 => Some(Version::V2025_06_18),
            ProtocolChoice::V2025_03_26 => Some(Version::V2025_03_26),
            ProtocolChoice::V2024_11_05 => Some(Version::V2024_11_05),
        }
    }

    pub fn name(self) -> &'static str {
        self.version().map_or("auto", Version::as_str)
    }
}

pub use crate::runfile::{HealthSweep, SweepFailure};

/// Sends one `tools/list` to every target, a few at a time, and sets each target's version to
/// the one it speaks (negotiated; found per server with `--protocol auto`).
pub async fn sweep(
    targets: &mut [Target],
    settings: &Arc<HttpSettings>,
    choice: ProtocolChoice,
    stop: &CancellationToken,
) -> anyhow::Result<HealthSweep> {
    let started = Instant::now();
    let outcomes: Vec<(usize, Result<Found, Failed>)> =
        futures::stream::iter(targets.iter().enumerate())
            .map(|(i, t)| async move { (i, detect(t, settings, choice).await) })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .take_until(stop.cancelled())
            .collect()
            .await;
    let mut protocols = BTreeMap::new();
    let mut versions = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, outcome) in &outcomes {
        let target = &mut targets[*i];
        match outcome {
            Ok((version, transport)) => {
                target.version = *version;
                target.transport = transport.clone();
                *protocols.entry(version.to_string()).or_insert(0) += 1;
                versions.insert(target.id.clone(), version.to_string());
            }
            Err(failed) => failures.push(SweepFailure {
                server: target.id.clone(),
                url: target.url.to_string(),
                error: failed.class,
                status: failed.status,
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
        versions,
    })
}

/// What the sweep found a server speaks, and over what.
type Found = (Version, Transport);

/// Why a server failed the sweep: the class, and the HTTP status of the last answer.
#[derive(Debug, Clone, Copy)]
struct Failed {
    class: ErrorClass,
    status: Option<u16>,
}

impl From<ErrorClass> for Failed {
    fn from(class: ErrorClass) -> Self {
        Failed {
            class,
            status: None,
        }
    }
}

/// The version `target` speaks and what carries it: the version asked for (negotiated by the
/// server for the session versions; 2024-11-05 over legacy SSE), or with `auto` 2026-07-28
/// when it answers `server/discover` (or, lacking it, a stateless `tools/list`), else what
/// `initialize` asking for 2025-11-25 negotiates, else legacy SSE when a `GET` opens an
/// endpoint stream (tried last: streamable servers, the common case, answer before it). Gives
/// the first failure otherwise.
async fn detect(
    target: &Target,
    settings: &Arc<HttpSettings>,
    choice: ProtocolChoice,
) -> Result<Found, Failed> {
    let posts = target.transport.clone();
    // Over HTTP, legacy SSE is the other way a server may be reached; other transports have
    // no alternative.
    let sse = match &posts {
        Transport::StreamableHttp => Some(Transport::LegacySse),
        _ => None,
    };
    match choice.version() {
        Some(Version::V2024_11_05) => {
            let transport = sse.unwrap_or(posts);
            return probe(target, settings, Version::V2024_11_05, transport).await;
        }
        Some(version) => return probe(target, settings, version, posts).await,
        None => {}
    }
    // A stdio server's pool opened it already, in the version it speaks.
    if matches!(target.transport, Transport::Stdio(_)) {
        return probe(target, settings, target.version, posts).await;
    }
    let discover = HttpCall::from(Call::new("server/discover", None, json!({})));
    let mut client = Client::new(&target.url, &posts, Version::V2026_07_28, settings)?;
    let discovered = client.call(&discover, 1).await;
    match discovered.outcome {
        Ok(()) => probe(target, settings, Version::V2026_07_28, posts).await,
        // Nothing there, or nothing in time: initialize will not do better.
        Err(class @ (ErrorClass::Connect | ErrorClass::Timeout)) => Err(class.into()),
        // Credentials needed: initialize will not do better either.
        Err(class) if discovered.status == Some(401) => Err(Failed {
            class,
            status: discovered.status,
        }),
        Err(class) => {
            // Some 2026-07-28 servers (this fleet's among them) answer stateless requests
            // without implementing `server/discover`: a stateless `tools/list` tells.
            let mut tries = vec![
                (Version::V2026_07_28, posts.clone()),
                (Version::V2025_11_25, posts),
            ];
            if let Some(sse) = sse {
                tries.push((Version::V2024_11_05, sse));
            }
            let mut status = discovered.status;
            for (version, transport) in tries {
                let posted = !matches!(transport, Transport::LegacySse);
                match probe(target, settings, version, transport).await {
                    Ok(found) => return Ok(found),
                    // The status that tells most is the POSTs' (a GET is refused by any
                    // streamable server).
                    Err(later) if posted => status = later.status.or(status),
                    Err(_) => {}
                }
            }
            Err(Failed { class, status })
        }
    }
}

/// One `tools/list` in `version` over `transport`; for a session version the session is opened
/// and closed around it, as a client that only looks would do. Gives the version spoken.
async fn probe(
    target: &Target,
    settings: &Arc<HttpSettings>,
    version: Version,
    transport: Transport,
) -> Result<Found, Failed> {
    let mut client = Client::new(&target.url, &transport, version, settings)?;
    let outcome = match client.open().await {
        Ok(()) => client.call(&HttpCall::tools_list(), 1).await.outcome,
        Err(e) => Err(e),
    };
    let status = client.last_status();
    client.close().await;
    outcome
        .map(|()| (client.version(), transport))
        .map_err(|class| Failed { class, status })
}
