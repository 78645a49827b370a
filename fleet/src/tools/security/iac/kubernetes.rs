//! The Kubernetes rules: walks every YAML document (and `List` items) to the pod spec of each
//! workload kind and checks the pod and each of its containers, reporting the field path of
//! every `k8s-*` finding.

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{image::image_tag_problem, schema::IacFinding};
use crate::tools::{
    error::ToolInputError,
    security::{
        severity::Severity,
        text::{Capped, MAX_FINDINGS, excerpt},
    },
};

pub(super) struct Ctx<'a> {
    document: u32,
    resource: &'a str,
    findings: &'a mut Capped<IacFinding>,
}

impl Ctx<'_> {
    fn push(&mut self, rule: &str, severity: Severity, path: String, message: String) {
        self.findings.push(IacFinding {
            rule: rule.to_string(),
            severity,
            message,
            line: None,
            document: Some(self.document),
            resource: Some(self.resource.to_string()),
            path: Some(path),
        });
    }
}

pub(super) fn scan_kubernetes(
    content: &str,
) -> Result<(Capped<IacFinding>, usize), ToolInputError> {
    let mut findings = Capped::new(MAX_FINDINGS);
    let mut objects = 0;
    for (idx, doc) in serde_yaml_ng::Deserializer::from_str(content).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| {
            ToolInputError::new("content", format!("invalid YAML in document {idx}: {e}"))
        })?;
        let document = u32::try_from(idx).unwrap_or(u32::MAX);
        scan_object(&value, document, "", &mut findings, &mut objects, 0);
    }
    Ok((findings, objects))
}

pub(super) fn scan_object(
    obj: &Value,
    document: u32,
    prefix: &str,
    findings: &mut Capped<IacFinding>,
    objects: &mut usize,
    depth: u8,
) {
    let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
        return;
    };
    if kind == "List" || kind.ends_with("List") {
        if depth > 4 {
            return;
        }
        if let Some(items) = obj.get("items").and_then(Value::as_sequence) {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{prefix}items[{i}].");
                scan_object(item, document, &p, findings, objects, depth + 1);
            }
        }
        return;
    }
    let pod_spec_path: &[&str] = match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return,
    };
    let mut spec = Some(obj);
    for key in pod_spec_path {
        spec = spec.and_then(|v| v.get(*key));
    }
    let Some(spec) = spec.filter(|s| s.is_mapping()) else {
        return;
    };
    *objects += 1;
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let resource = format!("{kind}/{name}");
    let base = format!("{prefix}{}", pod_spec_path.join("."));
    let mut ctx = Ctx {
        document,
        resource: &resource,
        findings,
    };
    scan_pod_spec(spec, &base, &mut ctx);
}

pub(super) fn boolish(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" => Some(true),
            "false" | "no" | "off" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn scan_pod_spec(spec: &Value, base: &str, ctx: &mut Ctx<'_>) {
    for (field, rule, what) in [
        (
            "hostNetwork",
            "k8s-host-network",
            "the node's network namespace",
        ),
        ("hostPID", "k8s-host-pid", "the node's process namespace"),
        ("hostIPC", "k8s-host-ipc", "the node's IPC namespace"),
    ] {
        if boolish(spec.get(field)) == Some(true) {
            ctx.push(
                rule,
                Severity::High,
                format!("{base}.{field}"),
                format!("{field}: true shares {what} with the pod; remove it"),
            );
        }
    }
    if let Some(volumes) = spec.get("volumes").and_then(Value::as_sequence) {
        for (i, vol) in volumes.iter().enumerate() {
            if let Some(host_path) = vol.get("hostPath") {
                let p = host_path.get("path").and_then(Value::as_str).unwrap_or("?");
                ctx.push(
                    "k8s-host-path",
                    Severity::High,
                    format!("{base}.volumes[{i}].hostPath"),
                    format!(
                        "hostPath volume mounts `{}` from the node; use a PersistentVolumeClaim, configMap or emptyDir",
                        excerpt(p, 80)
                    ),
                );
            }
        }
    }
    let pod_sc = spec.get("securityContext");
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get(list).and_then(Value::as_sequence) else {
            continue;
        };
        for (i, c) in containers.iter().enumerate() {
            scan_container(c, &format!("{base}.{list}[{i}]"), pod_sc, ctx);
        }
    }
}

pub(super) fn scan_container(c: &Value, cpath: &str, pod_sc: Option<&Value>, ctx: &mut Ctx<'_>) {
    let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
    let cname = excerpt(cname, 60);
    let sc = c.get("securityContext");
    let sc_get = |k: &str| sc.and_then(|s| s.get(k));
    let scp = format!("{cpath}.securityContext");

    if let Some(image) = c.get("image").and_then(Value::as_str)
        && let Some(problem) = image_tag_problem(image)
    {
        ctx.push(
            "k8s-image-latest",
            Severity::Medium,
            format!("{cpath}.image"),
            format!(
                "container `{cname}` image `{}` {problem}; pin a version tag or digest",
                excerpt(image, 80)
            ),
        );
    }
    if boolish(sc_get("privileged")) == Some(true) {
        ctx.push(
            "k8s-privileged",
            Severity::Critical,
            format!("{scp}.privileged"),
            format!("container `{cname}` is privileged: it has full access to the node"),
        );
    }
    match boolish(sc_get("allowPrivilegeEscalation")) {
        Some(false) => {}
        Some(true) => ctx.push(
            "k8s-privilege-escalation",
            Severity::High,
            format!("{scp}.allowPrivilegeEscalation"),
            format!("container `{cname}` sets allowPrivilegeEscalation: true; set it to false"),
        ),
        None => ctx.push(
            "k8s-privilege-escalation",
            Severity::Medium,
            format!("{scp}.allowPrivilegeEscalation"),
            format!(
                "container `{cname}` does not set allowPrivilegeEscalation: false (setuid binaries can gain privileges)"
            ),
        ),
    }
    let pod_get = |k: &str| pod_sc.and_then(|s| s.get(k));
    let run_as_user = int(sc_get("runAsUser")).or_else(|| int(pod_get("runAsUser")));
    if run_as_user == Some(0) {
        let at = if sc_get("runAsUser").is_some() {
            format!("{scp}.runAsUser")
        } else {
            format!("{}.securityContext.runAsUser", parent_path(cpath))
        };
        ctx.push(
            "k8s-run-as-root",
            Severity::High,
            at,
            format!("container `{cname}` runs as UID 0 (root)"),
        );
    }
    let (non_root, at) = match boolish(sc_get("runAsNonRoot")) {
        Some(v) => (Some(v), format!("{scp}.runAsNonRoot")),
        None => match boolish(pod_get("runAsNonRoot")) {
            Some(v) => (
                Some(v),
                format!("{}.securityContext.runAsNonRoot", parent_path(cpath)),
            ),
            None => (None, format!("{scp}.runAsNonRoot")),
        },
    };
    if non_root != Some(true) {
        let nonzero_uid = run_as_user.is_some_and(|u| u != 0);
        ctx.push(
            "k8s-run-as-non-root",
            if nonzero_uid { Severity::Low } else { Severity::Medium },
            at,
            format!(
                "container `{cname}` {} runAsNonRoot: true, so the image's user (often root) may be used",
                if non_root == Some(false) { "sets runAsNonRoot: false instead of" } else { "does not set" }
            ),
        );
    }
    if let Some(add) = sc_get("capabilities")
        .and_then(|caps| caps.get("add"))
        .and_then(Value::as_sequence)
    {
        for (j, cap) in add.iter().enumerate() {
            let Some(cap) = cap.as_str() else { continue };
            let norm = cap.trim().to_ascii_uppercase();
            let norm = norm.strip_prefix("CAP_").unwrap_or(&norm);
            if matches!(norm, "SYS_ADMIN" | "NET_ADMIN" | "ALL") {
                ctx.push(
                    "k8s-dangerous-capabilities",
                    Severity::High,
                    format!("{scp}.capabilities.add[{j}]"),
                    format!("container `{cname}` adds capability {norm}; drop it (and drop ALL by default)"),
                );
            }
        }
    }
    let limits = c.get("resources").and_then(|r| r.get("limits"));
    let has_limits = limits
        .and_then(Value::as_mapping)
        .is_some_and(|m| !m.is_empty());
    if !has_limits {
        ctx.push(
            "k8s-missing-limits",
            Severity::Medium,
            format!("{cpath}.resources.limits"),
            format!("container `{cname}` has no resources.limits; one pod can starve the node"),
        );
    }
    if boolish(sc_get("readOnlyRootFilesystem")) != Some(true) {
        ctx.push(
            "k8s-writable-root-fs",
            Severity::Low,
            format!("{scp}.readOnlyRootFilesystem"),
            format!("container `{cname}` has a writable root filesystem; set readOnlyRootFilesystem: true"),
        );
    }
}

/// `spec.template.spec.containers[0]` -> `spec.template.spec`.
pub(super) fn parent_path(cpath: &str) -> &str {
    cpath.rsplit_once('.').map_or("", |(p, _)| p)
}
