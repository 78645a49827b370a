//! The chaos scenario: load while servers are killed, paused or slowed, and how the fleet
//! and the gateway coped, timed from each fault.

use serde::{Deserialize, Serialize};

use super::phase::Results;

/// The `chaos` scenario: load (through the gateway where there is one) while servers are
/// killed, paused or slowed through the fleet's admin API, and how the fleet coped, timed from
/// each fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosResult {
    /// The faults asked for, as given (`kill:10%`, `pause:5%:2s`, ...).
    pub specs: Vec<String>,
    /// Where the load went (the gateway's `/mcp`, or the targets).
    pub load_target: String,
    /// The load went through a gateway whose `/backends` told when it took servers out.
    pub through_gateway: bool,
    /// The fleet's isolation mode (`task` or `process`) where known.
    pub isolation: Option<String>,
    /// Servers the faults were drawn from.
    pub servers: usize,
    /// One row per fault, in the order they were injected.
    pub faults: Vec<FaultRecord>,
    /// How long loadgen waited after the load for faulted servers to be healthy again.
    pub recovery_wait_ms: u64,
    /// The load while the faults happened (success rate and failures by class are in it).
    pub results: Results,
}

impl ChaosResult {
    /// Faults the fleet had to recover from on its own: kills, and pauses long enough for it
    /// to notice (a shorter pause ends when loadgen lifts it, which is no recovery of the
    /// fleet's; slow-downs never take a server down).
    pub fn recoverable(&self) -> impl Iterator<Item = &FaultRecord> {
        self.faults.iter().filter(|f| {
            f.error.is_none()
                && (f.action == "kill" || (f.action == "pause" && f.fleet_detect_ms.is_some()))
        })
    }

    /// The slowest recovery in milliseconds and how many never recovered within the wait.
    pub fn recovery(&self) -> (Option<u64>, usize) {
        let max = self.recoverable().filter_map(|f| f.recovered_ms).max();
        let never = self
            .recoverable()
            .filter(|f| f.recovered_ms.is_none())
            .count();
        (max, never)
    }
}

/// One injected fault. Times in milliseconds after the fault was injected unless named
/// otherwise; `None` where it did not happen (or could not be seen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub server: String,
    /// `kill`, `pause` or `slow`.
    pub action: String,
    /// When it was injected: ms after the measured window began, and ms since the Unix epoch.
    pub at_ms: u64,
    pub at_unix_ms: u64,
    /// How long a pause or slow-down lasted before loadgen lifted it.
    pub lasted_ms: Option<u64>,
    /// The fleet's supervisor or health monitor marked the server not healthy.
    pub fleet_detect_ms: Option<u64>,
    /// The gateway took the server out of rotation.
    pub gateway_detect_ms: Option<u64>,
    /// The server was healthy again.
    pub recovered_ms: Option<u64>,
    /// The admin API refused the fault (then nothing else is measured for it).
    pub error: Option<String>,
}
