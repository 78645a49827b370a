//! The run file as a whole: its schema version, the top-level [`RunFile`] and reading one
//! (version checked first, then every field, each error naming the file and the field).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{
    chaos::ChaosResult,
    claims::Claim,
    health::HealthSweep,
    phase::Results,
    scenarios::{CapacityResult, ConnectionsResult},
    setup::{Config, Environment, FleetFacts},
    stdio::StdioFacts,
    sync::SyncResult,
};

/// The version this crate writes.
pub const SCHEMA_VERSION: u32 = 3;

/// The versions this crate reads: version 2 lacks `by_server` and per-second error classes,
/// which read as empty.
pub const READABLE_SCHEMA_VERSIONS: std::ops::RangeInclusive<u32> = 2..=SCHEMA_VERSION;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFile {
    pub schema_version: u32,
    pub tool: Tool,
    pub started_at: String,
    pub finished_at: String,
    pub interrupted: bool,
    pub config: Config,
    pub environment: Environment,
    pub fleet: Option<FleetFacts>,
    pub health: HealthSweep,
    /// The latency scenario, if it ran.
    pub latency: Option<Results>,
    pub connections: Option<ConnectionsResult>,
    pub capacity: Option<CapacityResult>,
    pub sync: Option<SyncResult>,
    /// The chaos scenario, if it ran (absent from files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<ChaosResult>,
    /// The stdio server processes, for stdio targets (absent otherwise and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio: Option<StdioFacts>,
    pub claims: Vec<Claim>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// Why a run file could not be read. Each names the file, and the field where there is one.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read run file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a run file: {message}")]
    NotJson { path: String, message: String },
    #[error("{path} has no schema_version: not a loadgen run file")]
    NoVersion { path: String },
    #[error(
        "{path} is a run file of schema version {found}; this build reads versions {min} to {max} \
         (re-run the measurement, or use the loadgen that wrote it)"
    )]
    Version {
        path: String,
        found: u64,
        min: u32,
        max: u32,
    },
    #[error("{path}: field `{field}`: {message}")]
    Field {
        path: String,
        field: String,
        message: String,
    },
}

impl RunFile {
    /// Reads and checks a run file: its schema version first (so a file of another version
    /// gets that error, not a confusing missing-field one), then every field.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// [`RunFile::load`] of text already read; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, LoadError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| LoadError::NotJson {
                path: path.into(),
                message: e.to_string(),
            })?;
        let found = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| LoadError::NoVersion { path: path.into() })?;
        if !u32::try_from(found).is_ok_and(|v| READABLE_SCHEMA_VERSIONS.contains(&v)) {
            return Err(LoadError::Version {
                path: path.into(),
                found,
                min: *READABLE_SCHEMA_VERSIONS.start(),
                max: *READABLE_SCHEMA_VERSIONS.end(),
            });
        }
        serde_path_to_error::deserialize(value).map_err(|e| LoadError::Field {
            path: path.into(),
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }
}
