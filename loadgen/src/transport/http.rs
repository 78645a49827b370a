//! MCP's streamable HTTP binding: a [`Call`] as a POST with its headers (content type,
//! accept, `MCP-Protocol-Version`, `Mcp-Method`/`Mcp-Name` in the 2026-07-28 era,
//! `Mcp-Session-Id` in the 2025-11-25 one), a session opened by `initialize` and closed by
//! `DELETE`, each sent over a [`Conn`] and timed to the end of the response body.

use std::time::Instant;

use bytes::Bytes;
use fleet::wire::{
    ACCEPT_JSON_OR_SSE, METHOD_HEADER, NAME_HEADER, PROTOCOL_VERSION_HEADER, SESSION_HEADER,
};
use http::{
    HeaderMap, HeaderValue, Method,
    header::{ACCEPT, CONTENT_TYPE},
};
use serde_json::Value;

use crate::{
    mcp::{self, Call, Channel, ErrorClass, Protocol, Sent},
    transport::conn::{Conn, Exchange},
};

/// A call with its HTTP headers built once (a load run sends the same few calls hundreds of
/// thousands of times).
#[derive(Debug, Clone)]
pub struct HttpCall {
    call: Call,
    /// Headers of a 2026-07-28 request: content type, accept, version, `Mcp-Method`/`Mcp-Name`.
    stateless_headers: HeaderMap,
    /// Headers of a session-era request, but for the session id.
    session_headers: HeaderMap,
}

impl From<Call> for HttpCall {
    fn from(call: Call) -> Self {
        let mut session_headers = post_headers();
        session_headers.insert(
            PROTOCOL_VERSION_HEADER,
            HeaderValue::from_static(Protocol::Session.version()),
        );
        let mut stateless_headers = post_headers();
        stateless_headers.insert(
            PROTOCOL_VERSION_HEADER,
            HeaderValue::from_static(Protocol::Stateless.version()),
        );
        stateless_headers.insert(METHOD_HEADER, HeaderValue::from_static(call.method));
        // A tool name that is not a valid header value cannot be routed by header; the server
        // then answers with an error, which is what such a call deserves.
        if let Some(value) = call
            .tool
            .as_deref()
            .and_then(|t| HeaderValue::from_str(t).ok())
        {
            stateless_headers.insert(NAME_HEADER, value);
        }
        Self {
            call,
            stateless_headers,
            session_headers,
        }
    }
}

impl HttpCall {
    pub fn tools_list() -> Self {
        Call::tools_list().into()
    }

    pub fn tool(name: &str, arguments: Value) -> Self {
        Call::tool(name, arguments).into()
    }

    /// What the report calls this request: the tool name, or the method.
    pub fn label(&self) -> &str {
        self.call.label()
    }
}

/// Content type and accept, as every MCP POST carries them.
fn post_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(ACCEPT, HeaderValue::from_static(ACCEPT_JSON_OR_SSE));
    h
}

/// Adds the session-era headers for session `session`.
fn with_session(mut h: HeaderMap, session: &str) -> Result<HeaderMap, ErrorClass> {
    h.insert(
        PROTOCOL_VERSION_HEADER,
        HeaderValue::from_static(Protocol::Session.version()),
    );
    // A session id that is not a valid header value is the server's protocol violation.
    h.insert(
        SESSION_HEADER,
        HeaderValue::from_str(session).map_err(|_| ErrorClass::Protocol)?,
    );
    Ok(h)
}

/// Sends one call with JSON-RPC id `id` and times it to the response headers and to the whole
/// body.
pub async fn send(conn: &mut Conn, call: &HttpCall, id: u64, channel: Channel<'_>) -> Sent {
    let start = Instant::now();
    match post(conn, call, id, channel).await {
        Ok(x) => Sent {
            elapsed: x.elapsed,
            ttfb: Some(x.ttfb),
            status: Some(x.status),
            outcome: mcp::classify_bytes(x.status, &x.body, id),
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
    call: &HttpCall,
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
    conn.exchange(Method::POST, headers, call.call.body(id, protocol).into())
        .await
}

/// Opens a 2025-11-25 session: `initialize`, then `notifications/initialized`. Returns the
/// session id the server handed out.
pub async fn open_session(conn: &mut Conn) -> Result<String, ErrorClass> {
    let x = conn
        .exchange(Method::POST, post_headers(), mcp::initialize_body().into())
        .await?;
    mcp::classify_bytes(x.status, &x.body, 0)?;
    let session = x
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(ErrorClass::Protocol)?
        .to_string();
    let initialized = conn
        .exchange(
            Method::POST,
            with_session(post_headers(), &session)?,
            Bytes::from_static(mcp::INITIALIZED),
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
        let x = post(conn, &HttpCall::tools_list(), 1, channel).await?;
        mcp::classify_bytes(x.status, &x.body, 1)?;
        mcp::listed_tools(&x.body)
    }
    .await;
    if let Some(id) = &session {
        close_session(conn, id).await;
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use fleet::testing::{SilentServer, closed_port};

    use super::*;

    #[tokio::test]
    async fn classifies_transport_failures() {
        // A port nobody listens on: connect error.
        let url: reqwest::Url = format!("http://{}/mcp", closed_port().unwrap())
            .parse()
            .unwrap();
        let mut conn = Conn::new(&url, Duration::from_millis(300)).unwrap();
        let sent = send(&mut conn, &HttpCall::tools_list(), 1, Channel::Stateless).await;
        assert_eq!(sent.outcome, Err(ErrorClass::Connect));
        assert_eq!((sent.ttfb, sent.status), (None, None));
        // A server that accepts but never answers: timeout.
        let silent = SilentServer::start().await.unwrap();
        let url: reqwest::Url = silent.url("/mcp").parse().unwrap();
        let mut conn = Conn::new(&url, Duration::from_millis(300)).unwrap();
        let Sent {
            elapsed, outcome, ..
        } = send(&mut conn, &HttpCall::tools_list(), 1, Channel::Session("s")).await;
        assert_eq!(outcome, Err(ErrorClass::Timeout));
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    }
}
