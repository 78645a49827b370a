//! The memory tools of a server (the official memory server's tools, with the same names and
//! argument schemas, plus `memory_history` and `memory_version`): each call writes through
//! the fleet's shared memory or reads this server's view of it, and fails as the official
//! server does.

use rmcp::{
    ErrorData, Json,
    handler::server::tool::IntoCallToolResult,
    model::{CallToolResponse, CallToolResult, ContentBlock},
    tool, tool_router,
};

use crate::{
    memory::{
        Ack, AddObservations, CreateEntities, CreateRelations, DeleteEntities, DeleteObservations,
        DeleteRelations, Memory, Op, OpResult, Query, WriteError,
    },
    serve::handler::invalid,
    serve::{args::Parameters, handler::McpServer},
    tools::{error::ToolInputError, memory as memory_tools},
};

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

impl McpServer {
    fn memory(&self) -> Result<&Memory, MemoryToolError> {
        self.setup
            .memory
            .as_ref()
            .ok_or_else(|| MemoryToolError::Failed("this fleet runs without memory".into()))
    }

    async fn write(&self, op: Op) -> Result<Ack, MemoryToolError> {
        Ok(self.memory()?.write(&self.setup.id, op).await?)
    }

    /// Waits for `minVersion` if asked, then reads what the fleet's memory holds.
    async fn read(
        &self,
        wait: memory_tools::WaitArgs,
        query: Query,
    ) -> MemoryResult<memory_tools::GraphOutput> {
        let memory = self.memory()?;
        let wait = wait.checked()?;
        let answer = memory
            .read(query, wait)
            .await
            .map_err(|e| MemoryToolError::Failed(e.to_string()))?;
        Ok(Json(memory_tools::GraphOutput::new(
            answer.graph,
            answer.version,
            answer.visible_at_us,
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
        self.read(args.wait, Query::ReadGraph).await
    }

    #[tool(
        description = "Search for nodes in the knowledge graph based on a query",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn search_nodes(
        &self,
        Parameters(args): Parameters<memory_tools::SearchNodesArgs>,
    ) -> MemoryResult<memory_tools::GraphOutput> {
        self.read(args.wait, Query::Search(args.query)).await
    }

    #[tool(
        description = "Open specific nodes in the knowledge graph by their names",
        annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn open_nodes(
        &self,
        Parameters(args): Parameters<memory_tools::OpenNodesArgs>,
    ) -> MemoryResult<memory_tools::GraphOutput> {
        self.read(args.wait, Query::Open(args.names)).await
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
        description = "The version the shared memory has reached (every write returns the version it created; reads accept minVersion).",
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
        let (version, node) = self
            .memory()?
            .version()
            .await
            .map_err(|e| MemoryToolError::Failed(e.to_string()))?;
        Ok(Json(memory_tools::MemoryVersionOutput {
            version,
            node,
            server: self.setup.id.clone(),
        }))
    }
}
