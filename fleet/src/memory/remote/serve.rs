//! The owner's side of the socket: one task per server process that runs its writes, reads
//! and history queries (each in a task of its own, a bounded number at once) and sends the
//! answers back, coalescing what is queued into one write.

use std::{
    io,
    os::linux::net::SocketAddrExt as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{SinkExt as _, StreamExt as _};
use tokio::{
    net::UnixListener,
    sync::{Semaphore, mpsc},
};
use tokio_util::{codec::Framed, sync::CancellationToken};

use super::{
    frames::Frames,
    protocol::{
        COALESCE_MAX, Channel, Down, MAX_UP_FRAME, RECONNECT_PAUSE, Up, WRITE_TIMEOUT, WireError,
        encode,
    },
};
use crate::memory::{error::Timeout, read, store::MemoryHandle};

/// A fresh abstract socket name for one fleet.
pub fn socket_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "mcpfleet-memory-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Listens on the abstract socket `name` (owner side).
pub fn listen(name: &str) -> io::Result<UnixListener> {
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// How often, at most, refused connections are reported.
const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(10);

/// The user this process runs as.
fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

/// Serves the store behind `handle` to server processes until `stop`. Only processes of this
/// process's own user are served: the socket's name is visible to every local user
/// (`/proc/net/unix`), and another user's process could otherwise read the whole graph and
/// write ops in a server's name.
pub async fn serve(handle: MemoryHandle, listener: UnixListener, stop: CancellationToken) {
    let mut last_refusal = None;
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "memory socket: accept failed");
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        match stream.peer_cred() {
            Ok(peer) if peer.uid() == own_uid() => {}
            refused => {
                // Dropped unanswered: another user's process gets nothing, not even a version.
                if last_refusal.is_none_or(|at: Instant| at.elapsed() >= REFUSAL_REPORT_EVERY) {
                    tracing::warn!(
                        peer = ?refused.map(|p| (p.uid(), p.pid())),
                        "memory socket: refused a process of another user (uid, pid)"
                    );
                    last_refusal = Some(Instant::now());
                }
                continue;
            }
        }
        let handle = handle.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(e) =
                serve_one(handle, Framed::new(stream, Frames::new(MAX_UP_FRAME)), stop).await
            {
                tracing::debug!(error = %e, "memory socket: a server process disconnected");
            }
        });
    }
}

/// Requests of one server process the owner works on at once; beyond them it reads no more
/// of that process's frames until one is answered, so a greedy process waits on its own socket
/// buffer instead of growing the owner. Reads waiting for a version do not count: they depend
/// on writes that may come after them on the same connection.
const WORK_MAX: usize = 256;

/// Reads of one server process waiting for a version at once; one beyond is answered at once
/// as a timeout (the version not reached), never left to hold up the connection.
const WAITS_MAX: usize = 8192;

/// One server process: its writes, reads and history queries, each answered with its id.
async fn serve_one(
    handle: MemoryHandle,
    channel: Channel,
    stop: CancellationToken,
) -> io::Result<()> {
    let (mut sink, mut stream) = channel.split();
    // Answers are produced by tasks (a write waits for its group commit, a read may wait for
    // a version) and sent from here.
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<Down>();
    let work = Arc::new(Semaphore::new(WORK_MAX));
    let waits = Arc::new(Semaphore::new(WAITS_MAX));
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            Some(answer) = answers.recv() => sink.feed(encode(&answer)?).await?,
            // Only this loop takes permits, so one is there when the branch runs.
            frame = stream.next(), if work.available_permits() > 0 => {
                let Some(frame) = frame else { return Ok(()) };
                let up: Up = serde_json::from_slice(&frame?)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let permit = match &up {
                    Up::Read { id, min_version: Some(version), .. } => {
                        match waits.clone().try_acquire_owned() {
                            Ok(permit) => permit,
                            Err(_) => {
                                let current = handle.view().version();
                                let result = Err(Timeout { wanted: *version, current });
                                let _ = answers_tx.send(Down::Read { id: *id, result });
                                continue;
                            }
                        }
                    }
                    _ => match work.clone().try_acquire_owned() {
                        Ok(permit) => permit,
                        Err(_) => continue,
                    },
                };
                let handle = handle.clone();
                let answers = answers_tx.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let answer = tokio::select! {
                        () = stop.cancelled() => return,
                        answer = answer(&handle, up) => answer,
                    };
                    let _ = answers.send(answer);
                    drop(permit);
                });
            }
        }
        // Whatever else is already queued goes out in the same write.
        for _ in 0..COALESCE_MAX {
            match answers.try_recv() {
                Ok(answer) => sink.feed(encode(&answer)?).await?,
                Err(_) => break,
            }
        }
        sink.flush().await?;
    }
}

/// The owner's answer to one request.
async fn answer(handle: &MemoryHandle, up: Up) -> Down {
    match up {
        Up::Write { id, server, op } => {
            // What the writer has seen is everything durable now, as for a server in the
            // owner's process: its deletes remove that and nothing newer.
            let seen = handle.view().version();
            let result = handle
                .write(&server, seen, op)
                .await
                .map_err(WireError::from);
            Down::Written { id, result }
        }
        Up::History { id, entity, limit } => Down::History {
            id,
            entries: handle.history(&entity, limit),
        },
        Up::Read {
            id,
            query,
            min_version,
            timeout_ms,
        } => {
            let timeout = Duration::from_millis(timeout_ms).min(WRITE_TIMEOUT);
            let wait = min_version.map(|version| (version, timeout));
            Down::Read {
                id,
                result: read::answer(handle.view(), &query, wait).await,
            }
        }
        Up::Version { id } => Down::Version {
            id,
            version: handle.view().version(),
        },
    }
}
