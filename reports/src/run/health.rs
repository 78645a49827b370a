//! The health sweep before the load: one `tools/list` per server and the failures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error_class::ErrorClass;

/// Outcome of the health sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSweep {
    pub servers: usize,
    pub checked: usize,
    pub ok: usize,
    /// `ok / servers`.
    pub availability: f64,
    pub seconds: f64,
    pub interrupted: bool,
    pub failures: Vec<SweepFailure>,
    /// Servers that answered, by the protocol era they answered in.
    #[serde(default)]
    pub protocols: BTreeMap<String, usize>,
    /// The protocol version each server that answered speaks (negotiated), by server id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub versions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepFailure {
    pub server: String,
    pub url: String,
    pub error: ErrorClass,
    /// The HTTP status of the last answer, when there was one (e.g. 401: credentials needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}
