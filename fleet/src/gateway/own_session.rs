//! Requests in a session the gateway holds itself (an `initialize` on `/mcp` opened it): POSTs
//! are the federated face's ([`super::federated`]) in the session's version, a GET is the
//! session's stream of `notifications/tools/list_changed`, a DELETE ends it (204; the id is
//! stateless, so there is nothing to forget). The session lives in its signed id, not on a
//! member, so no member's death can end it.

use std::{convert::Infallible, time::Duration};

use axum::{
    body::Bytes,
    http::{HeaderMap, Method, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use serde_json::Value;

use super::{
    federated::{Face, McpQuery, federated},
    reply::{jsonrpc_error, request_id},
    routing::Gateway,
};
use crate::wire::{PROTOCOL_VERSION_HEADER, Version};

/// How often an idle GET stream carries a comment, so proxies and clients keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

const LIST_CHANGED: &str = r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;

/// One request of a session in `version`.
pub(super) async fn serve(
    gw: &Gateway,
    version: Version,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(said) = headers.get(PROTOCOL_VERSION_HEADER) {
        let known = said.to_str().ok().and_then(Version::parse);
        if known.is_none_or(Version::is_stateless) {
            return jsonrpc_error(
                StatusCode::BAD_REQUEST,
                request_id(&body),
                -32600,
                &format!(
                    "MCP-Protocol-Version {said:?} is not a session version (this session speaks {version})"
                ),
            );
        }
    }
    match method {
        Method::POST => {
            federated(
                gw.clone(),
                McpQuery::default(),
                headers,
                body,
                Face::Session(version),
            )
            .await
        }
        Method::GET => list_changed_stream(gw),
        Method::DELETE => StatusCode::NO_CONTENT.into_response(),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, POST, DELETE")],
        )
            .into_response(),
    }
}

/// The session's server stream: `notifications/tools/list_changed` each time servers join or
/// leave, until the client goes or the gateway stops. At most [`super::routing::MAX_STREAMS`]
/// at once; beyond that 503, so streams cannot take every connection.
fn list_changed_stream(gw: &Gateway) -> Response {
    let Ok(permit) = gw.streams.clone().try_acquire_owned() else {
        return jsonrpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            Value::Null,
            -32603,
            "too many open streams; try again later",
        );
    };
    let mut changes = gw.tools_changed.subscribe();
    changes.borrow_and_update();
    let closing = gw.closing.clone();
    let events = futures::stream::unfold(
        (changes, closing, permit),
        |(mut changes, closing, permit)| async move {
            tokio::select! {
                () = closing.cancelled() => None,
                changed = changes.changed() => {
                    changed.ok()?;
                    let event = Event::default().event("message").data(LIST_CHANGED);
                    Some((Ok::<_, Infallible>(event), (changes, closing, permit)))
                }
            }
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
