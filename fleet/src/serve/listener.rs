//! Serves one router on one listening socket: the accept loop every server of the fleet (and
//! the admin API and gateway) runs. It sets `TCP_NODELAY` (without it SSE responses stall
//! ~40 ms on delayed ACK), counts open connections, admits each within the `[http]` limits
//! (`limits`; one beyond is answered 503 and closed), serves it under the `[http]` timeouts
//! (`connection`), survives accept errors such as EMFILE, and owns its connection tasks so that
//! killing a server really drops its connections.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::{
    accept_backoff::AcceptBackoff,
    serve::{
        connection::{self, Activity, Tracked},
        limits::ConnectionLimits,
        registry::Counters,
        socket::GRACE,
    },
    spec::HttpSpec,
};

/// Decrements the open-connection gauge (and the serving thread's share, where connections are
/// handed out) when a connection ends, however it ends.
struct ConnectionGuard {
    counters: Arc<Counters>,
    share: Option<Arc<AtomicUsize>>,
}

impl ConnectionGuard {
    /// `share` was already counted up by whoever handed the connection over.
    fn new(counters: Arc<Counters>, share: Option<Arc<AtomicUsize>>) -> Self {
        counters.open_connections.fetch_add(1, Ordering::Relaxed);
        Self { counters, share }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.counters
            .open_connections
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(share) = &self.share {
            share.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Where a serving loop takes its connections from.
enum Incoming {
    /// Accepts from the listening socket itself.
    Listener(TcpListener),
    /// Is handed connections another thread accepted; `share` counts those still open.
    Handed {
        streams: mpsc::UnboundedReceiver<std::net::TcpStream>,
        share: Arc<AtomicUsize>,
    },
}

impl Incoming {
    /// The next connection, or `None` once nobody will hand over any more.
    async fn next(&mut self) -> Option<std::io::Result<TcpStream>> {
        match self {
            Self::Listener(listener) => Some(listener.accept().await.map(|(stream, _)| stream)),
            Self::Handed { streams, share } => {
                let stream = streams.recv().await.map(TcpStream::from_std);
                if let Some(Err(_)) = &stream {
                    // Counted at the hand-over; it will have no guard to count it down.
                    share.fetch_sub(1, Ordering::Relaxed);
                }
                stream
            }
        }
    }

    fn share(&self) -> Option<Arc<AtomicUsize>> {
        match self {
            Self::Listener(_) => None,
            Self::Handed { share, .. } => Some(share.clone()),
        }
    }
}

/// Accepts connections until `stop` is cancelled, then lets in-flight requests finish (up to
/// `GRACE`). Dropping the returned future instead (task abort) drops every connection at once,
/// which is how a "kill" fault is modelled in task mode.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    counters: Arc<Counters>,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let served = Served::new(router, counters, limits);
    serve_incoming(Incoming::Listener(listener), served, stop).await;
}

/// What one listening socket serves, and within which limits; shared by its serving threads.
#[derive(Clone)]
struct Served {
    router: Router,
    counters: Arc<Counters>,
    limits: ConnectionLimits,
    /// This listener's `[http] max_connections`.
    cap: Arc<Semaphore>,
}

impl Served {
    fn new(router: Router, counters: Arc<Counters>, limits: ConnectionLimits) -> Self {
        let cap = limits.listener_cap();
        Self {
            router,
            counters,
            limits,
            cap,
        }
    }
}

/// The HTTP/1 and HTTP/2 connection settings every listener uses.
fn http_builder(http: &HttpSpec) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Without a timer hyper applies no header timeout at all. On HTTP/1.1 it also bounds the
    // wait for the next request of a kept-alive connection.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout);
    builder
}

async fn serve_incoming(mut incoming: Incoming, served: Served, stop: CancellationToken) {
    let share = incoming.share();
    let http = served.limits.http().clone();
    let builder = http_builder(&http);
    let mut connections = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = incoming.next() => match accepted {
                Some(accepted) => accepted,
                None => break,
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok(stream) => {
                backoff.reset();
                stream
            }
            Err(e) => {
                backoff.wait(&e).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("set_nodelay failed: {e}");
        }
        let admitted = match served.limits.admit(&served.cap) {
            Ok(admitted) => admitted,
            Err(why) => {
                if let Some(refusal) = served.limits.refuse(why, stream) {
                    connections.spawn(refusal);
                }
                // Handed over, so it was counted into its thread's share.
                if let Some(share) = &share {
                    share.fetch_sub(1, Ordering::Relaxed);
                }
                continue;
            }
        };
        let guard = ConnectionGuard::new(served.counters.clone(), share.clone());
        let activity = Activity::new();
        let service = Tracked {
            router: served.router.clone(),
            activity: activity.clone(),
            body_timeout: http.body_read_timeout,
        };
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let (http, stop) = (http.clone(), stop.clone());
        connections.spawn(async move {
            let _held = (guard, admitted);
            connection::drive(conn, &activity, &http, &stop).await;
        });
    }
    drop(incoming);
    // Each connection was asked to finish and close when `stop` came, and is dropped after
    // GRACE; this is the backstop.
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE + Duration::from_millis(500), drained)
        .await
        .is_err()
    {
        tracing::debug!("grace period over, dropping remaining connections");
    }
    connections.shutdown().await;
}

/// Serves `router` on `threads` threads of its own, each running a single-threaded runtime that
/// serves its connections to the end, until `stop` (then as [`serve`]). A proxy on its own
/// threads does not queue behind the rest of the process's tasks, and on a single-threaded
/// runtime a request wakes one thread, not a second one to steal work (measured in
/// `benches/README.md`, "Gateway overhead"). With more than one thread, one more thread accepts
/// and hands each connection to the serving thread with the fewest open: threads accepting from
/// one socket take connections as they happen to wake, and a thread left with more than its
/// share of busy connections cannot give them away. Resolves when every thread has ended.
pub fn serve_on_threads(
    socket: std::net::TcpListener,
    name: &str,
    threads: usize,
    router: Router,
    counters: Arc<Counters>,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let threads = threads.max(1);
    let mut ended = Vec::with_capacity(threads + 1);
    if threads == 1 {
        ended.push(on_thread(format!("{name}-0"), move || async move {
            match TcpListener::from_std(socket) {
                Ok(listener) => serve(listener, router, counters, limits, stop).await,
                Err(e) => tracing::error!("cannot serve the listening socket: {e}"),
            }
        })?);
    } else {
        let mut servers = Vec::with_capacity(threads);
        // One cap for the listening socket, whichever thread serves a connection.
        let served = Served::new(router, counters, limits);
        for i in 0..threads {
            let (streams_tx, streams) = mpsc::unbounded_channel();
            let share = Arc::new(AtomicUsize::new(0));
            servers.push((streams_tx, share.clone()));
            let (served, stop) = (served.clone(), stop.clone());
            let incoming = Incoming::Handed { streams, share };
            ended.push(on_thread(format!("{name}-{i}"), move || {
                serve_incoming(incoming, served, stop)
            })?);
        }
        ended.push(on_thread(format!("{name}-accept"), move || async move {
            match TcpListener::from_std(socket) {
                Ok(listener) => hand_out(listener, servers, stop).await,
                Err(e) => tracing::error!("cannot serve the listening socket: {e}"),
            }
        })?);
    }
    Ok(async move {
        for wait in ended {
            let _ = wait.await;
        }
    })
}

/// Runs the future `work` makes on a new thread named `name`, on a single-threaded runtime of
/// its own; the receiver completes when the thread ends.
fn on_thread<F, W>(name: String, work: W) -> std::io::Result<tokio::sync::oneshot::Receiver<()>>
where
    W: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()>,
{
    let (done, wait) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new().name(name).spawn(move || {
        let _done = done;
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(work()),
            Err(e) => tracing::error!("cannot start a serving thread's runtime: {e}"),
        }
    })?;
    Ok(wait)
}

/// Accepts connections until `stop` and hands each to the serving thread with the fewest open
/// (the first of them on a tie), counting it into that thread's share at once so that a burst
/// of connections is spread as it arrives.
async fn hand_out(
    listener: TcpListener,
    servers: Vec<(mpsc::UnboundedSender<std::net::TcpStream>, Arc<AtomicUsize>)>,
    stop: CancellationToken,
) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted.and_then(|(stream, _)| stream.into_std()) {
            Ok(stream) => {
                backoff.reset();
                stream
            }
            Err(e) => {
                backoff.wait(&e).await;
                continue;
            }
        };
        let Some((to, share)) = servers
            .iter()
            .filter(|(to, _)| !to.is_closed())
            .min_by_key(|(_, share)| share.load(Ordering::Relaxed))
        else {
            tracing::error!("no serving thread is left to take connections");
            break;
        };
        share.fetch_add(1, Ordering::Relaxed);
        if let Err(returned) = to.send(stream) {
            // The thread ended between the look and the send; the connection closes.
            share.fetch_sub(1, Ordering::Relaxed);
            drop(returned);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read as _, Write as _},
        net::TcpStream as StdStream,
        time::Instant,
    };

    use axum::routing::get;

    use super::*;

    /// Sends one GET on `stream` (kept open) and returns the answer's body.
    fn get_body(stream: &mut StdStream) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("request written");
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).expect("answer read");
            assert!(n > 0, "connection closed mid-answer");
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().expect("length"))
                    })
                    .expect("content-length");
                if body.len() >= length {
                    return body[..length].to_owned();
                }
            }
        }
    }

    #[test]
    fn connections_are_spread_evenly_over_the_serving_threads() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let addr = socket.local_addr().expect("address");
        let router = Router::new().route(
            "/",
            get(|| async { std::thread::current().name().unwrap_or("").to_owned() }),
        );
        let counters = Arc::new(Counters::default());
        let stop = CancellationToken::new();
        let limits = ConnectionLimits::new(&HttpSpec::default());
        let ended = serve_on_threads(
            socket,
            "spread",
            2,
            router,
            counters.clone(),
            limits,
            stop.clone(),
        )
        .expect("threads start");
        // Held open, so every connection counts against its thread while the next arrives.
        let mut held = Vec::new();
        let mut served = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..8 {
            let mut stream = StdStream::connect(addr).expect("connect");
            *served.entry(get_body(&mut stream)).or_default() += 1;
            held.push(stream);
        }
        assert_eq!(
            served,
            [("spread-0".to_owned(), 4), ("spread-1".to_owned(), 4)].into(),
        );
        // A connection that ends frees its place: the next goes to the thread it left.
        drop(held.remove(1));
        let deadline = Instant::now() + Duration::from_secs(5);
        while counters.open_connections.load(Ordering::Relaxed) != 7 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut stream = StdStream::connect(addr).expect("connect");
        assert_eq!(get_body(&mut stream), "spread-1");
        stop.cancel();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(ended);
    }
}
