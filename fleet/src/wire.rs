//! The MCP wire vocabulary every side of the fleet speaks: the two protocol eras and their
//! version strings, the streamable-HTTP headers, the `_meta` a stateless client sends, and
//! reading the JSON-RPC message out of a body that is plain JSON or an SSE stream.
//!
//! Servers, the gateway, the health monitor and loadgen all read and write these; keeping them
//! in one place means each version string and header name is spelled exactly once.

use serde_json::Value;

/// A protocol era of MCP over streamable HTTP; the newest is what a client speaks unless told
/// otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Era {
    /// 2025-11-25: `initialize` opens a session whose id every later request carries.
    Session,
    /// 2026-07-28: no handshake, no session; each request carries its client context in `_meta`.
    #[default]
    Stateless,
}

impl Era {
    /// The protocol version string of the era, as sent in [`PROTOCOL_VERSION_HEADER`] and
    /// `_meta`.
    pub const fn version(self) -> &'static str {
        match self {
            Era::Session => "2025-11-25",
            Era::Stateless => "2026-07-28",
        }
    }
}

/// Every MCP protocol version a client may speak, oldest first. The first three open a session
/// with `initialize` like 2025-11-25 does (over HTTP, 2024-11-05 uses the legacy HTTP+SSE
/// transport); only 2026-07-28 is stateless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V2024_11_05,
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
    V2026_07_28,
}

impl Version {
    pub const ALL: [Version; 5] = [
        Version::V2024_11_05,
        Version::V2025_03_26,
        Version::V2025_06_18,
        Version::V2025_11_25,
        Version::V2026_07_28,
    ];

    /// The version string, as in `protocolVersion`, `_meta` and [`PROTOCOL_VERSION_HEADER`].
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::V2024_11_05 => "2024-11-05",
            Version::V2025_03_26 => "2025-03-26",
            Version::V2025_06_18 => "2025-06-18",
            Version::V2025_11_25 => Era::Session.version(),
            Version::V2026_07_28 => Era::Stateless.version(),
        }
    }

    /// The version named by `text`, if it is one of [`Version::ALL`].
    pub fn parse(text: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.as_str() == text)
    }

    /// Stateless: no `initialize`, no session, the client context in every request's `_meta`.
    pub const fn is_stateless(self) -> bool {
        matches!(self, Version::V2026_07_28)
    }

    /// The era a request of this version is served in.
    pub const fn era(self) -> Era {
        if self.is_stateless() {
            Era::Stateless
        } else {
            Era::Session
        }
    }
}

impl From<Era> for Version {
    fn from(era: Era) -> Self {
        match era {
            Era::Session => Version::V2025_11_25,
            Era::Stateless => Version::V2026_07_28,
        }
    }
}

/// rmcp's name for the same version (for results built with rmcp's model).
impl From<Version> for rmcp::model::ProtocolVersion {
    fn from(v: Version) -> Self {
        match v {
            Version::V2024_11_05 => rmcp::model::ProtocolVersion::V_2024_11_05,
            Version::V2025_03_26 => rmcp::model::ProtocolVersion::V_2025_03_26,
            Version::V2025_06_18 => rmcp::model::ProtocolVersion::V_2025_06_18,
            Version::V2025_11_25 => rmcp::model::ProtocolVersion::V_2025_11_25,
            Version::V2026_07_28 => rmcp::model::ProtocolVersion::V_2026_07_28,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The header carrying the protocol version of a request.
pub const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";
/// The session header of streamable HTTP (2025-11-25 era).
pub const SESSION_HEADER: &str = "mcp-session-id";
/// The header naming a 2026-07-28 request's JSON-RPC method, for routing without the body.
pub const METHOD_HEADER: &str = "mcp-method";
/// The header naming the tool (or other target) of a 2026-07-28 request.
pub const NAME_HEADER: &str = "mcp-name";
/// The `Accept` value of an MCP POST: a JSON answer or an SSE stream.
pub const ACCEPT_JSON_OR_SSE: &str = "application/json, text/event-stream";

/// The prefix of the `_meta` keys that carry a 2026-07-28 request's client context; the same
/// request sent in a session leaves them out.
pub const CONTEXT_META_PREFIX: &str = "io.modelcontextprotocol/";

/// Request `_meta` a 2026-07-28 client must send with every request.
pub fn stateless_meta() -> Value {
    serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": Era::Stateless.version(),
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "mcpfleet", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// A 2026-07-28 request of `method` with JSON-RPC id `id` and no params but the `_meta`
/// client context: what the health probe and the gateway send when they ask a server itself.
pub fn stateless_request(id: u64, method: &str) -> Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": method,
        "params": {"_meta": stateless_meta()},
    })
}

/// An `initialize` of `version` from mcpfleet with no capabilities: what the health probe and
/// the gateway send to open a session on a server that speaks only the session eras.
pub fn initialize_request(id: u64, version: Version) -> Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "initialize",
        "params": {
            "protocolVersion": version.as_str(),
            "capabilities": {},
            "clientInfo": {"name": "mcpfleet", "version": env!("CARGO_PKG_VERSION")},
        },
    })
}

/// The notification that completes a session's handshake.
pub const INITIALIZED_NOTIFICATION: &str =
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Whether `status` and `body`, the answer to a well-formed 2026-07-28 request, say the server
/// speaks only the session eras: a 400 carrying JSON-RPC -32022 (unsupported protocol version:
/// the spec's answer, rmcp's), or a 400 refusing the request without naming it (id null: the
/// TypeScript SDK's "Server not initialized", answers asking for a session id).
pub fn refuses_stateless(status: u16, body: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        id: Value,
        error: Option<Code>,
    }
    #[derive(serde::Deserialize)]
    struct Code {
        code: i64,
    }
    if status != 400 {
        return false;
    }
    match first_message::<Answer>(body) {
        Some(Answer {
            error: Some(Code { code }),
            id,
        }) => code == UNSUPPORTED_PROTOCOL_VERSION || id.is_null(),
        _ => false,
    }
}

/// JSON-RPC error code of a request in a protocol version the server does not speak.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// The first JSON-RPC message of a response body, whether it is plain JSON or an SSE stream
/// (`data:` lines; priming events without data are skipped).
pub fn first_jsonrpc_message(body: &str) -> Option<Value> {
    first_message(body)
}

/// [`first_jsonrpc_message`] parsed into any shape, borrowing from `body` where `T` does: a
/// load generator reads only the fields a verdict needs rather than a whole `Value`.
pub fn first_message<'a, T: serde::Deserialize<'a>>(body: &'a str) -> Option<T> {
    message_texts(body).find_map(|d| serde_json::from_str(d).ok())
}

/// The JSON-RPC message with id `id` in a response body, plain JSON or an SSE stream: the
/// answer to a request, past any notifications a stream carries before it.
pub fn message_with_id(body: &str, id: u64) -> Option<Value> {
    message_texts(body)
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|m| m.get("id").and_then(Value::as_u64) == Some(id))
}

/// The JSON texts of a response body's messages: the whole body when it is plain JSON, else
/// the data of an SSE stream's events, one `data:` line each (priming events without data
/// are skipped).
pub fn message_texts(body: &str) -> impl Iterator<Item = &str> {
    let trimmed = body.trim_start();
    let whole = trimmed.starts_with('{').then_some(trimmed);
    let events = whole.is_none().then(|| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
    });
    whole.into_iter().chain(events.into_iter().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_spell_their_versions() {
        assert_eq!(Era::Session.version(), "2025-11-25");
        assert_eq!(Era::Stateless.version(), "2026-07-28");
        assert_eq!(
            stateless_meta()["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
    }

    #[test]
    fn versions_round_trip_and_only_the_newest_is_stateless() {
        for v in Version::ALL {
            assert_eq!(Version::parse(v.as_str()), Some(v));
            assert_eq!(v.is_stateless(), v == Version::V2026_07_28);
        }
        assert_eq!(Version::from(Era::Session).as_str(), "2025-11-25");
        assert_eq!(Version::parse("2025-13-01"), None);
    }

    #[test]
    fn reads_plain_json_and_sse() {
        let json = r#"  {"jsonrpc":"2.0","id":1,"result":{}}"#;
        assert_eq!(first_jsonrpc_message(json).unwrap()["id"], 1);
        let sse = "id: 0\ndata:\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n\n";
        assert_eq!(first_jsonrpc_message(sse).unwrap()["id"], 2);
        assert!(first_jsonrpc_message("data: not json\n").is_none());
        assert!(first_jsonrpc_message("").is_none());
    }

    #[test]
    fn finds_the_answer_by_id() {
        let sse = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                   data: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}\n\n";
        assert_eq!(message_with_id(sse, 4).unwrap()["id"], 4);
        assert!(message_with_id(sse, 5).is_none());
        assert_eq!(
            message_with_id(r#"{"id":1,"result":{}}"#, 1).unwrap()["id"],
            1
        );
        assert!(message_with_id(r#"{"id":2,"result":{}}"#, 1).is_none());
        assert!(message_with_id("not json", 1).is_none());
    }

    #[test]
    fn refusals_of_the_stateless_era_are_told_from_other_errors() {
        let rmcp = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"Unsupported protocol version"}}"#;
        let typescript = r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Server not initialized"},"id":null}"#;
        let named = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}"#;
        assert!(refuses_stateless(400, rmcp));
        assert!(refuses_stateless(400, typescript));
        assert!(refuses_stateless(400, &format!("data: {rmcp}\n\n")));
        assert!(!refuses_stateless(400, named));
        assert!(!refuses_stateless(404, typescript));
        assert!(!refuses_stateless(200, rmcp));
        assert!(!refuses_stateless(400, "Bad Request"));
        let init = initialize_request(0, Version::V2025_06_18);
        assert_eq!(init["params"]["protocolVersion"], "2025-06-18");
        assert_eq!(init["method"], "initialize");
    }

    #[test]
    fn a_stateless_request_carries_the_client_context() {
        let r = stateless_request(1, "tools/list");
        assert_eq!(r["jsonrpc"], "2.0");
        assert_eq!(r["id"], 1);
        assert_eq!(r["method"], "tools/list");
        assert_eq!(r["params"]["_meta"], stateless_meta());
    }
}
