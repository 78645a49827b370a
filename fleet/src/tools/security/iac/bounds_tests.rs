//! `scan_iac` on hostile inputs: YAML nested to make the parser's time grow with the square
//! of the depth is refused before parsing, naming the limit, and inputs that make more than
//! [`MAX_FINDINGS`] findings get the first of them and `truncated`, so neither an input's
//! cost nor its answer's size is up to the caller.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::tools::{error::ToolInputError, security::MAX_FINDINGS};

fn scan(content: String, kind: Option<&str>) -> Result<ScanIacOutput, ToolInputError> {
    scan_iac(&ScanIacArgs {
        content,
        kind: kind.map(str::to_string),
    })
}

#[test]
fn nested_flow_sequences_are_refused_before_parsing() {
    // 200 KB of `[`: 39 s in the parser before the depth check.
    let err = scan(format!("a: {}", "[".repeat(200_000)), Some("kubernetes")).unwrap_err();
    assert_eq!(err.field, "content");
    assert!(err.message.contains("200000 deep"), "{}", err.message);
    assert!(err.message.contains("depth limit is 64"), "{}", err.message);
}

#[test]
fn nested_flow_maps_are_refused_before_parsing() {
    // 200 KB of `{a: `: 72 s in the parser before the depth check; detected as Kubernetes.
    let content = format!("apiVersion: v1\nkind: Pod\nspec: {}", "{a: ".repeat(50_000));
    let err = scan(content, None).unwrap_err();
    assert!(err.message.contains("depth limit is 64"), "{}", err.message);
}

#[test]
fn ordinary_flow_style_still_parses() {
    let content = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: \
                   [{name: c, image: 'nginx:1.25', args: [\"[not, nested]\"]}]}\n";
    let out = scan(content.to_string(), None).unwrap();
    assert_eq!(out.objects_scanned, 1);
    assert!(!out.truncated);
}

#[test]
fn kubernetes_findings_are_capped() {
    // 3000 containers with 6 findings each: 18,000 findings, 1000 listed.
    let containers: String = (0..3000)
        .map(|i| format!("    - {{name: c{i}, image: nginx}}\n"))
        .collect();
    let content = format!("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n{containers}");
    let out = scan(content, None).unwrap();
    assert_eq!(out.findings.len(), MAX_FINDINGS);
    assert!(out.truncated);
    // The first ones, in file order.
    assert_eq!(
        out.findings[0].path.as_deref(),
        Some("spec.containers[0].image")
    );
}

#[test]
fn dockerfile_findings_are_capped_and_stages_are_looked_up_at_once() {
    let exposes = "EXPOSE 22\n".repeat(5000);
    let out = scan(format!("FROM alpine:3.20\n{exposes}"), None).unwrap();
    assert_eq!(out.findings.len(), MAX_FINDINGS);
    assert!(out.truncated);
    assert!(out.findings.iter().all(|f| f.rule == "docker-expose-ssh"));

    // 40,000 stages, each built on the one before: every FROM names an earlier stage, so
    // none is judged by its tag (and each lookup is one hash probe, not a walk of all).
    let stages: String = (1..40_000)
        .map(|i| format!("FROM s{} AS s{i}\n", i - 1))
        .collect();
    let out = scan(format!("FROM alpine:3.20 AS s0\n{stages}USER app\n"), None).unwrap();
    assert_eq!(out.objects_scanned, 40_001);
    assert!(out.findings.is_empty(), "{:?}", out.findings.first());
    assert!(!out.truncated);
}
