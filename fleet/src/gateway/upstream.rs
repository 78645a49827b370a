//! The gateway's side towards the servers: pooled HTTP/1.1 connections with `TCP_NODELAY` (a
//! proxy without it adds ~40 ms delayed-ACK stalls to every SSE answer), and the classification
//! of what went wrong, which passive health ejection acts on.
//!
//! A connection's I/O is driven by the request's own task while it waits for the answer, not by
//! a task of its own as in hyper-util's pooled client: a call then costs no hand-off between
//! tasks (and threads) on its way out and back, which on a busy 2-core machine is what a proxy
//! hop mostly costs (`benches/README.md`, "Gateway overhead"). JSON answers are read whole on
//! that same task and the connection goes back to the pool; an event stream is handed to a task
//! that drives its connection until the stream ends.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Mutex, MutexGuard, atomic::AtomicBool},
    time::{Duration, Instant},
};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header, response::Parts};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{
    body::Incoming,
    client::conn::http1::{Connection, SendRequest},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::backend::Backend;
use crate::serve::{
    link::{self, Miss},
    local::{CallError, Service, Slot},
};

/// Headers that belong to one hop and are not forwarded (RFC 9110 §7.6.1), plus `host`, which
/// is set for the backend.
const HOP_BY_HOP: [header::HeaderName; 8] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
];

/// Idle connections kept per backend; more are closed when they come back.
const MAX_IDLE_PER_BACKEND: usize = 256;
/// Largest JSON answer read whole (a memory server's `read_graph` of a large graph is the
/// biggest the reference fleet sends, a few MB); a larger one is refused as too large.
pub const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// Idle connections older than this are closed rather than reused: a server may have closed
/// them meanwhile (the fleet's own after `[http] header_read_timeout`, 10 s by default;
/// Node's and uvicorn's after 5 s), and a request handed to a connection that the server is
/// closing at that moment is lost, not refused.
const MAX_IDLE: Duration = Duration::from_secs(4);
/// Bounds connecting to a backend.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a request to a backend failed before it produced an answer the gateway could pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect to the server")]
    Connect,
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the connection to the server broke")]
    Broken,
    /// The answer outgrew what the gateway reads whole ([`MAX_ANSWER`]): the request asked for
    /// too much, which says nothing about the server's health.
    #[error("its answer is larger than the gateway's limit of {} MiB", MAX_ANSWER >> 20)]
    TooLarge,
}

impl UpstreamError {
    /// True when the request cannot have reached the server, so sending it elsewhere repeats
    /// nothing (the retry rule for calls that are not safe to repeat).
    pub fn never_sent(self) -> bool {
        self == UpstreamError::Connect
    }
}

/// Idle connections are pooled per backend and per thread: a socket belongs to the runtime
/// that opened it (its readiness arrives through that runtime's driver), and the gateway serves
/// on single-threaded runtimes, one per thread, so a connection is reused where it wakes.
type PoolKey = (std::thread::ThreadId, SocketAddr);

/// Connections to every backend, idle ones pooled per address (and thread).
#[derive(Debug)]
pub struct Upstream {
    idle: Mutex<HashMap<PoolKey, Vec<(Instant, Link)>>>,
    timeout: Duration,
    /// Largest answer read whole: [`MAX_ANSWER`], lowered by tests.
    max_answer: usize,
}

/// An open connection: the handle requests are sent through, and the state machine that does
/// the connection's I/O when polled.
#[derive(Debug)]
struct Link {
    sender: SendRequest<Full<Bytes>>,
    driver: Connection<TokioIo<TcpStream>, Full<Bytes>>,
    /// The driver has finished (the connection closed): it must not be polled again, and the
    /// link is not reused.
    ended: bool,
}

/// How an answer that is not JSON (an event stream) arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// As it comes, its connection driven by a task of its own until the stream ends.
    Stream,
    /// Read whole on the request's task, like a JSON answer.
    Whole,
}

/// Why one attempt on a link failed.
enum Failure {
    /// The connection was found closed before the request left: safe to send again.
    NotSent,
    Failed(UpstreamError),
}

impl From<Miss> for Failure {
    fn from(miss: Miss) -> Self {
        match miss {
            Miss::NotSent => Failure::NotSent,
            Miss::Lost => Failure::Failed(UpstreamError::Broken),
        }
    }
}

/// What came back on a link: an answer read whole (the link reusable), or the head of an
/// event stream whose connection a task now drives.
enum Got {
    Whole(Parts, Bytes),
    Stream(Response<Incoming>),
}

impl Upstream {
    /// `timeout` bounds the wait for a backend's response headers, and again for the rest of a
    /// JSON answer.
    pub fn new(timeout: Duration) -> Self {
        Self {
            idle: Mutex::default(),
            timeout,
            max_answer: MAX_ANSWER,
        }
    }

    /// This upstream with a lower answer limit than [`MAX_ANSWER`], for tests.
    #[cfg(test)]
    pub fn with_max_answer(mut self, bytes: usize) -> Self {
        self.max_answer = bytes;
        self
    }

    /// Sends one request to `backend` at `path`, with the client's end-to-end headers: in
    /// this process when the server runs here, else over HTTP. A JSON answer arrives read
    /// whole; anything else (an event stream) streams.
    pub async fn send(
        &self,
        backend: &Backend,
        path: &str,
        method: Method,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        self.send_as(backend, path, method, headers, body, Read::Stream)
            .await
    }

    /// [`Upstream::send`] with every answer read whole, an event stream too (until the server
    /// ends it, within the timeout): for answers the gateway reads itself. The connection is
    /// reused after it, as after a JSON answer, where a streamed answer's is not.
    pub async fn send_whole(
        &self,
        backend: &Backend,
        path: &str,
        method: Method,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Body>, UpstreamError> {
        self.send_as(backend, path, method, headers, body, Read::Whole)
            .await
    }

    async fn send_as(
        &self,
        backend: &Backend,
        path: &str,
        method: Method,
        headers: &HeaderMap,
        body: Bytes,
        read: Read,
    ) -> Result<Response<Body>, UpstreamError> {
        match backend.local.as_deref().map(Slot::get) {
            Some(Some(service)) => {
                let request = request(backend.addr, path, method, headers, body)?.map(Body::new);
                self.call(&service, request, read).await
            }
            // Between instances: its listening socket may still take connections (the
            // supervisor keeps it across restarts), but nobody would answer them.
            Some(None) => Err(UpstreamError::Connect),
            // Boxed: the HTTP link's future is about 4.8 KB, and held inline it would make every
            // caller's future that size too, in-process calls included (a future is copied
            // whole when it moves; `memmove` was 8-10 % of the gateway's samples in perf).
            None => Box::pin(self.send_http(backend.addr, path, method, headers, body, read)).await,
        }
    }

    /// [`Upstream::send`] to a server in this process: its service called directly, with the
    /// same timeouts and the same failures as over a connection (a server that is stopping
    /// refuses, one killed mid-call breaks the answer off).
    async fn call(
        &self,
        service: &Service,
        request: Request<Body>,
        read: Read,
    ) -> Result<Response<Body>, UpstreamError> {
        let response = tokio::time::timeout(self.timeout, service.call(request))
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|e| match e {
                CallError::Refused => UpstreamError::Connect,
                CallError::Ended => UpstreamError::Broken,
            })?;
        if read == Read::Stream && !is_json(response.headers()) {
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let bytes = tokio::time::timeout(self.timeout, whole(body, self.max_answer))
            .await
            .map_err(|_| UpstreamError::Timeout)??;
        Ok(Response::from_parts(parts, Body::from(bytes)))
    }

    /// [`Upstream::send`] over a pooled HTTP/1.1 connection to `backend`.
    async fn send_http(
        &self,
        backend: SocketAddr,
        path: &str,
        method: Method,
        headers: &HeaderMap,
        body: Bytes,
        read: Read,
    ) -> Result<Response<Body>, UpstreamError> {
        // A pooled connection the server closed while it idled is found closed before the
        // request leaves; then the next one (or a new one) is tried.
        loop {
            let (mut link, pooled) = match self.checkout(backend) {
                Some(link) => (link, true),
                None => (self.connect(backend).await?, false),
            };
            let request = request(backend, path, method.clone(), headers, body.clone())?;
            match link
                .exchange(request, self.timeout, self.max_answer, read)
                .await
            {
                Ok(Got::Whole(parts, bytes)) => {
                    self.checkin(backend, link);
                    return Ok(Response::from_parts(parts, Body::from(bytes)));
                }
                Ok(Got::Stream(response)) => {
                    if !link.ended {
                        let driver = link.driver;
                        tokio::spawn(async move {
                            let _ = driver.await;
                        });
                    }
                    return Ok(response.map(Body::new));
                }
                Err(Failure::NotSent) if pooled => continue,
                Err(Failure::NotSent) => return Err(UpstreamError::Connect),
                Err(Failure::Failed(e)) => return Err(e),
            }
        }
    }

    /// A body read whole, however it is framed (an event stream too), within the timeout: the
    /// answers the gateway reads itself rather than passing on.
    pub async fn read(&self, body: Body) -> Result<Bytes, UpstreamError> {
        tokio::time::timeout(self.timeout, whole(body, self.max_answer))
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }

    /// How long the gateway waits for a server's answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Closes the idle connections to servers not in `keep` (servers that left the fleet).
    pub fn retain(&self, keep: impl Fn(&SocketAddr) -> bool) {
        self.lock().retain(|(_, addr), _| keep(addr));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PoolKey, Vec<(Instant, Link)>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn checkout(&self, backend: SocketAddr) -> Option<Link> {
        let mut idle = self.lock();
        let links = idle.get_mut(&(std::thread::current().id(), backend))?;
        // Kept in the order they came back: the most recent is taken, the oldest age out.
        let now = Instant::now();
        let expired =
            links.partition_point(|(since, _)| now.saturating_duration_since(*since) >= MAX_IDLE);
        links.drain(..expired);
        while let Some((_, link)) = links.pop() {
            if !link.sender.is_closed() {
                return Some(link);
            }
        }
        None
    }

    fn checkin(&self, backend: SocketAddr, link: Link) {
        if link.ended || link.sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        let links = idle
            .entry((std::thread::current().id(), backend))
            .or_default();
        if links.len() < MAX_IDLE_PER_BACKEND {
            links.push((Instant::now(), link));
        }
    }

    async fn connect(&self, backend: SocketAddr) -> Result<Link, UpstreamError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend))
            .await
            .map_err(|_| UpstreamError::Connect)?
            .map_err(|_| UpstreamError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| UpstreamError::Connect)?;
        Ok(Link {
            sender,
            driver,
            ended: false,
        })
    }
}

/// The request to send: origin-form target, `host` set, hop-by-hop headers and the length
/// (recomputed from the body) left out.
fn request(
    backend: SocketAddr,
    path: &str,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, UpstreamError> {
    let uri: Uri = path.parse().map_err(|_| UpstreamError::Broken)?;
    let host = HeaderValue::from_str(&backend.to_string()).map_err(|_| UpstreamError::Broken)?;
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let h = request.headers_mut();
    h.reserve(headers.len() + 1);
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(name) && name != header::CONTENT_LENGTH {
            h.append(name.clone(), value.clone());
        }
    }
    h.insert(header::HOST, host);
    Ok(request)
}

/// A JSON answer's body read whole: cut off, it is broken; larger than `limit`, too large.
async fn whole<B>(body: B, limit: usize) -> Result<Bytes, UpstreamError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Limited::new(body, limit)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                UpstreamError::TooLarge
            } else {
                UpstreamError::Broken
            }
        })
}

/// True when `headers` announce a JSON body (read whole) rather than a stream.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

impl Link {
    /// Sends `request` and waits for the answer's head (within `timeout`), polling the
    /// connection's I/O alongside; then reads a JSON body whole (within `timeout` again).
    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
        limit: usize,
        read: Read,
    ) -> Result<Got, Failure> {
        let Link {
            sender,
            driver,
            ended,
        } = self;
        let handed_over = AtomicBool::new(false);
        let head = async { Ok(link::send(sender, request, &handed_over).await?) };
        let head = drive(driver, ended, head, &handed_over);
        let response = tokio::time::timeout(timeout, head)
            .await
            .map_err(|_| Failure::Failed(UpstreamError::Timeout))??;
        let (parts, incoming) = response.into_parts();
        if read == Read::Stream && !is_json(&parts.headers) {
            return Ok(Got::Stream(Response::from_parts(parts, incoming)));
        }
        let read = async { whole(incoming, limit).await.map_err(Failure::Failed) };
        let sent = AtomicBool::new(true);
        let bytes = tokio::time::timeout(timeout, drive(driver, ended, read, &sent))
            .await
            .map_err(|_| Failure::Failed(UpstreamError::Timeout))??;
        Ok(Got::Whole(parts, bytes))
    }
}

/// [`link::drive`] with the gateway's failures.
async fn drive<T>(
    driver: &mut Connection<TokioIo<TcpStream>, Full<Bytes>>,
    ended: &mut bool,
    work: impl Future<Output = Result<T, Failure>>,
    handed_over: &AtomicBool,
) -> Result<T, Failure> {
    link::drive(driver, ended, work, handed_over).await?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::testing::{CannedServer, SilentServer, closed_port};

    /// What every request a canned server read must look like: a POST to `/mcp` addressed to
    /// the server, without the hop-by-hop header the client was given.
    fn assert_proxied(server: &CannedServer) {
        for head in server.requests() {
            assert!(head.starts_with("POST /mcp HTTP/1.1"), "{head}");
            assert!(head.contains("host: 127.0.0.1:"), "{head}");
            assert!(!head.contains("connection: x"), "hop-by-hop: {head}");
        }
    }

    const JSON: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        content-length: 2\r\n\r\n{}";

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("x"));
        h
    }

    async fn body(r: Response<Body>) -> Bytes {
        r.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn json_answers_reuse_one_connection() {
        let server = CannedServer::start(100, JSON).await.unwrap();
        let addr = server.addr();
        let up = Upstream::new(Duration::from_secs(2));
        for _ in 0..5 {
            let r = up
                .send_http(
                    addr,
                    "/mcp",
                    Method::POST,
                    &headers(),
                    Bytes::from_static(b"{}"),
                    Read::Stream,
                )
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(body(r).await, "{}");
        }
        assert_eq!(server.accepted(), 1);
        assert_eq!(server.requests().len(), 5);
        assert_proxied(&server);
    }

    #[tokio::test]
    async fn event_streams_read_whole_reuse_one_connection() {
        let sse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                   content-length: 10\r\n\r\ndata: {}\n\n";
        let server = CannedServer::start(100, sse).await.unwrap();
        let up = Upstream::new(Duration::from_secs(2));
        for _ in 0..3 {
            let r = up
                .send_http(
                    server.addr(),
                    "/mcp",
                    Method::POST,
                    &headers(),
                    Bytes::new(),
                    Read::Whole,
                )
                .await
                .unwrap();
            assert_eq!(body(r).await, "data: {}\n\n");
        }
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn a_pooled_connection_the_server_closed_is_replaced_before_sending() {
        // One answer per connection: every pooled connection is closed by the time it is
        // taken again, and the request goes out on a new one instead of failing.
        let server = CannedServer::start(1, JSON).await.unwrap();
        let addr = server.addr();
        let up = Upstream::new(Duration::from_secs(2));
        for _ in 0..3 {
            let r = up
                .send_http(
                    addr,
                    "/mcp",
                    Method::POST,
                    &headers(),
                    Bytes::new(),
                    Read::Stream,
                )
                .await
                .unwrap();
            assert_eq!(body(r).await, "{}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(server.accepted(), 3);
        assert_proxied(&server);
    }

    #[tokio::test]
    async fn an_event_stream_streams_while_its_connection_is_driven() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (go_on, wait) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            conn.write_all(head.as_bytes()).await.unwrap();
            let chunk = |i: usize| {
                let event = format!("data: {i}\n\n");
                format!("{:x}\r\n{event}\r\n", event.len())
            };
            conn.write_all(chunk(0).as_bytes()).await.unwrap();
            // The rest only once the gateway has handed the stream on.
            let _ = wait.await;
            conn.write_all(chunk(1).as_bytes()).await.unwrap();
            conn.write_all(b"0\r\n\r\n").await.unwrap();
        });
        let up = Upstream::new(Duration::from_secs(2));
        let r = up
            .send_http(
                addr,
                "/mcp",
                Method::GET,
                &HeaderMap::new(),
                Bytes::new(),
                Read::Stream,
            )
            .await
            .unwrap();
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/event-stream");
        go_on.send(()).unwrap();
        assert_eq!(body(r).await, "data: 0\n\ndata: 1\n\n");
    }

    #[tokio::test]
    async fn a_server_in_this_process_is_called_without_a_socket() {
        // A socket that takes connections and never answers, as a task-mode server's between
        // two instances: the in-process path never goes there.
        let listening = SilentServer::start().await.unwrap();
        let slot = Arc::new(Slot::default());
        let backend = Backend {
            id: "community-0000".into(),
            group: "community".into(),
            addr: listening.addr(),
            local: Some(slot.clone()),
        };
        let up = Upstream::new(Duration::from_secs(5));
        let hop = headers();
        let send = || up.send(&backend, "/mcp", Method::POST, &hop, Bytes::new());
        // No instance in the slot: down, at once (not a timeout on the socket).
        assert_eq!(send().await.unwrap_err(), UpstreamError::Connect);

        let router = axum::Router::new().route(
            "/mcp",
            axum::routing::post(|h: HeaderMap| async move {
                // What a server behind a proxy sees: its own address as the host, no
                // hop-by-hop headers.
                assert!(h[header::HOST].to_str().unwrap().starts_with("127.0.0.1:"));
                assert!(!h.contains_key(header::CONNECTION));
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    "{\"in\":\"process\"}",
                )
            }),
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let resident = crate::serve::local::Resident::enter(slot.clone(), router, stop.clone());
        let r = send().await.unwrap();
        assert_eq!(body(r).await, "{\"in\":\"process\"}");

        // Stopping: refused like a closed port, so the gateway may send the call elsewhere.
        stop.cancel();
        assert_eq!(send().await.unwrap_err(), UpstreamError::Connect);
        drop(resident);
    }

    #[tokio::test]
    async fn failures_are_classified() {
        let dead = closed_port().unwrap();
        let up = Upstream::new(Duration::from_millis(300));
        let none = HeaderMap::new();
        let send = |addr| {
            up.send_http(
                addr,
                "/mcp",
                Method::POST,
                &none,
                Bytes::new(),
                Read::Stream,
            )
        };
        assert_eq!(send(dead).await.unwrap_err(), UpstreamError::Connect);

        // Accepts and never answers.
        let silent = SilentServer::start().await.unwrap();
        assert_eq!(
            send(silent.addr()).await.unwrap_err(),
            UpstreamError::Timeout
        );
        drop(silent);

        // Answers half a body, then hangs up.
        let cut = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                   content-length: 100\r\n\r\n{\"jsonrpc\"";
        let server = CannedServer::start(1, cut).await.unwrap();
        assert_eq!(
            send(server.addr()).await.unwrap_err(),
            UpstreamError::Broken
        );
        assert_proxied(&server);
    }
}
