//! The gateway: one MCP endpoint in front of the whole fleet (issue 6).
//!
//! - `/mcp/{server-id}` pins a client to one server: requests, sessions and streams pass
//!   through unchanged.
//! - `/mcp` federates the fleet (2026-07-28, stateless requests): `tools/list` lists every
//!   group's tools under a stable prefix (`community__echo`, `security__scan_secrets`), and a
//!   `tools/call` goes to a healthy member of that group's pool, chosen by power of two
//!   choices ([`balance`]); a call that could not reach its server is sent once more, to
//!   another member.
//!
//! - 2025-11-25 sessions on `/mcp`: an `initialize` goes to a member of one group's pool
//!   (`/mcp?group=NAME`, by default the first group by name) and the session stays on that
//!   server, its tools unprefixed. The session id the client gets names the server and the
//!   server's own session, authenticated ([`session`]): no table to share or expire. When the
//!   server is gone the client gets a 404 and, as the spec asks, initializes again, landing on
//!   a healthy member.
//! - [`follow_registry`] keeps the pools in step with the supervisor: a server that is not
//!   healthy (killed, restarting, failing its probes) leaves rotation the moment its state
//!   changes, and comes back once healthy.
//!
//! - Servers that run in the gateway's own process (task mode) are called there
//!   ([`crate::local`]): the same service, faults and sessions as over their sockets, without a
//!   second HTTP exchange per call; other servers over pooled HTTP/1.1 ([`upstream`]).
//!
//! Failures answer as MCP clients expect: an unknown server or a forged session id is a 404,
//! a backend that cannot be reached or answers garbage a 502 with a JSON-RPC error, an
//! unknown tool prefix the JSON-RPC error for invalid params.

pub mod balance;
pub mod histogram;
pub mod session;
pub mod upstream;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::any,
};
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use self::{
    balance::{FailureKind, Lease, MemberStats, Outcome, Pool},
    session::{Affinity, SessionKey},
    upstream::{Upstream, UpstreamError},
};
use crate::registry::{Entry, Registry, State as ServerState};

/// The session header of streamable HTTP.
const SESSION_HEADER: &str = "mcp-session-id";

/// The separator between a group and a tool name in federated tool names.
pub const PREFIX_SEPARATOR: &str = "__";

/// One server the gateway can route to.
#[derive(Debug, Clone)]
pub struct Backend {
    pub id: String,
    pub group: String,
    pub addr: SocketAddr,
    /// Set when the server runs in this process (task mode): it is called in-process, without
    /// the loopback HTTP exchange, and is down while the slot is empty. `None`: over HTTP at
    /// `addr`.
    pub local: Option<Arc<crate::local::Slot>>,
}

impl Backend {
    /// The server of a registry entry, listening on `host`; called in-process when
    /// `in_process` (the entry's instances run in this process and may be called there).
    pub fn of(entry: &Entry, host: std::net::IpAddr, in_process: bool) -> Self {
        Self {
            id: entry.identity.id.clone(),
            group: entry.identity.group.clone(),
            addr: SocketAddr::new(host, entry.port),
            local: in_process.then(|| entry.local.clone()),
        }
    }
}

/// The servers behind the gateway, by id and by group.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    by_id: BTreeMap<String, Arc<Backend>>,
}

impl Directory {
    pub fn new(backends: impl IntoIterator<Item = Backend>) -> Self {
        Self {
            by_id: backends
                .into_iter()
                .map(|b| (b.id.clone(), Arc::new(b)))
                .collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Backend>> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Server ids by group, each group's in id order.
    fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for b in self.by_id.values() {
            groups
                .entry(b.group.clone())
                .or_default()
                .push(b.id.clone());
        }
        groups
    }
}

/// One group: a pool of replicas offering the same tools.
#[derive(Debug)]
struct Group {
    pool: Pool,
    /// The group's tools as its servers list them (unprefixed), fetched once.
    tools: OnceCell<Arc<GroupTools>>,
    /// `tools/call`s routed to this group, and those sent a second time to another member.
    calls: AtomicU64,
    retries: AtomicU64,
}

/// A group's tools as its servers list them, and which of them may be sent twice.
#[derive(Debug)]
struct GroupTools {
    list: Vec<Value>,
    /// Tools annotated read-only or idempotent: a call to one of them that failed in flight
    /// (the server died mid-request) is retried on another member, since running it twice
    /// does no harm.
    retry_safe: std::collections::HashSet<String>,
}

impl GroupTools {
    fn new(list: Vec<Value>) -> Self {
        let hint = |t: &Value, name: &str| {
            t.pointer(&format!("/annotations/{name}"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let retry_safe = list
            .iter()
            .filter(|t| hint(t, "readOnlyHint") || hint(t, "idempotentHint"))
            .filter_map(|t| Some(t.get("name")?.as_str()?.to_string()))
            .collect();
        Self { list, retry_safe }
    }
}

/// What every gateway request shares.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Replaced whole when servers join or leave ([`follow_registry`]).
    directory: Arc<std::sync::RwLock<Arc<Directory>>>,
    groups: Arc<BTreeMap<String, Group>>,
    upstream: Arc<Upstream>,
    /// Signs the session ids handed out on `/mcp`.
    key: SessionKey,
    /// Seeds each request's random choice of two backends.
    picks: Arc<AtomicU64>,
    /// Latency and outcomes of `/mcp` requests by group, method and tool.
    calls: Arc<CallTable>,
}

/// Most distinct (group, method, tool) series `/metrics` keeps; requests beyond count under
/// `other`, so clients inventing tool names cannot grow the gateway's memory.
const MAX_CALL_SERIES: usize = 1024;

/// What `/metrics` reports per group, method and tool.
#[derive(Debug, Default)]
struct CallStats {
    latency: histogram::Histogram,
    ok: AtomicU64,
    failed: AtomicU64,
}

type CallKey = (String, String, String);

#[derive(Debug, Default)]
struct CallTable {
    series: std::sync::RwLock<std::collections::HashMap<CallKey, Arc<CallStats>>>,
}

impl CallTable {
    fn get(&self, group: &str, method: &str, tool: &str) -> Arc<CallStats> {
        let key = (group.to_string(), method.to_string(), tool.to_string());
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return s.clone();
        }
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        let key = if series.len() >= MAX_CALL_SERIES && !series.contains_key(&key) {
            (
                "other".to_string(),
                "other".to_string(),
                "other".to_string(),
            )
        } else {
            key
        };
        series.entry(key).or_default().clone()
    }

    fn snapshot(&self) -> Vec<(CallKey, histogram::Snapshot, u64, u64)> {
        let mut all: Vec<_> = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    s.latency.snapshot(),
                    s.ok.load(Ordering::Relaxed),
                    s.failed.load(Ordering::Relaxed),
                )
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

impl Gateway {
    /// A gateway over `directory`'s servers, every one in rotation until told otherwise
    /// ([`follow_registry`] or passive ejection). Session ids are signed with `key`: gateways
    /// sharing a key accept each other's sessions.
    pub fn new(directory: Directory, upstream: Upstream, key: SessionKey) -> Self {
        let groups = directory
            .groups()
            .into_iter()
            .map(|(name, ids)| {
                (
                    name,
                    Group {
                        pool: Pool::new(&ids),
                        tools: OnceCell::new(),
                        calls: AtomicU64::new(0),
                        retries: AtomicU64::new(0),
                    },
                )
            })
            .collect();
        Self {
            directory: Arc::new(std::sync::RwLock::new(Arc::new(directory))),
            groups: Arc::new(groups),
            upstream: Arc::new(upstream),
            key,
            picks: Arc::new(AtomicU64::new(0)),
            calls: Arc::default(),
        }
    }

    /// The gateway's routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/mcp", any(mcp))
            .route("/mcp/{server}", any(pinned))
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/metrics", axum::routing::get(metrics))
            .route("/backends", axum::routing::get(backends))
            .with_state(self)
    }

    /// Every group's members as the balancer sees them.
    pub fn backends(&self) -> BTreeMap<String, Vec<MemberStats>> {
        self.groups
            .iter()
            .map(|(name, g)| (name.clone(), g.pool.snapshot()))
            .collect()
    }

    /// The server named `id`, if it is behind the gateway.
    pub fn backend(&self, id: &str) -> Option<Arc<Backend>> {
        self.directory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Takes `id` out of rotation (`up == false`) or puts it back; false if no group has it.
    pub fn set_up(&self, id: &str, up: bool) -> bool {
        self.backend(id)
            .and_then(|b| self.groups.get(&b.group))
            .is_some_and(|g| g.pool.set_up(id, up))
    }

    /// Makes `backends` the servers behind the gateway: each group's pool keeps the members
    /// that stay (with their statistics), gains the new ones and drops those that left.
    /// Servers of groups the gateway was not started with are ignored.
    pub fn set_backends(&self, backends: Vec<Backend>) {
        let directory = Directory::new(backends);
        let by_group = directory.groups();
        // While the pools change, the directory holds old and new servers alike, so a pick
        // never names a server the directory does not know.
        {
            let mut current = self.directory.write().unwrap_or_else(|e| e.into_inner());
            let mut both = (**current).clone();
            both.by_id
                .extend(directory.by_id.iter().map(|(k, v)| (k.clone(), v.clone())));
            *current = Arc::new(both);
        }
        for (name, group) in self.groups.iter() {
            let ids = by_group.get(name).map_or(&[][..], Vec::as_slice);
            group.pool.set_members(ids);
        }
        // Idle connections to servers that left would hold their sockets until reused.
        let addrs: std::collections::HashSet<SocketAddr> =
            directory.by_id.values().map(|b| b.addr).collect();
        self.upstream.retain(|addr| addrs.contains(addr));
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(directory);
    }
}

/// Keeps the gateway's pools in step with the registry until `stop`: servers that join or
/// leave (`fleet scale`) join or leave the pools; a server is in rotation while it is healthy,
/// out of it from the moment it is killed, restarting, starting or failing its probes. Wakes on
/// every change rather than polling. `host` is where the servers listen; `in_process` lets the
/// gateway call servers running in its own process without a socket ([`Backend::of`]).
pub async fn follow_registry(
    gw: Gateway,
    registry: Arc<Registry>,
    host: std::net::IpAddr,
    in_process: bool,
    stop: CancellationToken,
) {
    let mut changes = registry.subscribe();
    let mut known: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    let mut members: Vec<(String, u16)> = Vec::new();
    loop {
        changes.borrow_and_update();
        let entries = registry.entries();
        let now: Vec<(String, u16)> = entries
            .iter()
            .map(|e| (e.identity.id.clone(), e.port))
            .collect();
        if now != members {
            gw.set_backends(
                entries
                    .iter()
                    .map(|e| Backend::of(e, host, in_process))
                    .collect(),
            );
            known.retain(|id, _| now.iter().any(|(n, _)| n == id));
            members = now;
        }
        for entry in entries.iter() {
            let up = entry.state() == ServerState::Healthy;
            if known.get(&entry.identity.id) != Some(&up) {
                gw.set_up(&entry.identity.id, up);
                known.insert(entry.identity.id.clone(), up);
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

/// Body of `GET /backends`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendsView {
    /// Group name to its members, as the balancer sees them.
    pub groups: BTreeMap<String, Vec<BackendView>>,
}

/// One member in `GET /backends` (the fields of [`MemberStats`] a client needs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendView {
    pub id: String,
    pub up: bool,
    pub ejected: bool,
    pub outstanding: u32,
    pub ewma_us: u64,
    pub ejections_total: u64,
    pub failures_total: u64,
    pub successes_total: u64,
    /// When the member last left rotation, ms since the Unix epoch, oldest first.
    pub taken_out_at_ms: Vec<u64>,
}

async fn backends(State(gw): State<Gateway>) -> axum::Json<BackendsView> {
    let groups = gw
        .backends()
        .into_iter()
        .map(|(name, members)| {
            let members = members
                .into_iter()
                .map(|m| BackendView {
                    id: m.id,
                    up: m.up,
                    ejected: m.ejected,
                    outstanding: m.outstanding,
                    ewma_us: m.ewma_us,
                    ejections_total: m.ejections_total,
                    failures_total: m.failures_total,
                    successes_total: m.successes_total,
                    taken_out_at_ms: m.taken_out_at_ms,
                })
                .collect();
            (name, members)
        })
        .collect();
    axum::Json(BackendsView { groups })
}

/// A JSON-RPC error response with an HTTP status, for requests the gateway answers itself.
pub fn jsonrpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The JSON-RPC id of a request body, or `null` when there is none to echo.
fn request_id(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null)
}

/// `/mcp/{server}`: everything passes through to that server.
async fn pinned(
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

/// A backend's answer, passed on: an event stream as it arrives; a JSON body (which
/// [`Upstream::send`] has read whole) checked first, so a server that answers garbage gives the
/// client a 502 with a JSON-RPC error (the `Err`) instead of the garbage.
async fn relay(
    server: &str,
    response: http::Response<Body>,
    request: &[u8],
) -> Result<Response, Response> {
    if !upstream::is_json(response.headers()) {
        return Ok(pass_on(response));
    }
    let (parts, body) = response.into_parts();
    let garbage = |why: &str| {
        jsonrpc_error(
            StatusCode::BAD_GATEWAY,
            request_id(request),
            -32603,
            &format!("server {server} {why}"),
        )
    };
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(garbage("broke off its answer")),
    };
    let parses = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok();
    if parts.status.is_success() && !parses {
        return Err(garbage("answered with something that is not JSON"));
    }
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if name != header::CONNECTION
            && name != header::TRANSFER_ENCODING
            && name != header::CONTENT_LENGTH
        {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(out)
}

/// A backend's answer, streamed back as it arrives (SSE included).
fn pass_on(response: http::Response<Body>) -> Response {
    let (parts, body) = response.into_parts();
    let mut out = Response::new(body);
    *out.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if name != header::CONNECTION && name != header::TRANSFER_ENCODING {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// 502 with a JSON-RPC error naming the server and what went wrong.
fn upstream_failed(server: &str, e: UpstreamError, body: &[u8]) -> Response {
    jsonrpc_error(
        StatusCode::BAD_GATEWAY,
        request_id(body),
        -32603,
        &format!("server {server}: {e}"),
    )
}

/// A random word for one pick.
fn rng_word(gw: &Gateway) -> u64 {
    fastrand::Rng::with_seed(gw.picks.fetch_add(1, Ordering::Relaxed)).u64(..)
}

/// `?group=` of `/mcp`: the group whose pool a new session is placed in.
#[derive(Debug, Default, Deserialize)]
struct McpQuery {
    group: Option<String>,
}

/// `/mcp`: requests of a session go to its server; anything else is federated.
async fn mcp(
    State(gw): State<Gateway>,
    Query(query): Query<McpQuery>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(id) = headers.get(SESSION_HEADER).cloned() {
        return in_session(&gw, &id, method, headers, body).await;
    }
    match method {
        // Boxed: a request of a session (above) need not carry the federated path's size.
        Method::POST => Box::pin(federated(gw, query, headers, body)).await,
        // No session, so no stream to resume or session to end.
        Method::GET | Method::DELETE => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "GET and DELETE on /mcp need an Mcp-Session-Id\n",
        )
            .into_response(),
        _ => (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response(),
    }
}

/// A stateless request to the fleet as one server, or the `initialize` of a session.
async fn federated(gw: Gateway, query: McpQuery, headers: HeaderMap, body: Bytes) -> Response {
    // One pass over the body that builds no tree: the id, the method and where the tool name
    // sits, so a call is forwarded with only its name edited.
    let Ok(peek) = serde_json::from_slice::<Peek<'_>>(&body) else {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32700,
            "the body is not a JSON-RPC request object",
        );
    };
    let id = peek.id();
    let method = peek.method.as_deref().unwrap_or_default();
    if let Some(said) = headers.get("mcp-method").and_then(|v| v.to_str().ok())
        && said != method
        && !method.is_empty()
    {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            &format!("the Mcp-Method header says {said:?} but the body's method is {method:?}"),
        );
    }
    let started = Instant::now();
    // A call's tool name, read once here for the metrics' labels and for routing.
    let raw_name = peek.params.as_ref().and_then(|p| p.name);
    let name: Option<String> = (method == "tools/call")
        .then(|| raw_name.and_then(|raw| serde_json::from_str(raw.get()).ok()))
        .flatten();
    let (group_label, tool_label) = match (method, name.as_deref()) {
        ("tools/call", Some(name)) => match name.split_once(PREFIX_SEPARATOR) {
            Some((g, t)) if gw.groups.contains_key(g) => (g, t),
            _ => ("unknown", "unknown"),
        },
        ("tools/call", None) if raw_name.is_some() => ("unknown", "unknown"),
        _ => ("", ""),
    };
    let call = ToolName {
        raw: raw_name,
        text: name.as_deref(),
    };
    let response = dispatch(&gw, query, headers, &body, method, call, id).await;
    let stats = gw.calls.get(group_label, method, tool_label);
    stats.latency.record(started.elapsed());
    if response.status().is_success() {
        stats.ok.fetch_add(1, Ordering::Relaxed);
    } else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
    }
    response
}

/// Answers one request of `/mcp` by its method.
async fn dispatch(
    gw: &Gateway,
    query: McpQuery,
    headers: HeaderMap,
    body: &Bytes,
    method: &str,
    name: ToolName<'_>,
    id: Value,
) -> Response {
    if method == "initialize" {
        // Boxed, as the other paths that are not a call's: once per session, and held inline
        // they would make every request's future (copied about on each call) their size.
        return Box::pin(start_session(
            gw,
            query.group.as_deref(),
            headers,
            body.clone(),
            id,
        ))
        .await;
    }
    match method {
        "tools/list" => Box::pin(list_tools(gw, id)).await,
        "tools/call" => call_tool(gw, headers, body, name, id).await,
        "ping" => result(id, json!({})),
        "" => jsonrpc_error(StatusCode::BAD_REQUEST, id, -32600, "no method"),
        other => jsonrpc_error(
            StatusCode::OK,
            id,
            -32601,
            &format!("method {other:?} is not offered through the gateway's /mcp"),
        ),
    }
}

/// The `params.name` of a `tools/call`: where it sits in the body, and its text when it is a
/// string.
#[derive(Debug, Clone, Copy)]
struct ToolName<'a> {
    raw: Option<&'a serde_json::value::RawValue>,
    text: Option<&'a str>,
}

/// What the gateway reads of a request body, borrowed from it.
#[derive(Debug, Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<PeekParams<'a>>,
}

#[derive(Debug, Deserialize)]
struct PeekParams<'a> {
    #[serde(borrow, default)]
    name: Option<&'a serde_json::value::RawValue>,
}

impl Peek<'_> {
    fn id(&self) -> Value {
        self.id
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null)
    }
}

/// `body` with the JSON string at `raw` (a slice of it) replaced by `replacement`, quoted.
fn splice(body: &[u8], raw: &serde_json::value::RawValue, replacement: &str) -> Option<Bytes> {
    let start = (raw.get().as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start + raw.get().len();
    if end > body.len() {
        return None;
    }
    let quoted = serde_json::to_string(replacement).ok()?;
    let mut out = Vec::with_capacity(body.len() - (end - start) + quoted.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[end..]);
    Some(Bytes::from(out))
}

fn result(id: Value, result: Value) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": result});
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Every group's tools under `{group}__{tool}`.
async fn list_tools(gw: &Gateway, id: Value) -> Response {
    let mut tools = Vec::new();
    for (name, group) in gw.groups.iter() {
        match group_tools(gw, group).await {
            Ok(group_tools) => tools.extend(group_tools.list.iter().filter_map(|t| {
                let mut t = t.clone();
                let tool = t.get("name")?.as_str()?.to_string();
                t["name"] = Value::String(format!("{name}{PREFIX_SEPARATOR}{tool}"));
                Some(t)
            })),
            Err(why) => {
                return jsonrpc_error(
                    StatusCode::BAD_GATEWAY,
                    id,
                    -32603,
                    &format!("group {name}: {why}"),
                );
            }
        }
    }
    result(id, json!({"tools": tools}))
}

/// A group's tools, asked of one of its members the first time.
async fn group_tools(gw: &Gateway, group: &Group) -> Result<Arc<GroupTools>, String> {
    group
        .tools
        .get_or_try_init(|| async {
            let mut tried: Vec<String> = Vec::new();
            for _ in 0..3 {
                let exclude: Vec<&str> = tried.iter().map(String::as_str).collect();
                let Some(lease) = group.pool.pick(&exclude, Instant::now(), rng_word(gw)) else {
                    break;
                };
                tried.push(lease.id().to_string());
                let body = json!({
                    "jsonrpc": "2.0", "id": 1, "method": "tools/list",
                    "params": {"_meta": crate::server::stateless_meta()},
                });
                let mut headers = stateless_headers("tools/list", None);
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                let Some((answer, _)) = exchange(gw, lease, &headers, body.to_string()).await
                else {
                    continue;
                };
                if let Some(tools) = answer.pointer("/result/tools").and_then(Value::as_array) {
                    return Ok(Arc::new(GroupTools::new(tools.clone())));
                }
            }
            Err("no member answered tools/list".to_string())
        })
        .await
        .cloned()
}

/// Headers of a 2026-07-28 request the gateway makes itself.
fn stateless_headers(method: &'static str, name: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    h.insert(
        "mcp-protocol-version",
        HeaderValue::from_static("2026-07-28"),
    );
    h.insert("mcp-method", HeaderValue::from_static(method));
    if let Some(v) = name.and_then(|n| HeaderValue::from_str(n).ok()) {
        h.insert("mcp-name", v);
    }
    h
}

/// Sends a request the gateway composed to the lease's member and reads the whole JSON-RPC
/// answer; `None` when that failed (the lease records why).
async fn exchange(
    gw: &Gateway,
    lease: Lease,
    headers: &HeaderMap,
    body: String,
) -> Option<(Value, StatusCode)> {
    let started = Instant::now();
    let backend = gw.backend(lease.id())?;
    let response = match gw
        .upstream
        .send(&backend, "/mcp", Method::POST, headers, Bytes::from(body))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            lease.finish(
                Outcome::Failure(failure_kind(e)),
                started.elapsed(),
                Instant::now(),
            );
            return None;
        }
    };
    let status = response.status();
    let text = match response.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => {
            lease.finish(
                Outcome::Failure(FailureKind::BadResponse),
                started.elapsed(),
                Instant::now(),
            );
            return None;
        }
    };
    match crate::server::first_jsonrpc_message(&text) {
        Some(v) if !status.is_server_error() => {
            lease.finish(Outcome::Success, started.elapsed(), Instant::now());
            Some((v, status))
        }
        _ => {
            let kind = if status.is_server_error() {
                FailureKind::Status5xx
            } else {
                FailureKind::BadResponse
            };
            lease.finish(Outcome::Failure(kind), started.elapsed(), Instant::now());
            None
        }
    }
}

fn failure_kind(e: UpstreamError) -> FailureKind {
    match e {
        UpstreamError::Connect => FailureKind::Connect,
        UpstreamError::Timeout => FailureKind::Timeout,
        UpstreamError::Broken => FailureKind::BadResponse,
    }
}

/// `tools/call` of `{group}__{tool}`: to a member of the group's pool, the tool's own name
/// restored; once more to another member when the first could not be reached.
async fn call_tool(
    gw: &Gateway,
    headers: HeaderMap,
    body: &Bytes,
    name: ToolName<'_>,
    id: Value,
) -> Response {
    let Some(raw) = name.raw else {
        return jsonrpc_error(StatusCode::OK, id, -32602, "tools/call without params.name");
    };
    let Some(name) = name.text else {
        return jsonrpc_error(StatusCode::OK, id, -32602, "params.name is not a string");
    };
    let Some((group_name, tool)) = name.split_once(PREFIX_SEPARATOR) else {
        return jsonrpc_error(
            StatusCode::OK,
            id,
            -32602,
            &format!("unknown tool {name:?}: gateway tools are named group{PREFIX_SEPARATOR}tool"),
        );
    };
    let Some(group) = gw.groups.get(group_name) else {
        return jsonrpc_error(
            StatusCode::OK,
            id,
            -32602,
            &format!("unknown tool {name:?}: no group {group_name:?} behind this gateway"),
        );
    };
    if let Some(said) = headers.get("mcp-name")
        && said.as_bytes() != name.as_bytes()
    {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32600,
            &format!("the Mcp-Name header does not match the tool name {name:?}"),
        );
    }
    let Some(body) = splice(body, raw, tool) else {
        return jsonrpc_error(
            StatusCode::BAD_REQUEST,
            id,
            -32700,
            "cannot edit the request",
        );
    };
    let mut headers = headers;
    match HeaderValue::from_str(tool) {
        Ok(v) => {
            headers.insert("mcp-name", v);
        }
        Err(_) => {
            headers.remove("mcp-name");
        }
    }
    group.calls.fetch_add(1, Ordering::Relaxed);
    match to_group(
        gw,
        group_name,
        group,
        &headers,
        &body,
        &id,
        Resend::Call(tool),
    )
    .await
    {
        Ok((_, answer)) | Err(answer) => answer,
    }
}

/// Which requests [`to_group`] may send a second time, to another member.
#[derive(Debug, Clone, Copy)]
enum Resend<'a> {
    /// Whenever the first member could not answer: an `initialize` has no effect worth
    /// keeping.
    Always,
    /// A `tools/call` of this tool: it may have had effects, so only when it never reached its
    /// server, or when the group's servers annotate the tool read-only or idempotent. Counted
    /// in the group's retries.
    Call(&'a str),
}

/// Sends `body` to a member of `group` chosen by the balancer and relays the answer, its
/// outcome recorded for the balancer; once more to another member when the first could not
/// answer and `resend` allows. Gives the member and its answer, or the error to send back.
async fn to_group(
    gw: &Gateway,
    group_name: &str,
    group: &Group,
    headers: &HeaderMap,
    body: &Bytes,
    id: &Value,
    resend: Resend<'_>,
) -> Result<(String, Response), Response> {
    let mut tried: Option<String> = None;
    for _ in 0..2 {
        let exclude: Vec<&str> = tried.iter().map(String::as_str).collect();
        let Some(lease) = group.pool.pick(&exclude, Instant::now(), rng_word(gw)) else {
            break;
        };
        let Some(backend) = gw.backend(lease.id()) else {
            break;
        };
        let server = lease.id().to_string();
        let started = Instant::now();
        match gw
            .upstream
            .send(&backend, "/mcp", Method::POST, headers, body.clone())
            .await
        {
            Ok(response) => {
                let server_error = response.status().is_server_error();
                let relayed = relay(&server, response, body).await;
                let outcome = match (&relayed, server_error) {
                    (Err(_), _) => Outcome::Failure(FailureKind::BadResponse),
                    (Ok(_), true) => Outcome::Failure(FailureKind::Status5xx),
                    (Ok(_), false) => Outcome::Success,
                };
                lease.finish(outcome, started.elapsed(), Instant::now());
                return relayed.map(|answer| (server, answer));
            }
            Err(e) => {
                lease.finish(
                    Outcome::Failure(failure_kind(e)),
                    started.elapsed(),
                    Instant::now(),
                );
                let again = match resend {
                    Resend::Always => true,
                    Resend::Call(tool) => {
                        e.never_sent() || Box::pin(retry_safe(gw, group, tool)).await
                    }
                };
                if !again || tried.is_some() {
                    return Err(upstream_failed(&server, e, body));
                }
                if let Resend::Call(_) = resend {
                    group.retries.fetch_add(1, Ordering::Relaxed);
                }
                tried = Some(server);
            }
        }
    }
    Err(jsonrpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        id.clone(),
        -32603,
        &format!("no healthy server in group {group_name:?}"),
    ))
}

/// 404 with a JSON-RPC error: what the spec tells clients to answer with a new `initialize`.
fn session_gone(body: &[u8], why: &str) -> Response {
    jsonrpc_error(
        StatusCode::NOT_FOUND,
        request_id(body),
        -32001,
        &format!("session not found: {why}; send a new initialize"),
    )
}

/// `initialize` without a session: placed on a member of `group` (default: the first group);
/// the server's session id comes back signed into the gateway's own. Sent once more to another
/// member when the first could not be reached (an `initialize` has no effect worth keeping).
async fn start_session(
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

/// A request carrying one of the gateway's session ids: to that session's server, with the
/// server's own id. An id the gateway did not issue, or whose server is gone, is a 404.
async fn in_session(
    gw: &Gateway,
    id: &HeaderValue,
    method: Method,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.to_str() else {
        return session_gone(&body, "the session id is not visible ASCII");
    };
    let affinity = match session::open(&gw.key, id) {
        Ok(a) => a,
        Err(e) => return session_gone(&body, &e.to_string()),
    };
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

/// Whether the group's servers annotate `tool` read-only or idempotent (asking them once, if
/// the gateway has not yet).
async fn retry_safe(gw: &Gateway, group: &Group, tool: &str) -> bool {
    group_tools(gw, group)
        .await
        .is_ok_and(|t| t.retry_safe.contains(tool))
}

/// `/metrics`: Prometheus text of every pool member's state and each group's calls.
async fn metrics(State(gw): State<Gateway>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(&gw),
    )
        .into_response()
}

/// The metrics text (separate from the handler so tests can read it).
pub fn render_metrics(gw: &Gateway) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    gauge(
        &mut out,
        "mcpfleet_gateway_calls_total",
        "tools/call requests routed to a group.",
        "counter",
    );
    for (name, g) in gw.groups.iter() {
        let _ = writeln!(
            out,
            "mcpfleet_gateway_calls_total{{group=\"{name}\"}} {}",
            g.calls.load(Ordering::Relaxed)
        );
    }
    gauge(
        &mut out,
        "mcpfleet_gateway_retries_total",
        "Calls sent once more, to another member, after the first could not reach its server \
         (or, for a read-only or idempotent tool, lost it mid-request).",
        "counter",
    );
    for (name, g) in gw.groups.iter() {
        let _ = writeln!(
            out,
            "mcpfleet_gateway_retries_total{{group=\"{name}\"}} {}",
            g.retries.load(Ordering::Relaxed)
        );
    }
    let members: Vec<(&String, balance::MemberStats)> = gw
        .groups
        .iter()
        .flat_map(|(name, g)| g.pool.snapshot().into_iter().map(move |m| (name, m)))
        .collect();
    type Pick = fn(&balance::MemberStats) -> u64;
    let series: [(&str, &str, &str, Pick); 6] = [
        (
            "mcpfleet_gateway_backend_outstanding",
            "Requests in flight to the backend.",
            "gauge",
            |m| u64::from(m.outstanding),
        ),
        (
            "mcpfleet_gateway_backend_latency_ewma_microseconds",
            "The backend's latency EWMA, as the balancer weighs it.",
            "gauge",
            |m| m.ewma_us,
        ),
        (
            "mcpfleet_gateway_backend_ejected",
            "1 while the backend is passively ejected (or half-open).",
            "gauge",
            |m| u64::from(m.ejected),
        ),
        (
            "mcpfleet_gateway_backend_ejections_total",
            "Passive ejections of the backend.",
            "counter",
            |m| m.ejections_total,
        ),
        (
            "mcpfleet_gateway_backend_successes_total",
            "Requests the backend answered.",
            "counter",
            |m| m.successes_total,
        ),
        (
            "mcpfleet_gateway_backend_up",
            "1 unless marked down by health checks.",
            "gauge",
            |m| u64::from(m.up),
        ),
    ];
    for (name, help, kind, pick) in series {
        gauge(&mut out, name, help, kind);
        for (group, m) in &members {
            let _ = writeln!(
                out,
                "{name}{{group=\"{group}\",backend=\"{}\"}} {}",
                m.id,
                pick(m)
            );
        }
    }
    gauge(
        &mut out,
        "mcpfleet_gateway_backend_failures_total",
        "Failed requests to the backend, by kind.",
        "counter",
    );
    for (group, m) in &members {
        for kind in FailureKind::ALL {
            let _ = writeln!(
                out,
                "mcpfleet_gateway_backend_failures_total{{group=\"{group}\",backend=\"{}\",kind=\"{}\"}} {}",
                m.id,
                kind.as_str(),
                m.failures.get(kind)
            );
        }
    }
    gauge(
        &mut out,
        "mcpfleet_gateway_backend_request_duration_seconds",
        "Latency of the requests each backend answered, as the gateway timed them.",
        "histogram",
    );
    for (group, m) in &members {
        m.latency.render(
            &mut out,
            "mcpfleet_gateway_backend_request_duration_seconds",
            &format!(
                "group=\"{}\",backend=\"{}\"",
                histogram::label(group),
                histogram::label(&m.id)
            ),
        );
    }
    let calls = gw.calls.snapshot();
    gauge(
        &mut out,
        "mcpfleet_gateway_request_duration_seconds",
        "Latency of /mcp requests through the gateway by group, method and tool (group and \
         tool empty for methods the gateway answers itself).",
        "histogram",
    );
    let labels = |(g, m, t): &CallKey| {
        format!(
            "group=\"{}\",method=\"{}\",tool=\"{}\"",
            histogram::label(g),
            histogram::label(m),
            histogram::label(t)
        )
    };
    for (key, latency, _, _) in &calls {
        latency.render(
            &mut out,
            "mcpfleet_gateway_request_duration_seconds",
            &labels(key),
        );
    }
    gauge(
        &mut out,
        "mcpfleet_gateway_requests_total",
        "/mcp requests by group, method, tool and outcome (ok: a 2xx answer).",
        "counter",
    );
    for (key, _, ok, failed) in &calls {
        let l = labels(key);
        let _ = writeln!(
            out,
            "mcpfleet_gateway_requests_total{{{l},outcome=\"ok\"}} {ok}"
        );
        let _ = writeln!(
            out,
            "mcpfleet_gateway_requests_total{{{l},outcome=\"failed\"}} {failed}"
        );
    }
    out
}
