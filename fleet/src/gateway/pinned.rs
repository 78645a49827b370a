//! The pinned face, `/mcp/{server-id}`: a client talks to one server through the gateway;
//! requests, sessions and streams pass through unchanged.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, Method, StatusCode},
    response::Response,
};

use super::{
    reply::{jsonrpc_error, relay, request_id, upstream_failed},
    routing::Gateway,
};

/// `/mcp/{server}`: everything passes through to that server.
pub(super) async fn pinned(
    State(gw): State<Gateway>,
    Path(server): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(backend) = gw.backend(&server) else {
        return jsonrpc_error(
            StatusCode::NOT_FOUND,
            request_id(&body),
            -32001,
            &format!("no server named {server:?} behind this gateway"),
        );
    };
    match gw
        .upstream
        .send(&backend, "/mcp", method, &headers, body.clone())
        .await
    {
        Ok(response) => relay(&backend.id, response, &body)
            .await
            .unwrap_or_else(|bad| bad),
        Err(e) => upstream_failed(&backend.id, e, &body),
    }
}
