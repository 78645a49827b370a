//! Fake HTTP peers for tests of HTTP clients (the gateway's upstream pool here, loadgen's
//! connections and MCP exchanges): a server that answers a canned reply a set number of times
//! per connection and counts its connections, a port nobody listens on, and a server that
//! accepts and never answers. They speak raw bytes over TCP, so a test controls exactly what
//! goes on the wire. Compiled for fleet's own tests and, behind the `testing` feature, for
//! other crates' tests.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
    task::{JoinHandle, JoinSet},
};

/// The address tests bind their fake peers to.
const LOOPBACK: &str = "127.0.0.1:0";

/// A server answering `reply` to up to `per_connection` requests on each connection, then
/// closing it. It counts the connections it accepted and keeps what each request looked like
/// (the bytes of one read, lossily UTF-8: the head, and a small body with it). Stops when
/// dropped.
#[derive(Debug)]
pub struct CannedServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl CannedServer {
    pub async fn start(per_connection: usize, reply: &'static str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(LOOPBACK).await?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (accepted.clone(), requests.clone());
        let task = tokio::spawn(async move {
            // Owned here, so stopping the server drops its connections too.
            let mut connections = JoinSet::new();
            while let Ok((mut conn, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let seen = seen.clone();
                connections.spawn(async move {
                    for _ in 0..per_connection {
                        let mut buf = vec![0u8; 4096];
                        let n = match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                        seen.lock().unwrap_or_else(|e| e.into_inner()).push(request);
                        let _ = conn.write_all(reply.as_bytes()).await;
                    }
                });
            }
        });
        Ok(Self {
            addr,
            accepted,
            requests,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}{path_and_query}`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// The requests read so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback address nobody listens on (bound, then released): connecting is refused.
pub fn closed_port() -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(LOOPBACK)?;
    listener.local_addr()
}

/// A server that accepts connections and never answers (nor closes them) until dropped: a
/// hung peer, for timeouts.
#[derive(Debug)]
pub struct SilentServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SilentServer {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(LOOPBACK).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        Ok(Self { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}{path_and_query}`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
