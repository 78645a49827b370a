//! The admin API (127.0.0.1:7900 by default): the fleet's state as JSON and Prometheus text, and
//! fault injection for chaos tests. `fleet status` and `fleet down` are clients of it; every
//! request that changes something needs the fleet's admin token ([`super::admin_auth`]).

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    control::{
        admin_auth::AdminToken,
        admin_guard::{self, AdminAuth},
        browser_auth::{BrowserAuth, same_origin},
        supervisor::{Command, CommandError, Commands},
    },
    dashboard::Dashboard,
    memory::MemoryHandle,
    serve::registry::{Registry, ServerState, ServerView},
    spec::Isolation,
};

#[derive(Clone)]
pub struct AdminState {
    pub registry: Arc<Registry>,
    pub commands: Commands,
    pub scaler: Arc<crate::control::scale::Scaler>,
    pub isolation: Isolation,
    /// Cancelled by `POST /shutdown`; whoever runs the fleet stops it then.
    pub shutdown: CancellationToken,
    /// What every request but a read must present.
    pub token: AdminToken,
    /// How a browser signs in to act from the dashboard.
    pub browser: Arc<BrowserAuth>,
    /// The live page at `/` and its event stream.
    pub dashboard: Dashboard,
    /// The shared memory, whose state `/servers` and `/metrics` include.
    pub memory: Option<MemoryHandle>,
}

/// Body of `GET /servers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FleetView {
    pub isolation: Isolation,
    pub total: usize,
    pub healthy: usize,
    pub uptime_ms: u64,
    pub servers: Vec<ServerView>,
    /// The shared memory's state, when the fleet has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<crate::memory::MemoryStats>,
}

/// Body of `GET /servers/{id}/history`: the server's recent state transitions, which tell
/// when a fault was noticed and when the server was healthy again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryView {
    pub id: String,
    /// Oldest first; the most recent 64.
    pub transitions: Vec<crate::serve::registry::Transition>,
}

/// Body of `POST /groups/{group}/scale`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// Servers the group should have.
    pub count: u32,
}

/// Body of `POST /servers/{id}/latency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyRequest {
    /// Delay added before every request, in milliseconds (0 removes it).
    pub ms: u64,
}

/// The admin router; the binary serves it and tests call it directly.
pub fn app(state: AdminState) -> Router {
    let auth = AdminAuth {
        token: state.token.clone(),
        browser: state.browser.clone(),
    };
    Router::new()
        .route(
            "/",
            get(|State(s): State<AdminState>| async move { s.dashboard.page() }),
        )
        .route(
            "/events",
            get(|State(s): State<AdminState>| async move { s.dashboard.events() }),
        )
        .route("/login", get(signed_in).post(sign_in))
        .route("/servers", get(servers))
        .route("/servers/{id}", get(server))
        .route("/servers/{id}/history", get(history))
        .route("/servers/{id}/kill", post(kill))
        .route("/servers/{id}/pause", post(pause))
        .route("/servers/{id}/resume", post(resume))
        .route("/servers/{id}/latency", post(latency))
        .route("/groups/{group}/scale", post(scale))
        .route("/metrics", get(metrics))
        .route("/shutdown", post(shutdown))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        // Inside the loopback guard: a foreign Host is refused before any token is looked at.
        .layer(axum::middleware::from_fn_with_state(
            auth,
            admin_guard::require_token,
        ))
        .layer(axum::middleware::from_fn(crate::serve::loopback::layer))
        .with_state(state)
}

/// Body of `POST /login`: the sign-in link's one-time token, or the admin token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum SignIn {
    Link(String),
    Token(String),
}

/// `GET /login`: whether the page's session (if it sends one) is this run's.
async fn signed_in(State(s): State<AdminState>, headers: HeaderMap) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "signed_in": s.browser.signed_in(&headers) }))
}

/// `POST /login` with `{"link": TOKEN}` (the sign-in link's, once) or `{"token": ADMIN-TOKEN}`:
/// answers the page's session secret. Only from the page's own origin.
async fn sign_in(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Json(body): Json<SignIn>,
) -> Response {
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({"error": "sign in from the dashboard's own page"})),
        )
            .into_response();
    }
    let (valid, wrong) = match &body {
        SignIn::Link(t) => (s.browser.redeem(t), "this sign-in link is used up or wrong"),
        SignIn::Token(t) => (s.token.matches(t.as_bytes()), "wrong admin token"),
    };
    if !valid {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": wrong })),
        )
            .into_response();
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "session": s.browser.session() })),
    )
        .into_response()
}

/// Largest latency that can be injected; more is surely a typo (seconds for milliseconds).
const MAX_ADDED_LATENCY_MS: u64 = 600_000;
/// How long a fault request waits for the server to apply the change before answering (the
/// answer's `faults_applied` says whether it did), so that an answer means "in force".
const FAULT_APPLIED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("{0}")]
    Invalid(String),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            AdminError::Command(CommandError::UnknownServer(_)) => StatusCode::NOT_FOUND,
            AdminError::Command(CommandError::ShuttingDown(_)) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(serde_json::json!({"error": self.to_string()}))).into_response()
    }
}

fn entry(s: &AdminState, id: &str) -> Result<Arc<crate::serve::registry::Entry>, AdminError> {
    s.registry
        .get(id)
        .ok_or_else(|| CommandError::UnknownServer(id.to_string()).into())
}

/// 200 once every server is healthy, else 503 saying how many are: what a load balancer or a
/// Kubernetes readiness probe should ask (`/healthz` only says the admin API answers).
async fn readyz(State(s): State<AdminState>) -> (StatusCode, String) {
    readiness(s.registry.entries().iter().map(|e| e.view().state))
}

/// 200 when there are servers and all are healthy, else 503; the body says how many are.
fn readiness(states: impl Iterator<Item = ServerState>) -> (StatusCode, String) {
    let (mut total, mut healthy) = (0, 0);
    for state in states {
        total += 1;
        healthy += usize::from(state == ServerState::Healthy);
    }
    let status = if healthy == total && total > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, format!("{healthy}/{total} servers healthy\n"))
}

async fn servers(State(s): State<AdminState>) -> Json<FleetView> {
    let servers: Vec<ServerView> = s.registry.entries().iter().map(|e| e.view()).collect();
    Json(FleetView {
        isolation: s.isolation,
        total: servers.len(),
        healthy: servers
            .iter()
            .filter(|v| v.state == ServerState::Healthy)
            .count(),
        uptime_ms: s.registry.uptime().as_millis() as u64,
        servers,
        memory: s.memory.as_ref().map(MemoryHandle::stats),
    })
}

async fn server(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<ServerView>, AdminError> {
    Ok(Json(entry(&s, &id)?.view()))
}

async fn scale(
    State(s): State<AdminState>,
    Path(group): Path<String>,
    Json(req): Json<ScaleRequest>,
) -> Response {
    use crate::control::scale::ScaleError;
    match s.scaler.scale(&group, req.count).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => {
            let status = match &e {
                ScaleError::UnknownGroup(..) => StatusCode::NOT_FOUND,
                ScaleError::TooMany(_) | ScaleError::Empty => StatusCode::BAD_REQUEST,
                ScaleError::Bind { .. } => StatusCode::CONFLICT,
                ScaleError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, Json(serde_json::json!({"error": e.to_string()}))).into_response()
        }
    }
}

async fn history(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<HistoryView>, AdminError> {
    let e = entry(&s, &id)?;
    let transitions = e.lifecycle().health.transitions.iter().cloned().collect();
    Ok(Json(HistoryView { id, transitions }))
}

async fn kill(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<ServerView>, AdminError> {
    let e = entry(&s, &id)?;
    s.commands.send(&id, Command::Kill)?;
    Ok(Json(e.view()))
}

async fn pause(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<ServerView>, AdminError> {
    let e = entry(&s, &id)?;
    e.set_faults(|f| f.paused = true, FAULT_APPLIED_WAIT).await;
    Ok(Json(e.view()))
}

async fn resume(
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<ServerView>, AdminError> {
    let e = entry(&s, &id)?;
    e.set_faults(|f| f.paused = false, FAULT_APPLIED_WAIT).await;
    Ok(Json(e.view()))
}

async fn latency(
    State(s): State<AdminState>,
    Path(id): Path<String>,
    Json(req): Json<LatencyRequest>,
) -> Result<Json<ServerView>, AdminError> {
    if req.ms > MAX_ADDED_LATENCY_MS {
        return Err(AdminError::Invalid(format!(
            "ms = {} is over the limit of {MAX_ADDED_LATENCY_MS} (10 minutes)",
            req.ms
        )));
    }
    let e = entry(&s, &id)?;
    e.set_faults(|f| f.added_latency_ms = req.ms, FAULT_APPLIED_WAIT)
        .await;
    Ok(Json(e.view()))
}

async fn shutdown(State(s): State<AdminState>) -> StatusCode {
    s.shutdown.cancel();
    StatusCode::ACCEPTED
}

/// Prometheus text exposition of the fleet's gauges and counters.
async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    let mut text = super::fleet_metrics::render(&s.registry);
    if let Some(memory) = &s.memory {
        super::memory_metrics::render(&mut text, &memory.stats());
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_server_is_healthy() {
        use ServerState::*;
        let ready = |states: &[ServerState]| readiness(states.iter().copied());
        assert_eq!(
            ready(&[Healthy, Healthy]),
            (StatusCode::OK, "2/2 servers healthy\n".into())
        );
        for not_yet in [Starting, Unhealthy, Restarting, Stopped] {
            assert_eq!(
                ready(&[Healthy, not_yet]).0,
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        assert_eq!(ready(&[Healthy, Starting]).1, "1/2 servers healthy\n");
        assert_eq!(
            ready(&[]).0,
            StatusCode::SERVICE_UNAVAILABLE,
            "no servers: not ready"
        );
    }
}
