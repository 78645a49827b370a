//! Serves one router on one listening socket: the accept loop every server of the fleet (and
//! the admin API) runs. It sets `TCP_NODELAY` (without it SSE responses stall ~40 ms on delayed
//! ACK), counts open connections, survives accept errors such as EMFILE, and owns its
//! connection tasks so that killing a server really drops its connections.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::registry::Counters;

/// How long a graceful stop waits for in-flight requests before dropping connections.
pub const GRACE: Duration = Duration::from_secs(2);

/// Decrements the open-connection gauge when a connection ends, however it ends.
struct ConnectionGuard(Arc<Counters>);

impl ConnectionGuard {
    fn new(counters: Arc<Counters>) -> Self {
        counters.open_connections.fetch_add(1, Ordering::Relaxed);
        Self(counters)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections until `stop` is cancelled, then lets in-flight requests finish (up to
/// [`GRACE`]). Dropping the returned future instead (task abort) drops every connection at once,
/// which is how a "kill" fault is modelled in task mode.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE/ENFILE and aborted handshakes: keep serving, back off briefly.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("set_nodelay failed: {e}");
        }
        let guard = ConnectionGuard::new(counters.clone());
        let service = TowerToHyperService::new(router.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        connections.spawn(async move {
            let _guard = guard;
            if let Err(e) = conn.await {
                tracing::trace!("connection ended with error: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("grace period over, dropping remaining connections");
    }
    connections.shutdown().await;
}

/// Serves `router` on `threads` threads of its own, each running a single-threaded runtime that
/// accepts from `socket` and serves its connections to the end, until `stop` (then as
/// [`serve`]). A proxy on its own threads does not queue behind the rest of the process's tasks,
/// and on a single-threaded runtime a request wakes one thread, not a second one to steal work
/// (measured in `benches/README.md`, "Gateway overhead"). Resolves when every thread has ended.
pub fn serve_on_threads(
    socket: std::net::TcpListener,
    name: &str,
    threads: usize,
    router: Router,
    counters: Arc<Counters>,
    stop: CancellationToken,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut ended = Vec::with_capacity(threads);
    for i in 0..threads.max(1) {
        let socket = socket.try_clone()?;
        let (router, counters, stop) = (router.clone(), counters.clone(), stop.clone());
        let (done, wait) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || {
                let _done = done;
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("cannot start a serving thread's runtime: {e}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(socket) {
                        Ok(listener) => serve(listener, router, counters, stop).await,
                        Err(e) => tracing::error!("cannot serve the listening socket: {e}"),
                    }
                });
            })?;
        ended.push(wait);
    }
    Ok(async move {
        for wait in ended {
            let _ = wait.await;
        }
    })
}
