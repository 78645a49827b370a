//! The memory across processes: in process mode the supervisor's process owns the store and
//! every server process keeps its own [`View`], caught up from the owner's write-ahead log.
//!
//! Nothing is pushed per write. The owner publishes how far the WAL is durable in a small
//! shared file (the [durable mark](super::mark)) before acknowledging anything; a server
//! process reads the mark at the start of each memory call and applies the log up to it
//! ([`Tail`]). So a write is visible on every server from the moment it is durable, and a
//! process pays for following only when it is used, not once per group commit: with hundreds
//! of server processes on two cores, waking every process for every batch was most of the
//! fleet's CPU at 1000 writes/s. A process that fell far behind (more records to replay than
//! its graph holds) starts again from a fresh snapshot instead, and one idle that long lets go
//! of its old log segment.
//!
//! A Unix socket (Linux abstract namespace, so no file to clean up and no path-length limit)
//! carries what the log cannot: length-delimited JSON frames with the follow point (a snapshot
//! and its WAL position) first, then writes and history queries, each with an id its answer
//! carries, and waits for versions not yet durable. A process whose log position is lost (its
//! segment trimmed while it was idle) or not worth replaying asks for a fresh follow point, so
//! a view never misses a record.

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
    sync::{mpsc, oneshot, watch},
};
use tokio_util::{
    codec::{Framed, LengthDelimitedCodec},
    sync::CancellationToken,
};

use super::{
    error::{Timeout, ViewError, WriteError},
    graph::{ApplyError, StateError},
    history::HistoryEntry,
    mark::{MarkError, MarkReader},
    op::{InvalidOp, Op},
    owner::Ack,
    store::{FollowPoint, MemoryHandle},
    view::View,
    wal::{Tail, TailError},
};

/// Largest frame: a snapshot of a large graph is one frame.
const MAX_FRAME: usize = 1 << 30;
/// How long a remote write waits for its answer and for the local view to catch up with it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before each reconnection attempt after the owner dropped this client.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);
/// Attempts before concluding the owner is gone.
const RECONNECT_TRIES: usize = 20;
/// How often a process checks whether it has fallen so far behind that it should let go of its
/// place in the log (and of the old segment file it holds open).
const FAR_BEHIND_CHECK: Duration = Duration::from_secs(10);
/// Records a process always replays rather than taking a snapshot, however small its graph.
const MIN_REPLAY: u64 = 10_000;
/// How long a call waits for a fresh follow point after this process lost its place.
const RESYNC_WAIT: Duration = Duration::from_secs(5);

/// Owner to server process.
#[derive(Debug, Serialize, Deserialize)]
enum Down {
    /// Where to follow from: first on every connection, and the answer to [`Up::Resync`].
    Follow(Box<FollowPoint>),
    Written {
        id: u64,
        result: Result<Ack, WireError>,
    },
    History {
        id: u64,
        entries: Vec<HistoryEntry>,
    },
    /// The answer to [`Up::Wait`]: the owner's version when it reached the one asked for (or
    /// gave up waiting).
    Reached {
        id: u64,
        version: u64,
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
    /// Say when `version` is durable (a read asked for a version the mark has not reached),
    /// or that it is not after `timeout_ms` (the reader's own limit, at most a write's).
    Wait {
        id: u64,
        version: u64,
        timeout_ms: u64,
    },
    /// Send a fresh follow point: this process lost its place in the log.
    Resync,
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
        tokio::spawn(async move {
            if let Err(e) = serve_one(handle, Framed::new(stream, codec()), stop).await {
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

fn encode<T: Serialize>(message: &T) -> io::Result<bytes::Bytes> {
    serde_json::to_vec(message)
        .map(bytes::Bytes::from)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

enum Pending {
    Write(oneshot::Sender<Result<Ack, WriteError>>),
    History(oneshot::Sender<Vec<HistoryEntry>>),
    Reached(oneshot::Sender<u64>),
}

/// This process's place in the owner's log.
struct Follower {
    tail: Tail,
    mark: MarkReader,
}

/// Why the view could not be caught up from the log.
#[derive(Debug, thiserror::Error)]
enum CatchUpError {
    #[error("waiting for a fresh follow point from the owner")]
    Resyncing,
    #[error("{behind} records behind: a fresh snapshot is cheaper than replaying them")]
    FarBehind { behind: u64 },
    #[error(transparent)]
    Mark(#[from] MarkError),
    #[error(transparent)]
    Tail(#[from] TailError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("the owner's snapshot does not load: {0}")]
    Snapshot(#[from] StateError),
}

struct Client {
    name: String,
    view: Arc<View>,
    /// `None` while a fresh follow point is awaited.
    follower: Mutex<Option<Follower>>,
    /// Bumped whenever a follow point is taken, so calls waiting for one wake.
    follows: watch::Sender<u64>,
    /// A fresh follow point has been asked for and not yet taken.
    resync_asked: std::sync::atomic::AtomicBool,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Frames to the owner; replaced on reconnect.
    up: Mutex<Option<mpsc::UnboundedSender<Up>>>,
}

/// A server process's access to the fleet's memory: a local view caught up from the owner's
/// log, and writes and history queries sent to the owner.
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
    /// the view follows the owner's log (reconnecting if dropped) until `stop`.
    pub async fn connect(name: &str, stop: CancellationToken) -> Result<RemoteMemory, RemoteError> {
        let (channel, point) = open(name).await?;
        let protocol = |reason: String| RemoteError::Protocol {
            name: name.to_string(),
            reason,
        };
        let follower = follower(&point).map_err(|e| protocol(e.to_string()))?;
        let view = View::from_snapshot(point.snapshot).map_err(|e| protocol(e.to_string()))?;
        let client = Arc::new(Client {
            name: name.to_string(),
            view: Arc::new(view),
            follower: Mutex::new(Some(follower)),
            follows: watch::Sender::new(0),
            resync_asked: std::sync::atomic::AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            pending: Mutex::default(),
            up: Mutex::default(),
        });
        tokio::spawn(follow(client.clone(), channel, stop));
        Ok(RemoteMemory { client })
    }

    /// How many follow points this process has started from (1 + resyncs and reconnects).
    pub fn follow_points(&self) -> u64 {
        *self.client.follows.borrow() + 1
    }

    /// This process's view as it is (see [`RemoteMemory::sync`] to bring it up to date).
    pub fn view(&self) -> &Arc<View> {
        &self.client.view
    }

    /// Brings the view up to everything durable: what every memory call does first. If this
    /// process lost its place in the log, waits (bounded) for a fresh one; failing that, the
    /// view stays as it was and the problem is logged.
    pub async fn sync(&self) {
        let Err(e) = self.client.catch_up() else {
            return;
        };
        let mut follows = self.client.follows.subscribe();
        match e {
            CatchUpError::Resyncing | CatchUpError::FarBehind { .. } => {
                tracing::debug!(error = %e, "memory view: starting again from a fresh snapshot");
            }
            e => {
                tracing::warn!(error = %e, "memory view: lost the place in the owner's log; asking for a fresh one")
            }
        }
        self.client.resync();
        if tokio::time::timeout(RESYNC_WAIT, follows.changed())
            .await
            .is_err()
        {
            tracing::warn!(
                "memory view: no fresh follow point from the owner; serving the view as it is"
            );
            return;
        }
        if let Err(e) = self.client.catch_up() {
            tracing::warn!(error = %e, "memory view: cannot catch up with the owner's log");
        }
    }

    /// Waits until the view holds `version`, or fails after `timeout`: at once if the version
    /// is durable already, else when the owner says it is.
    pub async fn wait_for(&self, version: u64, timeout: Duration) -> Result<(), Timeout> {
        let view = &self.client.view;
        let timed_out = || Timeout {
            wanted: version,
            current: view.version(),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        self.sync().await;
        if view.version() >= version {
            return Ok(());
        }
        let timeout_ms = u64::try_from(
            deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let wait = |id| Up::Wait {
            id,
            version,
            timeout_ms,
        };
        let Some((id, rx)) = self.client.ask(wait, Pending::Reached) else {
            return Err(timed_out());
        };
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(reached)) if reached >= version => {
                self.sync().await;
                if view.version() >= version {
                    Ok(())
                } else {
                    Err(timed_out())
                }
            }
            Ok(_) => Err(timed_out()),
            Err(_) => {
                self.client.pending_remove(id);
                Err(timed_out())
            }
        }
    }

    /// Sends a write to the owner; returns once it is durable and in this process's view.
    pub async fn write(&self, server: &str, seen: u64, op: Op) -> Result<Ack, WriteError> {
        op.validate()?;
        let write = |id| Up::Write {
            id,
            server: server.to_string(),
            seen,
            op,
        };
        let Some((id, rx)) = self.client.ask(write, Pending::Write) else {
            return Err(WriteError::Closed);
        };
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
        self.wait_for(ack.version, WRITE_TIMEOUT)
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
        let query = |id| Up::History {
            id,
            entity: entity.to_string(),
            limit,
        };
        let Some((id, rx)) = self.client.ask(query, Pending::History) else {
            return Err(WriteError::Closed);
        };
        match tokio::time::timeout(WRITE_TIMEOUT, rx).await {
            Ok(Ok(entries)) => Ok(entries),
            _ => {
                self.client.pending_remove(id);
                Err(WriteError::Closed)
            }
        }
    }
}

/// A reader of the log and of the mark at `point`.
fn follower(point: &FollowPoint) -> Result<Follower, CatchUpError> {
    Ok(Follower {
        tail: Tail::open(&point.wal_dir, point.position, point.snapshot.version)?,
        mark: MarkReader::open(&point.mark_path)?,
    })
}

impl Client {
    /// Applies the log up to the owner's durable mark. On failure this process's place in
    /// the log is dropped (records may have been read but not applied) until a fresh follow
    /// point comes.
    fn catch_up(&self) -> Result<(), CatchUpError> {
        let mut guard = self.follower.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(f) = guard.as_mut() else {
            return Err(CatchUpError::Resyncing);
        };
        let result = (|| {
            let mark = f.mark.read()?;
            if mark.version <= f.tail.version() {
                return Ok(());
            }
            if let Some(behind) = self.too_far_behind(f, mark.version) {
                return Err(CatchUpError::FarBehind { behind });
            }
            let records = f.tail.read_to(mark.position, mark.version)?;
            self.view.apply_batch_at(&records, mark.at_us)?;
            Ok(())
        })();
        if result.is_err() {
            *guard = None;
        }
        result
    }

    /// How many records `f` is behind `durable`, if more than are worth replaying: beyond
    /// about twice the graph's size, loading a snapshot costs less.
    fn too_far_behind(&self, f: &Follower, durable: u64) -> Option<u64> {
        let behind = durable.saturating_sub(f.tail.version());
        let (entities, relations) = self.view.counts();
        (behind > (2 * (entities + relations) as u64).max(MIN_REPLAY)).then_some(behind)
    }

    /// Lets go of this process's place in the log (and the segment file it holds open) if it
    /// has fallen so far behind that its next call will start from a snapshot anyway.
    fn release_if_far_behind(&self) {
        let mut guard = self.follower.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(f) = guard.as_ref() else { return };
        if let Ok(mark) = f.mark.read()
            && self.too_far_behind(f, mark.version).is_some()
        {
            *guard = None;
        }
    }

    /// Starts following again from `point` (a fresh snapshot and its place in the log).
    fn take_follow_point(&self, point: FollowPoint) -> Result<(), CatchUpError> {
        // Whether or not it is usable, the request it answers is over.
        self.resync_asked.store(false, Ordering::SeqCst);
        let mut guard = self.follower.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = follower(&point)?;
        // Refused if older than the view (versions never go back); the owner's view moves
        // before its mark, so a snapshot is never behind what a follower has applied.
        self.view.reset(point.snapshot)?;
        *guard = Some(fresh);
        drop(guard);
        self.follows.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Asks the owner for a fresh follow point, unless that is under way (answered on the
    /// connection, or by the next connection's first frame).
    fn resync(&self) {
        if !self.resync_asked.swap(true, Ordering::SeqCst) && !self.send(Up::Resync) {
            // No connection now: the reconnection's first frame is the follow point.
            tracing::debug!("memory view: no connection to ask for a follow point on");
        }
    }

    /// Sends the request `up(id)` under a fresh id whose answer goes to the returned receiver;
    /// `None` if there is no connection to send it on.
    fn ask<T>(
        &self,
        up: impl FnOnce(u64) -> Up,
        pending: impl FnOnce(oneshot::Sender<T>) -> Pending,
    ) -> Option<(u64, oneshot::Receiver<T>)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, pending(tx));
        if self.send(up(id)) {
            Some((id, rx))
        } else {
            self.pending_remove(id);
            None
        }
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

async fn open(name: &str) -> Result<(Channel, FollowPoint), RemoteError> {
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

async fn run_connection(
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
