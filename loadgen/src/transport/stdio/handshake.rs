//! Opening one stdio server process before it is measured: `server/discover` for a
//! 2026-07-28 server (which needs no other handshake), else `initialize` and
//! `notifications/initialized`, after which calls are sent in the version the server
//! negotiated, which may be older than the one asked for.

use std::time::Duration;

use serde_json::json;

use super::process::Process;
use crate::mcp::{self, Call, ErrorClass, Incoming, Version};

/// The version a session-era handshake asks for; the server may answer with an older one.
const SESSION_ASK: Version = Version::V2025_11_25;

/// Opens `process` in the version asked for (`None`: discover first, `initialize` when the
/// server does not know it). Gives the version to send calls in.
pub async fn open(
    process: &Process,
    asked: Option<Version>,
    timeout: Duration,
) -> Result<Version, ErrorClass> {
    match asked {
        Some(v) if v.is_stateless() => discover(process, timeout).await.map(|()| v),
        Some(v) => initialize(process, v, timeout).await,
        None => match discover(process, timeout).await {
            Ok(()) => Ok(Version::V2026_07_28),
            Err(ErrorClass::Exited) => Err(ErrorClass::Exited),
            // An error answer, or none at all: a server of an older era.
            Err(_) => initialize(process, SESSION_ASK, timeout).await,
        },
    }
}

async fn discover(process: &Process, timeout: Duration) -> Result<(), ErrorClass> {
    let id = process.next_id();
    let discover = Call::new("server/discover", None, json!({}));
    let text = process
        .exchange(discover.body(id, Version::V2026_07_28), id, timeout)
        .await?;
    match mcp::sort_message(&text, id, &mut Default::default()) {
        Incoming::Answer(verdict) => verdict,
        Incoming::Reply(_) | Incoming::Skip => Err(ErrorClass::Protocol),
    }
}

async fn initialize(
    process: &Process,
    version: Version,
    timeout: Duration,
) -> Result<Version, ErrorClass> {
    let id = process.next_id();
    let text = process
        .exchange(mcp::initialize_body(id, version), id, timeout)
        .await?;
    let negotiated = mcp::negotiated_version(&text, id)?;
    process.notify(mcp::INITIALIZED).await?;
    Ok(negotiated)
}
