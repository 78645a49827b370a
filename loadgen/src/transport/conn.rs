//! One plain HTTP/1.1 connection to one MCP endpoint, driven through hyper's connection API:
//! no pool, no middleware, the connection opened on first use and again after it broke. A load
//! generator's CPU per request is its ceiling, and on this machine reqwest cost 42-47 µs of CPU
//! per request where this path costs 18-22 µs (benches/README.md). Each goose user keeps one
//! `Conn` per server it calls, so the connections held are exactly users × servers.
//!
//! The connection's I/O is driven inside the exchange by the calling task, not by a task of its
//! own: a request then costs no hand-off between tasks (and threads), which showed as both CPU
//! and latency tails. Between exchanges nobody reads the socket; a connection the server closed
//! meanwhile is found at the next send and replaced (the request had not left).

use std::{
    future::Future,
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue, Method, Request, Uri,
    header::{AUTHORIZATION, HOST, WWW_AUTHENTICATE},
    response::Parts,
};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::{
    body::Incoming,
    client::conn::http1::{Connection, SendRequest},
};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use fleet::link::{self, Miss};

use crate::{
    mcp::ErrorClass,
    transport::{
        oauth::bearer::Bearer,
        settings::HttpSettings,
        socket::Socket,
        tls::{self, Tls},
    },
};

/// Largest response body read; a larger one is a `protocol` error.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A connection to one endpoint (opened lazily).
#[derive(Debug)]
pub struct Conn {
    /// `host:port` to connect to (a name is resolved at each connect).
    connect_to: (String, u16),
    host: HeaderValue,
    path: Uri,
    settings: Arc<HttpSettings>,
    /// The target's OAuth token, when the run has credentials (and no `-H Authorization`).
    bearer: Option<Bearer>,
    /// For `https://`: the run's TLS configuration and the name the server must prove.
    tls: Option<(Arc<Tls>, ServerName<'static>)>,
    /// Boxed: a connection is held in every call's future; inline (~0.8 KB) it was copied
    /// with that future on every call.
    link: Option<Box<Link>>,
}

/// An open connection: the handle requests are sent through, and the state machine that does
/// the connection's I/O when polled.
#[derive(Debug)]
struct Link {
    sender: SendRequest<Full<Bytes>>,
    driver: Connection<TokioIo<Socket>, Full<Bytes>>,
}

/// How a response body is read: the whole of it ([`WholeBody`]), or message by message as a
/// stream arrives (answering the server meanwhile). The connection's I/O is driven while it
/// runs.
pub trait ReadBody {
    type Output;
    fn read(
        &mut self,
        head: &Parts,
        body: Incoming,
    ) -> impl Future<Output = Result<Self::Output, ErrorClass>> + Send;
}

/// Reads the whole body, up to [`MAX_BODY`].
pub struct WholeBody;

impl ReadBody for WholeBody {
    type Output = Bytes;

    async fn read(&mut self, _head: &Parts, body: Incoming) -> Result<Bytes, ErrorClass> {
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(body) => Ok(body.to_bytes()),
            // Larger than any answer to the calls we make: the peer is not serving MCP
            // responses (and we will not buffer it).
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ErrorClass::Protocol),
            Err(_) => Err(ErrorClass::Connect),
        }
    }
}

/// A complete response.
#[derive(Debug)]
pub struct Exchange<B = Bytes> {
    pub status: u16,
    pub headers: HeaderMap,
    /// What the body reader made of the body.
    pub body: B,
    /// From the start of the exchange (connecting included) to the response headers.
    pub ttfb: Duration,
    /// From the start of the exchange to the end of the body.
    pub elapsed: Duration,
}

impl Conn {
    /// A connection to `url`; every exchange carries the settings' extra headers and must
    /// finish within its timeout, connecting included.
    pub fn new(url: &Url, settings: &Arc<HttpSettings>) -> Result<Self, ErrorClass> {
        let host = url.host_str().ok_or(ErrorClass::Connect)?;
        let port = url.port_or_known_default().ok_or(ErrorClass::Connect)?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        // An https URL without the run's TLS configuration cannot be connected to.
        let tls = match url.scheme() {
            "https" => Some((
                settings.tls.clone().ok_or(ErrorClass::Connect)?,
                tls::server_name(host)?,
            )),
            _ => None,
        };
        Ok(Self {
            // `host_str` brackets IPv6 addresses; connecting wants them bare.
            connect_to: (host.trim_matches(['[', ']']).to_string(), port),
            host: HeaderValue::from_str(&authority).map_err(|_| ErrorClass::Connect)?,
            path: path.parse().map_err(|_| ErrorClass::Connect)?,
            settings: settings.clone(),
            bearer: settings
                .auth
                .as_ref()
                .filter(|_| !settings.headers.contains_key(AUTHORIZATION))
                .map(|client| Bearer::new(client.clone(), url)),
            tls,
            link: None,
        })
    }

    /// Connects now if not connected, so a user holds its connections from its start rather
    /// than from its first call.
    pub async fn open(&mut self) -> Result<(), ErrorClass> {
        if self.link.as_ref().is_none_or(|l| l.sender.is_closed()) {
            let link = tokio::time::timeout(self.settings.timeout, self.connect())
                .await
                .unwrap_or(Err(ErrorClass::Timeout))?;
            self.link = Some(Box::new(link));
        }
        Ok(())
    }

    /// Sends one request and reads the whole response. A failure drops the connection, so the
    /// next exchange starts on a fresh one.
    pub async fn exchange(
        &mut self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Exchange, ErrorClass> {
        self.exchange_with(method, headers, body, &mut WholeBody)
            .await
    }

    /// Sends one request and reads its response with `reader`. With OAuth, the request carries
    /// the target's token, and a 401 renews it and sends the request once more (the exchange
    /// is timed from the first send).
    pub async fn exchange_with<R: ReadBody + Send>(
        &mut self,
        method: Method,
        mut headers: HeaderMap,
        body: Bytes,
        reader: &mut R,
    ) -> Result<Exchange<R::Output>, ErrorClass> {
        let start = Instant::now();
        let used = self.bearer.as_mut().and_then(Bearer::header);
        if let Some(token) = &used {
            headers.insert(AUTHORIZATION, token.clone());
        }
        let again = self
            .bearer
            .is_some()
            .then(|| (method.clone(), headers.clone(), body.clone()));
        let mut result = self.exchange_bounded(method, headers, body, reader).await;
        if let (Ok((401, answer, ..)), Some(again)) = (&result, again) {
            let challenge = answer
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            // Boxed: rare, and inline the token fetch and second exchange would make every
            // call's future (moved per call) their size.
            if let Some(second) =
                Box::pin(self.after_401(used.as_ref(), challenge, again, reader)).await
            {
                result = second;
            }
        }
        result.map(|(status, headers, body, ttfb)| Exchange {
            status,
            headers,
            body,
            ttfb: ttfb.saturating_duration_since(start),
            elapsed: start.elapsed(),
        })
    }

    /// After a 401: renews the token and sends the request once more; `None` when no new token
    /// could be had (the 401 stands).
    async fn after_401<R: ReadBody + Send>(
        &mut self,
        used: Option<&HeaderValue>,
        challenge: Option<String>,
        (method, mut headers, body): (Method, HeaderMap, Bytes),
        reader: &mut R,
    ) -> Option<Result<(u16, HeaderMap, R::Output, Instant), ErrorClass>> {
        let token = self
            .bearer
            .as_mut()?
            .after_401(used, challenge.as_deref())
            .await?;
        headers.insert(AUTHORIZATION, token);
        Some(self.exchange_bounded(method, headers, body, reader).await)
    }

    /// One exchange within the timeout; a failure drops the connection.
    async fn exchange_bounded<R: ReadBody + Send>(
        &mut self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
        reader: &mut R,
    ) -> Result<(u16, HeaderMap, R::Output, Instant), ErrorClass> {
        let timeout = self.settings.timeout;
        let result =
            tokio::time::timeout(timeout, self.exchange_within(method, headers, body, reader))
                .await
                .unwrap_or(Err(ErrorClass::Timeout));
        if result.is_err() {
            self.link = None;
        }
        result
    }

    async fn exchange_within<R: ReadBody + Send>(
        &mut self,
        method: Method,
        mut headers: HeaderMap,
        body: Bytes,
        reader: &mut R,
    ) -> Result<(u16, HeaderMap, R::Output, Instant), ErrorClass> {
        self.settings.apply(&mut headers);
        let mut reused = true;
        loop {
            let request = self.request(method.clone(), headers.clone(), body.clone());
            let link = match &mut self.link {
                Some(link) if !link.sender.is_closed() => link,
                _ => {
                    reused = false;
                    // Boxed: once per connection, and the TLS handshake's future is large.
                    self.link.insert(Box::new(Box::pin(self.connect()).await?))
                }
            };
            match link.exchange(request, reader).await {
                Ok(done) => return Ok(done),
                // A kept-alive connection the server closed meanwhile: the request never left,
                // so sending it again on a new connection is safe.
                Err(Failure::NotSent) if reused => {
                    self.link = None;
                    reused = false;
                }
                Err(Failure::NotSent) => return Err(ErrorClass::Connect),
                Err(Failure::Class(class)) => return Err(class),
            }
        }
    }

    async fn connect(&self) -> Result<Link, ErrorClass> {
        let (host, port) = &self.connect_to;
        let tcp = TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(|_| ErrorClass::Connect)?;
        // Without it a small request can wait for a delayed ACK (~40 ms).
        let _ = tcp.set_nodelay(true);
        let stream = match &self.tls {
            None => Socket::Plain(tcp),
            Some((tls, name)) => Socket::Tls(Box::new(tls.handshake(tcp, name).await?)),
        };
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ErrorClass::Connect)?;
        Ok(Link { sender, driver })
    }
}

/// A response whose body is read as it arrives (legacy SSE's long-lived `GET` stream).
pub struct Streamed {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: hyper::body::Incoming,
    /// The connection's I/O, to poll while reading `body` (which only moves while it runs).
    pub driver: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

impl Conn {
    /// Sends one request on a connection of its own and gives the response once its head has
    /// arrived (within the timeout), its body left to the caller.
    pub async fn stream(
        mut self,
        method: Method,
        mut headers: HeaderMap,
    ) -> Result<Streamed, ErrorClass> {
        if let Some(token) = self.bearer.as_mut().and_then(Bearer::header) {
            headers.insert(AUTHORIZATION, token);
        }
        self.settings.apply(&mut headers);
        let opened = async {
            let Link {
                mut sender,
                mut driver,
            } = self.connect().await?;
            let request = self.request(method, headers, Bytes::new());
            let handed_over = AtomicBool::new(false);
            let sent = link::send(&mut sender, request, &handed_over);
            let response = link::drive(&mut driver, &mut false, sent, &handed_over)
                .await
                .and_then(|r| r)
                .map_err(|_| ErrorClass::Connect)?;
            Ok::<_, ErrorClass>((response, sender, driver))
        };
        let (response, sender, driver) = tokio::time::timeout(self.settings.timeout, opened)
            .await
            .unwrap_or(Err(ErrorClass::Timeout))?;
        let (parts, body) = response.into_parts();
        Ok(Streamed {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            driver: Box::pin(async move {
                let _ = driver.await;
                // Held until the connection ends, so it is not closed for want of requests.
                drop(sender);
            }),
        })
    }

    /// A request to this connection's endpoint.
    fn request(&self, method: Method, headers: HeaderMap, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = headers;
        request.headers_mut().insert(HOST, self.host.clone());
        request
    }
}

/// Why an exchange on a link failed.
enum Failure {
    /// The connection was found closed before the request left: safe to send again.
    NotSent,
    Class(ErrorClass),
}

impl From<Miss> for Failure {
    fn from(miss: Miss) -> Self {
        match miss {
            Miss::NotSent => Failure::NotSent,
            Miss::Lost => Failure::Class(ErrorClass::Connect),
        }
    }
}

impl Link {
    /// Sends `request` and reads the response with `reader`, polling the connection's I/O
    /// alongside. Once the driver has ended, the link must not be used again (the caller drops
    /// it on error).
    async fn exchange<R: ReadBody>(
        &mut self,
        request: Request<Full<Bytes>>,
        reader: &mut R,
    ) -> Result<(u16, HeaderMap, R::Output, Instant), Failure> {
        let Link { sender, driver } = self;
        let handed_over = AtomicBool::new(false);
        let response = async {
            let response = link::send(sender, request, &handed_over).await?;
            let ttfb = Instant::now();
            let (parts, incoming) = response.into_parts();
            let body = reader
                .read(&parts, incoming)
                .await
                .map_err(Failure::Class)?;
            Ok((parts.status.as_u16(), parts.headers, body, ttfb))
        };
        let mut ended = false;
        link::drive(driver, &mut ended, response, &handed_over).await?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use fleet::testing::{CannedServer, SilentServer, closed_port};

    use super::*;

    fn settings(timeout: Duration) -> Arc<HttpSettings> {
        Arc::new(HttpSettings::with_timeout(timeout))
    }

    #[tokio::test]
    async fn exchanges_reuse_the_connection_and_reconnect_when_it_closes() {
        // One reply per connection: every second exchange finds the connection closed.
        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nmcp-session-id: s1\r\n\r\nok";
        let server = CannedServer::start(1, reply).await.unwrap();
        let url: Url = server.url("/mcp?x=1").parse().unwrap();
        let mut conn = Conn::new(&url, &settings(Duration::from_secs(2))).unwrap();
        conn.open().await.unwrap();
        for _ in 0..3 {
            let x = conn
                .exchange(Method::POST, HeaderMap::new(), Bytes::from_static(b"{}"))
                .await
                .unwrap();
            assert_eq!((x.status, &x.body[..]), (200, &b"ok"[..]));
            assert_eq!(x.headers["mcp-session-id"], "s1");
            assert!(x.ttfb <= x.elapsed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        for head in requests {
            assert!(head.starts_with("POST /mcp?x=1 HTTP/1.1"), "{head}");
            assert!(head.to_lowercase().contains("host: 127.0.0.1:"), "{head}");
        }
    }

    /// A server that closes a kept-alive connection while it sits idle (as a fleet server
    /// does after `[http] header_read_timeout`): the next exchange goes out on a new
    /// connection instead of failing, since the request never left.
    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let server = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    if matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {
                        let reply = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        let _ = stream.write_all(reply.as_bytes()).await;
                        // Closed once the client is done with it and idle.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                });
            }
        });
        let url: Url = format!("http://{addr}/mcp").parse().unwrap();
        let mut conn = Conn::new(&url, &settings(Duration::from_secs(2))).unwrap();
        for _ in 0..3 {
            let x = conn
                .exchange(Method::POST, HeaderMap::new(), Bytes::from_static(b"{}"))
                .await
                .unwrap();
            assert_eq!((x.status, &x.body[..]), (200, &b"ok"[..]));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::Relaxed), 3);
        server.abort();
    }

    #[tokio::test]
    async fn an_oversized_body_is_a_protocol_error() {
        let size = MAX_BODY + 1;
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n{}",
            "x".repeat(size)
        );
        let server = CannedServer::start(1, Box::leak(reply.into_boxed_str()))
            .await
            .unwrap();
        let url: Url = server.url("/mcp").parse().unwrap();
        let mut conn = Conn::new(&url, &settings(Duration::from_secs(5))).unwrap();
        let err = conn
            .exchange(Method::POST, HeaderMap::new(), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err, ErrorClass::Protocol);
    }

    #[tokio::test]
    async fn connect_failures_and_timeouts_are_classified() {
        let url: Url = format!("http://{}/mcp", closed_port().unwrap())
            .parse()
            .unwrap();
        let mut conn = Conn::new(&url, &settings(Duration::from_secs(2))).unwrap();
        let err = conn
            .exchange(Method::POST, HeaderMap::new(), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err, ErrorClass::Connect);

        let silent = SilentServer::start().await.unwrap();
        let url: Url = silent.url("/mcp").parse().unwrap();
        let mut conn = Conn::new(&url, &settings(Duration::from_millis(300))).unwrap();
        let started = Instant::now();
        let err = conn
            .exchange(Method::POST, HeaderMap::new(), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err, ErrorClass::Timeout);
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
}
