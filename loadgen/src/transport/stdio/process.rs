//! One running stdio server: the child process (leader of its own process group), a writer
//! shared by every caller (one line per message, under a lock), and one reader task that reads
//! stdout line by line and routes each response by its JSON-RPC id to the call waiting for it,
//! so any number of calls can be in flight on one process, answered in any order.
//!
//! What else the server writes is sorted by [`mcp::sort_message`]: its requests (`roots/list`,
//! `sampling/createMessage`, `ping`, ...) are answered on stdin so it never hangs, its
//! notifications are counted; both are handed to the next answer delivered as its asides. A line
//! that is not a JSON message, not UTF-8 or longer than [`MAX_LINE`] leaves the stream's order
//! in doubt: every call then in flight gets a `protocol` error. When stdout ends (the process
//! exited or closed it) every call in flight gets `exited`.

use std::{
    collections::HashMap,
    path::Path,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, de::IgnoredAny};
use tokio::{
    io::{AsyncWriteExt as _, BufReader},
    process::{Child, ChildStdin, ChildStdout, Command},
    sync::oneshot,
};
use tokio_util::sync::CancellationToken;

use super::{
    lines::{Line, MAX_LINE, next_line},
    stderr_log,
};
use crate::{
    lock::lock,
    mcp::{self, Asides, Call, ErrorClass, Incoming, Sent, Version},
};

/// A response line, handed to the call that waits for its id with what came before it.
#[derive(Debug)]
struct Delivery {
    line: Result<String, ErrorClass>,
    asides: Asides,
}

/// The calls waiting for an answer, by id; `None` once the process is gone.
type Waiters = Option<HashMap<u64, oneshot::Sender<Delivery>>>;

/// One server process and the routing of its answers.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    stdin: tokio::sync::Mutex<ChildStdin>,
    waiters: Mutex<Waiters>,
    next_id: AtomicU64,
    /// Cancelled when stdout ends: the process is gone (or as good as gone).
    gone: CancellationToken,
}

impl Process {
    /// Starts `command` in a process group of its own with piped stdin and stdout, stderr
    /// appended to `log`. Gives the process (its reader running) and the child to wait on.
    pub async fn spawn(command: &[String], log: &Path) -> std::io::Result<(Arc<Self>, Child)> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| std::io::Error::other("the stdio command is empty"))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or_else(|| std::io::Error::other("no pid"))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(std::io::Error::other("the child's pipes are missing"));
        };
        let log = stderr_log::open(log).await?;
        tokio::spawn(stderr_log::copy_bounded(stderr, log, stderr_log::MAX_LOG));
        let process = Arc::new(Self {
            pid,
            stdin: tokio::sync::Mutex::new(stdin),
            waiters: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU64::new(1),
            gone: CancellationToken::new(),
        });
        tokio::spawn(read_stdout(process.clone(), stdout));
        Ok((process, child))
    }

    /// The process id, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether stdout has ended.
    pub fn is_gone(&self) -> bool {
        self.gone.is_cancelled()
    }

    /// Resolves when stdout has ended.
    pub async fn gone(&self) {
        self.gone.cancelled().await;
    }

    /// A fresh JSON-RPC id of this process.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `call` in `version` and waits (at most `timeout`) for its answer, timed from
    /// taking the writer to the answer read.
    pub async fn call(&self, call: &Call, version: Version, timeout: Duration) -> Sent {
        let id = self.next_id();
        let start = Instant::now();
        let (line, mut asides) = match self.request(call.body(id, version), id, timeout).await {
            Ok(Delivery { line, asides }) => (line, asides),
            Err(class) => (Err(class), Asides::default()),
        };
        let outcome = line.and_then(|text| match mcp::sort_message(&text, id, &mut asides) {
            Incoming::Answer(verdict) => verdict,
            // The reader routes only responses with this id here.
            Incoming::Reply(_) | Incoming::Skip => Err(ErrorClass::Protocol),
        });
        Sent {
            elapsed: start.elapsed(),
            ttfb: None,
            status: None,
            outcome,
            asides,
        }
    }

    /// Sends a request (one JSON line, `id` its id) and gives the response's text: for the
    /// handshake, which reads the result itself.
    pub async fn exchange(
        &self,
        body: String,
        id: u64,
        timeout: Duration,
    ) -> Result<String, ErrorClass> {
        self.request(body, id, timeout).await?.line
    }

    /// Sends a notification (no answer expected).
    pub async fn notify(&self, body: &[u8]) -> Result<(), ErrorClass> {
        let mut line = Vec::with_capacity(body.len() + 1);
        line.extend_from_slice(body);
        line.push(b'\n');
        self.write(&line).await
    }

    async fn request(
        &self,
        mut body: String,
        id: u64,
        timeout: Duration,
    ) -> Result<Delivery, ErrorClass> {
        let (tx, rx) = oneshot::channel();
        match lock(&self.waiters).as_mut() {
            Some(waiters) => waiters.insert(id, tx),
            None => return Err(ErrorClass::Exited),
        };
        body.push('\n');
        let answer = tokio::time::timeout(timeout, async {
            self.write(body.as_bytes()).await?;
            // A dropped sender: the process went away with this call in flight.
            rx.await.map_err(|_| ErrorClass::Exited)
        })
        .await;
        match answer {
            Ok(Ok(delivery)) => Ok(delivery),
            Ok(Err(class)) => {
                self.forget(id);
                Err(class)
            }
            Err(_) => {
                self.forget(id);
                Err(ErrorClass::Timeout)
            }
        }
    }

    fn forget(&self, id: u64) {
        if let Some(waiters) = lock(&self.waiters).as_mut() {
            waiters.remove(&id);
        }
    }

    /// Writes whole lines; a pipe that broke means the process is gone.
    async fn write(&self, line: &[u8]) -> Result<(), ErrorClass> {
        let mut stdin = self.stdin.lock().await;
        stdin
            .write_all(line)
            .await
            .map_err(|_| ErrorClass::Exited)?;
        stdin.flush().await.map_err(|_| ErrorClass::Exited)
    }

    /// Closes stdin, a stdio server's signal to exit.
    pub async fn close_stdin(&self) {
        let _ = self.stdin.lock().await.shutdown().await;
    }

    /// Hands `line` to the call waiting for `id`, if any (a late answer to a call that timed
    /// out finds none and is dropped).
    fn deliver(&self, id: u64, line: Result<String, ErrorClass>, asides: Asides) {
        let waiter = lock(&self.waiters).as_mut().and_then(|w| w.remove(&id));
        if let Some(tx) = waiter {
            let _ = tx.send(Delivery { line, asides });
        }
    }

    /// Fails every call in flight with `class` (the waiters stay open for later calls).
    fn fail_all(&self, class: ErrorClass) {
        let in_flight: Vec<_> = match lock(&self.waiters).as_mut() {
            Some(waiters) => waiters.drain().collect(),
            None => Vec::new(),
        };
        for (_, tx) in in_flight {
            let _ = tx.send(Delivery {
                line: Err(class),
                asides: Asides::default(),
            });
        }
    }
}

/// Just enough of a message to route it: a response has an id and no method.
#[derive(Deserialize)]
struct Head {
    id: Option<serde_json::Value>,
    method: Option<IgnoredAny>,
}

/// The reader task of one process: routes responses, answers the server's requests, counts its
/// notifications, until stdout ends; then fails every call still waiting with `exited`.
async fn read_stdout(process: Arc<Process>, stdout: ChildStdout) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut buf = Vec::new();
    // What the server sent since the last answer delivered.
    let mut asides = Asides::default();
    loop {
        match next_line(&mut reader, &mut buf, MAX_LINE).await {
            Err(_) | Ok(Line::End) => break,
            Ok(Line::TooLong) => process.fail_all(ErrorClass::Protocol),
            Ok(Line::Message) if buf.iter().all(u8::is_ascii_whitespace) => {}
            Ok(Line::Message) => {
                let Ok(text) = String::from_utf8(std::mem::take(&mut buf)) else {
                    process.fail_all(ErrorClass::Protocol);
                    continue;
                };
                let Ok(head) = serde_json::from_str::<Head>(&text) else {
                    process.fail_all(ErrorClass::Protocol);
                    continue;
                };
                match (
                    head.method,
                    head.id.as_ref().and_then(serde_json::Value::as_u64),
                ) {
                    (None, Some(id)) => {
                        process.deliver(id, Ok(text), std::mem::take(&mut asides));
                    }
                    // A response without a usable id answers nothing of ours.
                    (None, None) => {}
                    (Some(_), _) => {
                        // Our ids are never 0, so nothing the server sends is taken for ours.
                        if let Incoming::Reply(reply) = mcp::sort_message(&text, 0, &mut asides)
                            && process.notify(reply.as_bytes()).await.is_err()
                        {
                            break;
                        }
                    }
                }
            }
        }
    }
    process.gone.cancel();
    let in_flight = lock(&process.waiters).take();
    // Dropping the senders tells each waiting call that the process went away.
    drop(in_flight);
}
