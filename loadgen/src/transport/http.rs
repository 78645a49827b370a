//! MCP's streamable HTTP binding: a [`Call`] as a POST with its headers (content type,
//! accept, `MCP-Protocol-Version` with the negotiated version, `Mcp-Method`/`Mcp-Name` for
//! 2026-07-28, `Mcp-Session-Id` in a session), a session opened by `initialize` and closed by
//! `DELETE`, each sent over a [`Conn`]. A streamed answer is read message by message: the
//! result is the message with our id, notifications before it are counted, and a
//! server-to-client request is answered on a second connection while the stream waits.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use fleet::wire::{
    ACCEPT_JSON_OR_SSE, METHOD_HEADER, NAME_HEADER, PROTOCOL_VERSION_HEADER, SESSION_HEADER,
};
use http::{
    HeaderMap, HeaderValue, Method,
    header::{ACCEPT, CONTENT_TYPE},
};
use reqwest::Url;

use crate::{
    mcp::{self, Asides, Call, ErrorClass, Sent, Version},
    transport::{
        conn::{Conn, Exchange},
        settings::HttpSettings,
        stream_reader::{SideChannel, StreamReader},
    },
};

/// A call with its HTTP headers built once (a load run sends the same few calls hundreds of
/// thousands of times).
#[derive(Debug, Clone)]
pub struct HttpCall {
    pub call: Call,
    /// Content type, accept, and for 2026-07-28 `Mcp-Method`/`Mcp-Name`; the version (and
    /// session) are added per request.
    stateless_headers: HeaderMap,
    session_headers: HeaderMap,
}

impl From<Call> for HttpCall {
    fn from(call: Call) -> Self {
        let session_headers = post_headers();
        let mut stateless_headers = post_headers();
        // A method or tool name that is not a valid header value cannot be routed by header;
        // the server then answers with an error, which is what such a call deserves.
        if let Ok(method) = HeaderValue::from_str(&call.method) {
            stateless_headers.insert(METHOD_HEADER, method);
        }
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

    pub fn tool(name: &str, arguments: serde_json::Value) -> Self {
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

/// One user's line to one streamable-HTTP server: its connection, the version spoken and, for
/// the session versions, the session.
#[derive(Debug)]
pub struct HttpClient {
    conn: Conn,
    /// For replies to server-to-client requests while `conn` is busy with a stream: a second
    /// connection, and the headers it sends (kept between calls: built per call they were a
    /// HeaderMap allocation on every request).
    side: Option<SideChannel>,
    url: Url,
    settings: Arc<HttpSettings>,
    /// The version asked for, until `initialize` says which the server speaks.
    version: Version,
    session: Option<HeaderValue>,
    /// The status of the last answer, for error messages (a 401 says what is missing).
    last_status: Option<u16>,
}

impl HttpClient {
    pub fn new(
        url: &Url,
        settings: &Arc<HttpSettings>,
        version: Version,
    ) -> Result<Self, ErrorClass> {
        Ok(Self {
            conn: Conn::new(url, settings)?,
            side: None,
            url: url.clone(),
            settings: settings.clone(),
            version,
            session: None,
            last_status: None,
        })
    }

    /// The HTTP status of the last answer.
    pub fn last_status(&self) -> Option<u16> {
        self.last_status
    }

    /// The version spoken: the one negotiated, once a session is open.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Connects, and opens the session for a session version.
    pub async fn open(&mut self) -> Result<(), ErrorClass> {
        if self.version.is_stateless() {
            self.conn.open().await
        } else if self.session.is_none() {
            self.initialize().await
        } else {
            Ok(())
        }
    }

    /// `initialize` (asking for the version this client was made with, or the one negotiated
    /// before) and `notifications/initialized`. The server's version is spoken from then on.
    async fn initialize(&mut self) -> Result<(), ErrorClass> {
        let mut headers = post_headers();
        headers.insert(
            PROTOCOL_VERSION_HEADER,
            HeaderValue::from_static(self.version.as_str()),
        );
        let x = self
            .conn
            .exchange(
                Method::POST,
                headers,
                mcp::initialize_body(0, self.version).into(),
            )
            .await?;
        self.last_status = Some(x.status);
        let text = std::str::from_utf8(&x.body).map_err(|_| ErrorClass::Protocol)?;
        mcp::classify_response(x.status, text, 0, &mut Asides::default())?;
        let version = mcp::negotiated_version(text, 0)?;
        // Servers without sessions (stateless mode of the session versions) send no id.
        let session = x.headers.get(SESSION_HEADER).cloned();
        self.version = version;
        self.session = session;
        let initialized = self
            .conn
            .exchange(
                Method::POST,
                self.headers(&post_headers()),
                Bytes::from_static(mcp::INITIALIZED),
            )
            .await?;
        if !(200..300).contains(&initialized.status) {
            self.session = None;
            return Err(ErrorClass::HttpStatus);
        }
        if self.session.is_none() {
            // Mark the handshake done even without an id.
            self.session = Some(HeaderValue::from_static(""));
        }
        Ok(())
    }

    /// `base` with the version and the session id (if any).
    fn headers(&self, base: &HeaderMap) -> HeaderMap {
        let mut h = base.clone();
        h.insert(
            PROTOCOL_VERSION_HEADER,
            HeaderValue::from_static(self.version.as_str()),
        );
        if let Some(session) = self.session.as_ref().filter(|s| !s.is_empty()) {
            h.insert(SESSION_HEADER, session.clone());
        }
        h
    }

    fn call_headers(&self, call: &HttpCall) -> HeaderMap {
        if self.version.is_stateless() {
            self.headers(&call.stateless_headers)
        } else {
            self.headers(&call.session_headers)
        }
    }

    /// Sends one call with JSON-RPC id `id` and reads its answer, message by message; a
    /// session that has to be opened first is part of the call's time. A 404 in a session
    /// means the session is gone: the next call opens another.
    pub async fn call(&mut self, call: &HttpCall, id: u64) -> Sent {
        let start = Instant::now();
        if !self.version.is_stateless()
            && self.session.is_none()
            // Boxed: once per session, and inline it would be copied about with every call.
            && let Err(class) = Box::pin(self.initialize()).await
        {
            return Sent::failed(start.elapsed(), class);
        }
        let sent_at = Instant::now();
        let setup = sent_at.saturating_duration_since(start);
        let headers = self.call_headers(call);
        let body = Bytes::from(call.call.body(id, self.version));
        let mut reader = StreamReader::new(id, self.side_channel());
        let result = self
            .conn
            .exchange_with(Method::POST, headers, body, &mut reader)
            .await;
        self.side = Some(reader.into_side());
        self.last_status = result.as_ref().ok().map(|x| x.status);
        match result {
            Ok(Exchange {
                status,
                body: read,
                ttfb,
                elapsed,
                ..
            }) => {
                if status == 404 && !self.version.is_stateless() {
                    self.session = None;
                }
                let answered = read
                    .answered_at
                    .map_or(elapsed, |a| a.saturating_duration_since(sent_at));
                Sent {
                    elapsed: setup + answered.min(elapsed),
                    ttfb: Some(setup + ttfb),
                    status: Some(status),
                    outcome: if (200..300).contains(&status) {
                        read.verdict
                    } else {
                        Err(ErrorClass::HttpStatus)
                    },
                    asides: read.asides,
                }
            }
            Err(class) => Sent::failed(start.elapsed(), class),
        }
    }

    /// What replies to server-to-client requests need: a connection and this session's
    /// headers (rebuilt only when the session or version changed since the last call).
    fn side_channel(&mut self) -> SideChannel {
        let session = self.session.as_ref().filter(|s| !s.is_empty());
        match self.side.take() {
            Some(side)
                if side.headers.get(SESSION_HEADER) == session
                    && side
                        .headers
                        .get(PROTOCOL_VERSION_HEADER)
                        .map(|v| v.as_bytes())
                        == Some(self.version.as_str().as_bytes()) =>
            {
                side
            }
            side => SideChannel {
                conn: side
                    .and_then(|s| s.conn)
                    .or_else(|| Conn::new(&self.url, &self.settings).ok()),
                headers: self.headers(&post_headers()),
            },
        }
    }

    /// Sends one call and reads the whole response (for callers that need the answer itself,
    /// not only its verdict), opening the session first if needed.
    pub async fn request(&mut self, call: &HttpCall, id: u64) -> Result<Exchange, ErrorClass> {
        if !self.version.is_stateless() && self.session.is_none() {
            self.initialize().await?;
        }
        let headers = self.call_headers(call);
        let x = self
            .conn
            .exchange(
                Method::POST,
                headers,
                call.call.body(id, self.version).into(),
            )
            .await?;
        if x.status == 404 && !self.version.is_stateless() {
            self.session = None;
        }
        Ok(x)
    }

    /// Ends the session (best effort: the server may already have dropped it, or not support
    /// DELETE).
    pub async fn close(&mut self) {
        if let Some(session) = self.session.take().filter(|s| !s.is_empty()) {
            let mut headers = HeaderMap::new();
            headers.insert(
                PROTOCOL_VERSION_HEADER,
                HeaderValue::from_static(self.version.as_str()),
            );
            headers.insert(SESSION_HEADER, session);
            let _ = self
                .conn
                .exchange(Method::DELETE, headers, Bytes::new())
                .await;
        }
    }

    /// The names of the tools the server lists (one `tools/list`).
    pub async fn tool_names(&mut self) -> Result<Vec<String>, ErrorClass> {
        let x = self.request(&HttpCall::tools_list(), 1).await?;
        let text = std::str::from_utf8(&x.body).map_err(|_| ErrorClass::Protocol)?;
        mcp::classify_response(x.status, text, 1, &mut Asides::default())?;
        mcp::listed_tools(&x.body, 1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use fleet::testing::{SilentServer, closed_port};

    use super::*;

    #[tokio::test]
    async fn classifies_transport_failures() {
        let settings = Arc::new(HttpSettings::with_timeout(Duration::from_millis(300)));
        // A port nobody listens on: connect error.
        let url: Url = format!("http://{}/mcp", closed_port().unwrap())
            .parse()
            .unwrap();
        let mut client = HttpClient::new(&url, &settings, Version::V2026_07_28).unwrap();
        let sent = client.call(&HttpCall::tools_list(), 1).await;
        assert_eq!(sent.outcome, Err(ErrorClass::Connect));
        assert_eq!((sent.ttfb, sent.status), (None, None));
        // A server that accepts but never answers: timeout (here, of the session's opening).
        let silent = SilentServer::start().await.unwrap();
        let url: Url = silent.url("/mcp").parse().unwrap();
        let mut client = HttpClient::new(&url, &settings, Version::V2025_11_25).unwrap();
        let sent = client.call(&HttpCall::tools_list(), 1).await;
        assert_eq!(sent.outcome, Err(ErrorClass::Timeout));
        assert!(
            sent.elapsed >= Duration::from_millis(250),
            "{:?}",
            sent.elapsed
        );
    }
}
