//! The run file as a whole: its schema version, the top-level [`RunFile`], reading one
//! (version checked first, then every field, then every histogram decoded, each error naming
//! the file and the field) and its load phases listed in one place
//! ([`RunFile::load_phases`]), so every reader names them alike. A histogram that does not
//! decode fails the file when it is read, so no reader (the gate least of all) judges a run
//! on figures it could not check.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{
    auth::AuthFacts,
    chaos::ChaosResult,
    claims::Claim,
    health::HealthSweep,
    histogram::{HistogramError, decode_histogram},
    phase::Results,
    scale::ScaleResult,
    scenarios::{CapacityResult, ConnectionsResult},
    setup::{Config, Environment, FleetFacts},
    shard::{MergedShard, ShardFacts},
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
    /// The scale step, if it was asked for (absent from files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleResult>,
    /// How requests were authorized, when targets asked for OAuth tokens (absent otherwise, and
    /// from files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthFacts>,
    /// The stdio server processes, for stdio targets (absent otherwise and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio: Option<StdioFacts>,
    /// Which shard of a sharded run this file is (`--shard I/N`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardFacts>,
    /// The shards this file was merged from (`loadgen merge`), each with its own figures;
    /// empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedShard>,
    pub claims: Vec<Claim>,
}

/// One phase of a run that put load on the servers, as every reader of its [`Results`] names
/// it.
#[derive(Debug, Clone, Copy)]
pub struct LoadPhase<'a> {
    pub kind: PhaseKind,
    /// Which of the kind's runs (capacity steps count from 1; the others are 1).
    pub number: usize,
    pub results: &'a Results,
}

/// The scenarios whose phases carry [`Results`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PhaseKind {
    Latency,
    Connections,
    /// A capacity step at this intended rate (requests per second).
    Capacity {
        rate: f64,
    },
    Chaos,
}

impl LoadPhase<'_> {
    /// A name for files and tags (letters, digits, `-`): `latency`, `connections`,
    /// `capacity-2-800rps`, `chaos`.
    pub fn key(&self) -> String {
        match self.kind {
            PhaseKind::Latency => "latency".into(),
            PhaseKind::Connections => "connections".into(),
            PhaseKind::Capacity { rate } => format!("capacity-{}-{rate:.0}rps", self.number),
            PhaseKind::Chaos => "chaos".into(),
        }
    }

    /// Where the phase's [`Results`] sit in the run file, as a JSON path: `latency`,
    /// `capacity.steps[1].results`, ...
    pub fn json_path(&self) -> String {
        match self.kind {
            PhaseKind::Latency => "latency".into(),
            PhaseKind::Connections => "connections.results".into(),
            PhaseKind::Capacity { .. } => format!("capacity.steps[{}].results", self.number - 1),
            PhaseKind::Chaos => "chaos.results".into(),
        }
    }

    /// The name people read: `latency`, `capacity 800 req/s`, ...
    pub fn label(&self) -> String {
        match self.kind {
            PhaseKind::Capacity { rate } => format!("capacity {rate:.0} req/s"),
            _ => self.key(),
        }
    }
}

impl RunFile {
    /// Every phase that put load on the servers, in the order they ran.
    pub fn load_phases(&self) -> Vec<LoadPhase<'_>> {
        let one = |kind, results| LoadPhase {
            kind,
            number: 1,
            results,
        };
        let mut out = Vec::new();
        if let Some(r) = &self.latency {
            out.push(one(PhaseKind::Latency, r));
        }
        if let Some(c) = &self.connections {
            out.push(one(PhaseKind::Connections, &c.results));
        }
        if let Some(c) = &self.capacity {
            out.extend(c.steps.iter().enumerate().map(|(i, s)| LoadPhase {
                kind: PhaseKind::Capacity { rate: s.rate },
                number: i + 1,
                results: &s.results,
            }));
        }
        if let Some(c) = &self.chaos {
            out.push(one(PhaseKind::Chaos, &c.results));
        }
        out
    }

    /// Every encoded histogram of the file with its JSON path (`latency.histogram.data`,
    /// `latency.per_second[3].histogram`, `sync.figures.histograms.ack.data`, ...).
    pub fn encoded_histograms(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for phase in self.load_phases() {
            let at = phase.json_path();
            let r = phase.results;
            out.push((format!("{at}.histogram.data"), r.histogram.data.as_str()));
            for (name, h) in [
                ("service_histogram", &r.service_histogram),
                ("ttfb_histogram", &r.ttfb_histogram),
            ] {
                if let Some(h) = h {
                    out.push((format!("{at}.{name}.data"), h.data.as_str()));
                }
            }
            for (list, rows) in [
                ("by_call", &r.by_call),
                ("by_group", &r.by_group),
                ("by_server", &r.by_server),
            ] {
                for (i, row) in rows.iter().enumerate() {
                    if let Some(h) = &row.histogram {
                        out.push((format!("{at}.{list}[{i}].histogram"), h.as_str()));
                    }
                }
            }
            for (i, second) in r.per_second.iter().enumerate() {
                out.push((format!("{at}.per_second[{i}].histogram"), &second.histogram));
            }
        }
        if let Some(f) = self.sync.as_ref().and_then(|s| s.figures.as_ref()) {
            let h = &f.histograms;
            let named = [
                ("ack", &h.ack),
                ("lag", &h.lag),
                ("baseline_read", &h.baseline_read),
            ];
            for (name, encoded) in named
                .into_iter()
                .chain(h.server_lag.iter().map(|e| ("server_lag", e)))
            {
                out.push((
                    format!("sync.figures.histograms.{name}.data"),
                    &encoded.data,
                ));
            }
            // Older files have the per-second figures without their histograms.
            for (i, second) in f.per_second.iter().enumerate() {
                if !second.ack_histogram.is_empty() {
                    out.push((
                        format!("sync.figures.per_second[{i}].ack_histogram"),
                        &second.ack_histogram,
                    ));
                }
            }
        }
        out
    }
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
    #[error("{path}: field `{field}`: {source}")]
    Histogram {
        path: String,
        field: String,
        source: HistogramError,
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
        let run: Self = serde_path_to_error::deserialize(value).map_err(|e| LoadError::Field {
            path: path.into(),
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        for (field, data) in run.encoded_histograms() {
            decode_histogram(data).map_err(|source| LoadError::Histogram {
                path: path.into(),
                field,
                source,
            })?;
        }
        Ok(run)
    }
}
