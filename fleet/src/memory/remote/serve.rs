//! The owner's side of the socket: one task per server process that sends the follow point
//! first, then runs its writes, history queries and waits and sends the answers back,
//! coalescing what is queued into one write.

use std::{
    io,
    os::linux::net::SocketAddrExt as _,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use futures::{SinkExt as _, StreamExt as _};
use tokio::{net::UnixListener, sync::mpsc};
use tokio_util::{codec::Framed, sync::CancellationToken};

use super::{
    frames::Frames,
    protocol::{
        Channel, Down, MAX_UP_FRAME, RECONNECT_PAUSE, Up, WRITE_TIMEOUT, WireError, encode,
    },
};
use crate::memory::store::MemoryHandle;

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

/// One server process: its follow point, and its writes, queries and waits.
async fn serve_one(
    handle: MemoryHandle,
    channel: Channel,
    stop: CancellationToken,
) -> io::Result<()> {
    let (mut sink, mut stream) = channel.split();
    sink.send(encode(&Down::Follow(Box::new(handle.follow_point())))?)
        .await?;
    // Answers are produced by tasks (a write waits for its group commit) and sent from here.
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<Down>();
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            Some(answer) = answers.recv() => sink.feed(encode(&answer)?).await?,
            frame = stream.next() => {
                let Some(frame) = frame else { return Ok(()) };
                let up: Up = serde_json::from_slice(&frame?)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                match up {
                    Up::Write { id, server, seen, op } => {
                        let handle = handle.clone();
                        let answers = answers_tx.clone();
                        tokio::spawn(async move {
                            let result = handle.write(&server, seen, op).await.map_err(WireError::from);
                            let _ = answers.send(Down::Written { id, result });
                        });
                    }
                    Up::History { id, entity, limit } => {
                        let entries = handle.history(&entity, limit);
                        let _ = answers_tx.send(Down::History { id, entries });
                    }
                    Up::Wait { id, version, timeout_ms } => {
                        let handle = handle.clone();
                        let answers = answers_tx.clone();
                        let stop = stop.clone();
                        let timeout = Duration::from_millis(timeout_ms).min(WRITE_TIMEOUT);
                        tokio::spawn(async move {
                            tokio::select! {
                                () = stop.cancelled() => {}
                                _ = handle.view().wait_for(version, timeout) => {}
                            }
                            let version = handle.view().version();
                            let _ = answers.send(Down::Reached { id, version });
                        });
                    }
                    Up::Resync => {
                        let _ = answers_tx.send(Down::Follow(Box::new(handle.follow_point())));
                    }
                }
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

/// Most queued answers sent in one write.
const COALESCE_MAX: usize = 64;
