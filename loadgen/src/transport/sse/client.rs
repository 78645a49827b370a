//! A per-user client of one legacy HTTP+SSE server. [`SseClient::open`] holds the session's
//! `GET` stream (one connection, read by a task of its own that routes each message to its
//! waiter) and handshakes over POSTs on a second connection; [`SseClient::call`] POSTs a request
//! and waits for the response with its id on the stream, timed from the POST. A stream that ends
//! fails the calls waiting on it, and the next call opens a new session.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Method,
    header::{ACCEPT, CONTENT_TYPE},
};
use reqwest::Url;
use tokio::task::JoinHandle;

use crate::{
    mcp::{self, Asides, ErrorClass, Incoming, Sent, Version},
    transport::{
        conn::Conn,
        http::HttpCall,
        settings::HttpSettings,
        stream_reader::{SideChannel, is_event_stream},
    },
};

use super::{
    events::{self, EventStream},
    waiters::Waiters,
};

/// JSON-RPC id of the `initialize` request (calls count from 1).
const INITIALIZE_ID: u64 = 0;

/// A client of one server: where its stream is, and the session while one is open.
#[derive(Debug)]
pub struct SseClient {
    url: Url,
    settings: Arc<HttpSettings>,
    /// The version `initialize` asks for.
    asked: Version,
    session: Option<Session>,
    last_status: Option<u16>,
}

/// An open session: the stream's reader, the waiters it answers, and the connection POSTs go
/// over.
#[derive(Debug)]
struct Session {
    post: Conn,
    waiters: Arc<Waiters>,
    reader: JoinHandle<()>,
    version: Version,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropping the stream's connection is how a legacy session ends.
        self.reader.abort();
    }
}

impl SseClient {
    /// A client of the server whose event stream is at `url`, asking for `version`
    /// (2024-11-05 unless told otherwise) in `initialize`.
    pub fn new(url: &Url, settings: &Arc<HttpSettings>, version: Version) -> Self {
        Self {
            url: url.clone(),
            settings: Arc::clone(settings),
            asked: version,
            session: None,
            last_status: None,
        }
    }

    /// The version spoken: negotiated once a session is open, else the one asked for.
    pub fn version(&self) -> Version {
        self.session.as_ref().map_or(self.asked, |s| s.version)
    }

    /// The HTTP status of the last POST's answer, if one came.
    pub fn last_status(&self) -> Option<u16> {
        self.last_status
    }

    /// Opens a session unless one is open: the stream, its `endpoint`, `initialize` and
    /// `notifications/initialized`.
    pub async fn open(&mut self) -> Result<(), ErrorClass> {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.waiters.ended().is_none())
        {
            return Ok(());
        }
        self.session = None;
        let deadline = Instant::now() + self.settings.timeout;
        let (stream, endpoint) = tokio::time::timeout_at(deadline.into(), self.connect())
            .await
            .unwrap_or(Err(ErrorClass::Timeout))?;
        let waiters = Arc::new(Waiters::default());
        let replies = SideChannel {
            conn: Some(Conn::new(&endpoint, &self.settings)?),
            headers: post_headers(),
        };
        let reader = tokio::spawn(read(stream, Arc::clone(&waiters), replies));
        let mut session = Session {
            post: Conn::new(&endpoint, &self.settings)?,
            waiters,
            reader,
            version: self.asked,
        };
        let initialize = mcp::initialize_body(INITIALIZE_ID, self.asked).into();
        let answer = session.request(initialize, INITIALIZE_ID, deadline).await;
        self.last_status = answer.as_ref().map_or_else(|e| e.1, |a| Some(a.status));
        let text = answer.map_err(|(class, _)| class)?.text;
        session.version = mcp::negotiated_version(&text, INITIALIZE_ID)?;
        let initialized = Bytes::from_static(mcp::INITIALIZED);
        let x = session
            .post
            .exchange(Method::POST, post_headers(), initialized)
            .await?;
        self.last_status = Some(x.status);
        if !(200..300).contains(&x.status) {
            return Err(ErrorClass::HttpStatus);
        }
        self.session = Some(session);
        Ok(())
    }

    /// `GET`s the stream and reads it up to its `endpoint` event.
    async fn connect(&mut self) -> Result<(EventStream, Url), ErrorClass> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let response = Conn::new(&self.url, &self.settings)?
            .stream(Method::GET, headers)
            .await?;
        self.last_status = Some(response.status);
        if !(200..300).contains(&response.status) {
            return Err(ErrorClass::HttpStatus);
        }
        if !is_event_stream(&response.headers) {
            return Err(ErrorClass::Protocol);
        }
        let mut stream = EventStream::new(response.body, response.driver);
        let endpoint = stream.endpoint(&self.url).await?;
        Ok((stream, endpoint))
    }

    /// Sends `call` with id `id` and waits for its response on the stream; a session is opened
    /// first if none is (and its handshake counted in the call's time).
    pub async fn call(&mut self, call: &HttpCall, id: u64) -> Sent {
        let start = Instant::now();
        let deadline = start + self.settings.timeout;
        if let Err(class) = self.open().await {
            return Sent::failed(start.elapsed(), class);
        }
        let Some(session) = &mut self.session else {
            return Sent::failed(start.elapsed(), ErrorClass::Connect);
        };
        let body = call.call.body(id, session.version).into();
        let answer = session.request(body, id, deadline).await;
        self.last_status = answer.as_ref().map_or_else(|e| e.1, |a| Some(a.status));
        match answer {
            Ok(Answer {
                text,
                mut asides,
                status,
                ttfb,
            }) => {
                let outcome = match mcp::sort_message(&text, id, &mut asides) {
                    Incoming::Answer(verdict) => verdict,
                    Incoming::Reply(_) | Incoming::Skip => Err(ErrorClass::Protocol),
                };
                Sent {
                    elapsed: start.elapsed(),
                    ttfb: Some(ttfb),
                    status: Some(status),
                    outcome,
                    asides,
                }
            }
            Err((class, status)) => Sent {
                status,
                ..Sent::failed(start.elapsed(), class)
            },
        }
    }

    /// Ends the session by dropping its stream.
    pub async fn close(&mut self) {
        self.session = None;
    }
}

/// A response that arrived on the stream, with what its POST was answered.
struct Answer {
    text: String,
    asides: Asides,
    status: u16,
    /// From the POST to its (empty) answer's head: when the server had taken the request.
    ttfb: Duration,
}

impl Session {
    /// POSTs `body` and waits until `deadline` for the response with id `id`. A failure
    /// carries the POST's status when one came.
    async fn request(
        &mut self,
        body: Bytes,
        id: u64,
        deadline: Instant,
    ) -> Result<Answer, (ErrorClass, Option<u16>)> {
        // Waiting starts before the POST: the answer may be on the stream before the POST's.
        let delivery = self.waiters.wait_for(id).map_err(|c| (c, None))?;
        let posted = self.post.exchange(Method::POST, post_headers(), body).await;
        let x = match posted {
            Ok(x) if (200..300).contains(&x.status) => x,
            Ok(x) => {
                self.waiters.forget(id);
                return Err((ErrorClass::HttpStatus, Some(x.status)));
            }
            Err(class) => {
                self.waiters.forget(id);
                return Err((class, None));
            }
        };
        let status = Some(x.status);
        match tokio::time::timeout_at(deadline.into(), delivery).await {
            Ok(Ok(Ok((text, asides)))) => Ok(Answer {
                text,
                asides,
                status: x.status,
                ttfb: x.ttfb,
            }),
            Ok(Ok(Err(class))) => Err((class, status)),
            // The reader is gone without a word: the stream is over.
            Ok(Err(_)) => Err((ErrorClass::Connect, status)),
            Err(_) => {
                self.waiters.forget(id);
                Err((ErrorClass::Timeout, status))
            }
        }
    }
}

/// Content type of every POST (the answer comes on the stream, so no `Accept`).
fn post_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

/// The stream's reader: routes every message until the stream ends, POSTing back the replies
/// to the server's own requests over `replies`, then fails whoever still waits.
async fn read(mut stream: EventStream, waiters: Arc<Waiters>, mut replies: SideChannel) {
    let ended = loop {
        match stream.next().await {
            Ok(Some(event)) if events::is_message(&event) => {
                let Some(data) = event.data else { continue };
                if let Some(reply) = waiters.route(data) {
                    replies.send(reply).await;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break ErrorClass::Connect,
            Err(class) => break class,
        }
    };
    waiters.end(ended);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use fleet::testing::{CannedServer, SilentServer};

    use super::*;

    async fn open(reply: &'static str, timeout: Duration) -> (SseClient, Result<(), ErrorClass>) {
        let server = CannedServer::start(1, reply).await.unwrap();
        let url: Url = server.url("/sse").parse().unwrap();
        let mut settings = HttpSettings::with_timeout(timeout);
        settings
            .headers
            .insert("x-team", HeaderValue::from_static("a"));
        let mut client = SseClient::new(&url, &Arc::new(settings), Version::V2024_11_05);
        let opened = client.open().await;
        let head = server.requests().first().cloned().unwrap_or_default();
        assert!(head.starts_with("GET /sse HTTP/1.1"), "{head}");
        assert!(head.contains("text/event-stream"), "{head}");
        assert!(
            head.contains("x-team: a"),
            "the -H headers go on the GET: {head}"
        );
        (client, opened)
    }

    #[tokio::test]
    async fn streams_that_are_not_legacy_sse_are_refused() {
        let second = Duration::from_secs(1);
        let (client, opened) = open(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            second,
        )
        .await;
        assert_eq!(
            (opened, client.last_status()),
            (Err(ErrorClass::HttpStatus), Some(404))
        );
        let html = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(open(html, second).await.1, Err(ErrorClass::Protocol));
        let elsewhere = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n\
            event: endpoint\r\ndata: http://elsewhere.example/messages?s=1\r\n\r\n";
        assert_eq!(open(elsewhere, second).await.1, Err(ErrorClass::Protocol));
    }

    #[tokio::test]
    async fn a_stream_ending_before_its_endpoint_is_connect_and_silence_a_timeout() {
        let ends = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n: hello\r\n\r\n";
        let (client, opened) = open(ends, Duration::from_secs(1)).await;
        assert_eq!(opened, Err(ErrorClass::Connect));
        assert_eq!(client.version(), Version::V2024_11_05);
        let silent = SilentServer::start().await.unwrap();
        let url: Url = silent.url("/sse").parse().unwrap();
        let settings = Arc::new(HttpSettings::with_timeout(Duration::from_millis(300)));
        let mut client = SseClient::new(&url, &settings, Version::V2024_11_05);
        let sent = client.call(&HttpCall::tools_list(), 1).await;
        assert_eq!(sent.outcome, Err(ErrorClass::Timeout));
    }
}
