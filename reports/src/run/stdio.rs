//! What a run against stdio servers learnt about the server processes themselves: how many
//! loadgen spawned, how many exited on their own and were restarted, and the CPU and memory
//! they used, sampled once a second (summed over every process of the servers' process
//! groups, so a server started through a wrapper such as `npx` or `uvx` counts whole).

use serde::{Deserialize, Serialize};

/// The stdio server processes of a run (`stdio` in the run file; absent for HTTP targets and
/// in files written before stdio targets existed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StdioFacts {
    /// The server command, as split from `--target 'stdio:...'`.
    pub command: Vec<String>,
    /// Processes kept running at once (`--stdio-processes`, or one per user).
    pub processes: usize,
    /// Processes started, restarts included.
    pub started: u64,
    /// Processes that exited while loadgen still used them (each one's calls in flight got the
    /// error class `exited`).
    pub exited: u64,
    /// Processes started again after one exited.
    pub restarts: u64,
    /// The protocol version the processes negotiated (or `2026-07-28` after `server/discover`).
    pub protocol_version: String,
    /// CPU seconds the processes used while sampled.
    pub cpu_s: f64,
    /// Highest one-second CPU use, in percent of one CPU.
    pub cpu_percent_max: f64,
    /// Highest resident memory of all the processes together.
    pub rss_bytes_max: u64,
    /// The server's stderr logs, relative to the run folder.
    pub logs: Vec<String>,
    /// One sample a second.
    pub samples: Vec<StdioSample>,
}

/// The processes' use over one second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StdioSample {
    /// Seconds since the processes were first started.
    pub t_s: f64,
    /// Processes alive (every member of the servers' process groups).
    pub processes: usize,
    /// CPU used since the sample before, in percent of one CPU.
    pub cpu_percent: f64,
    /// Resident memory of all of them together.
    pub rss_bytes: u64,
}
