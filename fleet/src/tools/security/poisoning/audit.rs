//! `audit_tool_descriptions` itself: bounds the input, indexes the tool names, runs the name,
//! text and schema checks of every tool and sums up the findings.

use std::collections::HashMap;

use serde_json::Value;

use super::{
    metadata::{audit_name, audit_schema},
    schema::{
        AuditSummary, AuditToolDescriptionsArgs, AuditToolDescriptionsOutput,
        LONG_DESCRIPTION_CHARS, MAX_SCHEMA_DEPTH, MAX_TOOLS, VERY_LONG_DESCRIPTION_CHARS,
    },
    text_rules::ToolAudit,
};
use crate::tools::{
    error::ToolInputError,
    security::{
        severity::Severity,
        text::{Capped, MAX_CONTENT_BYTES, MAX_FINDINGS, excerpt},
    },
};

/// Audits `args.tools`. See the module docs for the heuristics.
pub fn audit_tool_descriptions(
    args: &AuditToolDescriptionsArgs,
) -> Result<AuditToolDescriptionsOutput, ToolInputError> {
    if args.tools.len() > MAX_TOOLS {
        return Err(ToolInputError::new(
            "tools",
            format!("has {} tools; the limit is {MAX_TOOLS}", args.tools.len()),
        ));
    }
    let total = args.input_bytes();
    if total > MAX_CONTENT_BYTES {
        return Err(ToolInputError::new(
            "tools",
            format!(
                "holds about {total} bytes of text; the limit is {MAX_CONTENT_BYTES} bytes (1 MiB)"
            ),
        ));
    }

    // Lower-cased names -> index, for duplicate and shadowing checks.
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, t) in args.tools.iter().enumerate() {
        by_name
            .entry(t.name.to_ascii_lowercase())
            .or_default()
            .push(i);
    }

    let mut findings = Capped::new(MAX_FINDINGS);
    let mut flagged = 0;
    let mut highest: Option<Severity> = None;
    for (i, tool) in args.tools.iter().enumerate() {
        let mut audit = ToolAudit {
            tool: excerpt(&tool.name, 100),
            findings: Vec::new(),
            seen: HashMap::new(),
        };
        audit_name(tool, &by_name, &mut audit);
        if let Some(title) = &tool.title {
            audit.text(title, "title", i, &args.tools, &by_name);
        }
        if let Some(desc) = &tool.description {
            audit.text(desc, "description", i, &args.tools, &by_name);
            let chars = desc.chars().count();
            if chars > LONG_DESCRIPTION_CHARS {
                audit.push(
                    "long-description",
                    if chars > VERY_LONG_DESCRIPTION_CHARS {
                        Severity::Medium
                    } else {
                        Severity::Low
                    },
                    "description",
                    format!(
                        "{chars} characters (typical descriptions are under {LONG_DESCRIPTION_CHARS}); long text can bury hidden instructions"
                    ),
                );
            }
        }
        if let Some(schema) = &tool.input_schema {
            audit_schema(
                schema,
                "inputSchema",
                0,
                i,
                &args.tools,
                &by_name,
                &mut audit,
            );
        }
        if !audit.findings.is_empty() {
            flagged += 1;
        }
        highest = highest.max(audit.findings.iter().map(|f| f.severity).max());
        for finding in audit.findings {
            findings.push(finding);
        }
    }
    let summary = AuditSummary {
        tools_audited: args.tools.len(),
        tools_flagged: flagged,
        finding_count: findings.total(),
        highest_severity: highest,
    };
    Ok(AuditToolDescriptionsOutput {
        truncated: findings.truncated(),
        findings: findings.into_vec(),
        summary,
    })
}

impl AuditToolDescriptionsArgs {
    /// Rough byte size of the text to audit: names, titles, descriptions and schemas.
    pub fn input_bytes(&self) -> usize {
        self.tools
            .iter()
            .map(|t| {
                t.name.len()
                    + t.title.as_ref().map_or(0, String::len)
                    + t.description.as_ref().map_or(0, String::len)
                    + t.input_schema.as_ref().map_or(0, |s| value_size(s, 0))
            })
            .sum()
    }
}

/// Rough byte size of the text in a JSON value (keys and strings), depth-limited.
pub(super) fn value_size(v: &Value, depth: usize) -> usize {
    if depth > MAX_SCHEMA_DEPTH * 2 {
        return 0;
    }
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(|x| 8 + value_size(x, depth + 1)).sum(),
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| k.len() + 8 + value_size(x, depth + 1))
            .sum(),
        _ => 8,
    }
}
