//! The MCP side of one request, with no transport in it: the protocol eras, the calls
//! loadgen makes (JSON-RPC bodies, serialised once per era), and how a complete response is
//! classified. How a call travels (HTTP headers, sessions, the connection) lives in
//! [`crate::transport`].
//!
//! - 2026-07-28 (default): stateless, no handshake; every request carries the client context
//!   in `_meta`.
//! - 2025-11-25: `initialize` + `notifications/initialized` open a session that every later
//!   request belongs to.

use std::{borrow::Cow, sync::Arc, time::Duration};

use serde::{Deserialize, de::IgnoredAny};
use serde_json::{Value, json};

/// The protocol era requests are sent in: the fleet's own vocabulary ([`fleet::wire::Era`],
/// where each version string is spelled), named here for what `--protocol` chooses through
/// [`crate::measure::ProtocolChoice`].
pub use fleet::wire::Era as Protocol;

pub use crate::runfile::ErrorClass;

/// One kind of request: method, tool name and params, serialised once per protocol era (a load
/// run sends the same few calls hundreds of thousands of times).
#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    pub tool: Option<Arc<str>>,
    /// Params with the 2026-07-28 `_meta` client context.
    stateless: String,
    /// Params as a session-era request sends them.
    session: String,
}

impl Call {
    fn new(method: &'static str, tool: Option<Arc<str>>, params: Value) -> Self {
        let session = params.to_string();
        let mut with_meta = params;
        if let Some(obj) = with_meta.as_object_mut() {
            obj.insert("_meta".into(), fleet::wire::stateless_meta());
        }
        Self {
            method,
            tool,
            stateless: with_meta.to_string(),
            session,
        }
    }

    pub fn tools_list() -> Self {
        Self::new("tools/list", None, json!({}))
    }

    pub fn tool(name: &str, arguments: Value) -> Self {
        Self::new(
            "tools/call",
            Some(name.into()),
            json!({ "name": name, "arguments": arguments }),
        )
    }

    /// What the report calls this request: the tool name, or the method.
    pub fn label(&self) -> &str {
        self.tool.as_deref().unwrap_or(self.method)
    }

    /// The JSON-RPC request body with the given id, for the given era.
    pub fn body(&self, id: u64, protocol: Protocol) -> String {
        let params = match protocol {
            Protocol::Stateless => &self.stateless,
            Protocol::Session => &self.session,
        };
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{}","params":{params}}}"#,
            self.method
        )
    }
}

/// Where a request goes and in which era: for sessions, the session id.
#[derive(Debug, Clone, Copy)]
pub enum Channel<'a> {
    Stateless,
    Session(&'a str),
}

/// What sending one call gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// From sending to having read the whole body (the JSON-RPC response).
    pub elapsed: Duration,
    /// From sending to the response headers. In the session era the headers leave before the
    /// tool has run, so this is not the tool's latency.
    pub ttfb: Option<Duration>,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    pub outcome: Result<(), ErrorClass>,
}

/// The `initialize` request that opens a 2025-11-25 session.
pub fn initialize_body() -> String {
    json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": Protocol::Session.version(),
            "capabilities": {},
            "clientInfo": {"name": "mcpfleet-loadgen", "version": env!("CARGO_PKG_VERSION")},
        },
    })
    .to_string()
}

/// The notification that completes the session handshake.
pub const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// The names in a `tools/list` result (`body` is the whole response, JSON or SSE).
pub fn listed_tools(body: &[u8]) -> Result<Vec<String>, ErrorClass> {
    let text = std::str::from_utf8(body).map_err(|_| ErrorClass::Protocol)?;
    let result = result_of(text).ok_or(ErrorClass::Protocol)?;
    let tools = result
        .get("tools")
        .and_then(Value::as_array)
        .ok_or(ErrorClass::Protocol)?;
    Ok(tools
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str).map(String::from))
        .collect())
}

/// The JSON-RPC `result` of a response body (JSON or SSE), if it has one.
pub fn result_of(body: &str) -> Option<Value> {
    fleet::wire::first_jsonrpc_message(body).and_then(|mut m| m.get_mut("result").map(Value::take))
}

/// [`classify_response`] of a body that may not be UTF-8.
pub fn classify_bytes(status: u16, body: &[u8], id: u64) -> Result<(), ErrorClass> {
    match std::str::from_utf8(body) {
        Ok(text) => classify_response(status, text, id),
        Err(_) if !(200..300).contains(&status) => Err(ErrorClass::HttpStatus),
        Err(_) => Err(ErrorClass::Protocol),
    }
}

/// The parts of a JSON-RPC response a verdict needs, borrowed from the body: parsing into
/// this costs a fraction of a `serde_json::Value` of the whole result.
#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    id: Option<Value>,
    error: Option<IgnoredAny>,
    result: Option<ResultHead>,
}

/// A result must be an object; `isError: true` marks a failed tool call.
#[derive(Deserialize)]
struct ResultHead {
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
}

/// Classifies a complete HTTP response to the JSON-RPC request with id `id`.
pub fn classify_response(status: u16, body: &str, id: u64) -> Result<(), ErrorClass> {
    if !(200..300).contains(&status) {
        return Err(ErrorClass::HttpStatus);
    }
    let reply: Reply = fleet::wire::first_message(body).ok_or(ErrorClass::Protocol)?;
    if reply.jsonrpc.as_deref() != Some("2.0")
        || reply.id.as_ref().and_then(Value::as_u64) != Some(id)
    {
        return Err(ErrorClass::Protocol);
    }
    if reply.error.is_some() {
        return Err(ErrorClass::JsonrpcError);
    }
    match reply.result {
        Some(ResultHead {
            is_error: Some(true),
        }) => Err(ErrorClass::ToolError),
        Some(_) => Ok(()),
        None => Err(ErrorClass::Protocol),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn classifies_responses() {
        let ok = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":false}}"#;
        assert_eq!(classify_response(200, ok, 7), Ok(()));
        let sse = format!("event: message\ndata: \n\ndata: {ok}\n\n");
        assert_eq!(classify_response(200, &sse, 7), Ok(()));
        let tool_err = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":true}}"#;
        assert_eq!(
            classify_response(200, tool_err, 7),
            Err(ErrorClass::ToolError)
        );
        let rpc_err = r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"bad"}}"#;
        assert_eq!(
            classify_response(200, rpc_err, 7),
            Err(ErrorClass::JsonrpcError)
        );
        assert_eq!(
            classify_response(400, rpc_err, 7),
            Err(ErrorClass::HttpStatus)
        );
        assert_eq!(
            classify_response(503, "busy", 7),
            Err(ErrorClass::HttpStatus)
        );
        assert_eq!(
            classify_response(200, ok, 8),
            Err(ErrorClass::Protocol),
            "id mismatch"
        );
        assert_eq!(classify_response(200, "", 7), Err(ErrorClass::Protocol));
        assert_eq!(
            classify_response(200, "<html>", 7),
            Err(ErrorClass::Protocol)
        );
        let no_result = r#"{"jsonrpc":"2.0","id":7}"#;
        assert_eq!(
            classify_response(200, no_result, 7),
            Err(ErrorClass::Protocol)
        );
        let old = r#"{"jsonrpc":"1.0","id":7,"result":{}}"#;
        assert_eq!(classify_response(200, old, 7), Err(ErrorClass::Protocol));
    }

    #[test]
    fn bodies_are_jsonrpc_with_meta() {
        let call = Call::tool("echo", json!({"text": "hi"}));
        let body: Value = serde_json::from_str(&call.body(42, Protocol::Stateless)).unwrap();
        assert_eq!(body["id"], 42);
        assert_eq!(body["method"], "tools/call");
        assert_eq!(body["params"]["name"], "echo");
        assert!(body["params"]["_meta"].is_object());
        let body: Value = serde_json::from_str(&call.body(43, Protocol::Session)).unwrap();
        assert_eq!(body["params"]["arguments"]["text"], "hi");
        assert!(body["params"].get("_meta").is_none());
        assert_eq!(call.label(), "echo");
        assert_eq!(Call::tools_list().label(), "tools/list");
    }
}
