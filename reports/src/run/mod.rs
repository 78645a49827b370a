//! The run file, `run.json`: the one contract between loadgen, the report and later tools.
//!
//! # Wire format (schema_version 3; version 2 files read with the newer fields empty)
//! - `schema_version` (2), `tool` {`name`, `version`}, `started_at`/`finished_at` (RFC 3339,
//!   UTC), `interrupted` (Ctrl-C stopped the run early; the numbers cover what ran).
//! - `config`: what was asked: `mode` (`embedded` fleet or `targets`), `servers`, `scenarios`
//!   run, `users`, `warmup_s`, `duration_s` (the latency scenario's), `timeout_s`,
//!   `ephemeral_ports`, `targets`, `protocol` (`auto`, `2026-07-28` or `2025-11-25`),
//!   `protocol_version` (the eras the servers were spoken to in), `load_model`, `mix` (per
//!   group, tool and share in percent), `tls` (what `https://` targets were trusted by, or
//!   `TLS verification off`; absent without TLS).
//! - `environment`: `os`, `arch`, `cpus`, `fd_limit`, `git_commit` (null outside a repository).
//! - `fleet` (embedded mode only): the fleet's own view: `servers`, `healthy_at_start`,
//!   `startup_s`, `healthy_at_end`, `requests_total` (every request the servers counted,
//!   health probes included), `restarts_total`, `open_connections_max` (most connections the
//!   servers reported open at the once-a-second samples).
//! - `health`: the sweep of one `tools/list` per server, with the era each answered in.
//! - `latency`, `connections.results`, `capacity.steps[].results`: [`Results`] of one load
//!   phase. Times are microseconds. `requests` = `ok` + all `errors`, by start time inside the
//!   measured window of `measured_s` seconds; `throughput_rps` = `requests / measured_s`;
//!   `latency_us` and `percentiles_us` cover successful requests only; `by_call` and `by_group`
//!   split them by call and by target group; `per_second` has counts and percentiles by start
//!   second, each with its own histogram (`started_unix_ms`, absent from older files, places
//!   the phase, and so its seconds, on the wall clock); `histogram` is the merged HdrHistogram, V2 deflate
//!   serialised, base64 (standard alphabet): it can be decoded and merged across runs.
//!   `connections` samples, once a second, the established client connections to the targets
//!   and the servers' own count; `cpu` is CPU use during the phase, the generator's threads
//!   apart from the embedded fleet's (`generator_cpu_s`, `fleet_cpu_s`); `engine` is what goose
//!   counted (a cross-check of `requests`, warm-up included).
//! - `connections`: the held-connections scenario: how many were asked for, the fewest seen
//!   established during the measured window on both sides, and the latency under them.
//! - `capacity`: the open-model rate search: every step tried and the highest passing rate.
//! - `sync`: the memory sync scenario, or why it could not run (`available`, `ran`, `reason`):
//!   `figures` holds write counts, ack latency, write-to-visible lag and a baseline read
//!   (summaries, HdrHistograms, per second with each second's ack histogram), visibility
//!   failures by kind, and the final check that no acknowledged write is missing
//!   (`check.lost`); see loadgen's `sync` module.
//! - `scale` (optional; absent from older files): the embedded fleet grown through its admin
//!   API at the end of the run, or why it was not (`ran`, `reason`): `figures` holds the sizes
//!   before and after (per group), the time from the scale request to every server healthy
//!   (`healthy_s`), the fleet's memory at both sizes (`memory_before`, `memory_after`: the
//!   fleet process's RSS, and in process isolation its servers' RSS and PSS added up) and a
//!   sweep of every server at the new size (`sweep`, as `health`).
//! - `auth` (optional; absent when no target asked for a token): the OAuth client
//!   credentials used, the authorization servers, and the token fetches counted and timed apart
//!   from the measured calls (`token_fetches`, `after_401`, `failures`, `fetch_total_us`,
//!   `fetch_max_us`).
//! - `stdio` (stdio targets only): the server processes: started, exited, restarted, the
//!   negotiated version, CPU seconds and peak CPU and RSS, their stderr logs, and a sample of
//!   CPU and RSS each second.
//! - `shard` (sharded runs only, `--shard I/N`): `index`, `count`, the `run_id` every shard of
//!   the run shares, the `host`, the wall-clock `start_at` agreed, if any, how late its phase
//!   began against it, and its `clock` offset from the servers' (`Date` headers).
//!   `merged_from` (files `loadgen merge` wrote): each shard's file, host, rate, p99, CPU and
//!   clock, and whether it was saturated, late, short or off the other shards' clocks.
//! - `claims`: the claims with a `verdict` of `pass`, `fail` or `not_measured`, what was
//!   `measured`, the `criterion` applied and a `note`.
//!
//! # Layout
//! The schema is split by part, one file each: `file` (the top level, its version and
//! reading), `setup` (configuration, environment, fleet), `health`, `phase` (one load
//! phase's [`Results`]), `histogram` (the histogram encoding), `scenarios` (held
//! connections, capacity), `sync`, `chaos`, `scale`, `auth`, `stdio`, `claims` and `error_class`. Every type is
//! re-exported here, so `reports::run::X` names it whatever file holds it.

mod auth;
mod chaos;
mod claims;
mod error_class;
mod file;
mod health;
mod histogram;
mod phase;
mod scale;
mod scenarios;
mod setup;
mod shard;
mod stdio;
mod sync;

pub use auth::AuthFacts;
pub use chaos::{ChaosResult, FaultRecord};
pub use claims::{Claim, Verdict};
pub use error_class::ErrorClass;
pub use file::{
    LoadError, LoadPhase, PhaseKind, READABLE_SCHEMA_VERSIONS, RunFile, SCHEMA_VERSION, Tool,
};
pub use health::{HealthSweep, SweepFailure};
pub use histogram::{EncodedHistogram, HistogramError, decode_histogram, encode_histogram};
pub use phase::{
    Breakdown, ConnectionSample, CpuUse, EngineFacts, LatencySummary, PERCENTILES, Percentile,
    PhaseSetup, Results, SecondSummary, percentiles,
};
pub use scale::{FleetMemory, ScaleFigures, ScaleGroup, ScaleResult};
pub use scenarios::{CapacityResult, CapacityStep, ConnectionsResult};
pub use setup::{Config, Environment, FleetFacts, MixShare, unix_ms, utc_timestamp};
pub use shard::{ClockOffset, MergedShard, ShardFacts};
pub use stdio::{StdioFacts, StdioSample};
pub use sync::{
    SyncCheck, SyncCleanup, SyncFigures, SyncHistograms, SyncHistory, SyncResult, SyncSecond,
};
