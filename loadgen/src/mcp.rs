//! The MCP side of one request: the calls loadgen makes (the tool mix), how one is sent in
//! either protocol era, and how its outcome is classified. Everything that knows the wire
//! format lives here.
//!
//! - 2026-07-28 (default): stateless, no handshake; every POST carries `MCP-Protocol-Version`,
//!   `Mcp-Method`/`Mcp-Name` and the client context in `_meta`.
//! - 2025-11-25: `initialize` + `notifications/initialized` open a session whose id every later
//!   POST carries; `DELETE` closes it; a 404 means the session is gone (re-initialize).

use std::{
    borrow::Cow,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Method,
    header::{ACCEPT, CONTENT_TYPE},
};
use serde::{Deserialize, Serialize, de::IgnoredAny};
use serde_json::{Value, json};

use crate::conn::{Conn, Exchange};

/// The protocol era requests are sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
pub enum Protocol {
    /// Stateless: no handshake, no session.
    #[default]
    #[value(name = "2026-07-28")]
    #[serde(rename = "2026-07-28")]
    Stateless,
    /// Sessions: `initialize` first, `Mcp-Session-Id` on every request, `DELETE` at the end.
    #[value(name = "2025-11-25")]
    #[serde(rename = "2025-11-25")]
    Session,
}

impl Protocol {
    pub fn version(self) -> &'static str {
        match self {
            Protocol::Stateless => "2026-07-28",
            Protocol::Session => "2025-11-25",
        }
    }
}

pub use reports::run::ErrorClass;

/// One kind of request: method, tool name and params, serialised once per protocol era, with
/// its headers built once (a load run sends the same few calls hundreds of thousands of times).
#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    pub tool: Option<Arc<str>>,
    /// Params with the 2026-07-28 `_meta` client context.
    stateless: String,
    /// Params as a session-era request sends them.
    session: String,
    /// Headers of a 2026-07-28 request: content type, accept, version, `Mcp-Method`/`Mcp-Name`.
    stateless_headers: HeaderMap,
    /// Headers of a session-era request, but for the session id.
    session_headers: HeaderMap,
}

impl Call {
    fn new(method: &'static str, tool: Option<Arc<str>>, params: Value) -> Self {
        let session = params.to_string();
        let mut with_meta = params;
        if let Some(obj) = with_meta.as_object_mut() {
            obj.insert("_meta".into(), fleet::wire::stateless_meta());
        }
        let mut session_headers = post_headers();
        session_headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static(Protocol::Session.version()),
        );
        let mut stateless_headers = post_headers();
        stateless_headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static(Protocol::Stateless.version()),
        );
        stateless_headers.insert("mcp-method", HeaderValue::from_static(method));
        // A tool name that is not a valid header value cannot be routed by header; the server
        // then answers with an error, which is what such a call deserves.
        if let Some(value) = tool.as_deref().and_then(|t| HeaderValue::from_str(t).ok()) {
            stateless_headers.insert("mcp-name", value);
        }
        Self {
            method,
            tool,
            stateless: with_meta.to_string(),
            session,
            stateless_headers,
            session_headers,
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

/// Content type and accept, as every MCP POST carries them.
fn post_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    h
}

/// Adds the session-era headers for session `session`.
fn with_session(mut h: HeaderMap, session: &str) -> Result<HeaderMap, ErrorClass> {
    h.insert(
        "mcp-protocol-version",
        HeaderValue::from_static(Protocol::Session.version()),
    );
    // A session id that is not a valid header value is the server's protocol violation.
    h.insert(
        "mcp-session-id",
        HeaderValue::from_str(session).map_err(|_| ErrorClass::Protocol)?,
    );
    Ok(h)
}

/// Sends one call with JSON-RPC id `id` and times it to the response headers and to the whole
/// body.
pub async fn send(conn: &mut Conn, call: &Call, id: u64, channel: Channel<'_>) -> Sent {
    let start = Instant::now();
    match post(conn, call, id, channel).await {
        Ok(x) => Sent {
            elapsed: x.elapsed,
            ttfb: Some(x.ttfb),
            status: Some(x.status),
            outcome: classify_bytes(x.status, &x.body, id),
        },
        Err(class) => Sent {
            elapsed: start.elapsed(),
            ttfb: None,
            status: None,
            outcome: Err(class),
        },
    }
}

/// POSTs one call in the era `channel` says and reads the whole response (for callers that
/// need the answer itself, not only its verdict).
pub async fn post(
    conn: &mut Conn,
    call: &Call,
    id: u64,
    channel: Channel<'_>,
) -> Result<Exchange, ErrorClass> {
    let (headers, protocol) = match channel {
        Channel::Stateless => (call.stateless_headers.clone(), Protocol::Stateless),
        Channel::Session(session) => (
            with_session(call.session_headers.clone(), session)?,
            Protocol::Session,
        ),
    };
    conn.exchange(Method::POST, headers, call.body(id, protocol).into())
        .await
}

/// Opens a 2025-11-25 session: `initialize`, then `notifications/initialized`. Returns the
/// session id the server handed out.
pub async fn open_session(conn: &mut Conn) -> Result<String, ErrorClass> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": Protocol::Session.version(),
            "capabilities": {},
            "clientInfo": {"name": "mcpfleet-loadgen", "version": env!("CARGO_PKG_VERSION")},
        },
    });
    let x = conn
        .exchange(Method::POST, post_headers(), body.to_string().into())
        .await?;
    classify_bytes(x.status, &x.body, 0)?;
    let session = x
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .ok_or(ErrorClass::Protocol)?
        .to_string();
    let initialized = conn
        .exchange(
            Method::POST,
            with_session(post_headers(), &session)?,
            Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        )
        .await?;
    if !(200..300).contains(&initialized.status) {
        return Err(ErrorClass::HttpStatus);
    }
    Ok(session)
}

/// Closes a session (best effort: the server may already have dropped it).
pub async fn close_session(conn: &mut Conn, session: &str) {
    if let Ok(headers) = with_session(HeaderMap::new(), session) {
        let _ = conn.exchange(Method::DELETE, headers, Bytes::new()).await;
    }
}

/// The names of the tools a server lists (one `tools/list`, in the given era), to learn what
/// it offers before calling it.
pub async fn tool_names(conn: &mut Conn, protocol: Protocol) -> Result<Vec<String>, ErrorClass> {
    let session = match protocol {
        Protocol::Stateless => None,
        Protocol::Session => Some(open_session(conn).await?),
    };
    let channel = match &session {
        Some(id) => Channel::Session(id),
        None => Channel::Stateless,
    };
    let names = async {
        let x = post(conn, &Call::tools_list(), 1, channel).await?;
        classify_bytes(x.status, &x.body, 1)?;
        let text = std::str::from_utf8(&x.body).map_err(|_| ErrorClass::Protocol)?;
        let message = fleet::wire::first_jsonrpc_message(text).ok_or(ErrorClass::Protocol)?;
        let tools = message
            .pointer("/result/tools")
            .and_then(Value::as_array)
            .ok_or(ErrorClass::Protocol)?;
        Ok(tools
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str).map(String::from))
            .collect())
    }
    .await;
    if let Some(id) = &session {
        close_session(conn, id).await;
    }
    names
}

/// [`classify_response`] of a body that may not be UTF-8.
fn classify_bytes(status: u16, body: &[u8], id: u64) -> Result<(), ErrorClass> {
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

    #[tokio::test]
    async fn classifies_transport_failures() {
        // A port nobody listens on: connect error.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let url: reqwest::Url = format!("http://{addr}/mcp").parse().unwrap();
        let mut conn = Conn::new(&url, Duration::from_millis(300)).unwrap();
        let sent = send(&mut conn, &Call::tools_list(), 1, Channel::Stateless).await;
        assert_eq!(sent.outcome, Err(ErrorClass::Connect));
        assert_eq!((sent.ttfb, sent.status), (None, None));
        // A server that accepts but never answers: timeout.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: reqwest::Url = format!("http://{}/mcp", silent.local_addr().unwrap())
            .parse()
            .unwrap();
        let hold = tokio::spawn(async move {
            let _conn = silent.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let mut conn = Conn::new(&url, Duration::from_millis(300)).unwrap();
        let Sent {
            elapsed, outcome, ..
        } = send(&mut conn, &Call::tools_list(), 1, Channel::Session("s")).await;
        assert_eq!(outcome, Err(ErrorClass::Timeout));
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        hold.abort();
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
