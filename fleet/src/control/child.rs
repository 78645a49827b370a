//! The child side of process isolation: a binary that embeds the fleet checks, first thing in
//! `main`, whether it was started as one server of a process-mode fleet and if so serves it.
//! The parent passes the listening socket as fd 3 (so ports never change hands and a restart
//! serves connections queued meanwhile), the server's configuration in an environment variable,
//! and fault changes as JSON lines on stdin, each acknowledged with an `applied N` line on
//! stdout once in force; stdin closing means "stop gracefully".

use std::{
    os::fd::{FromRawFd, OwnedFd, RawFd},
    sync::Arc,
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use crate::{
    memory::{
        Memory,
        remote::{MemoryAccess, RemoteMemory},
    },
    serve::{
        limits::ConnectionLimits,
        listener,
        registry::{Counters, Faults, Identity},
        server,
    },
    spec::{HttpSpec, ServerSpec},
};

/// Prefix of the line a server process writes to stdout once it has applied a fault change.
const APPLIED: &str = "applied ";

/// The fault revision an `applied N` line from a server process acknowledges.
pub fn parse_applied(line: &str) -> Option<u64> {
    line.strip_prefix(APPLIED)?.trim().parse().ok()
}

/// Environment variable carrying the [`ChildConfig`] as JSON.
pub const CHILD_ENV: &str = "MCPFLEET_CHILD";
/// File descriptor of the inherited listening socket.
pub const LISTEN_FD: RawFd = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildConfig {
    pub identity: Identity,
    pub server: ServerSpec,
    #[serde(default)]
    pub http: HttpSpec,
    /// How to reach the fleet's memory owner, when the fleet runs with memory.
    #[serde(default)]
    pub memory: Option<MemoryAccess>,
}

/// Serves as a fleet child and returns its exit result if this process was started as one;
/// returns `None` (doing nothing) otherwise.
pub fn run_if_child() -> Option<anyhow::Result<()>> {
    let raw = std::env::var(CHILD_ENV).ok()?;
    Some(run_child(&raw))
}

fn run_child(raw: &str) -> anyhow::Result<()> {
    // Warnings (e.g. the memory view losing its place) reach the fleet's stderr.
    crate::control::logging::init_logging();
    let config: ChildConfig =
        serde_json::from_str(raw).with_context(|| format!("invalid {CHILD_ENV}"))?;
    // SAFETY: the parent maps the listening socket to LISTEN_FD for exactly this purpose and
    // nothing else in this process has claimed that descriptor yet.
    #[allow(unsafe_code)]
    let fd = unsafe { OwnedFd::from_raw_fd(LISTEN_FD) };
    let std_listener = std::net::TcpListener::from(fd);
    std_listener
        .set_nonblocking(true)
        .context("inherited fd 3 is not a listening socket")?;
    // One thread per server process keeps 500 processes cheap.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let stop = CancellationToken::new();
        let memory = match config.memory.clone() {
            Some(access) => Some(Memory::Remote(
                RemoteMemory::connect(access, stop.clone()).await?,
            )),
            None => None,
        };
        let counters = Arc::new(Counters::default());
        let (faults_tx, faults_rx) = tokio::sync::watch::channel(Faults::default());
        let router = server::app(
            config.identity.clone(),
            &config.server,
            counters.clone(),
            faults_rx,
            memory,
        );
        let stop_on_eof = stop.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            let mut acks = tokio::io::stdout();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Faults>(&line) {
                    Ok(f) => {
                        faults_tx.send_replace(f);
                        // In force from here on (the router reads the watch per request).
                        let ack = format!("{APPLIED}{}\n", f.revision);
                        if acks.write_all(ack.as_bytes()).await.is_err()
                            || acks.flush().await.is_err()
                        {
                            tracing::warn!("cannot acknowledge a fault change to the fleet");
                        }
                    }
                    Err(e) => tracing::warn!("ignoring bad control line: {e}"),
                }
            }
            stop_on_eof.cancel();
        });
        let stop_on_term = stop.clone();
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
                stop_on_term.cancel();
            }
        });
        // Its own budget: this process's descriptors are its own.
        let limits = ConnectionLimits::new(&config.http);
        listener::serve(listener, router, counters, limits, stop).await;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_lines_carry_a_revision_and_nothing_else_does() {
        assert_eq!(parse_applied("applied 42"), Some(42));
        assert_eq!(parse_applied("applied 7\r"), Some(7));
        assert_eq!(parse_applied("applied x"), None);
        assert_eq!(parse_applied("some log line"), None);
    }
}
