//! One request to one member, in the era the member speaks. Members are asked statelessly
//! (2026-07-28) until one refuses that era; from then on its requests go over sessions the
//! gateway holds on it ([`super::upstream_session`]). A refusal is confirmed with a `server/discover`
//! of the gateway's own before anything changes (a client's malformed request can draw a 400
//! as well), and what a member speaks is forgotten when it goes down or leaves: its next
//! instance may speak otherwise.

use std::sync::{Arc, atomic::Ordering};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};

use super::{
    backend::Backend,
    eras::Speaks,
    restate,
    routing::Gateway,
    upstream::{self, UpstreamError},
};
use crate::wire;

/// The JSON-RPC id of the gateway's own `server/discover`.
const DISCOVER_ID: u64 = 1;

/// Sends a stateless request (`headers`, `body`) to `backend` at `/mcp`: as it is, or in a
/// session held on the member when it speaks only the session eras. A JSON answer arrives read
/// whole, an event stream streams (as [`upstream::Upstream::send`]). The table is read only
/// once some member speaks sessions, or on a 400 that may be a refusal of the era, so a fleet
/// of stateless members pays nothing for it.
pub(super) async fn send(
    gw: &Gateway,
    backend: &Backend,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response<Body>, UpstreamError> {
    let known = if gw.eras.any_sessions.load(Ordering::Relaxed) {
        gw.eras.get(&backend.id)
    } else {
        None
    };
    // The paths besides a plain stateless call are boxed: held inline they would make every
    // call's future (copied about as it moves) their size.
    if let Some(Speaks::Sessions(sessions)) = &known {
        return Box::pin(sessions.send(&gw.upstream, backend, headers, body)).await;
    }
    let response = gw
        .upstream
        .send(backend, "/mcp", Method::POST, headers, body.clone())
        .await?;
    if response.status() != StatusCode::BAD_REQUEST || !upstream::is_json(response.headers()) {
        return Ok(response);
    }
    Box::pin(after_bad_request(gw, backend, headers, body, response)).await
}

/// A stateless request answered 400: passed on, unless the answer refuses the era and the
/// member, asked, says it speaks only the session eras; then sent again in a session.
async fn after_bad_request(
    gw: &Gateway,
    backend: &Backend,
    headers: &HeaderMap,
    body: &Bytes,
    response: Response<Body>,
) -> Result<Response<Body>, UpstreamError> {
    let (parts, answer) = response.into_parts();
    let answer = gw.upstream.read(answer).await?;
    let response = Response::from_parts(parts, Body::from(answer.clone()));
    if !wire::refuses_stateless(400, &String::from_utf8_lossy(&answer))
        || matches!(gw.eras.get(&backend.id), Some(Speaks::Stateless))
    {
        return Ok(response);
    }
    match ask(gw, backend).await {
        Some(Speaks::Sessions(sessions)) => {
            sessions.send(&gw.upstream, backend, headers, body).await
        }
        _ => Ok(response),
    }
}

/// Asks `backend` which era it speaks with a `server/discover` of the gateway's own, and
/// records the answer. `None` when the member could not say (unreachable, broken answer).
async fn ask(gw: &Gateway, backend: &Backend) -> Option<Speaks> {
    let headers = restate::stateless_headers("server/discover");
    let body = wire::stateless_request(DISCOVER_ID, "server/discover").to_string();
    let response = gw
        .upstream
        .send_whole(backend, "/mcp", Method::POST, &headers, Bytes::from(body))
        .await
        .ok()?;
    let status = response.status();
    let answer = gw.upstream.read(response.into_body()).await.ok()?;
    let answer = String::from_utf8_lossy(&answer);
    let speaks = if wire::refuses_stateless(status.as_u16(), &answer) {
        tracing::info!(
            server = %backend.id,
            "speaks only the session eras: the gateway calls it over sessions it holds"
        );
        Speaks::Sessions(Arc::default())
    } else if status.is_success()
        && wire::message_with_id(&answer, DISCOVER_ID).is_some_and(|m| m.get("result").is_some())
    {
        Speaks::Stateless
    } else {
        return None;
    };
    Some(gw.eras.learn(&backend.id, speaks))
}
