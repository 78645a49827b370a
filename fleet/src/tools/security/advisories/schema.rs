//! The `check_package` tool's arguments and output as MCP clients see them (JSON Schema
//! derived), including the advisory match the lockfile scanner reports too.

use crate::tools::security::severity::Severity;

/// Ecosystem names `check_package` accepts (matched case-insensitively).
pub const SUPPORTED_ECOSYSTEMS: [&str; 4] = ["crates.io", "npm", "PyPI", "Go"];

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
