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

/// Why a body is not one JSON-RPC 2.0 message an MCP peer may send: the servers and the gateway
/// answer each with its JSON-RPC error ([`MessageError::code`]) rather than pass it on (rmcp
/// answers most of them with a plain-text 415).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("parse error: the body is not UTF-8")]
    NotUtf8,
    #[error("parse error: {0}")]
    Parse(String),
    #[error("invalid request: expected one JSON-RPC message object (batches are not part of MCP)")]
    NotObject,
    #[error("invalid request: not a JSON-RPC 2.0 message (needs \"jsonrpc\": \"2.0\")")]
    Version,
    #[error("invalid request: \"method\" must be a string")]
    Method,
    #[error("invalid request: \"id\" must be a string or a number")]
    Id,
    #[error("invalid params: \"params\" must be an object")]
    Params,
    #[error("invalid request: neither a request, a notification nor a response (no \"method\")")]
    Shape,
}

impl MessageError {
    /// The JSON-RPC error code for it.
    pub const fn code(&self) -> i64 {
        match self {
            MessageError::NotUtf8 | MessageError::Parse(_) => -32700,
            MessageError::Params => -32602,
            _ => -32600,
        }
    }
}

/// Deepest nesting of arrays and objects a message may have: serde_json's own limit, which the
/// servers' parsing would hit (skipping a value, as a check does, does not count depth).
pub const MAX_NESTING: usize = 128;

/// Whether arrays and objects in the JSON `text` nest deeper than `max` (brackets inside
/// strings do not count). A linear scan, before any parsing.
fn nesting_exceeds(text: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Checks that `body` is one JSON-RPC 2.0 message of the shape MCP allows: an object with
/// `"jsonrpc": "2.0"`; a string `method` (a request or notification) or a `result`/`error` (a
/// response); a string or number `id` when there is one; object `params`. One pass that builds
/// no tree (each member is kept as its raw text).
pub fn check_message(body: &[u8]) -> Result<(), MessageError> {
    use serde_json::value::RawValue;
    /// A member as its raw text when present, `null` included (`Option` alone reads a `null`
    /// as absent).
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        <&RawValue as serde::Deserialize>::deserialize(d).map(Some)
    }
    #[derive(serde::Deserialize)]
    struct Members<'a> {
        #[serde(borrow, default, deserialize_with = "present")]
        jsonrpc: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "present")]
        id: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "present")]
        method: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "present")]
        params: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "present")]
        result: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "present")]
        error: Option<&'a RawValue>,
    }
    let text = std::str::from_utf8(body).map_err(|_| MessageError::NotUtf8)?;
    if nesting_exceeds(text.as_bytes(), MAX_NESTING) {
        return Err(MessageError::Parse(format!(
            "nesting deeper than {MAX_NESTING} levels"
        )));
    }
    // serde reads a struct from an array too: an array (a batch) must not pass as one.
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| MessageError::Parse(e.to_string()))?;
        return Err(MessageError::NotObject);
    }
    let m: Members<'_> =
        serde_json::from_str(text).map_err(|e| MessageError::Parse(e.to_string()))?;
    let first = |raw: Option<&RawValue>| raw.and_then(|r| r.get().bytes().next());
    let version = m
        .jsonrpc
        .and_then(|r| serde_json::from_str::<std::borrow::Cow<'_, str>>(r.get()).ok());
    if version.as_deref() != Some("2.0") {
        return Err(MessageError::Version);
    }
    if m.id.is_some() && !matches!(first(m.id), Some(b'"' | b'-' | b'0'..=b'9')) {
        return Err(MessageError::Id);
    }
    if m.method.is_some() && first(m.method) != Some(b'"') {
        return Err(MessageError::Method);
    }
    if m.params.is_some() && first(m.params) != Some(b'{') {
        return Err(MessageError::Params);
    }
    let response = m.id.is_some() && (m.result.is_some() || m.error.is_some());
    if m.method.is_none() && !response {
        return Err(MessageError::Shape);
    }
    Ok(())
}

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
    fn only_single_json_rpc_messages_of_mcp_shape_pass() {
        let ok = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"x","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":-3,"result":{}}"#,
            r#" {"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#,
        ];
        for body in ok {
            assert_eq!(check_message(body.as_bytes()), Ok(()), "{body}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let nested = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"a":{}1{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let bad: [(&[u8], i64); 11] = [
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\xff\"}",
                -32700,
            ),
            (b"{\"jsonrpc\": ", -32700),
            (deep.as_bytes(), -32700),
            (nested.as_bytes(), -32700),
            (br#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#, -32600),
            (br#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, -32600),
            (br#"{"id":1,"method":"x"}"#, -32600),
            (br#"{"jsonrpc":"2.0","id":1,"method":5}"#, -32600),
            (br#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#, -32600),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#,
                -32602,
            ),
            (br#"{"jsonrpc":"2.0","id":1}"#, -32600),
        ];
        for (body, code) in bad {
            let e = check_message(body).expect_err(&String::from_utf8_lossy(body));
            assert_eq!(e.code(), code, "{e}: {}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            check_message(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#),
            Err(MessageError::Id)
        );
        // Brackets inside strings, escaped quotes included, do not nest.
        let text = format!(
            r#"{{"jsonrpc":"2.0","method":"x","params":{{"t":"\"{}"}}}}"#,
            "[".repeat(300)
        );
        assert_eq!(check_message(text.as_bytes()), Ok(()));
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
