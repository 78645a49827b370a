//! `scan_iac` itself: checks the input's size, takes the kind from the arguments or detects
//! it from the content, and hands the content to the Dockerfile or the Kubernetes rules.

use std::sync::LazyLock;

use regex::Regex;

use super::{
    depth::check_flow_depth,
    dockerfile::{compile, scan_dockerfile},
    kubernetes::scan_kubernetes,
    schema::{SUPPORTED_KINDS, ScanIacArgs, ScanIacOutput},
};
use crate::tools::{
    error::ToolInputError,
    security::text::{MAX_CONTENT_BYTES, check_len, excerpt},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dockerfile,
    Kubernetes,
}

/// Lints `args.content`.
pub fn scan_iac(args: &ScanIacArgs) -> Result<ScanIacOutput, ToolInputError> {
    check_len("content", &args.content, MAX_CONTENT_BYTES)?;
    let kind = match &args.kind {
        Some(k) => {
            let k = k.trim();
            if k.eq_ignore_ascii_case("dockerfile") {
                Kind::Dockerfile
            } else if k.eq_ignore_ascii_case("kubernetes") {
                Kind::Kubernetes
            } else {
                return Err(ToolInputError::new(
                    "kind",
                    format!(
                        "unknown kind `{}`; supported: {}",
                        excerpt(k, 40),
                        SUPPORTED_KINDS.join(", ")
                    ),
                ));
            }
        }
        None => detect(&args.content).ok_or_else(|| {
            ToolInputError::new(
                "kind",
                "could not tell whether the content is a Dockerfile or Kubernetes YAML; \
                 pass `dockerfile` or `kubernetes`",
            )
        })?,
    };
    let (name, findings, objects_scanned) = match kind {
        Kind::Dockerfile => {
            let (findings, objects) = scan_dockerfile(&args.content);
            ("dockerfile", findings, objects)
        }
        Kind::Kubernetes => {
            check_flow_depth(&args.content)?;
            let (findings, objects) = scan_kubernetes(&args.content)?;
            ("kubernetes", findings, objects)
        }
    };
    Ok(ScanIacOutput {
        kind: name.into(),
        truncated: findings.truncated(),
        findings: findings.into_vec(),
        objects_scanned,
    })
}

pub(super) static DOCKER_FROM: LazyLock<Regex> = LazyLock::new(|| compile(r"(?im)^\s*FROM\s+\S"));
pub(super) static K8S_API_VERSION: LazyLock<Regex> =
    LazyLock::new(|| compile(r#"(?m)^\s*(?:-\s+)?"?apiVersion"?\s*:"#));
pub(super) static K8S_KIND: LazyLock<Regex> =
    LazyLock::new(|| compile(r#"(?m)^\s*(?:-\s+)?"?kind"?\s*:"#));

pub(super) fn detect(content: &str) -> Option<Kind> {
    if K8S_API_VERSION.is_match(content) && K8S_KIND.is_match(content) {
        return Some(Kind::Kubernetes);
    }
    if DOCKER_FROM.is_match(content) {
        return Some(Kind::Dockerfile);
    }
    None
}
