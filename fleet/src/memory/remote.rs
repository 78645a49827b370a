//! The memory across processes: in process mode the supervisor's process owns the store and
//! every server process keeps its own [`View`] fed over a local socket.
//!
//! The protocol is length-delimited JSON frames on a Unix socket (Linux abstract namespace, so
//! no file to clean up and no path-length limit). The owner side sends a [`Snapshot`] first,
//! then every durable batch in version order; the client sends writes and history queries,
//! each with an id its answer carries. A client that falls too far behind is disconnected by
//! the owner and resubscribes from a fresh snapshot, so a view never misses a record.

use std::{
    collections::HashMap,
    io,
    os::linux::net::SocketAddrExt as _,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio::{
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};
use tokio_util::{
    codec::{Framed, LengthDelimitedCodec},
    sync::CancellationToken,
};

use super::{
    Ack, ApplyError, HistoryEntry, InvalidOp, MemoryHandle, Op, Record, Snapshot, View, WriteError,
};

/// Largest frame: a snapshot of a large graph is one frame.
const MAX_FRAME: usize = 1 << 30;
/// How long a remote write waits for its answer and for the local view to catch up with it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before each reconnection attempt after the owner dropped this client.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);
/// Attempts before concluding the owner is gone.
const RECONNECT_TRIES: usize = 20;

/// Owner to server process.
#[derive(Debug, Serialize, Deserialize)]
enum Down {
    Snapshot(Snapshot),
    Records(Vec<Record>),
    Written {
        id: u64,
        result: Result<Ack, WireError>,
    },
    History {
        id: u64,
        entries: Vec<HistoryEntry>,
    },
}

/// Server process to owner.
#[derive(Debug, Serialize, Deserialize)]
enum Up {
    Write {
        id: u64,
        server: String,
        seen: u64,
        op: Op,
    },
    History {
        id: u64,
        entity: String,
        limit: usize,
    },
}

/// A [`WriteError`] as it crosses the socket.
#[derive(Debug, Serialize, Deserialize)]
enum WireError {
    Invalid(InvalidOp),
    Rejected(ApplyError),
    Storage(String),
    Poisoned(String),
    Closed,
}

impl From<WriteError> for WireError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(e) => WireError::Invalid(e),
            WriteError::Rejected(e) => WireError::Rejected(e),
            WriteError::Storage(e) => WireError::Storage(e),
            WriteError::Poisoned(e) => WireError::Poisoned(e),
            WriteError::Closed => WireError::Closed,
        }
    }
}

impl From<WireError> for WriteError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Invalid(e) => WriteError::Invalid(e),
            WireError::Rejected(e) => WriteError::Rejected(e),
            WireError::Storage(e) => WriteError::Storage(e),
            WireError::Poisoned(e) => WriteError::Poisoned(e),
            WireError::Closed => WriteError::Closed,
        }
    }
}

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

type Channel = Framed<UnixStream, LengthDelimitedCodec>;

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

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

/// Serves the store behind `handle` to server processes until `stop`.
pub async fn serve(handle: MemoryHandle, listener: UnixListener, stop: CancellationToken) {
    let frames = Arc::new(FrameCache::default());
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
        let handle = handle.clone();
        let stop = stop.clone();
        let frames = frames.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_one(handle, Framed::new(stream, codec()), &frames, stop).await {
                tracing::debug!(error = %e, "memory socket: a server process disconnected");
            }
        });
    }
}

/// The frame of the newest batch, encoded once for every subscriber: with hundreds of server
/// processes following, encoding per subscriber was most of the owner's work.
#[derive(Default)]
struct FrameCache {
    /// (first version, last version) of the batch, and its frame.
    newest: Mutex<Option<((u64, u64), bytes::Bytes)>>,
}

impl FrameCache {
    fn frame(&self, records: &[Record]) -> io::Result<bytes::Bytes> {
        let key = (
            records.first().map_or(0, |r| r.version),
            records.last().map_or(0, |r| r.version),
        );
        let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((k, frame)) = newest.as_ref()
            && *k == key
        {
            return Ok(frame.clone());
        }
        let frame = encode(&Down::Records(records.to_vec()))?;
        *newest = Some((key, frame.clone()));
        Ok(frame)
    }
}

/// One server process: its subscription, and its writes and queries.
async fn serve_one(
    handle: MemoryHandle,
    channel: Channel,
    frames: &FrameCache,
    stop: CancellationToken,
) -> io::Result<()> {
    let (mut sink, mut stream) = channel.split();
    let (snapshot, mut batches) = handle.subscribe();
    sink.send(encode(&Down::Snapshot(snapshot))?).await?;
    // Answers are produced by tasks (a write waits for its group commit) and sent from here.
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<Down>();
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            batch = batches.recv() => match batch {
                Some(records) => sink.feed(frames.frame(&records)?).await?,
                // Fell behind (or the owner stopped): the client resubscribes.
                None => return Ok(()),
            },
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
                }
            }
        }
        // Whatever else is already queued goes out in the same write: under load a subscriber
        // wakes to several batches, and one write (one wake-up of the server process) instead
        // of one per batch is what keeps hundreds of followers from falling behind.
        for _ in 0..COALESCE_MAX {
            match batches.try_recv() {
                Ok(records) => sink.feed(frames.frame(&records)?).await?,
                Err(_) => break,
            }
        }
        for _ in 0..COALESCE_MAX {
            match answers.try_recv() {
                Ok(answer) => sink.feed(encode(&answer)?).await?,
                Err(_) => break,
            }
        }
        sink.flush().await?;
    }
}

/// Most queued batches (and, separately, answers) sent in one write.
const COALESCE_MAX: usize = 64;

fn encode<T: Serialize>(message: &T) -> io::Result<bytes::Bytes> {
    serde_json::to_vec(message)
        .map(bytes::Bytes::from)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

enum Pending {
    Write(oneshot::Sender<Result<Ack, WriteError>>),
    History(oneshot::Sender<Vec<HistoryEntry>>),
}

struct Client {
    name: String,
    view: Arc<View>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Frames to the owner; replaced on reconnect.
    up: Mutex<Option<mpsc::UnboundedSender<Up>>>,
}

/// A server process's access to the fleet's memory: a local view kept in step with the owner,
/// and writes and history queries sent to it.
#[derive(Clone)]
pub struct RemoteMemory {
    client: Arc<Client>,
}

impl std::fmt::Debug for RemoteMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteMemory")
            .field("socket", &self.client.name)
            .field("view_version", &self.client.view.version())
            .finish()
    }
}

impl RemoteMemory {
    /// Connects to the owner at abstract socket `name` and loads its snapshot; from then on
    /// the view follows the owner (reconnecting if dropped) until `stop`.
    pub async fn connect(name: &str, stop: CancellationToken) -> Result<RemoteMemory, RemoteError> {
        let (channel, snapshot) = open(name).await?;
        let view = View::from_snapshot(snapshot).map_err(|e| RemoteError::Protocol {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let client = Arc::new(Client {
            name: name.to_string(),
            view: Arc::new(view),
            next_id: AtomicU64::new(1),
            pending: Mutex::default(),
            up: Mutex::default(),
        });
        tokio::spawn(follow(client.clone(), channel, stop));
        Ok(RemoteMemory { client })
    }

    /// This process's view.
    pub fn view(&self) -> &Arc<View> {
        &self.client.view
    }

    /// Sends a write to the owner; returns once it is durable and in this process's view.
    pub async fn write(&self, server: &str, seen: u64, op: Op) -> Result<Ack, WriteError> {
        op.validate()?;
        let id = self.client.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.client.pending_insert(id, Pending::Write(tx));
        let sent = self.client.send(Up::Write {
            id,
            server: server.to_string(),
            seen,
            op,
        });
        if !sent {
            self.client.pending_remove(id);
            return Err(WriteError::Closed);
        }
        let ack = match tokio::time::timeout(WRITE_TIMEOUT, rx).await {
            Ok(Ok(result)) => result?,
            // The connection broke before the answer came: whether the write is durable is
            // unknown, so it is not acknowledged.
            Ok(Err(_)) => return Err(WriteError::Closed),
            Err(_) => {
                self.client.pending_remove(id);
                return Err(WriteError::Storage(format!(
                    "no answer from the fleet's memory within {WRITE_TIMEOUT:?}"
                )));
            }
        };
        // Read-your-writes on this server, as in one process.
        self.client
            .view
            .wait_for(ack.version, WRITE_TIMEOUT)
            .await
            .map_err(|e| WriteError::Storage(format!("durable, but not yet visible here: {e}")))?;
        Ok(ack)
    }

    /// The newest committed ops that named `entity`, newest first.
    pub async fn history(
        &self,
        entity: &str,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, WriteError> {
        let id = self.client.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.client.pending_insert(id, Pending::History(tx));
        if !self.client.send(Up::History {
            id,
            entity: entity.to_string(),
            limit,
        }) {
            self.client.pending_remove(id);
            return Err(WriteError::Closed);
        }
        match tokio::time::timeout(WRITE_TIMEOUT, rx).await {
            Ok(Ok(entries)) => Ok(entries),
            _ => {
                self.client.pending_remove(id);
                Err(WriteError::Closed)
            }
        }
    }
}

impl Client {
    fn pending_insert(&self, id: u64, p: Pending) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, p);
    }

    fn pending_remove(&self, id: u64) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
    }

    fn send(&self, up: Up) -> bool {
        let guard = self.up.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().is_some_and(|tx| tx.send(up).is_ok())
    }

    /// Fails everything in flight: the connection it was sent on is gone.
    fn fail_pending(&self) {
        let drained: Vec<Pending> = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, p)| p)
            .collect();
        drop(drained);
    }
}

async fn open(name: &str) -> Result<(Channel, Snapshot), RemoteError> {
    let connect_error = |source| RemoteError::Connect {
        name: name.to_string(),
        source,
    };
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(connect_error)?;
    let std_stream = std::os::unix::net::UnixStream::connect_addr(&addr).map_err(connect_error)?;
    std_stream.set_nonblocking(true).map_err(connect_error)?;
    let stream = UnixStream::from_std(std_stream).map_err(connect_error)?;
    let mut channel = Framed::new(stream, codec());
    let protocol = |reason: String| RemoteError::Protocol {
        name: name.to_string(),
        reason,
    };
    match channel.next().await {
        Some(Ok(frame)) => match serde_json::from_slice::<Down>(&frame) {
            Ok(Down::Snapshot(snapshot)) => Ok((channel, snapshot)),
            Ok(_) => Err(protocol("the first frame is not a snapshot".into())),
            Err(e) => Err(protocol(e.to_string())),
        },
        Some(Err(e)) => Err(connect_error(e)),
        None => Err(protocol("closed before sending a snapshot".into())),
    }
}

/// Keeps the view in step with the owner, delivering answers, and reconnects (from a fresh
/// snapshot) when the owner drops this client, until `stop` or the owner is gone for good.
async fn follow(client: Arc<Client>, mut channel: Channel, stop: CancellationToken) {
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
        // Reconnect with a fresh snapshot; the owner gone for good (its process and socket
        // with it) ends the attempts, and this process keeps its last view.
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
        let Some((fresh, snapshot)) = fresh else {
            tracing::warn!(socket = %client.name, "memory view: the owner is gone; writes now fail");
            return;
        };
        if let Err(e) = client.view.reset(snapshot) {
            tracing::error!(error = %e, "memory view: bad snapshot from the owner");
            return;
        }
        channel = fresh;
    }
}

async fn run_connection(
    client: &Client,
    channel: Channel,
    mut up: mpsc::UnboundedReceiver<Up>,
    stop: &CancellationToken,
) -> Result<(), String> {
    let (mut sink, mut stream) = channel.split();
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
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
                    Down::Records(records) => client.view.apply_batch(&records).map_err(|e| e.to_string())?,
                    Down::Snapshot(snapshot) => client.view.reset(snapshot).map_err(|e| e.to_string())?,
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
                }
            }
        }
    }
}
