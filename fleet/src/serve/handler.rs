//! The rmcp handler of one server: its tools by profile (community, security; the memory tools
//! live in [`super::memory_handler`]), the server's identity as `initialize` announces it, and
//! the JSON-RPC errors for known methods with bad params. The security tools run through
//! [`super::heavy`]: off the async workers and within `tool_deadline`. A handler holds nothing
//! of its own, so the one rmcp keeps per session costs a pointer: sessions are counted and
//! kept by [`super::sessions`].

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::{
    ErrorData, Json, RoleServer, ServerHandler,
    handler::server::router::tool::ToolRouter,
    model::{
        CustomRequest, CustomResult, ErrorCode, Implementation, InitializeRequestParams,
        InitializeResult, ProtocolVersion, ServerCapabilities, ServerConfig,
    },
    service::RequestContext,
    tool, tool_handler, tool_router,
};

use crate::{
    memory::Memory,
    profile::Profile,
    serve::{args::Parameters, heavy, registry::Identity},
    spec::ServerSpec,
    tools::{
        community::{self, AddArgs, EchoArgs, JsonQueryArgs, TextStatsArgs, WorkArgs, WorkMode},
        error::ToolInputError,
        security,
    },
};

/// What every instance of a server shares; handlers hold it behind one `Arc` so the
/// per-request service factory of the stateless path is a pointer copy.
pub struct ServerSetup {
    router: ToolRouter<McpServer>,
    info: ServerConfig,
    max_work: Duration,
    /// Longest a security tool's call may take ([`heavy::run`]).
    tool_deadline: Duration,
    /// The protocol versions this server speaks: every known one, or only the session eras'.
    versions: &'static [ProtocolVersion],
    /// This server's id: the author of its memory writes.
    pub(super) id: String,
    /// The fleet's shared memory, when the fleet runs with one.
    pub(super) memory: Option<Memory>,
}

/// The rmcp handler. A clone (one pointer to the shared setup) serves each session
/// (2025-11-25) or request (2026-07-28).
#[derive(Clone)]
pub struct McpServer {
    pub(super) setup: Arc<ServerSetup>,
}

impl McpServer {
    pub fn new(identity: &Identity, spec: &ServerSpec, memory: Option<Memory>) -> Self {
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
            setup: Arc::new(ServerSetup {
                router,
                info,
                max_work: spec.max_work,
                tool_deadline: spec.tool_deadline,
                versions: if spec.stateless {
                    ProtocolVersion::KNOWN_VERSIONS
                } else {
                    ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25)
                },
                id: identity.id.clone(),
                memory,
            }),
        }
    }
}

/// Maps argument errors of tool logic to JSON-RPC -32602 with the field named in `data`.
pub(super) fn invalid(e: ToolInputError) -> ErrorData {
    ErrorData::invalid_params(e.to_string(), Some(serde_json::json!({ "field": e.field })))
}

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
        let d = community::work_duration(&args, self.setup.max_work).map_err(invalid)?;
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
        let bytes = args.content.len();
        self.heavy("scan_secrets", bytes, move || security::scan_secrets(&args))
            .await
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
        let bytes = args.content.len();
        self.heavy("scan_lockfile", bytes, move || {
            security::scan_lockfile(&args)
        })
        .await
    }

    #[tool(
        description = "Check a Dockerfile or Kubernetes YAML for security misconfigurations.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn scan_iac(
        &self,
        Parameters(args): Parameters<security::ScanIacArgs>,
    ) -> Result<Json<security::ScanIacOutput>, ErrorData> {
        let bytes = args.content.len();
        self.heavy("scan_iac", bytes, move || security::scan_iac(&args))
            .await
    }

    #[tool(
        description = "Audit MCP tool definitions (as returned by tools/list) for tool-poisoning patterns: hidden instructions, sensitive file access, exfiltration, shadowing, invisible characters.",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn audit_tool_descriptions(
        &self,
        Parameters(args): Parameters<security::AuditToolDescriptionsArgs>,
    ) -> Result<Json<security::AuditToolDescriptionsOutput>, ErrorData> {
        let bytes = args.input_bytes();
        self.heavy("audit_tool_descriptions", bytes, move || {
            security::audit_tool_descriptions(&args)
        })
        .await
    }
}

impl McpServer {
    /// A security tool's work, run by [`heavy::run`] within this server's deadline.
    async fn heavy<T, F>(&self, tool: &str, bytes: usize, work: F) -> Result<Json<T>, ErrorData>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ToolInputError> + Send + 'static,
    {
        heavy::run(tool, bytes, self.setup.tool_deadline, work)
            .await?
            .map(Json)
            .map_err(invalid)
    }
}

#[tool_handler(router = self.setup.router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        self.setup.info.clone()
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Borrowed(self.setup.versions)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
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
