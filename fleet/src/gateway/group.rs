//! One group of the gateway: the pool of replicas offering the same tools, the tools they list
//! (fetched once) and which of those may be sent twice, and the group's call counters.

use std::sync::{Arc, atomic::AtomicU64};

use serde_json::Value;
use tokio::sync::OnceCell;

use super::balance::Pool;

/// One group: a pool of replicas offering the same tools.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) pool: Pool,
    /// The group's tools as its servers list them (unprefixed), fetched once.
    pub(super) tools: OnceCell<Arc<GroupTools>>,
    /// `tools/call`s routed to this group, and those sent a second time to another member.
    pub(super) calls: AtomicU64,
    pub(super) retries: AtomicU64,
}

/// A group's tools as its servers list them, and which of them may be sent twice.
#[derive(Debug)]
pub(super) struct GroupTools {
    pub(super) list: Vec<Value>,
    /// Tools annotated read-only or idempotent: a call to one of them that failed in flight
    /// (the server died mid-request) is retried on another member, since running it twice
    /// does no harm.
    pub(super) retry_safe: std::collections::HashSet<String>,
}

impl GroupTools {
    pub(super) fn new(list: Vec<Value>) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_and_idempotent_tools_are_retry_safe() {
        let tools = GroupTools::new(vec![
            serde_json::json!({"name": "echo", "annotations": {"readOnlyHint": true}}),
            serde_json::json!({"name": "put", "annotations": {"idempotentHint": true}}),
            serde_json::json!({"name": "append", "annotations": {"readOnlyHint": false}}),
            serde_json::json!({"name": "bare"}),
        ]);
        assert_eq!(tools.list.len(), 4);
        let mut safe: Vec<&str> = tools.retry_safe.iter().map(String::as_str).collect();
        safe.sort_unstable();
        assert_eq!(safe, ["echo", "put"]);
    }
}
