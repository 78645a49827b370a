//! Backend choice for one group of replica servers.
//!
//! A [`Pool`] holds the members (server ids) of one group and answers "which backend gets this
//! tool call?" with a [`Lease`]. The design follows from where it runs: on the gateway's hot
//! path, tens of thousands of times a second, from many tokio tasks.
//!
//! * **Power of two choices** ([`Pool::pick`]): two distinct admitted members are drawn at
//!   random and the one with the lower cost `(outstanding + 1) × latency EWMA` wins. Comparing
//!   two is O(1), needs no global ordering and, unlike "least loaded of all", does not make every
//!   task herd onto the same momentarily idle backend; it still steers traffic away from a slow
//!   or overloaded member (the classic result: the maximum load drops from `log n / log log n`
//!   to `log log n`).
//! * **One short `std::sync::Mutex` per pool.** A pick, a finish and an unfinished lease's drop
//!   each take it once, for a few dozen nanoseconds, and never across an `.await` (none of these
//!   methods is async). At 50 000 requests/s that is two lock holds per request, around 1 % of
//!   one core's time, so contention stays low, and one lock keeps the health state machine
//!   simple and consistent. Nothing on the hot path allocates: a lease clones two `Arc`s.
//! * **Time and randomness come from the caller** (`now: Instant`, `rng_word: u64`): the tests
//!   are deterministic and the gateway reads the clock once per request.
//! * **Passive health** ([`Lease::finish`]): consecutive failures eject a member for a backoff
//!   (`eject_base`, doubling per ejection in a row, capped at `eject_max`). A connection error
//!   ejects at once because a refused connection means the server is gone, and with 10 % of the
//!   fleet killed every request that still goes there costs a retry. When the backoff expires
//!   the member is *half-open*: one real request may go there at a time; a success re-admits it,
//!   a failure ejects it again for twice as long. Only outcomes of leases taken since the last
//!   health change count towards the state machine (an *epoch* per member): the hundred
//!   requests that were in flight to a server when it died all fail, but they are one piece of
//!   evidence, not a hundred, so they do not push the backoff to its maximum and keep a
//!   restarted server out for seconds.
//! * **Active health** ([`Pool::set_up`]): the gateway's `/healthz` + MCP prober or the
//!   supervisor's registry marks members down (never picked) and up again.
//! * **Discovery** ([`Pool::set_members`]): `fleet scale` changes the member set at runtime;
//!   survivors keep their statistics and health, new members start at the pool's median EWMA so
//!   they get traffic straight away.
//!
//! ## Latency estimate
//!
//! Each success updates the member's EWMA with a fixed weight (`ewma_alpha`, default 0.3): a
//! slowed server is noticed within a handful of its own requests, whatever the request rate.
//! Failures never update latency (a refused connection is fast, not a sign of a fast server);
//! they count towards ejection only. A fixed-alpha EWMA alone would starve a member that once
//! looked slow: it is only re-measured when picked, and it is only picked when it looks fast.
//! So an estimate that has not been refreshed relaxes towards the pool's typical latency, with
//! a half-life of `idle_half_life` since the member's last sample: stale knowledge becomes
//! "about average", the member gets an occasional request again and is re-measured. Relaxing
//! towards the average (not towards zero, as Finagle's and tower's peak-EWMA decay do) also
//! means a member coming back after a long ejection looks average rather than free, so it does
//! not attract a burst of traffic before its first response.
//!
//! ## Files
//!
//! `config` holds the TOML tuning, `outcome` the vocabulary of request outcomes and the
//! statistics a member reports, `member` one member's health state machine and latency
//! estimate, `table` the locked member table a pool and its leases share, `pool` the
//! choice and the membership changes, `lease` what happens when a request ends.

mod config;
mod lease;
mod member;
mod outcome;
mod pool;
mod table;
#[cfg(test)]
mod tests;

pub use config::PoolConfig;
pub use lease::Lease;
pub use outcome::{FailureCounts, FailureKind, MemberStats, Outcome, TAKEN_OUT_KEPT};
pub use pool::Pool;
