//! One plain HTTP/1.1 connection to one MCP endpoint, driven through hyper's connection API:
//! no pool, no middleware, the connection opened on first use and again after it broke. A load
//! generator's CPU per request is its ceiling, and on this machine reqwest cost 42-47 µs of CPU
//! per request where this path costs 18-22 µs (benches/README.md). Each goose user keeps one
//! `Conn` per server it calls, so the connections held are exactly users × servers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri, header::HOST};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::Url;

use crate::mcp::ErrorClass;

/// Largest response body read; a larger one is a `protocol` error.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A connection to one endpoint (opened lazily).
#[derive(Debug)]
pub struct Conn {
    /// `host:port` to connect to (a name is resolved at each connect).
    connect_to: (String, u16),
    host: HeaderValue,
    path: Uri,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// A complete response.
#[derive(Debug)]
pub struct Exchange {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// From the start of the exchange (connecting included) to the response headers.
    pub ttfb: Duration,
    /// From the start of the exchange to the end of the body.
    pub elapsed: Duration,
}

impl Conn {
    /// A connection to `url` (`http://` only, which the CLI enforces); every exchange must
    /// finish within `timeout`, connecting included.
    pub fn new(url: &Url, timeout: Duration) -> Result<Self, ErrorClass> {
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
            timeout,
            sender: None,
        })
    }

    /// Connects now if not connected, so a user holds its connections from its start rather
    /// than from its first call.
    pub async fn open(&mut self) -> Result<(), ErrorClass> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let sender = tokio::time::timeout(self.timeout, self.connect())
                .await
                .unwrap_or(Err(ErrorClass::Timeout))?;
            self.sender = Some(sender);
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
        let start = Instant::now();
        let result =
            tokio::time::timeout(self.timeout, self.exchange_within(method, headers, body))
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
                self.sender = None;
                Err(class)
            }
        }
    }

    async fn exchange_within(
        &mut self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<(u16, HeaderMap, Bytes, Instant), ErrorClass> {
        let mut reused = true;
        loop {
            if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
                reused = false;
                let fresh = self.connect().await?;
                self.sender = Some(fresh);
            }
            let Some(sender) = self.sender.as_mut() else {
                return Err(ErrorClass::Connect);
            };
            if sender.ready().await.is_err() {
                self.sender = None;
                if reused {
                    reused = false;
                    continue;
                }
                return Err(ErrorClass::Connect);
            }
            let mut request = Request::new(Full::new(body.clone()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = self.path.clone();
            *request.headers_mut() = headers.clone();
            request.headers_mut().insert(HOST, self.host.clone());
            let response = match sender.send_request(request).await {
                Ok(response) => response,
                // A kept-alive connection the server closed meanwhile: the request never left,
                // so sending it again on a new connection is safe.
                Err(e) if reused && e.is_canceled() => {
                    self.sender = None;
                    reused = false;
                    continue;
                }
                Err(_) => return Err(ErrorClass::Connect),
            };
            let ttfb = Instant::now();
            let (parts, incoming) = response.into_parts();
            let body = match Limited::new(incoming, MAX_BODY).collect().await {
                Ok(body) => body.to_bytes(),
                // Larger than any answer to the calls we make: the peer is not serving MCP
                // responses (and we will not buffer it).
                Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                    return Err(ErrorClass::Protocol);
                }
                Err(_) => return Err(ErrorClass::Connect),
            };
            return Ok((parts.status.as_u16(), parts.headers, body, ttfb));
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ErrorClass> {
        let (host, port) = &self.connect_to;
        let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(|_| ErrorClass::Connect)?;
        // Without it a small request can wait for a delayed ACK (~40 ms).
        let _ = stream.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| ErrorClass::Connect)?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the peer closes; errors show on the sender.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A server that answers `replies` requests per connection, then closes it.
    async fn server(replies: usize) -> (Url, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp?x=1", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    for _ in 0..replies {
                        let mut buf = vec![0u8; 4096];
                        let Ok(n) = conn.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        let head = String::from_utf8_lossy(&buf[..n]).to_string();
                        assert!(head.starts_with("POST /mcp?x=1 HTTP/1.1"), "{head}");
                        assert!(head.to_lowercase().contains("host: 127.0.0.1:"), "{head}");
                        let reply =
                            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nmcp-session-id: s1\r\n\r\nok";
                        let _ = conn.write_all(reply.as_bytes()).await;
                    }
                });
            }
        });
        (url, task)
    }

    #[tokio::test]
    async fn exchanges_reuse_the_connection_and_reconnect_when_it_closes() {
        // One reply per connection: every second exchange finds the connection closed.
        let (url, task) = server(1).await;
        let mut conn = Conn::new(&url, Duration::from_secs(2)).unwrap();
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
        task.abort();
    }

    #[tokio::test]
    async fn an_oversized_body_is_a_protocol_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: Url = format!("http://{}/mcp", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let task = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let size = MAX_BODY + 1;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(&vec![b'x'; size]).await;
        });
        let mut conn = Conn::new(&url, Duration::from_secs(5)).unwrap();
        let err = conn
            .exchange(Method::POST, HeaderMap::new(), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err, ErrorClass::Protocol);
        task.abort();
    }

    #[tokio::test]
    async fn connect_failures_and_timeouts_are_classified() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url: Url = format!("http://{}/mcp", closed.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(closed);
        let mut conn = Conn::new(&url, Duration::from_secs(2)).unwrap();
        let err = conn
            .exchange(Method::POST, HeaderMap::new(), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err, ErrorClass::Connect);

        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: Url = format!("http://{}/mcp", silent.local_addr().unwrap())
            .parse()
            .unwrap();
        let hold = tokio::spawn(async move {
            let _conn = silent.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let mut conn = Conn::new(&url, Duration::from_millis(300)).unwrap();
        let started = Instant::now();
        let err = conn
            .exchange(Method::POST, HeaderMap::new(), Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(err, ErrorClass::Timeout);
        assert!(started.elapsed() >= Duration::from_millis(250));
        hold.abort();
    }
}
