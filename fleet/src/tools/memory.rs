//! The memory tools' own argument and result shapes. Writes take the official memory server's
//! arguments unchanged (`crate::memory::op`); what is added here is what makes sync
//! measurable: every write answers the version it created, and every read can wait for a
//! version (`minVersion`) before answering.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::ToolInputError;
use crate::memory::{
    AddedObservations, Deleted, Entity, HistoryEntry, KnowledgeGraph, MinVersion, Relation,
    replica::NodeId,
};

/// How long a read waits for `minVersion` when the caller does not say.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// Longest wait a caller may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most history entries one call returns.
pub const MAX_HISTORY: usize = 1000;

/// What every read may ask to wait for before it answers.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitArgs {
    /// Answer only once this server's view has reached this version (e.g. the `version` a
    /// write on another server returned).
    #[serde(default)]
    pub min_version: Option<u64>,
    /// The node `minVersion` is a version of, as `memory_version` names it, when the write
    /// was made on another node of a replicating fleet (versions are per node); absent: this
    /// server's own.
    #[serde(default)]
    pub min_version_node: Option<String>,
    /// How long to wait for `minVersion`, in milliseconds (default 5000, at most 60000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadGraphArgs {
    #[serde(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchNodesArgs {
    /// The search query to match against entity names, types, and observation content.
    pub query: String,
    #[serde(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenNodesArgs {
    /// An array of entity names to retrieve.
    pub names: Vec<String>,
    #[serde(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryHistoryArgs {
    /// The entity whose history to list.
    pub entity_name: String,
    /// Most entries to return, newest first (default 20, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryVersionArgs {}

impl WaitArgs {
    /// The wait a read asked for: `(min_version, timeout)`, or `None` to answer at once.
    pub fn checked(self) -> Result<Option<(MinVersion, Duration)>, ToolInputError> {
        if let Some(node) = &self.min_version_node
            && let Err(why) = NodeId::parse(node)
        {
            return Err(ToolInputError::new("minVersionNode", why));
        }
        let timeout = match self.timeout_ms {
            None => DEFAULT_WAIT,
            Some(ms) if Duration::from_millis(ms) > MAX_WAIT => {
                return Err(ToolInputError::new(
                    "timeoutMs",
                    format!("at most {} ms", MAX_WAIT.as_millis()),
                ));
            }
            Some(ms) => Duration::from_millis(ms),
        };
        let node = self.min_version_node;
        Ok(self
            .min_version
            .map(|version| (MinVersion { version, node }, timeout)))
    }
}

/// `history`'s limit, checked.
pub fn history_limit(limit: Option<usize>) -> Result<usize, ToolInputError> {
    match limit {
        None => Ok(20),
        Some(0) => Err(ToolInputError::new("limit", "must be at least 1")),
        Some(n) if n > MAX_HISTORY => Err(ToolInputError::new(
            "limit",
            format!("at most {MAX_HISTORY}"),
        )),
        Some(n) => Ok(n),
    }
}

/// `create_entities`: the entities that were new, and the version the write created.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreatedEntitiesOutput {
    pub entities: Vec<Entity>,
    pub version: u64,
    /// When the write was acknowledged (durable), microseconds since the Unix epoch.
    #[serde(rename = "ackedAtUs")]
    pub acked_at_us: u64,
}

/// `create_relations`: the relations that were new, and the version the write created.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreatedRelationsOutput {
    pub relations: Vec<Relation>,
    pub version: u64,
    /// When the write was acknowledged (durable), microseconds since the Unix epoch.
    #[serde(rename = "ackedAtUs")]
    pub acked_at_us: u64,
}

/// `add_observations`: per entity, the observations that were new.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AddedObservationsOutput {
    pub results: Vec<AddedObservations>,
    pub version: u64,
    /// When the write was acknowledged (durable), microseconds since the Unix epoch.
    #[serde(rename = "ackedAtUs")]
    pub acked_at_us: u64,
}

/// The deletes: what was removed, and what survived because a write the deleting server had
/// not seen added it (`deleted.kept`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeletedOutput {
    pub success: bool,
    pub message: String,
    pub deleted: Deleted,
    pub version: u64,
    /// When the write was acknowledged (durable), microseconds since the Unix epoch.
    #[serde(rename = "ackedAtUs")]
    pub acked_at_us: u64,
}

/// The reads: the official `{entities, relations}` plus the version of the view that answered.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GraphOutput {
    pub entities: Vec<Entity>,
    pub relations: Vec<Relation>,
    pub version: u64,
    /// With `minVersion`: when it became readable, microseconds since the Unix epoch (absent
    /// when that was too long ago to be remembered). Every server reads the owner's one view,
    /// which takes a write before its ack, so against the write's `ackedAtUs` this is the
    /// write-to-visible lag without any read's round trip.
    #[serde(rename = "visibleAtUs", skip_serializing_if = "Option::is_none")]
    pub visible_at_us: Option<u64>,
}

impl GraphOutput {
    pub fn new(graph: KnowledgeGraph, version: u64, visible_at_us: Option<u64>) -> Self {
        Self {
            entities: graph.entities,
            relations: graph.relations,
            version,
            visible_at_us,
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryHistoryOutput {
    pub entity_name: String,
    /// Newest first. Writes acknowledged but not yet committed to git are not listed yet.
    pub entries: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MemoryVersionOutput {
    /// The version this server's view has reached.
    pub version: u64,
    /// The node of a replicating fleet this server's memory belongs to (what other nodes'
    /// reads name in `minVersionNode`); absent when the fleet does not replicate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// This server's id.
    pub server: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(
        min_version: Option<u64>,
        min_version_node: Option<String>,
        timeout_ms: Option<u64>,
    ) -> Result<Option<(MinVersion, Duration)>, ToolInputError> {
        WaitArgs {
            min_version,
            min_version_node,
            timeout_ms,
        }
        .checked()
    }

    #[test]
    fn the_reads_take_their_wait_as_top_level_arguments() {
        let args: OpenNodesArgs = serde_json::from_value(serde_json::json!({
            "names": ["a"], "minVersion": 7, "minVersionNode": "node-b", "timeoutMs": 10
        }))
        .unwrap();
        assert_eq!(
            (args.wait.min_version, args.wait.timeout_ms),
            (Some(7), Some(10))
        );
        assert_eq!(args.wait.min_version_node.as_deref(), Some("node-b"));
        // What clients see in tools/list: one flat object.
        for schema in [
            schemars::schema_for!(ReadGraphArgs),
            schemars::schema_for!(SearchNodesArgs),
            schemars::schema_for!(OpenNodesArgs),
        ] {
            let v = schema.as_value();
            assert_eq!(v["type"], "object", "{v}");
            for field in ["minVersion", "minVersionNode", "timeoutMs"] {
                assert!(v["properties"][field].is_object(), "{field} in {v}");
            }
        }
    }

    #[test]
    fn waits_and_limits_are_checked() {
        assert_eq!(wait(None, None, None), Ok(None));
        assert_eq!(
            wait(Some(3), None, None),
            Ok(Some((3.into(), DEFAULT_WAIT)))
        );
        assert_eq!(
            wait(Some(3), None, Some(10)),
            Ok(Some((3.into(), Duration::from_millis(10))))
        );
        assert_eq!(
            wait(Some(3), Some("node-b".into()), None),
            Ok(Some((
                MinVersion {
                    version: 3,
                    node: Some("node-b".into())
                },
                DEFAULT_WAIT
            )))
        );
        assert_eq!(
            wait(Some(3), Some("../x".into()), None).map_err(|e| e.field),
            Err("minVersionNode".into())
        );
        assert_eq!(
            wait(Some(3), None, Some(60_001)).map_err(|e| e.field),
            Err("timeoutMs".into())
        );
        assert_eq!(history_limit(None), Ok(20));
        assert_eq!(
            history_limit(Some(0)).map_err(|e| e.field),
            Err("limit".into())
        );
        assert_eq!(
            history_limit(Some(1001)).map_err(|e| e.field),
            Err("limit".into())
        );
    }
}
