//! The owner's side of the socket: accepting server processes of this user only, each of
//! which must first prove which server it is ([`Up::Hello`] with its token) before anything is
//! read from it or sent to it; then its requests are served.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures::{SinkExt as _, StreamExt as _};
use tokio::{
    net::{UnixListener, UnixStream},
    sync::Semaphore,
};
use tokio_util::{codec::Framed, sync::CancellationToken};

use super::{
    frames::Frames,
    protocol::{Channel, Down, HELLO_TIMEOUT, MAX_HELLO_FRAME, MAX_UP_FRAME, Up, encode},
    requests::serve_requests,
    socket::{MemorySocket, own_uid},
};
use crate::{accept_backoff::AcceptBackoff, memory::store::MemoryHandle};

/// How often, at most, refused connections are reported.
const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Connections that have not yet proved who they are, at once; more are closed at once, so
/// silent connections cannot pile up. Room for every server of a large fleet starting at once.
const GREETING_MAX: usize = 1024;

/// [`serve`] on a thread and runtime of its own (`memory-socket`), so that hundreds of server
/// processes' memory calls cannot starve the rest of the fleet's process (supervisor, admin
/// API, gateway), nor it them. Returns when the thread is started; it ends after `stop`.
pub fn serve_on_thread(
    handle: MemoryHandle,
    listener: std::os::unix::net::UnixListener,
    socket: MemorySocket,
    stop: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("memory-socket".into())
        .spawn(move || runtime.block_on(serve(handle, listener, socket, stop)))
}

/// Connections one proved server may hold at once: one, plus room for a reconnection that
/// overlaps the old connection's end. Each holds up to the per-connection request limits, so
/// this bounds what one token can make the owner hold.
const CONNECTIONS_PER_SERVER: usize = 4;

/// Connections held per proved server.
#[derive(Default)]
struct Held(Mutex<HashMap<String, usize>>);

/// One connection counted in [`Held`] until dropped.
struct HeldGuard(Arc<Held>, String);

impl Held {
    fn take(self: &Arc<Self>, server: &str) -> Option<HeldGuard> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(server.to_string()).or_default();
        if *n >= CONNECTIONS_PER_SERVER {
            return None;
        }
        *n += 1;
        Some(HeldGuard(self.clone(), server.to_string()))
    }
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        let mut held = self.0.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.1);
            }
        }
    }
}

/// Serves the store behind `handle` to server processes on `listener` (bound by `socket`,
/// whose tokens they must present) until `stop`. Only processes of this process's own user
/// are served: the directory keeps others out, the peer check covers a mistake in its mode.
pub async fn serve(
    handle: MemoryHandle,
    listener: std::os::unix::net::UnixListener,
    socket: MemorySocket,
    stop: CancellationToken,
) {
    let listener = match UnixListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "memory socket: cannot listen; server processes have no memory");
            return;
        }
    };
    let greeting = Arc::new(Semaphore::new(GREETING_MAX));
    let refusals = Arc::new(Refusals::default());
    let held = Arc::new(Held::default());
    let mut backoff = AcceptBackoff::default();
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    backoff.reset();
                    stream
                }
                Err(e) => {
                    backoff.wait(&e).await;
                    continue;
                }
            },
        };
        // Each refused connection is dropped unanswered: it gets nothing, not even a version.
        match stream.peer_cred() {
            Ok(peer) if peer.uid() == own_uid() => {}
            Ok(peer) => {
                refusals.report(&format!(
                    "a process of uid {} (pid {:?})",
                    peer.uid(),
                    peer.pid()
                ));
                continue;
            }
            Err(e) => {
                refusals.report(&format!("a process whose credentials cannot be read ({e})"));
                continue;
            }
        }
        let Ok(permit) = greeting.clone().try_acquire_owned() else {
            refusals.report(&format!(
                "a connection beyond {GREETING_MAX} yet to say who they are"
            ));
            continue;
        };
        let (handle, socket, stop) = (handle.clone(), socket.clone(), stop.clone());
        let (refusals, held) = (refusals.clone(), held.clone());
        tokio::spawn(async move {
            let greeted = greet(stream, &socket, &held).await;
            drop(permit);
            let (server, channel, _held) = match greeted {
                Ok(Some(greeted)) => greeted,
                Ok(None) => return,
                Err(refusal) => return refusals.report(&refusal),
            };
            if let Err(e) = serve_requests(handle, server, channel, stop).await {
                tracing::debug!(error = %e, "memory socket: a server process disconnected");
            }
        });
    }
}

/// Refused connections, reported at most once per [`REFUSAL_REPORT_EVERY`] with how many
/// there were, so a flood of them cannot flood the log.
#[derive(Default)]
struct Refusals {
    /// When the last report was made, and refusals since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Refusals {
    fn report(&self, what: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 += 1;
        if state
            .0
            .is_none_or(|at| at.elapsed() >= REFUSAL_REPORT_EVERY)
        {
            tracing::warn!(refused = state.1, "memory socket: refused {what}");
            *state = (Some(Instant::now()), 0);
        }
    }
}

/// Reads the first frame: a hello with a token `socket` admits, within [`HELLO_TIMEOUT`] and
/// [`MAX_HELLO_FRAME`] bytes. Answers it and returns the server it proved to be, with the
/// frame limit raised for its requests. Anything else closes the connection, nothing said:
/// `Err` says why, `Ok(None)` is a process that left before proving anything.
async fn greet(
    stream: UnixStream,
    socket: &MemorySocket,
    held: &Arc<Held>,
) -> Result<Option<(String, Channel, HeldGuard)>, String> {
    let mut channel = Framed::new(stream, Frames::new(MAX_HELLO_FRAME));
    let frame = match tokio::time::timeout(HELLO_TIMEOUT, channel.next()).await {
        Ok(Some(Ok(frame))) => frame,
        Ok(Some(Err(e))) => return Err(format!("a connection that sent no proper hello ({e})")),
        Ok(None) => return Ok(None),
        Err(_) => return Err(format!("a connection silent for {HELLO_TIMEOUT:?}")),
    };
    let Ok(Up::Hello { server, token }) = serde_json::from_slice::<Up>(&frame) else {
        return Err("a connection that did not start with a hello".into());
    };
    if !socket.admits(&server, &token) {
        return Err(format!(
            "a connection with a wrong token for server {server:?}"
        ));
    }
    let Some(guard) = held.take(&server) else {
        return Err(format!(
            "a connection of server {server:?} beyond {CONNECTIONS_PER_SERVER} at once"
        ));
    };
    let welcome = encode(&Down::Welcome).map_err(|e| e.to_string())?;
    if channel.send(welcome).await.is_err() {
        return Ok(None);
    }
    channel.codec_mut().set_max(MAX_UP_FRAME);
    Ok(Some((server, channel, guard)))
}
