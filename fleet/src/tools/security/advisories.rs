//! `check_package`: looks a package version up in a bundled snapshot of OSV advisories.
//!
//! The snapshot (`fleet/data/osv-snapshot.json`) is a JSON array of OSV records, copied from
//! the GitHub Advisory Database and the RustSec database, for well-known vulnerabilities in
//! the `crates.io`, `npm`, `PyPI` and `Go` ecosystems. It is small on purpose: it is a
//! deterministic, offline stand-in for a real advisory feed, not a complete one. A package
//! that is not in it is reported as not vulnerable *according to the snapshot*.
//!
//! It is parsed once, on first use, and indexed by (ecosystem, normalised package name),
//! with every range bound pre-parsed, so a lookup is one hash probe plus a few comparisons.
//!
//! # Names
//! Normalised as each ecosystem does: PyPI per PEP 503 (lower case, runs of `-`, `_`, `.`
//! become one `-`); crates.io lower case with `_` and `-` equivalent; npm lower case; Go
//! module paths are case-sensitive and kept as given. For Go, a package path inside a module
//! (e.g. `golang.org/x/net/http2`) also finds the module's advisories.
//!
//! # Versions
//! * crates.io, npm, Go: Semantic Versioning via the `semver` crate, compared by precedence
//!   (build metadata ignored, so Go's `+incompatible` is harmless). A leading `v` is
//!   accepted, and one- or two-part versions (`2`, `2.3`) are padded with zeros. Go
//!   pseudo-versions (`v0.0.0-20220314234659-1baeb96d0d9b`) are ordinary pre-releases.
//! * PyPI: PEP 440 ordering of epoch, release (trailing zeros insignificant), pre-release
//!   (`a`/`b`/`rc` and their long spellings), post-release and dev-release segments. Local
//!   version labels (`+ubuntu1`) are accepted but ignored when comparing, and
//!   leading zeros are numeric (`2015.04.28` == `2015.4.28`).
//!
//! Limits: npm ranges (`^1.2`), PEP 440 specifiers (`>=2`) and wildcards are not versions and
//! are refused; version strings that are neither SemVer-like nor PEP 440 are refused too.
//!
//! # Ranges
//! OSV semantics: `introduced` is inclusive (`"0"` means "from the first release"), `fixed`
//! exclusive, `last_affected` inclusive; an `introduced` without an end stays open. An
//! affected entry's explicit `versions` list is honoured as well. `fixedIn` is the `fixed`
//! bound of the range that matched (none for `last_affected` or open ranges).
//!
//! # Severity
//! `database_specific.severity` (`LOW`/`MODERATE`/`HIGH`/`CRITICAL`) when present, else the
//! CVSS v3 base score of `severity[].score` (0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high,
//! 9.0–10 critical), else `medium`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::LazyLock;

use super::{severity::Severity, text::excerpt};
use crate::tools::error::ToolInputError;

/// Ecosystem names `check_package` accepts (matched case-insensitively).
pub const SUPPORTED_ECOSYSTEMS: [&str; 4] = ["crates.io", "npm", "PyPI", "Go"];

/// Date of the newest advisory in the bundled snapshot.
const SNAPSHOT_DATE: &str = "2024-06-17";

const SNAPSHOT_JSON: &str = include_str!("../../../data/osv-snapshot.json");

const MAX_NAME_BYTES: usize = 256;
const MAX_VERSION_BYTES: usize = 128;

/// Arguments of `check_package`.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckPackageArgs {
    /// Package ecosystem: `crates.io`, `npm`, `PyPI` or `Go` (case-insensitive).
    pub ecosystem: String,
    /// Package name as published, e.g. `tokio`, `lodash`, `PyYAML`, `golang.org/x/net`.
    /// Normalised the way the ecosystem does (PyPI: `Foo_Bar` == `foo-bar`).
    pub name: String,
    /// One exact version, e.g. `1.2.3`, `v0.17.0` (Go) or `2.31.0rc1` (PyPI). Ranges such as
    /// `^1.2` or `>=2` are not accepted.
    pub version: String,
}

/// One advisory that affects the requested version.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvisoryMatch {
    /// Advisory id (`GHSA-…`, `RUSTSEC-…`).
    pub id: String,
    /// Other ids for the same issue (CVE, GHSA).
    pub aliases: Vec<String>,
    /// One-line summary.
    pub summary: String,
    /// Severity of the advisory.
    pub severity: Severity,
    /// First version that fixes it on the matching release line, when one is known.
    pub fixed_in: Option<String>,
}

/// Result of `check_package`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckPackageOutput {
    /// Canonical ecosystem name.
    pub ecosystem: String,
    /// Normalised package name that was looked up.
    pub name: String,
    /// The version that was checked, as given.
    pub version: String,
    /// True when at least one advisory affects this version.
    pub vulnerable: bool,
    /// Advisories affecting this version, ordered by id.
    pub advisories: Vec<AdvisoryMatch>,
    /// Date of the newest advisory in the bundled snapshot (`YYYY-MM-DD`).
    pub snapshot_date: String,
}

/// Looks `args` up in the bundled advisory snapshot.
pub fn check_package(args: &CheckPackageArgs) -> Result<CheckPackageOutput, ToolInputError> {
    let ecosystem = Ecosystem::parse(&args.ecosystem)?;
    let name = validate_name("name", &args.name)?;
    let version_str = args.version.trim();
    let version = ecosystem.parse_version_arg("version", version_str)?;
    let normalized = ecosystem.normalize_name(name);
    let advisories = lookup(ecosystem, &normalized, &version);
    Ok(CheckPackageOutput {
        ecosystem: ecosystem.as_str().to_string(),
        name: normalized,
        version: version_str.to_string(),
        vulnerable: !advisories.is_empty(),
        advisories,
        snapshot_date: SNAPSHOT_DATE.to_string(),
    })
}

/// Number of advisories in the bundled snapshot.
pub fn advisory_count() -> usize {
    DB.advisories.len()
}

/// Date of the newest advisory in the bundled snapshot (`YYYY-MM-DD`).
pub fn snapshot_date() -> &'static str {
    SNAPSHOT_DATE
}

// ---------------------------------------------------------------------------------------
// Ecosystems, names and versions (shared with the lockfile scanner).

/// A supported package ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Ecosystem {
    CratesIo,
    Npm,
    PyPi,
    Go,
}

impl Ecosystem {
    /// Case-insensitive parse of an ecosystem name; the error names `ecosystem`.
    pub(crate) fn parse(s: &str) -> Result<Self, ToolInputError> {
        Self::from_name(s).ok_or_else(|| {
            ToolInputError::new(
                "ecosystem",
                format!(
                    "unknown ecosystem `{}`; supported: {}",
                    excerpt(s.trim(), 40),
                    SUPPORTED_ECOSYSTEMS.join(", ")
                ),
            )
        })
    }

    fn from_name(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("crates.io") {
            Some(Self::CratesIo)
        } else if s.eq_ignore_ascii_case("npm") {
            Some(Self::Npm)
        } else if s.eq_ignore_ascii_case("pypi") {
            Some(Self::PyPi)
        } else if s.eq_ignore_ascii_case("go") {
            Some(Self::Go)
        } else {
            None
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::CratesIo => "crates.io",
            Self::Npm => "npm",
            Self::PyPi => "PyPI",
            Self::Go => "Go",
        }
    }

    /// The name the ecosystem's registry treats as identical to `name`.
    pub(crate) fn normalize_name(self, name: &str) -> String {
        let name = name.trim();
        match self {
            Self::CratesIo => name.to_ascii_lowercase().replace('_', "-"),
            Self::Npm => name.to_ascii_lowercase(),
            Self::PyPi => {
                let mut out = String::with_capacity(name.len());
                let mut pending_sep = false;
                for c in name.chars() {
                    if matches!(c, '-' | '_' | '.') {
                        pending_sep = true;
                    } else {
                        if pending_sep && !out.is_empty() {
                            out.push('-');
                        }
                        pending_sep = false;
                        out.push(c.to_ascii_lowercase());
                    }
                }
                out
            }
            Self::Go => name.trim_end_matches('/').to_string(),
        }
    }

    /// Parses one exact version in this ecosystem's scheme.
    pub(crate) fn parse_version(self, s: &str) -> Option<Version> {
        match self {
            Self::PyPi => PepVersion::parse(s).map(Version::Pep),
            Self::CratesIo | Self::Npm | Self::Go => parse_semverish(s).map(Version::Sem),
        }
    }

    fn parse_version_arg(self, field: &str, s: &str) -> Result<Version, ToolInputError> {
        if s.is_empty() {
            return Err(ToolInputError::new(field, "must not be empty"));
        }
        if s.len() > MAX_VERSION_BYTES {
            return Err(ToolInputError::new(
                field,
                format!("is longer than {MAX_VERSION_BYTES} bytes"),
            ));
        }
        self.parse_version(s).ok_or_else(|| {
            let scheme = match self {
                Self::PyPi => "a PEP 440 version such as `2.31.0` or `1.0rc1`",
                Self::Go => "a module version such as `v0.17.0`",
                Self::CratesIo | Self::Npm => "a SemVer version such as `1.2.3`",
            };
            ToolInputError::new(
                field,
                format!(
                    "`{}` is not a valid {} version; expected {scheme} (ranges are not accepted)",
                    excerpt(s, 40),
                    self.as_str()
                ),
            )
        })
    }
}

fn validate_name<'a>(field: &str, name: &'a str) -> Result<&'a str, ToolInputError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(ToolInputError::new(field, "must not be empty"));
    }
    if trimmed.len() > MAX_NAME_BYTES {
        return Err(ToolInputError::new(
            field,
            format!("is longer than {MAX_NAME_BYTES} bytes"),
        ));
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ToolInputError::new(
            field,
            "must not contain whitespace or control characters",
        ));
    }
    Ok(trimmed)
}

/// A version in one ecosystem's scheme. Versions of different schemes never meet (the
/// ecosystem decides the scheme), but the order is total anyway: SemVer sorts first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Version {
    Sem(semver::Version),
    Pep(PepVersion),
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Version::Sem(a), Version::Sem(b)) => a.cmp_precedence(b),
            (Version::Pep(a), Version::Pep(b)) => a.cmp(b),
            (Version::Sem(_), Version::Pep(_)) => Ordering::Less,
            (Version::Pep(_), Version::Sem(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// SemVer, tolerating a leading `v` and one- or two-part versions.
fn parse_semverish(s: &str) -> Option<semver::Version> {
    let s = s.trim();
    let s = s
        .strip_prefix('v')
        .or_else(|| s.strip_prefix('V'))
        .unwrap_or(s);
    if s.is_empty() || s.len() > MAX_VERSION_BYTES {
        return None;
    }
    if let Ok(v) = semver::Version::parse(s) {
        return Some(v);
    }
    let split = s.find(['-', '+']).unwrap_or(s.len());
    let (core, rest) = s.split_at(split);
    let parts = core.split('.').count();
    if !(1..=2).contains(&parts) || core.split('.').any(|p| p.is_empty()) {
        return None;
    }
    let padded = format!("{core}{}{rest}", ".0".repeat(3 - parts));
    semver::Version::parse(&padded).ok()
}

/// Sort key of a [`PepVersion`]: epoch, release, pre-release phase, post, dev.
type PepKey<'a> = (u64, &'a [u64], (u8, u8, u64), (u8, u64), (u8, u64));

/// A PEP 440 version, reduced to what ordering needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PepVersion {
    epoch: u64,
    /// Release segments with trailing zeros removed (`1.0.0` == `1`).
    release: Vec<u64>,
    /// Pre-release: (0 = alpha, 1 = beta, 2 = rc, number).
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
}

impl PepVersion {
    /// Parses a PEP 440 version (normalised spellings accepted, e.g. `1.0-RC.1`, `v2`,
    /// `1.0.post1`, `1.0-1`, `1!2.0`, `1.0+local`).
    pub(crate) fn parse(input: &str) -> Option<Self> {
        let lower = input.trim().to_ascii_lowercase();
        if lower.is_empty() || lower.len() > MAX_VERSION_BYTES {
            return None;
        }
        let s = lower.strip_prefix('v').unwrap_or(&lower);
        // Local version label: validated, then ignored.
        let s = match s.split_once('+') {
            Some((public, local)) => {
                if local.is_empty()
                    || !local
                        .split(['.', '-', '_'])
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
                {
                    return None;
                }
                public
            }
            None => s,
        };
        let (epoch, s) = match s.split_once('!') {
            Some((e, rest)) => (e.parse::<u64>().ok()?, rest),
            None => (0, s),
        };
        let b = s.as_bytes();
        let mut i = 0;
        let mut release = Vec::with_capacity(4);
        loop {
            let (n, next) = read_number(b, i)?;
            release.push(n);
            i = next;
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
            } else {
                break;
            }
        }
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        // Pre-release.
        let j = skip_sep(b, i);
        if let Some((kind, len)) = match_word(
            b,
            j,
            &[
                ("alpha", 0),
                ("beta", 1),
                ("preview", 2),
                ("pre", 2),
                ("rc", 2),
                ("a", 0),
                ("b", 1),
                ("c", 2),
            ],
        ) {
            let k = skip_sep(b, j + len);
            let (n, next) = read_number(b, k).unwrap_or((0, j + len));
            pre = Some((kind, n));
            i = next;
        }
        // Post-release: `-N` or `[sep]post|rev|r[sep]N`.
        if i < b.len() && b[i] == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let (n, next) = read_number(b, i + 1)?;
            post = Some(n);
            i = next;
        } else {
            let j = skip_sep(b, i);
            if let Some((_, len)) = match_word(b, j, &[("post", 0), ("rev", 0), ("r", 0)]) {
                let k = skip_sep(b, j + len);
                let (n, next) = read_number(b, k).unwrap_or((0, j + len));
                post = Some(n);
                i = next;
            }
        }
        // Dev-release.
        let j = skip_sep(b, i);
        if let Some((_, len)) = match_word(b, j, &[("dev", 0)]) {
            let k = skip_sep(b, j + len);
            let (n, next) = read_number(b, k).unwrap_or((0, j + len));
            dev = Some(n);
            i = next;
        }
        if i != b.len() {
            return None;
        }
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        Some(Self {
            epoch,
            release,
            pre,
            post,
            dev,
        })
    }

    fn key(&self) -> PepKey<'_> {
        // PEP 440: 1.0.dev0 < 1.0a1.dev0 < 1.0a1 < 1.0 < 1.0.post1.dev0 < 1.0.post1
        let pre = match (self.pre, self.post, self.dev) {
            (None, None, Some(_)) => (0, 0, 0),
            (Some((kind, n)), _, _) => (1, kind, n),
            (None, _, _) => (2, 0, 0),
        };
        let post = self.post.map_or((0, 0), |n| (1, n));
        let dev = self.dev.map_or((1, 0), |n| (0, n));
        (self.epoch, &self.release, pre, post, dev)
    }
}

impl Ord for PepVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let (ae, ar, ap, apo, ad) = self.key();
        let (be, br, bp, bpo, bd) = other.key();
        ae.cmp(&be)
            .then_with(|| cmp_release(ar, br))
            .then(ap.cmp(&bp))
            .then(apo.cmp(&bpo))
            .then(ad.cmp(&bd))
    }
}

impl PartialOrd for PepVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares release tuples, padding the shorter with zeros.
fn cmp_release(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn read_number(b: &[u8], start: usize) -> Option<(u64, usize)> {
    let mut i = start;
    let mut n: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n.checked_mul(10)?.checked_add(u64::from(b[i] - b'0'))?;
        i += 1;
    }
    (i > start).then_some((n, i))
}

fn skip_sep(b: &[u8], i: usize) -> usize {
    if i < b.len() && matches!(b[i], b'.' | b'-' | b'_') {
        i + 1
    } else {
        i
    }
}

fn match_word(b: &[u8], i: usize, words: &[(&str, u8)]) -> Option<(u8, usize)> {
    let rest = b.get(i..)?;
    words
        .iter()
        .find(|(w, _)| rest.starts_with(w.as_bytes()))
        .map(|&(w, kind)| (kind, w.len()))
}

// ---------------------------------------------------------------------------------------
// The snapshot and its index.

#[derive(serde::Deserialize)]
struct OsvRecord {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    affected: Vec<OsvAffected>,
    #[serde(default)]
    severity: Vec<OsvSeverity>,
    #[serde(default)]
    database_specific: Option<OsvDatabaseSpecific>,
}

#[derive(serde::Deserialize)]
struct OsvAffected {
    package: OsvPackage,
    #[serde(default)]
    ranges: Vec<OsvRange>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(serde::Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
}

#[derive(serde::Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<OsvEvent>,
}

#[derive(serde::Deserialize)]
struct OsvEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
}

#[derive(serde::Deserialize)]
struct OsvSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(serde::Deserialize)]
struct OsvDatabaseSpecific {
    severity: Option<String>,
}

struct Advisory {
    id: String,
    aliases: Vec<String>,
    summary: String,
    severity: Severity,
}

enum Upper {
    Fixed(Version, String),
    LastAffected(Version),
    Open,
}

struct Interval {
    /// `None`: from the first release (`introduced: "0"`).
    lower: Option<Version>,
    upper: Upper,
}

impl Interval {
    fn contains(&self, v: &Version) -> bool {
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

struct AffectedEntry {
    advisory: usize,
    intervals: Vec<Interval>,
    versions: Vec<Version>,
}

struct Db {
    advisories: Vec<Advisory>,
    index: HashMap<(Ecosystem, String), Vec<AffectedEntry>>,
    /// Range bounds or versions that did not parse (should be none; a test checks).
    unparsed: Vec<String>,
}

static DB: LazyLock<Db> = LazyLock::new(|| {
    let records: Vec<OsvRecord> =
        serde_json::from_str(SNAPSHOT_JSON).expect("bundled OSV snapshot is valid JSON");
    build_db(records)
});

fn build_db(records: Vec<OsvRecord>) -> Db {
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

enum EventKind {
    Introduced,
    Fixed(String),
    LastAffected,
}

fn build_intervals(
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

fn record_severity(record: &OsvRecord) -> Severity {
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

fn severity_from_score(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// CVSS v3.x base score of a vector such as `CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`.
pub(crate) fn cvss3_base_score(vector: &str) -> Option<f64> {
    let mut metrics: HashMap<&str, &str> = HashMap::new();
    for part in vector.split('/').skip(1) {
        let (k, v) = part.split_once(':')?;
        metrics.insert(k, v);
    }
    let scope_changed = match *metrics.get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match *metrics.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *metrics.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (*metrics.get("PR")?, scope_changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *metrics.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        match *metrics.get(k)? {
            "H" => Some(0.56),
            "L" => Some(0.22),
            "N" => Some(0.0),
            _ => None,
        }
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - (1.0 - c) * (1.0 - i) * (1.0 - a);
    let impact = if scope_changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02_f64).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if scope_changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Some(roundup(raw))
}

/// CVSS v3.1 "Roundup": smallest number with one decimal that is >= `x`.
fn roundup(x: f64) -> f64 {
    let int_input = (x * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

/// Advisories in the snapshot affecting `version` of the package `name` (already
/// normalised for `eco`), ordered by id.
pub(crate) fn lookup(eco: Ecosystem, name: &str, version: &Version) -> Vec<AdvisoryMatch> {
    let db = &*DB;
    let mut entries = db.index.get(&(eco, name.to_string()));
    if entries.is_none() && eco == Ecosystem::Go {
        // A package path inside a module: try enclosing paths, but never across a major
        // version suffix (`…/v2` is a different module).
        let mut path = name;
        while let Some((parent, last)) = path.rsplit_once('/') {
            if is_major_suffix(last) || !parent.contains('/') {
                break;
            }
            if let Some(found) = db.index.get(&(eco, parent.to_string())) {
                entries = Some(found);
                break;
            }
            path = parent;
        }
    }
    let Some(entries) = entries else {
        return Vec::new();
    };
    let mut out: Vec<AdvisoryMatch> = Vec::new();
    for entry in entries {
        let Some(advisory) = db.advisories.get(entry.advisory) else {
            continue;
        };
        if out.iter().any(|m| m.id == advisory.id) {
            continue;
        }
        let hit = entry
            .intervals
            .iter()
            .find(|iv| iv.contains(version))
            .map(|iv| match &iv.upper {
                Upper::Fixed(_, raw) => Some(raw.clone()),
                Upper::LastAffected(_) | Upper::Open => None,
            })
            .or_else(|| entry.versions.contains(version).then_some(None));
        if let Some(fixed_in) = hit {
            out.push(AdvisoryMatch {
                id: advisory.id.clone(),
                aliases: advisory.aliases.clone(),
                summary: advisory.summary.clone(),
                severity: advisory.severity,
                fixed_in,
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn is_major_suffix(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn check(eco: &str, name: &str, version: &str) -> CheckPackageOutput {
        check_package(&CheckPackageArgs {
            ecosystem: eco.into(),
            name: name.into(),
            version: version.into(),
        })
        .unwrap()
    }

    fn ids(out: &CheckPackageOutput) -> Vec<&str> {
        out.advisories.iter().map(|a| a.id.as_str()).collect()
    }

    fn err(eco: &str, name: &str, version: &str) -> ToolInputError {
        check_package(&CheckPackageArgs {
            ecosystem: eco.into(),
            name: name.into(),
            version: version.into(),
        })
        .unwrap_err()
    }

    #[test]
    fn snapshot_loads_completely() {
        assert!(advisory_count() >= 30, "{}", advisory_count());
        assert!(DB.unparsed.is_empty(), "{:?}", DB.unparsed);
        // Every record has at least one interval or version for a supported ecosystem.
        for (i, adv) in DB.advisories.iter().enumerate() {
            let covered =
                DB.index.values().flatten().any(|e| {
                    e.advisory == i && (!e.intervals.is_empty() || !e.versions.is_empty())
                });
            assert!(covered, "{} has no usable range", adv.id);
        }
        let ids: std::collections::HashSet<_> = DB.advisories.iter().map(|a| &a.id).collect();
        assert_eq!(ids.len(), advisory_count(), "duplicate ids");
        assert_eq!(snapshot_date(), "2024-06-17");
    }

    #[test]
    fn lodash_hit_and_miss() {
        let out = check("npm", "lodash", "4.17.11");
        assert!(out.vulnerable);
        assert_eq!(
            ids(&out),
            vec![
                "GHSA-35jh-r3h4-6jhm",
                "GHSA-jf85-cpcp-j695",
                "GHSA-p6mc-m468-83gw"
            ]
        );
        let defaults_deep = &out.advisories[1];
        assert_eq!(defaults_deep.fixed_in.as_deref(), Some("4.17.12"));
        assert_eq!(defaults_deep.severity, Severity::Critical);
        assert_eq!(defaults_deep.aliases, vec!["CVE-2019-10744".to_string()]);
        assert_eq!(out.snapshot_date, snapshot_date());

        let out = check("npm", "lodash", "4.17.21");
        assert!(!out.vulnerable);
        assert!(out.advisories.is_empty());
        assert!(!check("npm", "left-pad", "1.3.0").vulnerable);
    }

    #[test]
    fn introduced_inclusive_fixed_exclusive() {
        // tokio RUSTSEC-2021-0124: [0.1.14, 1.8.4) and [1.9.0, 1.13.1)
        let hit = |v: &str| ids(&check("crates.io", "tokio", v)).contains(&"RUSTSEC-2021-0124");
        assert!(!hit("0.1.13"));
        assert!(hit("0.1.14"));
        assert!(hit("1.8.3"));
        assert!(!hit("1.8.4"));
        assert!(!hit("1.8.5"));
        assert!(hit("1.9.0"));
        assert!(hit("1.13.0"));
        assert!(!hit("1.13.1"));
        assert!(!hit("1.40.0"));
        let out = check("crates.io", "tokio", "1.9.0");
        let adv = out
            .advisories
            .iter()
            .find(|a| a.id == "RUSTSEC-2021-0124")
            .unwrap();
        assert_eq!(adv.fixed_in.as_deref(), Some("1.13.1"));
        let out = check("crates.io", "tokio", "1.8.0");
        let adv = out
            .advisories
            .iter()
            .find(|a| a.id == "RUSTSEC-2021-0124")
            .unwrap();
        assert_eq!(adv.fixed_in.as_deref(), Some("1.8.4"));
    }

    #[test]
    fn last_affected_inclusive() {
        let jwt = |v: &str| check("Go", "github.com/dgrijalva/jwt-go", v);
        let out = jwt("v3.2.0");
        assert_eq!(ids(&out), vec!["GHSA-w73w-5m7g-f7qc"]);
        assert_eq!(out.advisories[0].fixed_in, None);
        assert!(jwt("3.1.0").vulnerable);
        assert!(!jwt("v3.2.1").vulnerable);
        // Before the introducing pseudo-version.
        assert!(!jwt("v0.0.0-20150101000000-abcdefabcdef").vulnerable);
        assert!(jwt("v0.0.0-20160101000000-abcdefabcdef").vulnerable);
        // The /v4 module is separate and fixed in a pre-release.
        let v4 = |v: &str| check("Go", "github.com/dgrijalva/jwt-go/v4", v);
        assert!(v4("v4.0.0-preview0").vulnerable);
        assert!(!v4("v4.0.0-preview1").vulnerable);
    }

    #[test]
    fn open_ranges_and_versions_list() {
        let records: Vec<OsvRecord> = serde_json::from_str(
            r#"[{"id":"TEST-1","summary":"s","affected":[{"package":{"ecosystem":"npm","name":"pkg"},
                 "ranges":[{"type":"SEMVER","events":[{"introduced":"2.0.0"}]}],
                 "versions":["1.5.0"]}]}]"#,
        )
        .unwrap();
        let db = build_db(records);
        let entry = &db.index[&(Ecosystem::Npm, "pkg".to_string())][0];
        let v = |s: &str| Ecosystem::Npm.parse_version(s).unwrap();
        assert!(entry.intervals[0].contains(&v("2.0.0")));
        assert!(entry.intervals[0].contains(&v("99.0.0")));
        assert!(!entry.intervals[0].contains(&v("1.9.9")));
        assert!(entry.versions.contains(&v("1.5.0")));
        assert_eq!(db.advisories[0].severity, Severity::Medium);
    }

    #[test]
    fn multiple_release_lines() {
        // minimist GHSA-xvch-5gv4-984h: < 0.2.4 and [1.0.0, 1.2.6)
        let hit = |v: &str| check("npm", "minimist", v).vulnerable;
        assert!(hit("0.0.8"));
        assert!(!hit("0.2.4"));
        assert!(hit("1.2.5"));
        assert!(!hit("1.2.6"));
        let out = check("npm", "minimist", "0.2.1");
        assert_eq!(out.advisories[0].fixed_in.as_deref(), Some("0.2.4"));
        // time RUSTSEC-2020-0071: 0.2.0..=0.2.6 unaffected.
        let time = |v: &str| check("crates.io", "time", v).vulnerable;
        assert!(time("0.1.45"));
        assert!(!time("0.2.0"));
        assert!(!time("0.2.6"));
        assert!(time("0.2.7"));
        assert!(!time("0.2.23"));
        assert!(!time("0.3.36"));
    }

    #[test]
    fn prerelease_ordering_npm() {
        // express: [5.0.0-alpha.1, 5.0.0-beta.3) and < 4.19.2
        let hit = |v: &str| check("npm", "express", v).vulnerable;
        assert!(hit("4.19.1"));
        assert!(!hit("4.19.2"));
        assert!(!hit("5.0.0-alpha.0"));
        assert!(hit("5.0.0-alpha.1"));
        assert!(hit("5.0.0-beta.2"));
        assert!(!hit("5.0.0-beta.3"));
        assert!(!hit("5.0.0"));
        // Build metadata does not change precedence.
        assert!(hit("4.19.1+build.7"));
    }

    #[test]
    fn pypi_names_and_versions() {
        let out = check("pypi", "pyyaml", "5.3.1");
        assert_eq!(out.ecosystem, "PyPI");
        assert_eq!(out.name, "pyyaml");
        assert_eq!(ids(&out), vec!["GHSA-8q59-q68h-6hv4"]);
        assert_eq!(out.advisories[0].fixed_in.as_deref(), Some("5.4"));
        assert!(check("PyPI", "PyYAML", "5.4b2").vulnerable);
        assert!(!check("PyPI", "PyYAML", "5.4").vulnerable);
        assert!(!check("PyPI", "PyYAML", "5.4.0").vulnerable);
        assert!(!check("PyPI", "PyYAML", "5.4.1").vulnerable);
        assert!(check("PyPI", "PyYAML", "5.3.99").vulnerable);
        assert!(!check("PyPI", "PyYAML", "6.0").vulnerable);
        // Case normalisation.
        assert!(check("PyPI", "JINJA2", "3.1.2").vulnerable);
        assert!(check("pypi", "Django", "4.2.2").vulnerable);
        assert!(!check("pypi", "django", "4.2.3").vulnerable);
        assert!(!check("pypi", "django", "4.1.10").vulnerable);
        assert!(check("pypi", "django", "3.2.19").vulnerable);
        assert!(!check("pypi", "django", "3.1.14").vulnerable);
        // Werkzeug with a post release and a local label.
        assert!(check("PyPI", "werkzeug", "3.0.2.post1").vulnerable);
        assert!(!check("PyPI", "werkzeug", "3.0.3+local.1").vulnerable);
        // certifi's zero-padded calendar versions.
        assert!(check("PyPI", "certifi", "2023.5.7").vulnerable);
        assert!(!check("PyPI", "certifi", "2023.07.22").vulnerable);
        assert!(!check("PyPI", "certifi", "2014.12.1").vulnerable);
        // urllib3 two lines.
        let u = check("PyPI", "urllib3", "1.26.16");
        assert_eq!(
            ids(&u),
            vec![
                "GHSA-34jh-p97f-mpxf",
                "GHSA-g4mx-q9vg-27p4",
                "GHSA-v845-jxx5-vc9f"
            ]
        );
        let u = check("PyPI", "urllib3", "2.0.6");
        assert_eq!(ids(&u), vec!["GHSA-34jh-p97f-mpxf", "GHSA-g4mx-q9vg-27p4"]);
        assert!(!check("PyPI", "urllib3", "2.2.2").vulnerable);
    }

    #[test]
    fn pypi_name_normalisation() {
        assert_eq!(
            Ecosystem::PyPi.normalize_name("Foo__Bar.baz"),
            "foo-bar-baz"
        );
        assert_eq!(Ecosystem::PyPi.normalize_name("PyYAML"), "pyyaml");
        assert_eq!(
            Ecosystem::CratesIo.normalize_name("Crossbeam_Deque"),
            "crossbeam-deque"
        );
        assert!(check("crates.io", "crossbeam_deque", "0.8.0").vulnerable);
        assert_eq!(Ecosystem::Npm.normalize_name("Lodash"), "lodash");
    }

    #[test]
    fn pep440_ordering() {
        let p = |s: &str| PepVersion::parse(s).unwrap();
        let ordered = [
            "1.0.dev0",
            "1.0a1.dev0",
            "1.0a1",
            "1.0a2",
            "1.0b1",
            "1.0rc1",
            "1.0",
            "1.0.post1.dev0",
            "1.0.post1",
            "1.0.1",
            "1.1",
            "2!0.1",
        ];
        for w in ordered.windows(2) {
            assert!(p(w[0]) < p(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(p("1.0"), p("1.0.0"));
        assert_eq!(p("1.0-1"), p("1.0.post1"));
        assert_eq!(p("1.0-RC.1"), p("1.0rc1"));
        assert_eq!(p("1.0alpha1"), p("1.0a1"));
        assert_eq!(p("v2.3"), p("2.3"));
        assert_eq!(p("1.0c1"), p("1.0rc1"));
        for bad in [
            "", "abc", "1..0", "1.0+", "1.0 beta", "^1.0", ">=2", "1.*", "1.0.0.x",
        ] {
            assert!(PepVersion::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn semverish_parsing() {
        let s = |v: &str| parse_semverish(v).unwrap().to_string();
        assert_eq!(s("v1.2.3"), "1.2.3");
        assert_eq!(s("2.3"), "2.3.0");
        assert_eq!(s("2"), "2.0.0");
        assert_eq!(s("1.0-beta"), "1.0.0-beta");
        assert_eq!(s("v2.0.0+incompatible"), "2.0.0+incompatible");
        for bad in [
            "", "v", "1.2.3.4", "^1.2", "1.x", "latest", "01.2.3", "1..2",
        ] {
            assert!(parse_semverish(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn go_versions_and_package_paths() {
        assert!(check("go", "golang.org/x/net", "v0.16.0").vulnerable);
        assert!(check("GO", "golang.org/x/net", "0.22.0").vulnerable);
        assert!(!check("Go", "golang.org/x/net", "v0.23.0").vulnerable);
        let out = check("Go", "golang.org/x/net/http2", "v0.6.0");
        assert_eq!(out.advisories.len(), 3);
        assert_eq!(out.name, "golang.org/x/net/http2");
        assert!(check("Go", "golang.org/x/text/language", "v0.3.7").vulnerable);
        // Major-version suffixes are separate modules.
        assert!(!check("Go", "github.com/dgrijalva/jwt-go/v5", "v5.0.0").vulnerable);
        // Go module paths are case-sensitive.
        assert!(!check("Go", "Golang.org/x/net", "v0.1.0").vulnerable);
    }

    #[test]
    fn cross_ecosystem_record() {
        // Terrapin lists russh (crates.io), golang.org/x/crypto (Go) and paramiko (PyPI).
        assert!(check("crates.io", "russh", "0.40.1").vulnerable);
        assert!(check("Go", "golang.org/x/crypto", "v0.16.0").vulnerable);
        let p = check("PyPI", "paramiko", "3.3.1");
        assert_eq!(ids(&p), vec!["GHSA-45x7-px36-x8w8"]);
        // No database_specific severity: derived from CVSS 5.9 -> medium.
        assert_eq!(p.advisories[0].severity, Severity::Medium);
        assert!(!check("npm", "russh", "0.40.1").vulnerable);
    }

    #[test]
    fn cvss_scores() {
        let s = |v: &str| cvss3_base_score(v).unwrap();
        assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), 9.8);
        assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"), 7.5);
        assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:N"), 5.3);
        assert_eq!(s("CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"), 6.2);
        assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"), 6.1);
        assert_eq!(s("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:N"), 5.9);
        assert_eq!(s("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"), 0.0);
        assert!(cvss3_base_score("CVSS:3.1/AV:X").is_none());
        let smallvec = check("crates.io", "smallvec", "1.6.0");
        assert_eq!(smallvec.advisories[0].severity, Severity::Critical);
        let hyper = check("crates.io", "hyper", "0.14.9");
        let sev: Vec<_> = hyper.advisories.iter().map(|a| a.severity).collect();
        assert_eq!(sev, vec![Severity::Medium, Severity::Critical]);
    }

    #[test]
    fn invalid_inputs_name_the_field() {
        let e = err("maven", "log4j", "2.14.1");
        assert_eq!(e.field, "ecosystem");
        for eco in SUPPORTED_ECOSYSTEMS {
            assert!(e.message.contains(eco), "{}", e.message);
        }
        assert_eq!(err("npm", "lodash", "^4.17.0").field, "version");
        assert_eq!(err("npm", "lodash", "").field, "version");
        assert_eq!(err("PyPI", "requests", ">=2.0").field, "version");
        assert_eq!(err("npm", "lodash", &"1".repeat(200)).field, "version");
        assert_eq!(err("npm", "", "1.0.0").field, "name");
        assert_eq!(err("npm", "lo dash", "1.0.0").field, "name");
        assert_eq!(err("npm", &"a".repeat(300), "1.0.0").field, "name");
    }

    #[test]
    fn args_schema_shape() {
        let r: Result<CheckPackageArgs, _> = serde_json::from_str(
            r#"{"ecosystem":"npm","name":"x","version":"1.0.0","extra":true}"#,
        );
        assert!(r.is_err());
        let out = check("npm", "axios", "1.5.1");
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["snapshotDate"], "2024-06-17");
        assert_eq!(json["advisories"][0]["fixedIn"], "1.6.0");
        assert_eq!(json["advisories"][0]["severity"], "medium");
    }
}
