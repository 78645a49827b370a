//! The gateway's side towards the servers: one pooled HTTP/1.1 client with `TCP_NODELAY` (a
//! proxy without it adds ~40 ms delayed-ACK stalls to every SSE answer), and the classification
//! of what went wrong, which passive health ejection acts on.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// Headers that belong to one hop and are not forwarded (RFC 9110 §7.6.1), plus `host`, which
/// the client sets for the backend.
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

/// Why a request to a backend failed before it produced an answer the gateway could pass on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect to the server")]
    Connect,
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the connection to the server broke")]
    Broken,
}

impl UpstreamError {
    /// True when the request cannot have reached the server, so sending it elsewhere repeats
    /// nothing (the retry rule for calls that are not safe to repeat).
    pub fn never_sent(self) -> bool {
        self == UpstreamError::Connect
    }
}

/// A pooled client for every backend.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Upstream {
    /// `timeout` bounds the wait for a backend's response headers.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(connector);
        Self { client, timeout }
    }

    /// Sends one request to `backend` at `path`, with the client's end-to-end headers.
    pub async fn send(
        &self,
        backend: SocketAddr,
        path: &str,
        method: Method,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let uri = format!("http://{backend}{path}");
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(h) = request.headers_mut() {
            for (name, value) in headers {
                if !HOP_BY_HOP.contains(name) && name != header::CONTENT_LENGTH {
                    h.append(name.clone(), value.clone());
                }
            }
        }
        let request = request
            .body(Full::new(body))
            .map_err(|_| UpstreamError::Broken)?;
        match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect),
            Ok(Err(_)) => Err(UpstreamError::Broken),
        }
    }
}
