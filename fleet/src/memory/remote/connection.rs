//! Connecting to the owner's socket, and the task that carries a process's requests and the
//! owner's answers, reconnecting when the owner drops the connection.

use std::{io, path::PathBuf, sync::Arc};

use futures::{SinkExt as _, StreamExt as _};
use tokio::{net::UnixStream, sync::mpsc};
use tokio_util::{codec::Framed, sync::CancellationToken};

use super::{
    client::{Client, Pending},
    frames::Frames,
    protocol::{
        Channel, Down, HELLO_TIMEOUT, MAX_DOWN_FRAME, RECONNECT_PAUSE, Up, encode, write_frames,
    },
    socket::{MemoryAccess, own_uid},
};
use crate::memory::error::WriteError;

/// Attempts before concluding the owner is gone.
pub(super) const RECONNECT_TRIES: usize = 20;

/// Why a server process cannot reach the owner's memory.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("cannot connect to the fleet's memory at {}: {source}", .socket.display())]
    Connect {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the fleet's memory at {} {reason}", .socket.display())]
    Refused { socket: PathBuf, reason: String },
}

/// Connects to the owner at `access.socket`, checks it runs as this process's user, and
/// proves which server this is; the connection is then ready for requests.
pub(super) async fn open(access: &MemoryAccess) -> Result<Channel, RemoteError> {
    let socket = &access.socket;
    let connect_error = |source| RemoteError::Connect {
        socket: socket.clone(),
        source,
    };
    let refused = |reason: String| RemoteError::Refused {
        socket: socket.clone(),
        reason,
    };
    let stream = UnixStream::connect(socket).await.map_err(connect_error)?;
    match stream.peer_cred() {
        Ok(peer) if peer.uid() == own_uid() => {}
        Ok(peer) => {
            return Err(refused(format!(
                "runs as uid {}, not as this user",
                peer.uid()
            )));
        }
        Err(e) => return Err(connect_error(e)),
    }
    let mut channel = Framed::new(stream, Frames::new(MAX_DOWN_FRAME));
    let hello = Up::Hello {
        server: access.server.clone(),
        token: access.token.clone(),
    };
    channel
        .send(encode(&hello).map_err(connect_error)?)
        .await
        .map_err(connect_error)?;
    match tokio::time::timeout(HELLO_TIMEOUT, channel.next()).await {
        Ok(Some(Ok(frame))) => match serde_json::from_slice::<Down>(&frame) {
            Ok(Down::Welcome) => Ok(channel),
            Ok(other) => Err(refused(format!("answered the hello with {other:?}"))),
            Err(e) => Err(refused(format!("broke the protocol: {e}"))),
        },
        Ok(Some(Err(e))) => Err(connect_error(e)),
        Ok(None) => Err(refused(format!(
            "closed the connection at the hello (a token it did not make for server {}, too \
             many connections waiting to say hello, or the owner stopping)",
            access.server
        ))),
        Err(_) => Err(refused(format!(
            "did not answer the hello within {HELLO_TIMEOUT:?}"
        ))),
    }
}

/// Carries this process's requests and the owner's answers, and reconnects when the owner
/// drops this client, until `stop` or the owner is gone for good. `up` is where the requests
/// of the first connection wait (the client already sends there).
pub(super) async fn carry(
    client: Arc<Client>,
    mut channel: Channel,
    mut up: mpsc::UnboundedReceiver<(Up, ())>,
    stop: CancellationToken,
) {
    loop {
        let outcome = run_connection(&client, channel, up, &stop).await;
        client.set_up(None);
        client.fail_pending();
        if stop.is_cancelled() {
            return;
        }
        if let Err(reason) = outcome {
            tracing::warn!(%reason, "memory: connection to the owner lost; reconnecting");
        }
        // The owner gone for good (its process and socket with it) ends the attempts.
        let mut fresh = None;
        for _ in 0..RECONNECT_TRIES {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RECONNECT_PAUSE) => {}
            }
            match open(&client.access).await {
                Ok(opened) => {
                    fresh = Some(opened);
                    break;
                }
                Err(e) => tracing::debug!(error = %e, "memory: owner not reachable"),
            }
        }
        let Some(fresh) = fresh else {
            tracing::warn!(socket = %client.access.socket.display(), "memory: the owner is gone; memory calls now fail");
            return;
        };
        let (up_tx, up_rx) = mpsc::unbounded_channel();
        client.set_up(Some(up_tx));
        channel = fresh;
        up = up_rx;
    }
}

/// One connection: this process's requests written by a task of their own while the owner's
/// answers are read here, so neither side can block the other by writing while nobody reads.
async fn run_connection(
    client: &Client,
    channel: Channel,
    up: mpsc::UnboundedReceiver<(Up, ())>,
    stop: &CancellationToken,
) -> Result<(), String> {
    let (sink, mut stream) = channel.split();
    let mut writer = tokio::spawn(write_frames(sink, up));
    let outcome = loop {
        let frame = tokio::select! {
            () = stop.cancelled() => break Ok(()),
            done = &mut writer => break match done {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            frame = stream.next() => frame,
        };
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => break Err(e.to_string()),
            None => break Err("closed by the owner".into()),
        };
        match serde_json::from_slice::<Down>(&frame) {
            Ok(down) => deliver(client, down),
            Err(e) => break Err(e.to_string()),
        }
    };
    writer.abort();
    outcome
}

/// Hands one answer of the owner to the call waiting for it.
fn deliver(client: &Client, down: Down) {
    match down {
        Down::Written { id, result } => client.answer(id, |p| {
            if let Pending::Write(tx) = p {
                let _ = tx.send(result.map_err(WriteError::from));
            }
        }),
        Down::History { id, entries } => client.answer(id, |p| {
            if let Pending::History(tx) = p {
                let _ = tx.send(entries);
            }
        }),
        Down::Read { id, result } => client.answer(id, |p| {
            if let Pending::Read(tx) = p {
                let _ = tx.send(result);
            }
        }),
        Down::Welcome => {}
        Down::Version { id, version, node } => client.answer(id, |p| {
            if let Pending::Version(tx) = p {
                let _ = tx.send((version, node));
            }
        }),
    }
}
