//! One MCP server of the fleet: an rmcp streamable-HTTP service at `/mcp` (both protocol eras:
//! 2025-11-25 with sessions, 2026-07-28 stateless), `GET /healthz`, and the HTTP layers that
//! count traffic and inject faults. [`app`] builds the router that task mode, process-mode
//! children and tests all serve.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::sync::watch;

use crate::{
    memory::Memory,
    serve::{
        connection::BodyTimedOut,
        handler::McpServer,
        registry::{CounterSnapshot, Counters, Faults, Identity},
        sessions::Sessions,
        timing::Timed,
    },
    spec::ServerSpec,
};

/// State of the HTTP layers in front of the MCP service.
#[derive(Clone)]
struct Edge {
    counters: Arc<Counters>,
    faults: watch::Receiver<Faults>,
}

/// The header the fleet's own health probes carry: their MCP round trips are not traffic.
pub const PROBE_HEADER: &str = "x-mcpfleet-probe";

/// Counts every request and applies injected faults before the request reaches a handler.
/// It sits outermost so `/healthz` is affected exactly like MCP traffic: a paused server looks
/// hung to the health monitor too.
async fn edge(State(edge): State<Edge>, request: Request, next: Next) -> Response {
    edge.counters.requests.fetch_add(1, Ordering::Relaxed);
    // JSON-RPC messages (POSTs; a GET is a stream, not a call) are timed from here, injected
    // faults included: that is what a client sees.
    let timed = (request.method() == Method::POST && !request.headers().contains_key(PROBE_HEADER))
        .then(|| Timed::start(&edge.counters));
    let mut faults = edge.faults.clone();
    let current = *faults.borrow_and_update();
    if current.paused {
        // Wait for resume (or for the instance to be replaced, which drops the sender).
        let _ = faults.wait_for(|f| !f.paused).await;
    }
    let latency = faults.borrow().added_latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let response = next.run(request).await;
    match timed {
        Some(timed) => timed.answered(response),
        None => response,
    }
}

/// What [`jsonrpc_guard`] bounds.
#[derive(Clone)]
struct Gate {
    max_body_bytes: usize,
    max_sessions: usize,
    counters: Arc<Counters>,
}

/// The one gate in front of rmcp: refuses a body over the limit with 413, one that does not
/// arrive within `[http] body_read_timeout` with 408, a body that is not
/// one JSON-RPC message of the shape MCP allows with its JSON-RPC error and HTTP 400
/// ([`crate::wire::check_message`]; rmcp answers most of those with a plain-text 415), and an
/// `initialize` while the server holds its most sessions with 503 and a JSON-RPC error (each
/// session costs memory until it idles out, and one client opened thousands a second). A
/// session's DELETE answers 204.
async fn jsonrpc_guard(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let limit = gate.max_body_bytes;
    if request.method() == Method::DELETE {
        // rmcp ends a session with 202; clients expect 200 or 204 (the Python SDK logs every 202
        // as a failed termination), and nothing is pending that "Accepted" would promise.
        let mut response = next.run(request).await;
        if response.status() == StatusCode::ACCEPTED {
            *response.status_mut() = StatusCode::NO_CONTENT;
            *response.body_mut() = axum::body::Body::empty();
        }
        return response;
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return match crate::causes::find::<BodyTimedOut>(&e) {
                // The client sends too slowly; the connection closes after this answer.
                Some(timed_out) => {
                    jsonrpc_error(StatusCode::REQUEST_TIMEOUT, -32600, timed_out.to_string())
                }
                None => jsonrpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    -32600,
                    format!("request body exceeds the limit of {limit} bytes"),
                ),
            };
        }
    };
    if let Err(bad) = crate::wire::check_message(&bytes) {
        return jsonrpc_error(StatusCode::BAD_REQUEST, bad.code(), bad.to_string());
    }
    if !parts.headers.contains_key(crate::wire::SESSION_HEADER)
        && opens_a_session(&bytes)
        && gate.counters.open_sessions.load(Ordering::Relaxed) >= gate.max_sessions as u64
    {
        return jsonrpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            -32000,
            format!(
                "this server holds its most sessions ({}); end one (DELETE), try again later, or \
                 send stateless 2026-07-28 requests, which need none",
                gate.max_sessions
            ),
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether a checked message is an `initialize` (which opens a session). The text is searched
/// first, so other requests cost a scan and no parsing.
fn opens_a_session(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Method<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    memchr::memmem::find(body, b"initialize").is_some()
        && serde_json::from_slice::<Method<'_>>(body)
            .is_ok_and(|m| m.method.as_deref() == Some("initialize"))
}

fn jsonrpc_error(status: StatusCode, code: i64, message: String) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": code, "message": message},
    });
    (status, axum::Json(body)).into_response()
}

/// The server's counters; `open_connections` leaves out the connection this request came on,
/// so a health probe does not count itself.
async fn healthz(State(edge): State<Edge>) -> axum::Json<CounterSnapshot> {
    let mut snapshot = edge.counters.snapshot();
    snapshot.open_connections = snapshot.open_connections.saturating_sub(1);
    axum::Json(snapshot)
}

/// The router of one server: `/mcp` and `/healthz` behind the edge layer.
pub fn app(
    identity: Identity,
    spec: &ServerSpec,
    counters: Arc<Counters>,
    faults: watch::Receiver<Faults>,
    memory: Option<Memory>,
) -> Router {
    let handler = McpServer::new(&identity, spec, memory);
    // Idle sessions leave rmcp's resident machinery after `session_resident` (`sessions`).
    let (sessions, book) =
        Sessions::new(counters.clone(), spec.session_resident, spec.session_idle);
    let mut config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_max_request_body_bytes(spec.max_body_bytes)
        // Host and Origin are checked by `loopback`, for every loopback address.
        .disable_allowed_hosts()
        .disable_allowed_origins();
    config.session_store = Some(book);
    let service = StreamableHttpService::new(move || Ok(handler.clone()), sessions, config);
    let gate = Gate {
        max_body_bytes: spec.max_body_bytes,
        max_sessions: spec.max_sessions,
        counters: counters.clone(),
    };
    let edge_state = Edge { counters, faults };
    let mcp = Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(gate, jsonrpc_guard));
    // The DNS-rebinding guard covers every route, for every loopback address rather than
    // rmcp's fixed list (`loopback`).
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(edge_state.clone())
        .merge(mcp)
        .layer(middleware::from_fn(crate::serve::loopback::layer))
        .layer(middleware::from_fn_with_state(edge_state, edge))
}
