//! Sharded runs: what each shard's run file says about its place in the run ([`ShardFacts`]),
//! and what a merged run file keeps of each shard it was merged from ([`MergedShard`]), so the
//! report can show a saturated or late shard instead of hiding it in the sum.

use serde::{Deserialize, Serialize};

/// One shard's place in a sharded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardFacts {
    /// 1-based: this is shard `index` of `count`.
    pub index: u32,
    pub count: u32,
    /// Names the run every shard belongs to; shards of different runs are never merged.
    pub run_id: String,
    /// The machine the shard ran on (its host name).
    pub host: String,
    /// The wall-clock instant the shards agreed to start measuring at (RFC 3339), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// How late this shard's latency phase began against the agreed instant, in ms, by its own
    /// clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_late_ms: Option<f64>,
    /// This machine's clock against the servers' (their HTTP `Date` headers), measured after
    /// the health sweep; `None` when the servers send no `Date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockOffset>,
}

/// A clock's offset from the servers' clock: positive when this one is ahead.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockOffset {
    pub offset_ms: f64,
    /// Half the span the servers' second turned in: the offset is within this of the truth.
    pub error_ms: f64,
}

/// One shard of a merged run: its file and its own figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedShard {
    pub index: u32,
    pub file: String,
    pub host: String,
    /// Requests per second it completed in its measured window (latency phase).
    pub throughput_rps: f64,
    /// Its own p99, microseconds (latency phase).
    pub p99_us: u64,
    /// Its generator's CPU as a share of its machine, if recorded.
    pub generator_percent_of_machine: Option<f64>,
    /// How late it started against the agreed instant, ms, if recorded.
    pub start_late_ms: Option<f64>,
    /// Its clock against the servers', if measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockOffset>,
    /// Why this shard's figures deserve a second look (saturated generator, late start,
    /// fewer requests than its share), empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}
