//! The held-connections and capacity scenarios: how many connections were held under load,
//! and the open-model steps of the rate search.

use serde::{Deserialize, Serialize};

use super::phase::Results;

/// The `connections` scenario: many users, each on its own connection, held at a modest rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionsResult {
    /// Connections (users) asked for.
    pub asked: usize,
    /// Requests per second each connection sent.
    pub per_connection_rps: f64,
    /// Fewest established client connections to the targets seen during the measured window
    /// (from `/proc`); `None` where it could not be read.
    pub held_min_client: Option<u64>,
    /// Fewest connections the servers reported open during the window (embedded fleet only).
    pub held_min_server: Option<u64>,
    /// Samples taken during the window (one a second).
    pub samples: usize,
    pub results: Results,
}

impl ConnectionsResult {
    /// The fewest connections held, client side and server side, over the samples taken at
    /// seconds `from..=to` of the phase, and how many there were: a side is `None` when a
    /// sample lacks it.
    pub fn held_during(
        samples: &[super::phase::ConnectionSample],
        from: f64,
        to: f64,
    ) -> (Option<u64>, Option<u64>, usize) {
        let during: Vec<_> = samples
            .iter()
            .filter(|s| s.t >= from && s.t <= to)
            .collect();
        let min = |f: fn(&super::phase::ConnectionSample) -> Option<u64>| {
            during
                .iter()
                .map(|s| f(s))
                .collect::<Option<Vec<u64>>>()?
                .into_iter()
                .min()
        };
        (min(|s| s.client), min(|s| s.server), during.len())
    }

    /// Connections held for the whole window: the client side's minimum, checked against the
    /// servers' minimum where they report one (the lower of the two counts).
    pub fn held(&self) -> Option<u64> {
        match (self.held_min_client, self.held_min_server) {
            (Some(c), Some(s)) => Some(c.min(s)),
            (c, s) => c.or(s),
        }
    }
}

/// The `capacity` scenario: open-model steps, searching for the highest rate that keeps p99
/// within the bound with no errors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityResult {
    /// The p99 bound each step must keep, in microseconds.
    pub p99_bound_us: u64,
    /// Highest rate that passed, requests per second; `None` when none did.
    pub best_rps: Option<f64>,
    /// Every step, in the order run.
    pub steps: Vec<CapacityStep>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityStep {
    /// Intended rate, requests per second.
    pub rate: f64,
    pub passed: bool,
    /// Why it failed, for people.
    pub reason: String,
    pub results: Results,
}
