//! Reading the memory tools' answers: a call's `result` or its failure, the JSON payload of a
//! result, the version it carries, the entities a read listed, a history entry.

use std::borrow::Cow;

use serde_json::Value;

use crate::mcp::{self, ErrorClass};

/// A failed call: its class, and for a tool error the tool's text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Failure {
    pub(super) class: ErrorClass,
    pub(super) text: String,
}

impl From<ErrorClass> for Failure {
    fn from(class: ErrorClass) -> Self {
        Self {
            class,
            text: String::new(),
        }
    }
}

impl Failure {
    pub(super) fn describe(&self) -> String {
        if self.text.is_empty() {
            self.class.name().to_string()
        } else {
            format!("{}: {}", self.class.name(), self.text)
        }
    }
}

/// The `result` of a complete response to request `id`, or the failure's class (and, for a
/// tool error, its text).
pub(super) fn parse_reply(status: u16, body: &str, id: u64) -> Result<Value, Failure> {
    let result = || mcp::result_of(body, id);
    match mcp::classify_response(status, body, id, &mut mcp::Asides::default()) {
        Ok(()) => result().ok_or_else(|| ErrorClass::Protocol.into()),
        Err(ErrorClass::ToolError) => Err(Failure {
            class: ErrorClass::ToolError,
            text: result().map(|r| content_text(&r)).unwrap_or_default(),
        }),
        Err(class) => Err(class.into()),
    }
}

/// The text contents of a tool result, joined.
pub(super) fn content_text(result: &Value) -> String {
    result
        .get("content")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The JSON a memory tool answered: `structuredContent`, else the first text content that is
/// a JSON object.
pub(super) fn payload(result: &Value) -> Option<Cow<'_, Value>> {
    if let Some(structured) = result.get("structuredContent").filter(|v| v.is_object()) {
        return Some(Cow::Borrowed(structured));
    }
    result
        .get("content")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .find_map(|t| {
            serde_json::from_str::<Value>(t)
                .ok()
                .filter(Value::is_object)
        })
        .map(Cow::Owned)
}

/// The `version` of a memory payload: the version a write created, or a read's view.
pub(super) fn version_of(payload: &Value) -> Option<u64> {
    payload.get("version").and_then(Value::as_u64)
}

/// The entity names of a read's result; `None` if it has no `entities` list.
pub(super) fn listed_names(result: &Value) -> Option<Vec<String>> {
    let p = payload(result)?;
    let entities = p.get("entities")?.as_array()?;
    Some(
        entities
            .iter()
            .filter_map(|e| e.get("name").and_then(Value::as_str).map(String::from))
            .collect(),
    )
}

/// Whether a read of `name` saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    Visible,
    /// Answered, without the entity.
    Missing,
    /// The server's view did not reach `minVersion` within `timeoutMs`.
    WaitTimeout,
    ReadFailed(ErrorClass),
}

impl Seen {
    pub(super) fn kind(self) -> String {
        match self {
            Seen::Visible => "visible".into(),
            Seen::Missing => "missing".into(),
            Seen::WaitTimeout => "wait_timeout".into(),
            Seen::ReadFailed(class) => format!("read_{}", class.name()),
        }
    }
}

pub(super) fn seen(outcome: &Result<Value, Failure>, name: &str) -> Seen {
    match outcome {
        Ok(result) => match listed_names(result) {
            Some(names) if names.iter().any(|n| n == name) => Seen::Visible,
            Some(_) => Seen::Missing,
            None => Seen::ReadFailed(ErrorClass::Protocol),
        },
        Err(f) if f.class == ErrorClass::ToolError && f.text.contains("timed out waiting") => {
            Seen::WaitTimeout
        }
        Err(f) => Seen::ReadFailed(f.class),
    }
}

/// Whether a `memory_history` result has an entry of `version`: `Some(writing server)` if so.
pub(super) fn history_entry(result: &Value, version: u64) -> Option<Option<String>> {
    let p = payload(result)?;
    p.get("entries")?
        .as_array()?
        .iter()
        .find(|e| e.get("version").and_then(Value::as_u64) == Some(version))
        .map(|e| e.get("server").and_then(Value::as_str).map(String::from))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use serde_json::json;

    use super::*;

    /// A tool result as the fleet answers: the payload as structured content and as text.
    fn result(payload: Value) -> Value {
        json!({
            "content": [{"type": "text", "text": payload.to_string()}],
            "structuredContent": payload,
            "isError": false,
        })
    }

    fn reply(id: u64, result: Value) -> String {
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
    }

    #[test]
    fn versions_come_from_structured_content_or_text() {
        let created = json!({
            "entities": [{"name": "sync-ab-1", "entityType": "sync-probe", "observations": ["x"]}],
            "version": 42,
        });
        let r = parse_reply(200, &reply(3, result(created.clone())), 3).unwrap();
        assert_eq!(payload(&r).and_then(|p| version_of(&p)), Some(42));
        // Text content only (a server that does not send structured content).
        let text_only = json!({"content": [{"type": "text", "text": created.to_string()}]});
        assert_eq!(payload(&text_only).and_then(|p| version_of(&p)), Some(42));
        // Every write's result shape carries it.
        for payload_ in [
            json!({"relations": [{"from": "a", "to": "b", "relationType": "r"}], "version": 7}),
            json!({"results": [{"entityName": "a", "addedObservations": ["o"]}], "version": 8}),
            json!({"success": true, "message": "Entities deleted", "deleted": {}, "version": 9}),
            json!({"version": 10, "server": "community-0001"}),
        ] {
            let want = payload_["version"].as_u64();
            assert_eq!(
                payload(&result(payload_)).and_then(|p| version_of(&p)),
                want
            );
        }
        // No version, or text that is not JSON: none.
        assert_eq!(
            payload(&result(json!({"entities": []}))).and_then(|p| version_of(&p)),
            None
        );
        let prose = json!({"content": [{"type": "text", "text": "created 1 entity"}]});
        assert!(payload(&prose).is_none());
        // Over SSE as well.
        let sse = format!(
            "event: message\ndata: {}\n\n",
            reply(4, result(json!({"version": 5})))
        );
        let r = parse_reply(200, &sse, 4).unwrap();
        assert_eq!(payload(&r).and_then(|p| version_of(&p)), Some(5));
    }

    #[test]
    fn reads_show_the_entity_or_not() {
        let name = "sync-ab-7";
        let read = |entities: Value| {
            Ok(result(
                json!({"entities": entities, "relations": [], "version": 12}),
            ))
        };
        let one = json!([{"name": name, "entityType": "sync-probe", "observations": ["x"]}]);
        assert_eq!(seen(&read(one), name), Seen::Visible);
        let other = json!([{"name": "sync-ab-8", "entityType": "sync-probe", "observations": []}]);
        assert_eq!(seen(&read(other), name), Seen::Missing);
        assert_eq!(seen(&read(json!([])), name), Seen::Missing);
        // A result without an entity list breaks the contract.
        assert_eq!(
            seen(&Ok(result(json!({"version": 1}))), name),
            Seen::ReadFailed(ErrorClass::Protocol)
        );
        assert_eq!(
            listed_names(&read(json!([{"name": "a"}, {"name": "b"}, {"name": "a"}])).unwrap()),
            Some(vec!["a".into(), "b".into(), "a".into()])
        );
    }

    #[test]
    fn a_wait_timeout_is_told_from_other_failures() {
        let timed_out = json!({
            "jsonrpc": "2.0", "id": 9,
            "result": {
                "content": [{"type": "text", "text": "timed out waiting for version 120 (at 118)"}],
                "isError": true,
            },
        })
        .to_string();
        let outcome = parse_reply(200, &timed_out, 9);
        let failure = outcome.as_ref().unwrap_err();
        assert_eq!(failure.class, ErrorClass::ToolError);
        assert!(failure.text.contains("version 120"), "{failure:?}");
        assert_eq!(seen(&outcome, "x"), Seen::WaitTimeout);
        assert_eq!(Seen::WaitTimeout.kind(), "wait_timeout");

        let not_found = timed_out.replace(
            "timed out waiting for version 120 (at 118)",
            "Entity with name x not found",
        );
        let outcome = parse_reply(200, &not_found, 9);
        assert_eq!(seen(&outcome, "x"), Seen::ReadFailed(ErrorClass::ToolError));
        assert_eq!(
            Seen::ReadFailed(ErrorClass::ToolError).kind(),
            "read_tool_error"
        );

        let invalid = r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32602,"message":"minVersion: invalid type"}}"#;
        assert_eq!(
            parse_reply(200, invalid, 9).unwrap_err().class,
            ErrorClass::JsonrpcError
        );
        assert_eq!(
            parse_reply(503, "busy", 9).unwrap_err().class,
            ErrorClass::HttpStatus
        );
        assert_eq!(
            parse_reply(200, &reply(8, json!({})), 9).unwrap_err().class,
            ErrorClass::Protocol,
            "another request's answer"
        );
    }

    #[test]
    fn history_entries_are_matched_by_version() {
        let h = result(json!({
            "entityName": "sync-ab-1",
            "entries": [
                {"commit": "3f2a", "timeMs": 1, "server": "community-0003", "version": 41, "operation": "add_observations"},
                {"commit": "9c1d", "timeMs": 1, "server": "security-0001", "version": 40, "operation": "create_entities"},
            ],
        }));
        assert_eq!(history_entry(&h, 40), Some(Some("security-0001".into())));
        assert_eq!(history_entry(&h, 39), None);
        assert_eq!(history_entry(&result(json!({"entries": []})), 1), None);
    }
}
