//! The bundled OSV snapshot: its record format, and the index built from it once, on first
//! use: advisories by (ecosystem, normalised name), every range turned into pre-parsed
//! intervals, and each advisory's severity decided.

use std::{collections::HashMap, sync::LazyLock};

use super::{
    cvss::cvss3_base_score, cvss::severity_from_score, ecosystem::Ecosystem, version::Version,
};
use crate::tools::security::severity::Severity;

const SNAPSHOT_JSON: &str = include_str!("../../../../data/osv-snapshot.json");

#[derive(serde::Deserialize)]
pub(super) struct OsvRecord {
    pub(super) id: String,
    #[serde(default)]
    pub(super) aliases: Vec<String>,
    #[serde(default)]
    pub(super) summary: String,
    #[serde(default)]
    pub(super) affected: Vec<OsvAffected>,
    #[serde(default)]
    pub(super) severity: Vec<OsvSeverity>,
    #[serde(default)]
    pub(super) database_specific: Option<OsvDatabaseSpecific>,
}

#[derive(serde::Deserialize)]
pub(super) struct OsvAffected {
    pub(super) package: OsvPackage,
    #[serde(default)]
    pub(super) ranges: Vec<OsvRange>,
    #[serde(default)]
    pub(super) versions: Vec<String>,
}

#[derive(serde::Deserialize)]
pub(super) struct OsvPackage {
    pub(super) ecosystem: String,
    pub(super) name: String,
}

#[derive(serde::Deserialize)]
pub(super) struct OsvRange {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) events: Vec<OsvEvent>,
}

#[derive(serde::Deserialize)]
pub(super) struct OsvEvent {
    pub(super) introduced: Option<String>,
    pub(super) fixed: Option<String>,
    pub(super) last_affected: Option<String>,
}

#[derive(serde::Deserialize)]
pub(super) struct OsvSeverity {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) score: String,
}

#[derive(serde::Deserialize)]
pub(super) struct OsvDatabaseSpecific {
    pub(super) severity: Option<String>,
}

pub(super) struct Advisory {
    pub(super) id: String,
    pub(super) aliases: Vec<String>,
    pub(super) summary: String,
    pub(super) severity: Severity,
}

pub(super) enum Upper {
    Fixed(Version, String),
    LastAffected(Version),
    Open,
}

pub(super) struct Interval {
    /// `None`: from the first release (`introduced: "0"`).
    pub(super) lower: Option<Version>,
    pub(super) upper: Upper,
}

impl Interval {
    pub(super) fn contains(&self, v: &Version) -> bool {
        if self.lower.as_ref().is_some_and(|lo| v < lo) {
            return false;
        }
        match &self.upper {
            Upper::Fixed(hi, _) => v < hi,
            Upper::LastAffected(hi) => v <= hi,
            Upper::Open => true,
        }
    }
}

pub(super) struct AffectedEntry {
    pub(super) advisory: usize,
    pub(super) intervals: Vec<Interval>,
    pub(super) versions: Vec<Version>,
}

pub(super) struct Db {
    pub(super) advisories: Vec<Advisory>,
    pub(super) index: HashMap<(Ecosystem, String), Vec<AffectedEntry>>,
    /// Range bounds or versions that did not parse (should be none; a test checks).
    pub(super) unparsed: Vec<String>,
}

pub(super) static DB: LazyLock<Db> = LazyLock::new(|| {
    let records: Vec<OsvRecord> =
        serde_json::from_str(SNAPSHOT_JSON).expect("bundled OSV snapshot is valid JSON");
    build_db(records)
});

pub(super) fn build_db(records: Vec<OsvRecord>) -> Db {
    let mut db = Db {
        advisories: Vec::with_capacity(records.len()),
        index: HashMap::new(),
        unparsed: Vec::new(),
    };
    for record in records {
        let advisory = db.advisories.len();
        let severity = record_severity(&record);
        for affected in &record.affected {
            let Some(eco) = Ecosystem::from_name(&affected.package.ecosystem) else {
                continue;
            };
            let mut entry = AffectedEntry {
                advisory,
                intervals: Vec::new(),
                versions: Vec::new(),
            };
            for range in &affected.ranges {
                if range.kind.eq_ignore_ascii_case("GIT") {
                    continue;
                }
                entry.intervals.extend(build_intervals(
                    eco,
                    &record.id,
                    &range.events,
                    &mut db.unparsed,
                ));
            }
            for v in &affected.versions {
                match eco.parse_version(v) {
                    Some(parsed) => entry.versions.push(parsed),
                    None => db.unparsed.push(format!("{}: version {v}", record.id)),
                }
            }
            db.index
                .entry((eco, eco.normalize_name(&affected.package.name)))
                .or_default()
                .push(entry);
        }
        db.advisories.push(Advisory {
            id: record.id,
            aliases: record.aliases,
            summary: record.summary,
            severity,
        });
    }
    for list in &db.unparsed {
        tracing::warn!(bound = %list, "OSV snapshot bound did not parse; ignored");
    }
    db
}

pub(super) enum EventKind {
    Introduced,
    Fixed(String),
    LastAffected,
}

pub(super) fn build_intervals(
    eco: Ecosystem,
    id: &str,
    events: &[OsvEvent],
    unparsed: &mut Vec<String>,
) -> Vec<Interval> {
    let mut parsed: Vec<(Option<Version>, EventKind)> = Vec::with_capacity(events.len());
    for ev in events {
        let (raw, kind) = if let Some(v) = &ev.introduced {
            (v, EventKind::Introduced)
        } else if let Some(v) = &ev.fixed {
            (v, EventKind::Fixed(v.clone()))
        } else if let Some(v) = &ev.last_affected {
            (v, EventKind::LastAffected)
        } else {
            continue;
        };
        if matches!(kind, EventKind::Introduced) && raw == "0" {
            parsed.push((None, kind));
            continue;
        }
        match eco.parse_version(raw) {
            Some(v) => parsed.push((Some(v), kind)),
            None => unparsed.push(format!("{id}: {raw}")),
        }
    }
    // OSV: events are evaluated in version order; `None` ("0") sorts first.
    parsed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    let mut open: Option<Option<Version>> = None;
    for (v, kind) in parsed {
        match kind {
            EventKind::Introduced => {
                if open.is_none() {
                    open = Some(v);
                }
            }
            EventKind::Fixed(raw) => {
                if let (Some(lower), Some(v)) = (open.take(), v) {
                    out.push(Interval {
                        lower,
                        upper: Upper::Fixed(v, raw),
                    });
                }
            }
            EventKind::LastAffected => {
                if let (Some(lower), Some(v)) = (open.take(), v) {
                    out.push(Interval {
                        lower,
                        upper: Upper::LastAffected(v),
                    });
                }
            }
        }
    }
    if let Some(lower) = open {
        out.push(Interval {
            lower,
            upper: Upper::Open,
        });
    }
    out
}

pub(super) fn record_severity(record: &OsvRecord) -> Severity {
    if let Some(s) = record
        .database_specific
        .as_ref()
        .and_then(|d| d.severity.as_deref())
    {
        match s.to_ascii_uppercase().as_str() {
            "LOW" => return Severity::Low,
            "MODERATE" | "MEDIUM" => return Severity::Medium,
            "HIGH" => return Severity::High,
            "CRITICAL" => return Severity::Critical,
            _ => {}
        }
    }
    record
        .severity
        .iter()
        .filter(|s| s.kind.starts_with("CVSS_V3"))
        .find_map(|s| cvss3_base_score(&s.score))
        .map_or(Severity::Medium, severity_from_score)
}
