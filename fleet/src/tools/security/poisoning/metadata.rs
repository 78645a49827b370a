//! The checks on a tool's structure rather than its prose: whether its name is valid and
//! unique, and a walk of its `inputSchema` that checks parameter names and runs the text
//! rules on every nested description and title.

use std::collections::HashMap;

use serde_json::Value;

use super::{
    patterns::{FILL_WITH, SUSPICIOUS_PARAMS, VALID_NAME},
    schema::{MAX_SCHEMA_DEPTH, ToolDescription},
    spans::{EVIDENCE_CHARS, evidence_around},
    text_rules::ToolAudit,
};
use crate::tools::security::{severity::Severity, text::excerpt};

pub(super) fn audit_name(
    tool: &ToolDescription,
    by_name: &HashMap<String, Vec<usize>>,
    audit: &mut ToolAudit,
) {
    if !VALID_NAME.is_match(&tool.name) {
        audit.push(
            "invalid-tool-name",
            Severity::Medium,
            "name",
            excerpt(
                &format!(
                    "`{}` is not 1-64 characters of [A-Za-z0-9_-]",
                    excerpt(&tool.name, 80)
                ),
                EVIDENCE_CHARS,
            ),
        );
    }
    audit.invisible(&tool.name, "name");
    if by_name
        .get(&tool.name.to_ascii_lowercase())
        .is_some_and(|v| v.len() > 1)
    {
        audit.push(
            "duplicate-tool-name",
            Severity::Medium,
            "name",
            excerpt(
                &format!(
                    "another tool is also named `{}` (case-insensitively); one may shadow the other",
                    tool.name
                ),
                EVIDENCE_CHARS,
            ),
        );
    }
}

pub(super) fn audit_schema(
    schema: &Value,
    path: &str,
    depth: usize,
    own: usize,
    tools: &[ToolDescription],
    by_name: &HashMap<String, Vec<usize>>,
    audit: &mut ToolAudit,
) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    let Some(obj) = schema.as_object() else {
        return;
    };
    for key in ["description", "title"] {
        if let Some(text) = obj.get(key).and_then(Value::as_str) {
            audit.text(text, &format!("{path}.{key}"), own, tools, by_name);
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let ppath = format!("{path}.properties.{name}");
            audit.invisible(name, &ppath);
            let normalized = name.to_ascii_lowercase().replace('-', "_");
            let desc = sub.get("description").and_then(Value::as_str).unwrap_or("");
            if let Some(m) = FILL_WITH.find(desc) {
                audit.push(
                    "suspicious-parameter",
                    Severity::High,
                    &ppath,
                    excerpt(
                        &format!(
                            "parameter `{}` asks for: {}",
                            excerpt(name, 40),
                            evidence_around(desc, m.start(), m.end())
                        ),
                        EVIDENCE_CHARS,
                    ),
                );
            } else if SUSPICIOUS_PARAMS.contains(&normalized.as_str()) {
                audit.push(
                    "suspicious-parameter",
                    Severity::Medium,
                    &ppath,
                    excerpt(
                        &format!(
                            "parameter `{}` is named like a covert channel for smuggled data",
                            excerpt(name, 40)
                        ),
                        EVIDENCE_CHARS,
                    ),
                );
            }
            audit_schema(sub, &ppath, depth + 1, own, tools, by_name, audit);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = obj.get(key) {
            audit_schema(
                sub,
                &format!("{path}.{key}"),
                depth + 1,
                own,
                tools,
                by_name,
                audit,
            );
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(list) = obj.get(key).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                audit_schema(
                    sub,
                    &format!("{path}.{key}[{i}]"),
                    depth + 1,
                    own,
                    tools,
                    by_name,
                    audit,
                );
            }
        }
    }
    for key in ["$defs", "definitions"] {
        if let Some(defs) = obj.get(key).and_then(Value::as_object) {
            for (name, sub) in defs {
                audit_schema(
                    sub,
                    &format!("{path}.{key}.{name}"),
                    depth + 1,
                    own,
                    tools,
                    by_name,
                    audit,
                );
            }
        }
    }
}
