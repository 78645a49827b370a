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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepFailure {
    pub server: String,
    pub url: String,
    pub error: ErrorClass,
}
