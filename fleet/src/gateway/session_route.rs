//! Sessions pinned to one server (`/mcp?group=NAME`): an `initialize` is placed on a member of
//! one group's pool and the server's session id comes back signed into the gateway's own
//! ([`super::session`]); later requests carrying it go to that server with the server's id. A
//! session whose server is gone, or an id the gateway did not issue, is a 404, so the client
//! initializes again and lands on a healthy member.

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, Method, StatusCode},
    response::Response,
};
use serde_json::Value;

use super::{
    forward::{Resend, to_group},
    reply::{jsonrpc_error, relay, request_id, upstream_failed},
    routing::Gateway,
    session::{self, Affinity},
    upstream::UpstreamError,
};
use crate::wire::SESSION_HEADER;

/// 404 with a JSON-RPC error: what the spec tells clients to answer with a new `initialize`.
pub(super) fn session_gone(body: &[u8], why: &str) -> Response {
    jsonrpc_error(
        StatusCode::NOT_FOUND,
        request_id(body),
        -32001,
        &format!("session not found: {why}; send a new initialize"),
    )
}

/// `initialize` on `/mcp?group=NAME`: placed on a member of `group` (none: the first group);
/// the server's session id comes back signed into the gateway's own. Sent once more to another
/// member when the first could not be reached (an `initialize` has no effect worth keeping).
pub(super) async fn start_session(
    gw: &Gateway,
    group: Option<&str>,
    headers: HeaderMap,
    body: Bytes,
    id: Value,
) -> Response {
    let found = match group {
        Some(name) => gw.groups.get_key_value(name),
        None => gw.groups.iter().next(),
    };
    let Some((group_name, group)) = found else {
        let known: Vec<&str> = gw.groups.keys().map(String::as_str).collect();
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32602,
            &format!(
                "no group {:?} behind this gateway (groups: {})",
                group.unwrap_or_default(),
                known.join(", ")
            ),
        );
    };
    match to_group(gw, group_name, group, &headers, &body, &id, Resend::Always).await {
        Ok((server, answer)) => with_gateway_session(gw, &server, answer, &body),
        Err(answer) => answer,
    }
}

/// Passes a server's answer on, its session id (if it sent one) replaced by the gateway's.
fn with_gateway_session(gw: &Gateway, server: &str, mut out: Response, body: &[u8]) -> Response {
    let upstream = out
        .headers()
        .get(SESSION_HEADER)
        .map(|v| v.to_str().map(str::to_string));
    match upstream {
        None => out,
        Some(Ok(upstream)) => {
            let signed = session::issue(&gw.key, &Affinity::new(server, upstream))
                .ok()
                .and_then(|id| HeaderValue::from_str(&id).ok());
            match signed {
                Some(v) => {
                    out.headers_mut().insert(SESSION_HEADER, v);
                    out
                }
                None => jsonrpc_error(
                    StatusCode::BAD_GATEWAY,
                    request_id(body),
                    -32603,
                    &format!("server {server} handed out a session id the gateway cannot carry"),
                ),
            }
        }
        Some(Err(_)) => jsonrpc_error(
            StatusCode::BAD_GATEWAY,
            request_id(body),
            -32603,
            &format!("server {server} handed out a session id that is not visible ASCII"),
        ),
    }
}

/// A request of a session pinned to a server: to that server, with the server's own id. A
/// session whose server is gone is a 404.
pub(super) async fn in_session(
    gw: &Gateway,
    affinity: Affinity,
    method: Method,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(backend) = gw.backend(&affinity.backend) else {
        return session_gone(
            &body,
            &format!("server {} left the fleet", affinity.backend),
        );
    };
    let Ok(upstream_id) = HeaderValue::from_str(&affinity.upstream) else {
        return session_gone(&body, "the session id is not visible ASCII");
    };
    headers.insert(SESSION_HEADER, upstream_id);
    match gw
        .upstream
        .send(&backend, "/mcp", method, &headers, body.clone())
        .await
    {
        Ok(response) => match relay(&backend.id, response, &body).await {
            Ok(answer) => with_gateway_session(gw, &backend.id, answer, &body),
            Err(bad) => bad,
        },
        // Nobody listens where the session lived: the server is down, and its sessions died
        // with it.
        Err(UpstreamError::Connect) => {
            session_gone(&body, &format!("server {} is down", backend.id))
        }
        Err(e) => upstream_failed(&backend.id, e, &body),
    }
}
