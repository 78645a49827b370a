//! Connecting to the owner's abstract socket, and the task that carries a process's requests
//! and the owner's answers, lets go of a place in the log fallen far behind and reconnects
//! from a fresh follow point when the owner drops the connection.

use std::{
    io,
    os::linux::net::SocketAddrExt as _,
    sync::{Arc, PoisonError},
    time::Duration,
};

use futures::{SinkExt as _, StreamExt as _};
use tokio::{net::UnixStream, sync::mpsc};
use tokio_util::{codec::Framed, sync::CancellationToken};

use super::{
    client::{Client, Pending},
    frames::Frames,
    protocol::{Channel, Down, MAX_DOWN_FRAME, RECONNECT_PAUSE, Up, encode},
};
use crate::memory::{error::WriteError, store::FollowPoint};

/// Attempts before concluding the owner is gone.
pub(super) const RECONNECT_TRIES: usize = 20;

/// How often a process checks whether it has fallen so far behind that it should let go of its
/// place in the log (and of the old segment file it holds open).
pub(super) const FAR_BEHIND_CHECK: Duration = Duration::from_secs(10);

/// Why a server process cannot reach the owner's memory.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("cannot connect to the fleet's memory at @{name}: {source}")]
    Connect {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("the fleet's memory at @{name} broke the protocol: {reason}")]
    Protocol { name: String, reason: String },
}

pub(super) async fn open(name: &str) -> Result<(Channel, FollowPoint), RemoteError> {
    let connect_error = |source| RemoteError::Connect {
        name: name.to_string(),
        source,
    };
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(connect_error)?;
    let std_stream = std::os::unix::net::UnixStream::connect_addr(&addr).map_err(connect_error)?;
    std_stream.set_nonblocking(true).map_err(connect_error)?;
    let stream = UnixStream::from_std(std_stream).map_err(connect_error)?;
    let mut channel = Framed::new(stream, Frames::new(MAX_DOWN_FRAME));
    let protocol = |reason: String| RemoteError::Protocol {
        name: name.to_string(),
        reason,
    };
    match channel.next().await {
        Some(Ok(frame)) => match serde_json::from_slice::<Down>(&frame) {
            Ok(Down::Follow(point)) => Ok((channel, *point)),
            Ok(_) => Err(protocol("the first frame is not a follow point".into())),
            Err(e) => Err(protocol(e.to_string())),
        },
        Some(Err(e)) => Err(connect_error(e)),
        None => Err(protocol("closed before sending a follow point".into())),
    }
}

/// Carries this process's requests and the owner's answers, lets go of a place in the log
/// fallen far behind, and reconnects (from a fresh follow point) when the owner drops this client, until `stop`
/// or the owner is gone for good.
pub(super) async fn follow(client: Arc<Client>, mut channel: Channel, stop: CancellationToken) {
    loop {
        let (up_tx, up_rx) = mpsc::unbounded_channel();
        *client.up.lock().unwrap_or_else(PoisonError::into_inner) = Some(up_tx);
        let outcome = run_connection(&client, channel, up_rx, &stop).await;
        *client.up.lock().unwrap_or_else(PoisonError::into_inner) = None;
        client.fail_pending();
        if stop.is_cancelled() {
            return;
        }
        if let Err(reason) = outcome {
            tracing::warn!(%reason, "memory view: connection to the owner lost; reconnecting");
        }
        // Reconnect with a fresh follow point; the owner gone for good (its process and
        // socket with it) ends the attempts, and this process keeps its last view.
        let mut fresh = None;
        for _ in 0..RECONNECT_TRIES {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RECONNECT_PAUSE) => {}
            }
            match open(&client.name).await {
                Ok(opened) => {
                    fresh = Some(opened);
                    break;
                }
                Err(e) => tracing::debug!(error = %e, "memory view: owner not reachable"),
            }
        }
        let Some((fresh, point)) = fresh else {
            tracing::warn!(socket = %client.name, "memory view: the owner is gone; writes now fail");
            return;
        };
        if let Err(e) = client.take_follow_point(point) {
            tracing::warn!(error = %e, "memory view: unusable follow point from the owner; will ask again");
        }
        channel = fresh;
    }
}

pub(super) async fn run_connection(
    client: &Client,
    channel: Channel,
    mut up: mpsc::UnboundedReceiver<Up>,
    stop: &CancellationToken,
) -> Result<(), String> {
    let (mut sink, mut stream) = channel.split();
    let mut check = tokio::time::interval(FAR_BEHIND_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            _ = check.tick() => client.release_if_far_behind(),
            Some(message) = up.recv() => {
                let frame = encode(&message).map_err(|e| e.to_string())?;
                sink.send(frame).await.map_err(|e| e.to_string())?;
            }
            frame = stream.next() => {
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("closed by the owner".into()),
                };
                match serde_json::from_slice::<Down>(&frame).map_err(|e| e.to_string())? {
                    Down::Follow(point) => {
                        if let Err(e) = client.take_follow_point(*point) {
                            tracing::warn!(error = %e, "memory view: unusable follow point from the owner; will ask again");
                        }
                    }
                    Down::Written { id, result } => {
                        if let Some(Pending::Write(tx)) = client.pending_remove(id) {
                            let _ = tx.send(result.map_err(WriteError::from));
                        }
                    }
                    Down::History { id, entries } => {
                        if let Some(Pending::History(tx)) = client.pending_remove(id) {
                            let _ = tx.send(entries);
                        }
                    }
                    Down::Reached { id, version } => {
                        if let Some(Pending::Reached(tx)) = client.pending_remove(id) {
                            let _ = tx.send(version);
                        }
                    }
                }
            }
        }
    }
}
