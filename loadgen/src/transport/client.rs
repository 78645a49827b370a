//! The one face every transport shows the load and the health sweep: a per-user line to one
//! server that opens (connects, handshakes), makes calls and closes, whatever carries it.

use std::sync::Arc;

use reqwest::Url;

use crate::{
    mcp::{ErrorClass, Sent, Version},
    transport::{
        http::{HttpCall, HttpClient},
        settings::HttpSettings,
        sse::SseClient,
        stdio::{StdioClient, StdioHandle},
    },
};

/// How a server is reached.
#[derive(Debug, Clone, Default)]
pub enum Transport {
    /// Streamable HTTP (2025-03-26 onward): a POST per message.
    #[default]
    StreamableHttp,
    /// Legacy HTTP+SSE (2024-11-05): a `GET` event stream per session, POSTs to the endpoint it
    /// announces, answers on the stream.
    LegacySse,
    /// A process loadgen spawned, spoken to on stdin and stdout: its pool, once started.
    Stdio(Option<StdioHandle>),
}

/// One user's line to one server.
// Held in place, one per user and server, never moved per call: boxing the largest variant
// would cost the hot path an indirection to save memory nobody copies.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Client {
    Http(HttpClient),
    Sse(SseClient),
    Stdio(StdioClient),
}

impl Client {
    /// A client for the server at `url`, speaking `version` (asked for; a session version may
    /// be negotiated down by the server). Nothing is sent until [`Client::open`] or a call.
    pub fn new(
        url: &Url,
        transport: &Transport,
        version: Version,
        settings: &Arc<HttpSettings>,
    ) -> Result<Self, ErrorClass> {
        match transport {
            Transport::StreamableHttp => Ok(Client::Http(HttpClient::new(url, settings, version)?)),
            Transport::LegacySse => Ok(Client::Sse(SseClient::new(url, settings, version))),
            // The pool opened its processes in the version asked for (or discovered it).
            Transport::Stdio(Some(pool)) => Ok(Client::Stdio(StdioClient::new(pool))),
            Transport::Stdio(None) => Err(ErrorClass::Exited),
        }
    }

    /// The version spoken (negotiated, once open).
    pub fn version(&self) -> Version {
        match self {
            Client::Http(c) => c.version(),
            Client::Sse(c) => c.version(),
            Client::Stdio(c) => c.version(),
        }
    }

    /// The HTTP status of the last answer, if the transport has statuses and one came.
    pub fn last_status(&self) -> Option<u16> {
        match self {
            Client::Http(c) => c.last_status(),
            Client::Sse(c) => c.last_status(),
            Client::Stdio(_) => None,
        }
    }

    /// Connects and handshakes, so a user holds its connection (and session) from its start.
    pub async fn open(&mut self) -> Result<(), ErrorClass> {
        match self {
            Client::Http(c) => c.open().await,
            Client::Sse(c) => c.open().await,
            Client::Stdio(c) => c.open().await,
        }
    }

    /// One call with JSON-RPC id `id`, timed to its answer.
    pub async fn call(&mut self, call: &HttpCall, id: u64) -> Sent {
        match self {
            Client::Http(c) => c.call(call, id).await,
            // Boxed: inline, their futures would make every HTTP call's future (moved into a
            // box by goose per call) their size; that copy was ~5 % of loadgen's CPU.
            Client::Sse(c) => Box::pin(c.call(call, id)).await,
            Client::Stdio(c) => Box::pin(c.call(&call.call, id)).await,
        }
    }

    /// Ends the session politely (best effort).
    pub async fn close(&mut self) {
        match self {
            Client::Http(c) => c.close().await,
            Client::Sse(c) => c.close().await,
            Client::Stdio(c) => c.close().await,
        }
    }
}
