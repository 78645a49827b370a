//! How many connections a process's listeners may hold, and what they say when full. Each
//! listening socket has its own cap (`[http] max_connections`), so a client that fills one
//! server cannot starve its neighbours; and the whole process keeps its connections within its
//! open-file limit less a reserve, so that however many clients connect, the health prober,
//! the gateway's calls and the fleet's own files still get descriptors (at EMFILE the prober
//! failed and healthy servers were restarted). A connection beyond either bound is answered
//! HTTP 503 and closed, not left waiting in the kernel's queue: clients learn at once, and a
//! probe that meets a full server sees it answer.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};

use crate::spec::HttpSpec;

/// Descriptors kept out of the connection budget: at least this many ...
const MIN_RESERVE: u64 = 64;
/// ... at most this many, and otherwise an eighth of the limit. They serve the health probes
/// (one socket per server being probed), the gateway's calls, listeners added by scaling,
/// memory files, and connections being refused.
const MAX_RESERVE: u64 = 2048;

/// Refused connections being closed gently at once, process-wide, at most (and at most half
/// the reserve, which their descriptors come from); one beyond is written its answer if its
/// socket takes it and dropped.
const MAX_REFUSING: u64 = 1024;

/// How long a refused connection's request is waited for before it is answered anyway.
const REQUEST_WAIT: Duration = Duration::from_millis(100);

/// How long a refused connection is kept for its client to send its request, read the 503 and
/// close: short, so a flood of silent connections turns the slots over quickly.
const LINGER: Duration = Duration::from_millis(250);

/// Most bytes read from a refused connection before it is dropped.
const MAX_DRAINED: usize = 64 * 1024;

/// How often, at most, refused connections are reported in the log.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The limits every listener of one process enforces. Cheap to clone; clones share the
/// process's budget.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    http: HttpSpec,
    /// Whether connections count against the process's budget (all but the admin API's).
    in_budget: bool,
    shared: Arc<Shared>,
}

/// Connections the admin API holds at most, outside the process's budget: an operator can
/// still look and act (`fleet status`, `fleet down`) while clients hold every other connection
/// the process may have, and the dashboard's event streams (at most
/// [`crate::dashboard::MAX_VIEWERS`]) leave most of them free. Its descriptors come from the
/// reserve.
const ADMIN_MAX_CONNECTIONS: usize = 64;

#[derive(Debug)]
struct Shared {
    /// Connections the process may hold, across all its listeners.
    budget: Arc<Semaphore>,
    budget_size: usize,
    refusing: Arc<Semaphore>,
    refused: Mutex<Refused>,
}

/// Refusals since the last report, by cause.
#[derive(Debug)]
struct Refused {
    since: Instant,
    at_cap: u64,
    out_of_descriptors: u64,
    dropped: u64,
}

impl Refused {
    fn since(since: Instant) -> Self {
        Self {
            since,
            at_cap: 0,
            out_of_descriptors: 0,
            dropped: 0,
        }
    }
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Full {
    /// Its listener holds `[http] max_connections`.
    Listener,
    /// The process holds all the connections its descriptors allow.
    Process,
}

/// What an accepted connection holds while it is open: its place at its listener and in the
/// process's budget.
pub(super) struct Admitted {
    _listener: OwnedSemaphorePermit,
    _process: Option<OwnedSemaphorePermit>,
}

/// The default `[http]` limits, with a budget sized as [`ConnectionLimits::new`] does.
impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::new(&HttpSpec::default())
    }
}

impl ConnectionLimits {
    /// Limits for this process's listeners, its budget sized from the open-file limit as it is
    /// now (raise it first, [`crate::serve::socket::raise_fd_limit`]) less the descriptors
    /// already open and a reserve.
    pub fn new(http: &HttpSpec) -> Self {
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        Self::with_descriptors(http, limit, open_descriptors())
    }

    fn with_descriptors(http: &HttpSpec, limit: u64, open: u64) -> Self {
        let reserve = (limit / 8).clamp(MIN_RESERVE, MAX_RESERVE);
        let budget = limit.saturating_sub(open + reserve).max(1);
        let budget = usize::try_from(budget)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Self {
            http: http.clone(),
            in_budget: true,
            shared: Arc::new(Shared {
                budget: Arc::new(Semaphore::new(budget)),
                budget_size: budget,
                refusing: Arc::new(Semaphore::new(MAX_REFUSING.min(reserve / 2) as usize)),
                refused: Mutex::new(Refused::since(Instant::now())),
            }),
        }
    }

    /// The limits of the admin API's listener: at most [`ADMIN_MAX_CONNECTIONS`], outside the
    /// process's budget.
    pub fn for_admin(&self) -> Self {
        let mut admin = self.clone();
        admin.http.max_connections = self.http.max_connections.min(ADMIN_MAX_CONNECTIONS);
        admin.in_budget = false;
        admin
    }

    pub fn http(&self) -> &HttpSpec {
        &self.http
    }

    /// Connections the whole process may hold.
    pub fn process_budget(&self) -> usize {
        self.shared.budget_size
    }

    /// A cap for one more listening socket.
    pub(super) fn listener_cap(&self) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(self.http.max_connections))
    }

    /// A place for a new connection at a listener with `cap`, or why there is none.
    pub(super) fn admit(&self, cap: &Arc<Semaphore>) -> Result<Admitted, Full> {
        let listener = cap
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full::Listener)?;
        let process = if self.in_budget {
            let permit = self.shared.budget.clone().try_acquire_owned();
            Some(permit.map_err(|_| Full::Process)?)
        } else {
            None
        };
        Ok(Admitted {
            _listener: listener,
            _process: process,
        })
    }

    /// Answers a connection that could not be admitted: HTTP 503 with a JSON-RPC error (MCP
    /// clients show it), `Retry-After: 1` and `Connection: close`. The returned future answers
    /// once the request begins and closes gently (reading what the client still sends, so the
    /// answer is not lost to a reset), all within [`LINGER`]; without a free slot for that the
    /// connection is answered only if its request has arrived already, and closed at once. Refusals are counted and reported in the log every [`REPORT_EVERY`] at most.
    pub(super) fn refuse(
        &self,
        why: Full,
        stream: TcpStream,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let slot = self.shared.refusing.clone().try_acquire_owned().ok();
        self.count_refusal(why, slot.is_none());
        let Some(slot) = slot else {
            // Answered only if its request is there already (an answer before the request is
            // a protocol error to the client); read, so that closing sends no reset.
            if stream.try_read(&mut [0u8; 4096]).is_ok_and(|n| n > 0) {
                let _ = stream.try_write(&self.answer(why));
            }
            return None;
        };
        let answer = self.answer(why);
        Some(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(LINGER, linger(stream, &answer)).await;
        })
    }

    fn answer(&self, why: Full) -> Vec<u8> {
        let message = match why {
            Full::Listener => format!(
                "this server holds its most connections ({}, [http] max_connections); try \
                 again later",
                self.http.max_connections
            ),
            Full::Process => "this server's process holds all the connections its open-file \
                              limit allows; try again later"
                .to_owned(),
        };
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32000, "message": message},
        })
        .to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn count_refusal(&self, why: Full, dropped: bool) {
        let mut refused = self
            .shared
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match why {
            Full::Listener => refused.at_cap += 1,
            Full::Process => refused.out_of_descriptors += 1,
        }
        refused.dropped += u64::from(dropped);
        if refused.since.elapsed() >= REPORT_EVERY {
            tracing::warn!(
                "refused {} connections at a listener's cap ([http] max_connections = {}) and \
                 {} beyond the process's {} (its open-file limit less a reserve) in the last \
                 {:.0} s; {} of them closed without a word",
                refused.at_cap,
                self.http.max_connections,
                refused.out_of_descriptors,
                self.shared.budget_size,
                refused.since.elapsed().as_secs_f64(),
                refused.dropped,
            );
            *refused = Refused::since(Instant::now());
        }
    }
}

/// Waits for the request to begin (an HTTP client takes an answer that comes before its
/// request as a protocol error), writes `answer`, ends the sending side, and reads whatever the
/// client still sends until it closes (at most [`MAX_DRAINED`] bytes).
async fn linger(mut stream: TcpStream, answer: &[u8]) {
    let mut buf = [0u8; 4096];
    // A client that sends nothing is answered all the same, so it holds a slot briefly.
    let mut drained = match tokio::time::timeout(REQUEST_WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => return,
        Ok(Ok(n)) => n,
        Err(_) => 0,
    };
    if stream.write_all(answer).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    while drained < MAX_DRAINED {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// Descriptors this process has open now (Linux: `/proc/self/fd`; elsewhere assumed few).
fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(32, |dir| dir.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: usize, limit: u64, open: u64) -> ConnectionLimits {
        let http = HttpSpec {
            max_connections,
            ..HttpSpec::default()
        };
        ConnectionLimits::with_descriptors(&http, limit, open)
    }

    #[test]
    fn the_budget_leaves_the_open_descriptors_and_a_reserve() {
        // An eighth of 20,000 is 2,500: capped at 2,048.
        assert_eq!(
            limits(10, 20_000, 600).process_budget(),
            20_000 - 600 - 2048
        );
        // An eighth of 1,024 is 128.
        assert_eq!(limits(10, 1024, 100).process_budget(), 1024 - 100 - 128);
        // Never below the 64 reserved, and never nothing at all.
        assert_eq!(limits(10, 256, 10).process_budget(), 256 - 10 - 64);
        assert_eq!(limits(10, 50, 40).process_budget(), 1);
    }

    #[test]
    fn a_listener_full_refuses_while_others_still_admit() {
        let limits = limits(2, 100_000, 0);
        let (a, b) = (limits.listener_cap(), limits.listener_cap());
        let held: Vec<_> = (0..2)
            .map(|_| limits.admit(&a).expect("admitted"))
            .collect();
        assert_eq!(limits.admit(&a).err(), Some(Full::Listener));
        let other = limits.admit(&b).expect("the other listener admits");
        drop(held);
        assert!(
            limits.admit(&a).is_ok(),
            "a closed connection frees its place"
        );
        drop(other);
    }

    #[test]
    fn the_process_budget_is_shared_by_every_listener() {
        // 64 reserved and 16 open of 100 leave 20 connections for the whole process.
        let limits = limits(1000, 100, 16);
        assert_eq!(limits.process_budget(), 20);
        let caps: Vec<_> = (0..4).map(|_| limits.listener_cap()).collect();
        let held: Vec<_> = (0..20)
            .map(|i| limits.admit(&caps[i % 4]).expect("within the budget"))
            .collect();
        assert_eq!(limits.admit(&caps[0]).err(), Some(Full::Process));
        assert_eq!(
            limits.admit(&limits.listener_cap()).err(),
            Some(Full::Process)
        );
        // The admin API still admits, up to its own small cap.
        let admin = limits.for_admin();
        let cap = admin.listener_cap();
        let operators: Vec<_> = (0..ADMIN_MAX_CONNECTIONS)
            .map(|_| admin.admit(&cap).expect("outside the budget"))
            .collect();
        assert_eq!(admin.admit(&cap).err(), Some(Full::Listener));
        drop((held, operators));
    }

    #[tokio::test]
    async fn a_refused_connection_reads_a_503_and_its_json_rpc_error() {
        let limits = limits(7, 100_000, 0);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let client = tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
                .await
                .expect("request");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.expect("answer");
            answer
        });
        let (stream, _) = listener.accept().await.expect("accept");
        limits.refuse(Full::Listener, stream).expect("a slot").await;
        let answer = client.await.expect("client");
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
        let body = answer.split_once("\r\n\r\n").expect("a body").1;
        let error: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(error["error"]["code"], -32000);
        assert!(
            error["error"]["message"]
                .as_str()
                .expect("message")
                .contains("most connections (7"),
            "{error}"
        );
    }
}
