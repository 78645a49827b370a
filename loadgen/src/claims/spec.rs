//! Claims as written: a claims file's [`ClaimSpec`]s (each a [`Metric`], a [`Comparator`] and a
//! bound), parsed and validated with the file named in every error, and the compiled-in seed
//! report's claims.

use std::{collections::BTreeSet, path::Path};

use serde::{Deserialize, Serialize};

/// The seed report's claims, as shipped in `ci/claims/seed-report.toml`.
pub const SEED_REPORT_CLAIMS: &str = include_str!("../../../ci/claims/seed-report.toml");

/// What a run can measure. Units are in the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    LatencyMeanMs,
    LatencyP50Ms,
    LatencyP90Ms,
    LatencyP99Ms,
    LatencyP999Ms,
    LatencyMaxMs,
    /// Share of the latency run's requests that succeeded.
    SuccessPercent,
    /// Share of servers that answered the health sweep.
    AvailabilityPercent,
    /// Servers that answered the health sweep.
    ServersAnswered,
    ThroughputRps,
    /// Most open connections the embedded fleet's servers counted at once.
    OpenConnectionsMax,
    /// Connections held for a whole hold period (the `connections` scenario).
    ConnectionsHeld,
    /// Mean latency while those connections were held (the `connections` scenario).
    ConnectionsLatencyMeanMs,
    /// p99 latency while those connections were held (the `connections` scenario).
    ConnectionsLatencyP99Ms,
    /// Highest open-model rate whose p99 stayed within the bound (the `capacity` scenario).
    CapacityRps,
    /// Write-to-visible lag across servers (the `sync` scenario).
    SyncLagP99Ms,
    /// Acknowledged memory writes missing afterwards (the `sync` scenario).
    LostWrites,
    /// Seconds from a server's failure to healthy again, the slowest of the chaos scenario's
    /// kills and pauses.
    RecoveryS,
    /// Share of the chaos scenario's requests that succeeded while servers failed.
    ChaosSuccessPercent,
    /// Servers that answered a sweep after the fleet was grown to its size through the admin
    /// API (the `scale` step); the health sweep's count when the step did not run.
    ScaleServersAnswered,
}

impl Metric {
    /// The scenario that measures this metric.
    pub fn scenario(self) -> &'static str {
        match self {
            Metric::LatencyMeanMs
            | Metric::LatencyP50Ms
            | Metric::LatencyP90Ms
            | Metric::LatencyP99Ms
            | Metric::LatencyP999Ms
            | Metric::LatencyMaxMs
            | Metric::SuccessPercent
            | Metric::ThroughputRps
            | Metric::OpenConnectionsMax => "latency",
            Metric::AvailabilityPercent | Metric::ServersAnswered => "health",
            Metric::ConnectionsHeld
            | Metric::ConnectionsLatencyMeanMs
            | Metric::ConnectionsLatencyP99Ms => "connections",
            Metric::CapacityRps => "capacity",
            Metric::SyncLagP99Ms | Metric::LostWrites => "sync",
            Metric::RecoveryS | Metric::ChaosSuccessPercent => "chaos",
            Metric::ScaleServersAnswered => "scale",
        }
    }

    /// A latency figure of the latency scenario (mean, a percentile or the max): what the
    /// closed-loop note and the capacity search's bound are about.
    pub(crate) fn is_latency_figure(self) -> bool {
        self.scenario() == "latency" && self.name().starts_with("latency_")
    }

    pub(crate) fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparator {
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "==")]
    Eq,
}

impl Comparator {
    pub(crate) fn holds(self, value: f64, target: f64) -> bool {
        match self {
            Comparator::Le => value <= target,
            Comparator::Lt => value < target,
            Comparator::Ge => value >= target,
            Comparator::Gt => value > target,
            Comparator::Eq => (value - target).abs() < 1e-9,
        }
    }

    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Comparator::Le => "<=",
            Comparator::Lt => "<",
            Comparator::Ge => ">=",
            Comparator::Gt => ">",
            Comparator::Eq => "==",
        }
    }
}

/// One claim as written in a claims file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    pub id: String,
    pub title: String,
    pub quote: String,
    pub metric: Metric,
    pub comparator: Comparator,
    pub target: f64,
    /// The scenario that measures the metric; checked against it, so a claims file says
    /// which scenario each claim needs.
    #[serde(default)]
    pub scenario: Option<String>,
    /// A run that measured fewer servers says nothing about the claim.
    #[serde(default)]
    pub min_servers: Option<usize>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsFile {
    claims: Vec<ClaimSpec>,
}

/// A claims file that cannot be used, naming the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    #[error("cannot read claims file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("claims file {path} is not valid")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("claims file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// Parses and validates claims; `origin` names the source in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<ClaimSpec>, ClaimsError> {
    let file: ClaimsFile = toml::from_str(text).map_err(|source| ClaimsError::Parse {
        path: origin.to_string(),
        source: Box::new(source),
    })?;
    let invalid = |message: String| ClaimsError::Invalid {
        path: origin.to_string(),
        message,
    };
    if file.claims.is_empty() {
        return Err(invalid("it has no [[claims]]".into()));
    }
    let mut ids = BTreeSet::new();
    for (i, c) in file.claims.iter().enumerate() {
        let id_ok = !c.id.is_empty()
            && c.id
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !id_ok {
            return Err(invalid(format!(
                "claims[{i}].id `{}` must be non-empty [a-z0-9_]",
                c.id
            )));
        }
        if !ids.insert(c.id.as_str()) {
            return Err(invalid(format!("claims[{i}].id `{}` is used twice", c.id)));
        }
        if !c.target.is_finite() {
            return Err(invalid(format!(
                "claims[{i}].target must be a finite number"
            )));
        }
        if c.title.trim().is_empty() {
            return Err(invalid(format!("claims[{i}].title is empty")));
        }
        if let Some(scenario) = &c.scenario
            && scenario != c.metric.scenario()
        {
            return Err(invalid(format!(
                "claims[{i}].scenario `{scenario}`: metric {} is measured by the `{}` scenario",
                c.metric.name(),
                c.metric.scenario()
            )));
        }
    }
    Ok(file.claims)
}

/// Reads claims from a file, or the compiled-in seed report's claims.
pub fn load(path: Option<&Path>) -> Result<Vec<ClaimSpec>, ClaimsError> {
    match path {
        None => parse(SEED_REPORT_CLAIMS, "ci/claims/seed-report.toml (built in)"),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ClaimsError::Read {
                path: path.display().to_string(),
                source,
            })?;
            parse(&text, &path.display().to_string())
        }
    }
}

/// The bound of the first latency claim with `<=` or `<`, in ms: what "the claimed latency"
/// means for the capacity search.
pub fn latency_bound_ms(specs: &[ClaimSpec]) -> Option<f64> {
    specs
        .iter()
        .find(|c| {
            c.metric.is_latency_figure() && matches!(c.comparator, Comparator::Le | Comparator::Lt)
        })
        .map(|c| c.target)
}
