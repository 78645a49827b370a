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
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header::HOST, response::Parts};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::{
    body::Incoming,
    client::conn::http1::{Connection, SendRequest},
};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use tokio::net::TcpStream;

use fleet::link::{self, Miss};

use crate::{mcp::ErrorClass, transport::settings::HttpSettings};

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
    link: Option<Link>,
}

/// An open connection: the handle requests are sent through, and the state machine that does
/// the connection's I/O when polled.
#[derive(Debug)]
struct Link {
    sender: SendRequest<Full<Bytes>>,
    driver: Connection<TokioIo<TcpStream>, Full<Bytes>>,
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
        Ok(Self {
            // `host_str` brackets IPv6 addresses; connecting wants them bare.
            connect_to: (host.trim_matches(['[', ']']).to_string(), port),
            host: HeaderValue::from_str(&authority).map_err(|_| ErrorClass::Connect)?,
            path: path.parse().map_err(|_| ErrorClass::Connect)?,
            settings: settings.clone(),
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
            self.link = Some(link);
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

    /// Sends one request and reads its response with `reader`.
    pub async fn exchange_with<R: ReadBody + Send>(
        &mut self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
        reader: &mut R,
    ) -> Result<Exchange<R::Output>, ErrorClass> {
        let start = Instant::now();
        let timeout = self.settings.timeout;
        let result =
            tokio::time::timeout(timeout, self.exchange_within(method, headers, body, reader))
                .await
                .unwrap_or(Err(ErrorClass::Timeout));
        match result {
            Ok((status, headers, body, ttfb)) => Ok(Exchange {
                status,
                headers,
                body,
                ttfb: ttfb.saturating_duration_since(start),
                elapsed: start.elapsed(),
            }),
            Err(class) => {
                self.link = None;
                Err(class)
            }
        }
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
            let link = match &mut self.link {
                Some(link) if !link.sender.is_closed() => link,
                _ => {
                    reused = false;
                    self.link.insert(self.connect().await?)
                }
            };
            let mut request = Request::new(Full::new(body.clone()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = self.path.clone();
            *request.headers_mut() = headers.clone();
            request.headers_mut().insert(HOST, self.host.clone());
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
        let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(|_| ErrorClass::Connect)?;
        // Without it a small request can wait for a delayed ACK (~40 ms).
        let _ = stream.set_nodelay(true);
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ErrorClass::Connect)?;
        Ok(Link { sender, driver })
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
