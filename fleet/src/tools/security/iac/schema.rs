//! The `scan_iac` tool's arguments and output as MCP clients see them (JSON Schema derived),
//! including the one finding shape both rule sets report.

use crate::tools::security::severity::Severity;

/// Values `scan_iac` accepts in `kind` (matched case-insensitively).
pub const SUPPORTED_KINDS: [&str; 2] = ["dockerfile", "kubernetes"];

/// Arguments of `scan_iac`.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanIacArgs {
    /// The Dockerfile, or one or more Kubernetes manifests (multi-document YAML). At most 1 MiB.
    pub content: String,
    /// `dockerfile` or `kubernetes` (case-insensitive). Detected from the content when absent.
    #[serde(default)]
    pub kind: Option<String>,
}

/// One risky setting.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IacFinding {
    /// Rule id, e.g. `docker-root-user` or `k8s-privileged`.
    pub rule: String,
    /// How serious the setting is.
    pub severity: Severity,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Dockerfile: 1-based line of the instruction (absent for whole-file findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Kubernetes: 0-based index of the YAML document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<u32>,
    /// Kubernetes: the object, as `Kind/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Kubernetes: path of the offending field inside the object, e.g.
    /// `spec.template.spec.containers[0].securityContext.privileged`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Result of `scan_iac`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanIacOutput {
    /// `dockerfile` or `kubernetes`.
    pub kind: String,
    /// Findings in file order, at most 1000.
    pub findings: Vec<IacFinding>,
    /// Dockerfile: instructions parsed. Kubernetes: workload objects (with a pod spec) checked.
    pub objects_scanned: usize,
    /// True when there were more than 1000 findings and the rest were dropped.
    pub truncated: bool,
}
