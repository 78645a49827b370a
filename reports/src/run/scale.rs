//! The scale step's figures: the embedded fleet grown through its admin API (`POST
//! /groups/{group}/scale`, what `fleet scale` sends), the time from the request to every server
//! healthy, the fleet's memory before and after, and a sweep of every server at the new size.
//! It is how a default run measures a claim about a fleet larger than the one it starts
//! ("scalable to 1000+"): starting big proves less than growing while serving.

use serde::{Deserialize, Serialize};

use super::health::HealthSweep;

/// The `scale` step, or why it did not run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleResult {
    /// The step ran and `figures` holds what it measured.
    pub ran: bool,
    /// Why the step did not run or, when it ran, its outcome in one line.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<ScaleFigures>,
}

/// What the scale step measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleFigures {
    /// The fleet's isolation mode (`task` or `process`).
    pub isolation: String,
    /// Servers before and after (asked for: `--scale-to`).
    pub from_servers: usize,
    pub to_servers: usize,
    /// Each group's size before and after (proportional to the groups' sizes).
    pub groups: Vec<ScaleGroup>,
    /// How long the admin API took to answer every group's scale request, in ms.
    pub request_ms: f64,
    /// Seconds from the first scale request to every server of the fleet healthy; absent when
    /// they were not all healthy within `wait_limit_s`.
    pub healthy_s: Option<f64>,
    /// Servers healthy when the wait ended, of `to_servers`.
    pub healthy: usize,
    pub wait_limit_s: f64,
    /// The fleet's memory at its size before the step and after the sweep at the new size.
    pub memory_before: FleetMemory,
    pub memory_after: FleetMemory,
    /// One `tools/list` to every server at the new size (the health sweep's call).
    pub sweep: HealthSweep,
}

/// One group's size before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleGroup {
    pub group: String,
    pub from: u32,
    pub to: u32,
}

/// Resident memory of a fleet at one size. Bytes; absent where `/proc` could not tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetMemory {
    pub servers: usize,
    /// RSS of the fleet's own process. The embedded fleet shares it with the load generator,
    /// whose part it includes.
    pub fleet_rss_bytes: Option<u64>,
    /// Server child processes read (process isolation; 0 in task mode).
    pub server_processes: usize,
    /// Their RSS added up (pages shared between them, the binary's code among them, counted
    /// once per process).
    pub servers_rss_bytes: Option<u64>,
    /// Their proportional set size added up: shared pages divided among the processes sharing
    /// them, so it is what they use together.
    pub servers_pss_bytes: Option<u64>,
}
