//! Security profile tools: pure, deterministic, offline checks that the security MCP server
//! exposes as tools.
//!
//! | tool | module | what it does |
//! | --- | --- | --- |
//! | `scan_secrets` | [`secrets`] | finds credentials (AWS, GitHub, Slack, PEM keys, JWTs, high-entropy assignments) in text |
//! | `check_package` | [`advisories`] | looks one package version up in the bundled OSV advisory snapshot |
//! | `scan_lockfile` | [`lockfile`] | parses `Cargo.lock`, `package-lock.json` or `requirements.txt` and checks every pin |
//! | `scan_iac` | [`iac`] | lints a Dockerfile or Kubernetes manifests for risky settings |
//! | `audit_tool_descriptions` | [`poisoning`] | looks for MCP tool-poisoning patterns in a `tools/list` result |
//!
//! Every tool takes an args struct (deserialised by the server, unknown fields rejected) and
//! returns an output struct or a [`ToolInputError`](crate::tools::error::ToolInputError) naming the offending argument. Inputs are
//! capped (see [`MAX_CONTENT_BYTES`]), parsed with nesting bounded before any parser runs, and
//! checked in time linear in their size, so one call's cost is bounded; every list in an
//! answer keeps at most [`MAX_FINDINGS`] entries (`truncated: true` when cut). Regexes and the
//! advisory index are built once, on first use.

pub mod advisories;
pub mod iac;
pub mod lockfile;
pub mod poisoning;
pub mod secrets;
mod severity;
mod text;

pub use advisories::{
    AdvisoryMatch, CheckPackageArgs, CheckPackageOutput, SUPPORTED_ECOSYSTEMS, advisory_count,
    check_package, snapshot_date,
};
pub use iac::{IacFinding, ScanIacArgs, ScanIacOutput, scan_iac};
pub use lockfile::{
    LockfilePackage, ScanLockfileArgs, ScanLockfileOutput, VulnerablePackage, scan_lockfile,
};
pub use poisoning::{
    AuditSummary, AuditToolDescriptionsArgs, AuditToolDescriptionsOutput, PoisoningFinding,
    ToolDescription, audit_tool_descriptions,
};
pub use secrets::{ScanSecretsArgs, ScanSecretsOutput, SecretFinding, scan_secrets};
pub use severity::Severity;
pub use text::{MAX_CONTENT_BYTES, MAX_FINDINGS};
