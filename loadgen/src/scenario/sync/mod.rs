//! The `sync` scenario: memory writes on one server, read back on another with `minVersion`,
//! then a check that no acknowledged write is missing.
//!
//! # What it does
//! 1. **Preparation** (not measured). One `tools/list` to every target: the servers offering
//!    the memory tools ([`prepare::MEMORY_TOOLS`]: the memory server's `create_entities` and
//!    `open_nodes`, plus `memory_version`) take part, the others are left out and counted.
//!    Each taking part gets one connection (and, in the 2025-11-25 era, a session), opened by
//!    a `memory_version` call whose answer must carry a version. None left: the scenario does
//!    not run and says why (not an error).
//! 2. **Load** (open model). `--sync-rate` writes per second, write *n* intended at
//!    `start + n / rate`, for a 1 s warm-up and then `--sync-time` measured seconds, at most
//!    `USERS` (256) in flight (plain tokio tasks; goose adds nothing to calls in sequence).
//!    A user stays busy for the write, the read and any baseline read, so the pool is large
//!    enough that the generator's own limit does not show in the ack latency at the rates
//!    this scenario is for.
//!    Write *n*: a random server A and a random server B ≠ A (B = A when there is only one
//!    server, which the run file says). On A, `create_entities` of one entity
//!    `sync-<tag>-<n>` of type `sync-probe` with one observation (the writer and the send
//!    time); its result carries the version N the write created. Then on B,
//!    `open_nodes{names:[name], minVersion:N, timeoutMs}`: B waits until its view has reached
//!    N and answers. Then, for every `BASELINE_EVERY`th (4th) write, on B again the same
//!    `open_nodes` without `minVersion` (the baseline read: a reference, sampled so that it
//!    does not add half again to the load being judged). Connections come from a pool per server shared by all users (one
//!    opened per server beforehand, more only when calls to one server overlap), so the run
//!    holds about one connection per server rather than users × servers.
//! 3. **Final check** (after the load). Every acknowledged probe, warm-up ones included, is
//!    read back with `open_nodes` (200 names a call) and `minVersion` = the highest
//!    acknowledged version, on up to 5 servers: one of every target group, the rest at
//!    random. A failed read is tried once more.
//! 4. **History** (servers offering `memory_history`): 20 probes spread over the run are
//!    looked up on random servers; commits follow acknowledgements, so each is retried every
//!    50 ms for up to 5 s in all.
//! 5. **Clean-up**, for `--target` servers offering `delete_entities`: the probes (acknowledged
//!    or not) are deleted on the first checked server (whose view has seen them all), so a
//!    measured fleet's memory is left as it was, but for its history. Nothing is measured
//!    after it. The embedded fleet's memory belongs to the run (it lives in the run folder),
//!    so its probes stay there for inspection (`git log`, `fleet memory verify`).
//!
//! # The figures
//! - **ack latency** (`ack_us`): from the write's intended send time to its acknowledgement
//!   (the whole JSON-RPC response) arriving: coordinated omission corrected, so a stalled
//!   server delays every write scheduled behind it. `ack_service_us` is the call alone.
//! - **write-to-visible lag** (`lag_us`): from A's acknowledgement arriving to B's answer to
//!   the `minVersion` read arriving with the entity in it. It includes that read's round trip;
//!   the **baseline read** (`baseline_read_us`) is the same read of an already visible entity
//!   on the same server and connection, so lag minus baseline approximates what waiting for
//!   the version cost.
//! - **visibility failures**: acknowledged writes of the window that B did not show: the wait
//!   timed out (`wait_timeout`, the server's "timed out waiting for version" tool error), B
//!   answered without the entity (`missing`), the ack carried no version (`unversioned`), or
//!   the read failed (`read_<error class>`).
//! - **failed writes** by error class: writes not acknowledged. They are reported, never
//!   "lost": a write that timed out may or may not have been applied.
//! - **lost**: acknowledged writes missing on at least one server of the final check. With a
//!   read of the check failing twice the check is incomplete, and a verdict of "no loss" is
//!   not given.
//!
//! Latencies go into HdrHistograms in microseconds (1 µs to 60 s, 3 significant digits),
//! summarised and serialised into the run file, with p50/p99 of each second.

mod check;
mod cleanup;
pub(crate) mod figures;
mod history;
mod load;
mod memory;
mod pool;
mod prepare;
mod run;
mod tally;

pub use run::run;
