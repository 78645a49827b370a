//! The `audit_tool_descriptions` tool's arguments and output as MCP clients see them (JSON
//! Schema derived), and the limits that bound one call's cost.

use serde_json::Value;

use crate::tools::security::severity::Severity;

/// Most tools one call may audit.
pub const MAX_TOOLS: usize = 2000;
/// Description length (characters) above which `long-description` reports low severity.
pub const LONG_DESCRIPTION_CHARS: usize = 1500;
/// Description length (characters) above which `long-description` reports medium severity.
pub const VERY_LONG_DESCRIPTION_CHARS: usize = 4000;
/// Deepest `inputSchema` nesting that is walked.
pub(super) const MAX_SCHEMA_DEPTH: usize = 24;

/// Arguments of `audit_tool_descriptions`.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditToolDescriptionsArgs {
    /// The tools to audit, as returned in a `tools/list` result's `tools` array. At most 2000
    /// tools and 1 MiB of text in total.
    pub tools: Vec<ToolDescription>,
}

/// One tool as advertised by an MCP server. Other `tools/list` fields (`annotations`,
/// `outputSchema`, `_meta`, …) are accepted and ignored.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolDescription {
    /// The tool's name.
    pub name: String,
    /// Optional human-readable title.
    #[serde(default)]
    pub title: Option<String>,
    /// The description shown to the model.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the tool's arguments; property names and descriptions are audited too.
    #[serde(default, rename = "inputSchema")]
    pub input_schema: Option<Value>,
}

/// One suspicious pattern in one tool.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoisoningFinding {
    /// Name of the tool (invisible characters escaped).
    pub tool: String,
    /// Rule id, e.g. `hidden-instruction-tag`.
    pub rule: String,
    /// How dangerous the pattern is.
    pub severity: Severity,
    /// Where it was found: `name`, `title`, `description`, or a path such as
    /// `inputSchema.properties.sidenote.description`.
    pub location: String,
    /// Short excerpt around the match (at most 120 characters).
    pub evidence: String,
}

/// Totals of an audit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditSummary {
    /// Number of tools audited.
    pub tools_audited: usize,
    /// Number of tools with at least one finding.
    pub tools_flagged: usize,
    /// Number of findings, those dropped past the first 1000 included.
    pub finding_count: usize,
    /// Most severe finding, absent when there are none.
    pub highest_severity: Option<Severity>,
}

/// Result of `audit_tool_descriptions`.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditToolDescriptionsOutput {
    /// Findings, in tool order, at most 1000.
    pub findings: Vec<PoisoningFinding>,
    /// Totals.
    pub summary: AuditSummary,
    /// True when there were more than 1000 findings and the rest were dropped.
    pub truncated: bool,
}
