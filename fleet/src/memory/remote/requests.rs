//! One server process's requests on the owner's side: each run in a task of its own (a
//! bounded number at once), the answers sent back with their ids, what is queued coalesced into
//! one write.

use std::{io, sync::Arc, time::Duration};

use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::protocol::{COALESCE_MAX, Channel, Down, Up, WRITE_TIMEOUT, WireError, encode};
use crate::memory::{error::Timeout, read, store::MemoryHandle};

/// Requests of one server process the owner works on at once; beyond them it reads no more
/// of that process's frames until one is answered, so a greedy process waits on its own socket
/// buffer instead of growing the owner. Reads waiting for a version do not count: they depend
/// on writes that may come after them on the same connection.
const WORK_MAX: usize = 256;

/// Reads of one server process waiting for a version at once; one beyond is answered at once
/// as a timeout (the version not reached), never left to hold up the connection.
const WAITS_MAX: usize = 8192;

/// Serves the requests of the server process `server` (proved by its hello) until it
/// disconnects or `stop`.
pub(super) async fn serve_requests(
    handle: MemoryHandle,
    server: String,
    channel: Channel,
    stop: CancellationToken,
) -> io::Result<()> {
    let server: Arc<str> = server.into();
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
            // Only this loop takes permits.
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
                    // At once: the branch runs only with a permit free.
                    _ => match work.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => return Ok(()),
                    },
                };
                let handle = handle.clone();
                let server = server.clone();
                let answers = answers_tx.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let answer = tokio::select! {
                        () = stop.cancelled() => return,
                        answer = answer(&handle, &server, up) => answer,
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
