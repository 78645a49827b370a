//! One server process's requests on the owner's side: each run in a task of its own (a
//! bounded number at once), the answers written back with their ids by a writer of their own,
//! what is queued coalesced into one write.

use std::{io, sync::Arc, time::Duration};

use futures::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::protocol::{Channel, Down, Up, WRITE_TIMEOUT, WireError, write_frames};
use crate::memory::{
    error::Timeout,
    read::{self, MinVersion},
    store::MemoryHandle,
};

/// Whether a read of `version` (of `node`'s writes, if named) has to wait.
fn will_wait(handle: &MemoryHandle, version: u64, node: Option<&str>) -> bool {
    let view = handle.view();
    match node {
        Some(node) if node != view.node() => view.merged_version(node) < version,
        _ => version > view.version(),
    }
}

/// Requests of one server process the owner works on at once, answers not yet delivered
/// included; beyond them it reads no more of that process's frames until one is delivered, so a
/// greedy process (or one that does not read its answers) waits on its own socket buffer instead
/// of growing the owner. Reads waiting for a version count apart: they depend on writes that may
/// come after them on the same connection.
const WORK_MAX: usize = 256;

/// Reads of one server process waiting for a version not yet durable, at once; one beyond is
/// answered at once as a timeout, never left to hold up the connection.
const WAITS_MAX: usize = 1024;

/// An answer on its way out, with the permit it holds until it is written.
type Outgoing = (Down, OwnedSemaphorePermit);

/// Serves the requests of the server process `server` (proved by its hello) until it
/// disconnects or `stop`. Frames are read and answers written by two tasks, so neither side
/// can block the other by writing while nobody reads (a large answer and a large write crossing
/// fill both socket buffers).
pub(super) async fn serve_requests(
    handle: MemoryHandle,
    server: String,
    channel: Channel,
    stop: CancellationToken,
) -> io::Result<()> {
    let server: Arc<str> = server.into();
    let (sink, mut stream) = channel.split();
    let (answers_tx, answers) = mpsc::unbounded_channel::<Outgoing>();
    let mut writer = tokio::spawn(write_frames(sink, answers));
    let work = Arc::new(Semaphore::new(WORK_MAX));
    let waits = Arc::new(Semaphore::new(WAITS_MAX));
    let outcome = loop {
        // A permit first: at the limit, this process's frames wait in its socket buffer.
        let permit = tokio::select! {
            () = stop.cancelled() => break Ok(()),
            permit = work.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break Ok(()),
            },
        };
        let frame = tokio::select! {
            () = stop.cancelled() => break Ok(()),
            // The writer ended: the connection is broken.
            done = &mut writer => break done.unwrap_or_else(|e| Err(io::Error::other(e))),
            frame = stream.next() => frame,
        };
        let Some(frame) = frame else { break Ok(()) };
        let up: Up = match frame.and_then(|frame| {
            serde_json::from_slice(&frame)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }) {
            Ok(up) => up,
            Err(e) => break Err(e),
        };
        let permit = match &up {
            Up::Read {
                id,
                min_version: Some(version),
                min_version_node,
                ..
            } if will_wait(&handle, *version, min_version_node.as_deref()) => {
                // A read that will wait holds a wait permit instead.
                let Ok(wait) = waits.clone().try_acquire_owned() else {
                    let current = match min_version_node {
                        Some(node) => handle.view().merged_version(node),
                        None => handle.view().version(),
                    };
                    let result = Err(Timeout {
                        wanted: *version,
                        current,
                    });
                    let _ = answers_tx.send((Down::Read { id: *id, result }, permit));
                    continue;
                };
                drop(permit);
                wait
            }
            _ => permit,
        };
        let (handle, server, answers, stop) = (
            handle.clone(),
            server.clone(),
            answers_tx.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                answer = answer(&handle, &server, up) => {
                    let _ = answers.send((answer, permit));
                }
            }
        });
    };
    writer.abort();
    outcome
}

/// The owner's answer to one request of `server`.
async fn answer(handle: &MemoryHandle, server: &str, up: Up) -> Down {
    match up {
        // Said once, first; again it changes nothing.
        Up::Hello { .. } => Down::Welcome,
        Up::Write { id, op } => {
            // What the writer has seen is everything durable now, as for a server in the
            // owner's process: its deletes remove that and nothing newer.
            let seen = handle.view().version();
            let result = handle
                .write(server, seen, op)
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
            min_version_node,
            timeout_ms,
        } => {
            let timeout = Duration::from_millis(timeout_ms).min(WRITE_TIMEOUT);
            let wait = min_version.map(|version| {
                let node = min_version_node.clone();
                (MinVersion { version, node }, timeout)
            });
            Down::Read {
                id,
                result: read::answer(handle.view(), &query, wait).await,
            }
        }
        Up::Version { id } => {
            let node = handle.view().node();
            Down::Version {
                id,
                version: handle.view().version(),
                node: (!node.is_empty()).then_some(node),
            }
        }
    }
}
