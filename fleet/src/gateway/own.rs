//! What the gateway answers as an MCP server itself, for clients of every era on `/mcp`: its
//! `initialize` (the version negotiated with the client), its `server/discover`, and the
//! fleet's tools as one paginated list. The shapes come from rmcp's model, so they are the ones
//! the SDKs parse.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rmcp::model::{
    DiscoverResult, Implementation, InitializeResult, ProtocolVersion, ServerCapabilities,
};
use serde_json::{Value, json};

use crate::wire::Version;

/// Tools per `tools/list` page. The reference fleet's union fits one page; a larger fleet (or
/// groups with many tools) is paged rather than sent as one unbounded answer.
pub(super) const TOOLS_PAGE: usize = 100;

/// What the gateway offers: tools, and to session clients word on their GET stream when the
/// list changes (groups gain or lose members). 2026-07-28 clients would need a
/// `subscriptions/listen` stream for that, which the gateway does not offer, so they are not
/// promised it. (Logging is not declared, being deprecated by SEP-2577; a `logging/setLevel`
/// is still answered.)
fn capabilities(list_changed: bool) -> ServerCapabilities {
    let tools = ServerCapabilities::builder().enable_tools();
    if list_changed {
        tools.enable_tool_list_changed().build()
    } else {
        tools.build()
    }
}

fn implementation() -> Implementation {
    Implementation::new("mcpfleet-gateway", env!("CARGO_PKG_VERSION"))
        .with_title("mcpfleet gateway: every group's tools as group__tool")
}

const INSTRUCTIONS: &str = "The whole fleet as one server: each group's tools are listed as \
    group__tool, and a call goes to a healthy member of that group.";

/// The session version the gateway settles on when a client asks for `requested`: the same if
/// it is a session version, else the newest session version (as rmcp's servers do for a
/// client asking for 2026-07-28 in `initialize`).
pub(super) fn negotiate(requested: Option<&str>) -> Version {
    requested
        .and_then(Version::parse)
        .filter(|v| !v.is_stateless())
        .unwrap_or(Version::V2025_11_25)
}

/// The `initialize` result for a session in `version`.
pub(super) fn initialize_result(version: Version) -> Value {
    let mut result = InitializeResult::new(capabilities(true))
        .with_server_info(implementation())
        .with_instructions(INSTRUCTIONS);
    result.protocol_version = ProtocolVersion::from(version);
    serde_json::to_value(result).unwrap_or_else(|_| json!({}))
}

/// The `server/discover` result: every version the gateway speaks on `/mcp`.
pub(super) fn discover_result() -> Value {
    let versions = Version::ALL
        .into_iter()
        // 2024-11-05 is offered in sessions on streamable HTTP, as the SDK servers do.
        .map(ProtocolVersion::from)
        .collect();
    let mut result =
        DiscoverResult::new(versions, capabilities(false)).with_server_info(implementation());
    result.instructions = Some(INSTRUCTIONS.to_string());
    serde_json::to_value(result).unwrap_or_else(|_| json!({}))
}

/// Why a `tools/list` cursor was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid cursor: not one this gateway handed out")]
pub(super) struct BadCursor;

/// One page of `tools` from `cursor` (none: the first page), with `nextCursor` when more
/// follow. A cursor is the opaque offset of the page it starts.
pub(super) fn tools_page(
    tools: Vec<Value>,
    cursor: Option<&str>,
    page: usize,
) -> Result<Value, BadCursor> {
    let start = match cursor {
        None => 0,
        Some(c) => {
            let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| BadCursor)?;
            std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| t.strip_prefix("tools:"))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n <= tools.len())
                .ok_or(BadCursor)?
        }
    };
    let end = start.saturating_add(page.max(1)).min(tools.len());
    let next = (end < tools.len()).then(|| URL_SAFE_NO_PAD.encode(format!("tools:{end}")));
    let page: Vec<Value> = tools.into_iter().skip(start).take(end - start).collect();
    let mut result = json!({ "tools": page });
    if let Some(next) = next {
        result["nextCursor"] = Value::String(next);
    }
    Ok(result)
}

/// What a 2026-07-28 list result must carry besides its items (SEP-2322, SEP-2549; SDK
/// clients refuse a page without them): it is complete, stale at once (the groups change with
/// `fleet scale`, and a stateless client has no stream to hear of it) and the same for every
/// client.
pub(super) fn stateless_list(page: &mut Value) {
    page["resultType"] = json!("complete");
    page["ttlMs"] = json!(0);
    page["cacheScope"] = json!("public");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tools(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({ "name": format!("t{i}") })).collect()
    }

    #[test]
    fn pages_cover_every_tool_once_in_order() {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = tools_page(tools(7), cursor.as_deref(), 3).unwrap();
            for t in page["tools"].as_array().unwrap() {
                seen.push(t["name"].as_str().unwrap().to_string());
            }
            match page.get("nextCursor") {
                Some(c) => cursor = Some(c.as_str().unwrap().to_string()),
                None => break,
            }
        }
        let want: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
        assert_eq!(seen, want);
        let one = tools_page(tools(3), None, TOOLS_PAGE).unwrap();
        assert!(one.get("nextCursor").is_none());
        assert_eq!(one["tools"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn foreign_cursors_are_refused() {
        let far = URL_SAFE_NO_PAD.encode("tools:99");
        for c in ["", "!!", "dG9vbHM6", far.as_str(), "eA"] {
            assert_eq!(tools_page(tools(5), Some(c), 2), Err(BadCursor), "{c}");
        }
    }

    #[test]
    fn negotiation_keeps_session_versions_and_downgrades_the_rest() {
        assert_eq!(negotiate(Some("2025-03-26")), Version::V2025_03_26);
        assert_eq!(negotiate(Some("2026-07-28")), Version::V2025_11_25);
        assert_eq!(negotiate(Some("1999-01-01")), Version::V2025_11_25);
        assert_eq!(negotiate(None), Version::V2025_11_25);
        let init = initialize_result(Version::V2025_06_18);
        assert_eq!(init["protocolVersion"], "2025-06-18");
        assert_eq!(init["capabilities"]["tools"]["listChanged"], true);
        assert_eq!(init["serverInfo"]["name"], "mcpfleet-gateway");
        let discover = discover_result();
        assert_eq!(discover["supportedVersions"].as_array().unwrap().len(), 5);
        assert!(
            discover["capabilities"]["tools"]
                .get("listChanged")
                .is_none()
        );
    }
}
