//! One MCP server of the fleet: an rmcp streamable-HTTP service at `/mcp` (both protocol eras:
//! 2025-11-25 with sessions, 2026-07-28 stateless), `GET /healthz`, and the HTTP layers that
//! count traffic and inject faults. [`app`] builds the router that task mode, process-mode
//! children and tests all serve.

use std::{
    sync::{Arc, OnceLock, atomic::Ordering},
    time::{Duration, Instant},
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
use rmcp::{
    ErrorData, Json, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::IntoCallToolResult},
    model::{
        CallToolResponse, CallToolResult, ContentBlock, CustomRequest, CustomResult, ErrorCode,
        Implementation, InitializeRequestParams, InitializeResult, ServerCapabilities,
        ServerConfig,
    },
    service::RequestContext,
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use tokio::sync::watch;

use crate::{
    args::Parameters,
    memory::{
        Ack, AddObservations, CreateEntities, CreateRelations, DeleteEntities, DeleteObservations,
        DeleteRelations, KnowledgeGraph, Memory, Op, OpResult, View, WriteError,
    },
    profile::Profile,
    registry::{CounterSnapshot, Counters, Faults, Identity},
    spec::ServerSpec,
    tools::{
        community::{self, AddArgs, EchoArgs, JsonQueryArgs, TextStatsArgs, WorkArgs, WorkMode},
        error::ToolInputError,
        memory as memory_tools, security,
    },
};

/// What every instance of a server shares; handlers hold it behind one `Arc` so the
/// per-request service factory of the stateless path is a pointer copy.
pub struct Shared {
    router: ToolRouter<McpServer>,
    info: ServerConfig,
    max_work: Duration,
    counters: Arc<Counters>,
    /// This server's id: the author of its memory writes.
    id: String,
    /// The fleet's shared memory, when the fleet runs with one.
    memory: Option<Memory>,
}

/// The rmcp handler. One is created per session (2025-11-25) or per request (2026-07-28).
#[derive(Clone)]
pub struct McpServer {
    shared: Arc<Shared>,
    /// Set once this handler serves an initialized session; dropping the handler (the session
    /// ended or expired) decrements the open-session gauge.
    session: Arc<OnceLock<SessionGuard>>,
}

struct SessionGuard(Arc<Counters>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.open_sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

impl McpServer {
    pub fn new(
        identity: &Identity,
        spec: &ServerSpec,
        counters: Arc<Counters>,
        memory: Option<Memory>,
    ) -> Self {
        let mut router = match identity.profile {
            Profile::Community => Self::community_router(),
            Profile::Security => Self::security_router(),
        };
        if memory.is_some() {
            router += Self::memory_router();
        }
        let info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(identity.id.clone(), env!("CARGO_PKG_VERSION")).with_title(
                    format!("mcpfleet {} server {}", identity.group, identity.id),
                ),
            )
            .with_instructions(format!(
                "Reference fleet server `{}` of group `{}` ({} profile).",
                identity.id, identity.group, identity.profile
            ));
        Self {
            shared: Arc::new(Shared {
                router,
                info,
                max_work: spec.max_work,
                counters,
                id: identity.id.clone(),
                memory,
            }),
            session: Arc::default(),
        }
    }

    fn fresh(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            session: Arc::default(),
        }
    }
}

/// Maps argument errors of tool logic to JSON-RPC -32602 with the field named in `data`.
fn invalid(e: ToolInputError) -> ErrorData {
    ErrorData::invalid_params(e.to_string(), Some(serde_json::json!({ "field": e.field })))
}

/// How a memory tool fails: bad arguments are JSON-RPC -32602 errors naming the field; a
/// valid call that cannot be done (entity not found, storage failure, a `minVersion` not
/// reached in time) is a tool result with `isError: true`, as the official server answers.
#[derive(Debug)]
pub enum MemoryToolError {
    Invalid(ErrorData),
    Failed(String),
}

impl From<ToolInputError> for MemoryToolError {
    fn from(e: ToolInputError) -> Self {
        MemoryToolError::Invalid(invalid(e))
    }
}

impl From<WriteError> for MemoryToolError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(e) => {
                MemoryToolError::Invalid(invalid(ToolInputError::new(e.field, e.reason)))
            }
            other => MemoryToolError::Failed(other.to_string()),
        }
    }
}

impl IntoCallToolResult for MemoryToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        match self {
            MemoryToolError::Invalid(e) => Err(e),
            MemoryToolError::Failed(message) => {
                Ok(CallToolResult::error(vec![ContentBlock::text(message)]).into())
            }
        }
    }
}

type MemoryResult<T> = Result<Json<T>, MemoryToolError>;

#[tool_router(router = community_router, vis = "pub(crate)")]
impl McpServer {
    #[tool(
        description = "Return the given text unchanged.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> Json<community::EchoOutput> {
        Json(community::echo(args))
    }

    #[tool(
        description = "Add two numbers.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn add(
        &self,
        Parameters(args): Parameters<AddArgs>,
    ) -> Result<Json<community::AddOutput>, ErrorData> {
        community::add(&args).map(Json).map_err(invalid)
    }

    #[tool(
        description = "Count bytes, characters, lines, words and sentences of a text and list its most frequent words.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn text_stats(
        &self,
        Parameters(args): Parameters<TextStatsArgs>,
    ) -> Result<Json<community::TextStatsOutput>, ErrorData> {
        community::text_stats(&args).map(Json).map_err(invalid)
    }

    #[tool(
        description = "Select a value from a supplied JSON document with a JSON pointer, optionally filtering the elements of a selected array.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn json_query(
        &self,
        Parameters(args): Parameters<JsonQueryArgs>,
    ) -> Result<Json<community::JsonQueryOutput>, ErrorData> {
        community::json_query(&args).map(Json).map_err(invalid)
    }

    #[tool(
        description = "Spend a requested time on the server, burning CPU (`cpu`) or waiting (`sleep`): models a service time such as a database call.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn work(
        &self,
        Parameters(args): Parameters<WorkArgs>,
    ) -> Result<Json<community::WorkOutput>, ErrorData> {
        let d = community::work_duration(&args, self.shared.max_work).map_err(invalid)?;
        let start = Instant::now();
        match args.mode {
            WorkMode::Sleep => tokio::time::sleep(d).await,
            WorkMode::Cpu => {
                // Off the async workers, so other servers' I/O is not starved meanwhile.
                tokio::task::spawn_blocking(move || community::burn_cpu(d))
                    .await
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            }
        }
        Ok(Json(community::WorkOutput {
            mode: args.mode,
            requested_micros: args.micros,
            actual_micros: start.elapsed().as_micros() as u64,
        }))
    }
}

#[tool_router(router = security_router, vis = "pub(crate)")]
impl McpServer {
    #[tool(
        description = "Scan text for secrets: AWS keys, GitHub and Slack tokens, PEM private keys, JWTs and high-entropy strings. Reports rule, line, column and a redacted match.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn scan_secrets(
        &self,
        Parameters(args): Parameters<security::ScanSecretsArgs>,
    ) -> Result<Json<security::ScanSecretsOutput>, ErrorData> {
        security::scan_secrets(&args).map(Json).map_err(invalid)
    }

    #[tool(
        description = "Check a package version (crates.io, npm, PyPI, Go) against the bundled OSV advisory snapshot.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn check_package(
        &self,
        Parameters(args): Parameters<security::CheckPackageArgs>,
    ) -> Result<Json<security::CheckPackageOutput>, ErrorData> {
        security::check_package(&args).map(Json).map_err(invalid)
    }

    #[tool(
        description = "Parse a Cargo.lock, package-lock.json or requirements.txt and report its packages and known advisories.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn scan_lockfile(
        &self,
        Parameters(args): Parameters<security::ScanLockfileArgs>,
    ) -> Result<Json<security::ScanLockfileOutput>, ErrorData> {
        security::scan_lockfile(&args).map(Json).map_err(invalid)
    }

    #[tool(
        description = "Check a Dockerfile or Kubernetes YAML for security misconfigurations.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn scan_iac(
        &self,
        Parameters(args): Parameters<security::ScanIacArgs>,
    ) -> Result<Json<security::ScanIacOutput>, ErrorData> {
        security::scan_iac(&args).map(Json).map_err(invalid)
    }

    #[tool(
        description = "Audit MCP tool definitions (as returned by tools/list) for tool-poisoning patterns: hidden instructions, sensitive file access, exfiltration, shadowing, invisible characters.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn audit_tool_descriptions(
        &self,
        Parameters(args): Parameters<security::AuditToolDescriptionsArgs>,
    ) -> Result<Json<security::AuditToolDescriptionsOutput>, ErrorData> {
        security::audit_tool_descriptions(&args)
            .map(Json)
            .map_err(invalid)
    }
}

impl McpServer {
    fn memory(&self) -> Result<&Memory, MemoryToolError> {
        self.shared
            .memory
            .as_ref()
            .ok_or_else(|| MemoryToolError::Failed("this fleet runs without memory".into()))
    }

    async fn write(&self, op: Op) -> Result<Ack, MemoryToolError> {
        Ok(self.memory()?.write(&self.shared.id, op).await?)
    }

    /// Waits for `minVersion` if asked, then reads from this server's view.
    async fn read(
        &self,
        min_version: Option<u64>,
        timeout_ms: Option<u64>,
        query: impl FnOnce(&View) -> KnowledgeGraph,
    ) -> MemoryResult<memory_tools::GraphOutput> {
        let memory = self.memory()?;
        let mut visible_at_us = None;
        let view = if let Some((version, timeout)) = memory_tools::wait(min_version, timeout_ms)? {
            memory
                .wait_for(version, timeout)
                .await
                .map_err(|e| MemoryToolError::Failed(e.to_string()))?;
            let view = memory.view();
            visible_at_us = view.visible_at(version);
            view
        } else {
            memory.fresh_view().await
        };
        // The version is read before the query: the answer holds at least that version.
        let version = view.version();
        Ok(Json(memory_tools::GraphOutput::new(
            query(view),
            version,
            visible_at_us,
        )))
    }
}

/// A write's result was not the kind its op produces: a bug, not the caller's fault.
fn unexpected(tool: &str) -> MemoryToolError {
    MemoryToolError::Failed(format!("internal error: unexpected result of {tool}"))
}

fn deleted(ack: Ack, what: &str) -> MemoryResult<memory_tools::DeletedOutput> {
    match ack.result {
        OpResult::Deleted(deleted) => Ok(Json(memory_tools::DeletedOutput {
            success: true,
            message: format!("{what} deleted successfully"),
            deleted,
            version: ack.version,
            acked_at_us: ack.acked_at_us,
        })),
        _ => Err(unexpected(what)),
    }
}

/// The official memory server's tools, with the same names and argument schemas, plus
/// `memory_history` and `memory_version`.
#[tool_router(router = memory_router, vis = "pub(crate)")]
impl McpServer {
    #[tool(
        description = "Create multiple new entities in the knowledge graph",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn create_entities(
        &self,
        Parameters(args): Parameters<CreateEntities>,
    ) -> MemoryResult<memory_tools::CreatedEntitiesOutput> {
        let ack = self.write(Op::CreateEntities(args)).await?;
        match ack.result {
            OpResult::CreatedEntities(entities) => Ok(Json(memory_tools::CreatedEntitiesOutput {
                entities,
                version: ack.version,
                acked_at_us: ack.acked_at_us,
            })),
            _ => Err(unexpected("create_entities")),
        }
    }

    #[tool(
        description = "Create multiple new relations between entities in the knowledge graph. Relations should be in active voice",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn create_relations(
        &self,
        Parameters(args): Parameters<CreateRelations>,
    ) -> MemoryResult<memory_tools::CreatedRelationsOutput> {
        let ack = self.write(Op::CreateRelations(args)).await?;
        match ack.result {
            OpResult::CreatedRelations(relations) => {
                Ok(Json(memory_tools::CreatedRelationsOutput {
                    relations,
                    version: ack.version,
                    acked_at_us: ack.acked_at_us,
                }))
            }
            _ => Err(unexpected("create_relations")),
        }
    }

    #[tool(
        description = "Add new observations to existing entities in the knowledge graph",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn add_observations(
        &self,
        Parameters(args): Parameters<AddObservations>,
    ) -> MemoryResult<memory_tools::AddedObservationsOutput> {
        let ack = self.write(Op::AddObservations(args)).await?;
        match ack.result {
            OpResult::AddedObservations(results) => {
                Ok(Json(memory_tools::AddedObservationsOutput {
                    results,
                    version: ack.version,
                    acked_at_us: ack.acked_at_us,
                }))
            }
            _ => Err(unexpected("add_observations")),
        }
    }

    #[tool(
        description = "Delete multiple entities and their associated relations from the knowledge graph",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_entities(
        &self,
        Parameters(args): Parameters<DeleteEntities>,
    ) -> MemoryResult<memory_tools::DeletedOutput> {
        deleted(self.write(Op::DeleteEntities(args)).await?, "Entities")
    }

    #[tool(
        description = "Delete specific observations from entities in the knowledge graph",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_observations(
        &self,
        Parameters(args): Parameters<DeleteObservations>,
    ) -> MemoryResult<memory_tools::DeletedOutput> {
        deleted(
            self.write(Op::DeleteObservations(args)).await?,
            "Observations",
        )
    }

    #[tool(
        description = "Delete multiple relations from the knowledge graph",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_relations(
        &self,
        Parameters(args): Parameters<DeleteRelations>,
    ) -> MemoryResult<memory_tools::DeletedOutput> {
        deleted(self.write(Op::DeleteRelations(args)).await?, "Relations")
    }

    #[tool(
        description = "Read the entire knowledge graph",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn read_graph(
        &self,
        Parameters(args): Parameters<memory_tools::ReadGraphArgs>,
    ) -> MemoryResult<memory_tools::GraphOutput> {
        self.read(args.min_version, args.timeout_ms, View::read_graph)
            .await
    }

    #[tool(
        description = "Search for nodes in the knowledge graph based on a query",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn search_nodes(
        &self,
        Parameters(args): Parameters<memory_tools::SearchNodesArgs>,
    ) -> MemoryResult<memory_tools::GraphOutput> {
        self.read(args.min_version, args.timeout_ms, |v| {
            v.search_nodes(&args.query)
        })
        .await
    }

    #[tool(
        description = "Open specific nodes in the knowledge graph by their names",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn open_nodes(
        &self,
        Parameters(args): Parameters<memory_tools::OpenNodesArgs>,
    ) -> MemoryResult<memory_tools::GraphOutput> {
        self.read(args.min_version, args.timeout_ms, |v| {
            v.open_nodes(&args.names)
        })
        .await
    }

    #[tool(
        description = "List the git history of one entity, newest first: commit, time, writing server, version and operation of each write that named it.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn memory_history(
        &self,
        Parameters(args): Parameters<memory_tools::MemoryHistoryArgs>,
    ) -> MemoryResult<memory_tools::MemoryHistoryOutput> {
        let limit = memory_tools::history_limit(args.limit)?;
        let entries = self.memory()?.history(&args.entity_name, limit).await?;
        Ok(Json(memory_tools::MemoryHistoryOutput {
            entity_name: args.entity_name,
            entries,
        }))
    }

    #[tool(
        description = "The version of the shared memory this server's view has reached (every write returns the version it created; reads accept minVersion).",
        annotations(
            read_only_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn memory_version(
        &self,
        Parameters(_): Parameters<memory_tools::MemoryVersionArgs>,
    ) -> MemoryResult<memory_tools::MemoryVersionOutput> {
        Ok(Json(memory_tools::MemoryVersionOutput {
            version: self.memory()?.fresh_view().await.version(),
            server: self.shared.id.clone(),
        }))
    }
}

#[tool_handler(router = self.shared.router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        self.shared.info.clone()
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let result = self.negotiate_initialize(&request)?;
        let counters = self.shared.counters.clone();
        if self.session.set(SessionGuard(counters.clone())).is_ok() {
            counters.open_sessions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(result)
    }

    /// rmcp routes a known method whose params do not parse (e.g. `tools/call` without `name`)
    /// here as if it were unknown; answer -32602 for those and -32601 for the really unknown.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        const KNOWN: &[&str] = &[
            "initialize",
            "ping",
            "tools/call",
            "tools/list",
            "server/discover",
            "resources/list",
            "resources/read",
            "prompts/list",
            "prompts/get",
            "completion/complete",
            "logging/setLevel",
        ];
        if KNOWN.contains(&request.method.as_str()) {
            Err(ErrorData::invalid_params(
                format!("invalid params for `{}`", request.method),
                None,
            ))
        } else {
            Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("method not found: `{}`", request.method),
                None,
            ))
        }
    }
}

/// State of the HTTP layers in front of the MCP service.
#[derive(Clone)]
struct Edge {
    counters: Arc<Counters>,
    faults: watch::Receiver<Faults>,
}

/// Counts every request and applies injected faults before the request reaches a handler.
/// It sits outermost so `/healthz` is affected exactly like MCP traffic: a paused server looks
/// hung to the health monitor too.
async fn edge(State(edge): State<Edge>, request: Request, next: Next) -> Response {
    edge.counters.requests.fetch_add(1, Ordering::Relaxed);
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
    next.run(request).await
}

/// The one gate in front of rmcp: refuses foreign Host/Origin headers with 403 (DNS-rebinding
/// guard, for every loopback address rather than rmcp's fixed list), a body over the limit with
/// 413, a body that is not JSON with JSON-RPC -32700 and JSON that is not a single JSON-RPC message
/// with -32600 (rmcp answers both with a plain-text HTTP 415).
async fn jsonrpc_guard(State(limit): State<usize>, request: Request, next: Next) -> Response {
    if let Some(refusal) = crate::loopback::refuse_foreign(request.headers()) {
        return refusal;
    }
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return jsonrpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            -32600,
            format!("request body exceeds the limit of {limit} bytes"),
        );
    };
    /// Just enough structure to tell a JSON-RPC message from other JSON, without building it.
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        jsonrpc: Option<std::borrow::Cow<'a, str>>,
        method: Option<serde::de::IgnoredAny>,
        result: Option<serde::de::IgnoredAny>,
        error: Option<serde::de::IgnoredAny>,
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map(|_| ()) {
        Err(e) => {
            return jsonrpc_error(StatusCode::BAD_REQUEST, -32700, format!("parse error: {e}"));
        }
        Ok(()) => match serde_json::from_slice::<Probe>(&bytes) {
            Ok(p)
                if p.jsonrpc.as_deref() == Some("2.0")
                    && (p.method.is_some() || p.result.is_some() || p.error.is_some()) => {}
            Ok(_) => {
                return jsonrpc_error(
                    StatusCode::BAD_REQUEST,
                    -32600,
                    "invalid request: not a JSON-RPC 2.0 message (needs \"jsonrpc\": \"2.0\" and a method)".into(),
                );
            }
            Err(_) => {
                return jsonrpc_error(
                    StatusCode::BAD_REQUEST,
                    -32600,
                    "invalid request: expected one JSON-RPC message object (batches are not part of MCP)".into(),
                );
            }
        },
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
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
    let handler = McpServer::new(&identity, spec, counters.clone(), memory);
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(spec.session_idle);
    let config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_max_request_body_bytes(spec.max_body_bytes)
        // Host and Origin are checked by `jsonrpc_guard`, for every loopback address.
        .disable_allowed_hosts()
        .disable_allowed_origins();
    let service =
        StreamableHttpService::new(move || Ok(handler.fresh()), Arc::new(sessions), config);
    let edge_state = Edge { counters, faults };
    let mcp = Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn_with_state(
            spec.max_body_bytes,
            jsonrpc_guard,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(edge_state.clone())
        .merge(mcp)
        .layer(middleware::from_fn_with_state(edge_state, edge))
}
