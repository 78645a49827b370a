//! `scan_iac`: lints a Dockerfile or Kubernetes manifests for risky settings.
//!
//! Dockerfile rules (findings carry the instruction's 1-based `line`):
//!
//! | rule | finding | severity |
//! | --- | --- | --- |
//! | `docker-image-latest` | `FROM` an image tagged `latest` or not tagged at all (no digest) | medium |
//! | `docker-root-user` | the final stage has no `USER`, or its last `USER` is `root`/`0` | medium |
//! | `docker-add-remote-url` | `ADD` of an `http(s)://` URL (low when `--checksum` pins it) | medium |
//! | `docker-curl-pipe-shell` | `RUN` piping `curl`/`wget` output into a shell | high |
//! | `docker-secret-in-env` | `ENV` (high) or `ARG` (medium) named like a secret: `PASSWORD`, `SECRET`, `TOKEN`, `KEY`, … (names ending `_FILE`/`_PATH`/`_URL`, or mentioning `PUBLIC`/`GPG`, are pointers, not secrets) | high/medium |
//! | `docker-apt-install-recommends` | `apt-get install` without `--no-install-recommends` | low |
//! | `docker-expose-ssh` | `EXPOSE 22` | medium |
//!
//! `FROM scratch`, `FROM <earlier stage>` and `FROM $VARIABLE` are not judged by tag.
//!
//! Kubernetes rules (findings carry the 0-based `document` index, the `resource` as
//! `Kind/name` and the `path` of the offending field). Pods, Deployments, StatefulSets,
//! DaemonSets, ReplicaSets, ReplicationControllers, Jobs (`spec.template.spec`), CronJobs
//! (`spec.jobTemplate.spec.template.spec`) and `List` items are checked; containers,
//! init containers and ephemeral containers alike:
//!
//! | rule | finding | severity |
//! | --- | --- | --- |
//! | `k8s-privileged` | `securityContext.privileged: true` | critical |
//! | `k8s-privilege-escalation` | `allowPrivilegeEscalation` true (high) or unset (medium) | high/medium |
//! | `k8s-run-as-root` | effective `runAsUser: 0` | high |
//! | `k8s-run-as-non-root` | effective `runAsNonRoot` unset or false (low when a non-zero `runAsUser` is set) | medium/low |
//! | `k8s-host-network` / `k8s-host-pid` / `k8s-host-ipc` | host namespaces shared | high |
//! | `k8s-host-path` | a `hostPath` volume | high |
//! | `k8s-dangerous-capabilities` | `capabilities.add` of `SYS_ADMIN`, `NET_ADMIN` or `ALL` | high |
//! | `k8s-missing-limits` | no `resources.limits` | medium |
//! | `k8s-image-latest` | image tagged `latest` or untagged (no digest) | medium |
//! | `k8s-writable-root-fs` | `readOnlyRootFilesystem` not true | low |
//!
//! Booleans written YAML 1.1 style (`yes`, `on`, `"true"`) count as true, as the Kubernetes
//! YAML parser reads them.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{MAX_CONTENT_BYTES, Severity, check_len};
use crate::tools::error::ToolInputError;

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
    /// Findings in file order.
    pub findings: Vec<IacFinding>,
    /// Dockerfile: instructions parsed. Kubernetes: workload objects (with a pod spec) checked.
    pub objects_scanned: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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
                        super::excerpt(k, 40),
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
    match kind {
        Kind::Dockerfile => {
            let (findings, objects_scanned) = scan_dockerfile(&args.content);
            Ok(ScanIacOutput {
                kind: "dockerfile".into(),
                findings,
                objects_scanned,
            })
        }
        Kind::Kubernetes => {
            let (findings, objects_scanned) = scan_kubernetes(&args.content)?;
            Ok(ScanIacOutput {
                kind: "kubernetes".into(),
                findings,
                objects_scanned,
            })
        }
    }
}

fn compile(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in IaC pattern is a valid regex")
}

static DOCKER_FROM: LazyLock<Regex> = LazyLock::new(|| compile(r"(?im)^\s*FROM\s+\S"));
static K8S_API_VERSION: LazyLock<Regex> =
    LazyLock::new(|| compile(r#"(?m)^\s*(?:-\s+)?"?apiVersion"?\s*:"#));
static K8S_KIND: LazyLock<Regex> = LazyLock::new(|| compile(r#"(?m)^\s*(?:-\s+)?"?kind"?\s*:"#));
static CURL_PIPE_SHELL: LazyLock<Regex> = LazyLock::new(|| {
    compile(
        r"(?i)\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:/usr)?(?:/bin/)?(?:ba|z|da|k|a)?sh\b",
    )
});
static APT_INSTALL: LazyLock<Regex> =
    LazyLock::new(|| compile(r"\bapt-get\s+(?:-\S+\s+)*install\b"));

fn detect(content: &str) -> Option<Kind> {
    if K8S_API_VERSION.is_match(content) && K8S_KIND.is_match(content) {
        return Some(Kind::Kubernetes);
    }
    if DOCKER_FROM.is_match(content) {
        return Some(Kind::Dockerfile);
    }
    None
}

// ---------------------------------------------------------------------------------------
// Dockerfile

struct Instruction {
    line: u32,
    keyword: String,
    args: String,
}

/// Logical instructions: comments dropped, continuation lines joined (honouring an
/// `# escape=` parser directive), keyword upper-cased.
fn parse_dockerfile(content: &str) -> Vec<Instruction> {
    let mut escape = '\\';
    let mut in_directives = true;
    let mut out = Vec::new();
    let mut pending: Option<(u32, String)> = None;
    for (idx, raw) in content.lines().enumerate() {
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let trimmed = raw.trim();
        if in_directives {
            if let Some(directive) = trimmed.strip_prefix('#')
                && let Some((k, v)) = directive.split_once('=')
            {
                if k.trim().eq_ignore_ascii_case("escape") {
                    escape = v.trim().chars().next().unwrap_or('\\');
                }
                continue;
            }
            in_directives = false;
        }
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_none()) {
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix(escape) {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        let (start, mut text) = pending.take().unwrap_or((line_no, String::new()));
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(body.trim());
        if continues {
            pending = Some((start, text));
        } else if !text.trim().is_empty() {
            out.push(split_instruction(start, &text));
        }
    }
    if let Some((start, text)) = pending
        && !text.trim().is_empty()
    {
        out.push(split_instruction(start, &text));
    }
    out
}

fn split_instruction(line: u32, text: &str) -> Instruction {
    let text = text.trim();
    let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    Instruction {
        line,
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_string(),
    }
}

fn docker_finding(
    rule: &str,
    severity: Severity,
    message: String,
    line: Option<u32>,
) -> IacFinding {
    IacFinding {
        rule: rule.to_string(),
        severity,
        message,
        line,
        document: None,
        resource: None,
        path: None,
    }
}

fn scan_dockerfile(content: &str) -> (Vec<IacFinding>, usize) {
    let instructions = parse_dockerfile(content);
    let mut findings = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    // (line of the final stage's FROM, last USER in it as (line, value)).
    let mut final_from: Option<u32> = None;
    let mut last_user: Option<(u32, String)> = None;
    for ins in &instructions {
        let line = Some(ins.line);
        match ins.keyword.as_str() {
            "FROM" => {
                let tokens: Vec<&str> = ins
                    .args
                    .split_whitespace()
                    .filter(|t| !t.starts_with("--"))
                    .collect();
                let image = tokens.first().copied().unwrap_or("");
                let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(image));
                if let [_, as_kw, alias, ..] = tokens.as_slice()
                    && as_kw.eq_ignore_ascii_case("as")
                {
                    stages.push(alias.to_ascii_lowercase());
                }
                if !image.is_empty()
                    && !is_stage
                    && !image.eq_ignore_ascii_case("scratch")
                    && !image.contains('$')
                    && let Some(problem) = image_tag_problem(image)
                {
                    findings.push(docker_finding(
                            "docker-image-latest",
                            Severity::Medium,
                            format!(
                                "base image `{}` {problem}; pin a version tag or digest for reproducible, reviewable builds",
                                super::excerpt(image, 80)
                            ),
                            line,
                        ));
                }
                final_from = Some(ins.line);
                last_user = None;
            }
            "USER" => {
                last_user = Some((ins.line, ins.args.clone()));
            }
            "ADD" => {
                let tokens: Vec<&str> = ins.args.split_whitespace().collect();
                let pinned = tokens.iter().any(|t| t.starts_with("--checksum"));
                let operands: Vec<&str> = tokens
                    .iter()
                    .copied()
                    .filter(|t| !t.starts_with("--"))
                    .collect();
                let sources = operands.len().saturating_sub(1);
                if let Some(url) = operands[..sources].iter().find(|t| {
                    let l = t.to_ascii_lowercase();
                    l.starts_with("http://") || l.starts_with("https://")
                }) {
                    findings.push(docker_finding(
                        "docker-add-remote-url",
                        if pinned { Severity::Low } else { Severity::Medium },
                        format!(
                            "ADD downloads `{}`{}; prefer RUN curl with checksum verification or COPY of a vetted file",
                            super::excerpt(url, 80),
                            if pinned { " (checksum pinned)" } else { " without integrity checks" }
                        ),
                        line,
                    ));
                }
            }
            "RUN" => {
                if CURL_PIPE_SHELL.is_match(&ins.args) {
                    findings.push(docker_finding(
                        "docker-curl-pipe-shell",
                        Severity::High,
                        "RUN pipes a downloaded script straight into a shell; download, verify a checksum or signature, then run".into(),
                        line,
                    ));
                }
                if APT_INSTALL.is_match(&ins.args) && !ins.args.contains("--no-install-recommends")
                {
                    findings.push(docker_finding(
                        "docker-apt-install-recommends",
                        Severity::Low,
                        "apt-get install without --no-install-recommends pulls in extra packages and attack surface".into(),
                        line,
                    ));
                }
            }
            "ENV" | "ARG" => {
                for (name, value) in env_pairs(&ins.keyword, &ins.args) {
                    if !is_secret_name(&name) {
                        continue;
                    }
                    if ins.keyword == "ENV" && value.as_deref().is_some_and(str::is_empty) {
                        continue;
                    }
                    let (severity, how) = if ins.keyword == "ENV" {
                        (
                            Severity::High,
                            "is baked into every image layer and `docker inspect`",
                        )
                    } else {
                        (Severity::Medium, "is recorded in the image history")
                    };
                    findings.push(docker_finding(
                        "docker-secret-in-env",
                        severity,
                        format!(
                            "{} `{}` looks like a secret and {how}; use a build secret (RUN --mount=type=secret) or runtime injection",
                            ins.keyword,
                            super::excerpt(&name, 60)
                        ),
                        line,
                    ));
                }
            }
            "EXPOSE"
                if ins.args.split_whitespace().any(|p| {
                    let port = p.split('/').next().unwrap_or(p);
                    port == "22"
                }) =>
            {
                findings.push(docker_finding(
                        "docker-expose-ssh",
                        Severity::Medium,
                        "EXPOSE 22: running an SSH daemon in a container widens the attack surface; use `docker exec`/`kubectl exec`".into(),
                        line,
                    ));
            }
            _ => {}
        }
    }
    if let Some(from_line) = final_from {
        match &last_user {
            None => findings.push(docker_finding(
                "docker-root-user",
                Severity::Medium,
                format!(
                    "the final stage (FROM at line {from_line}) sets no USER, so the container runs as root; add a non-root USER"
                ),
                None,
            )),
            Some((line, user)) => {
                let name = user.split(':').next().unwrap_or("").trim();
                if name.eq_ignore_ascii_case("root") || name == "0" {
                    findings.push(docker_finding(
                        "docker-root-user",
                        Severity::Medium,
                        format!(
                            "the final USER is `{}`, so the container runs as root; switch to a non-root user",
                            super::excerpt(user, 40)
                        ),
                        Some(*line),
                    ));
                }
            }
        }
    }
    findings.sort_by_key(|f| f.line.unwrap_or(u32::MAX));
    (findings, instructions.len())
}

/// Why an image reference is not pinned, if it is not: untagged or `latest`, no digest.
fn image_tag_problem(image: &str) -> Option<&'static str> {
    if image.contains('@') {
        return None;
    }
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    match last_segment.split_once(':') {
        None => Some("has no tag (defaults to `latest`)"),
        Some((_, tag)) if tag.eq_ignore_ascii_case("latest") => Some("uses the `latest` tag"),
        Some((_, "")) => Some("has an empty tag"),
        Some(_) => None,
    }
}

/// `(name, value)` pairs of an `ENV` or `ARG` instruction.
fn env_pairs(keyword: &str, args: &str) -> Vec<(String, Option<String>)> {
    let tokens = shell_words(args);
    let first_has_eq = tokens.first().is_some_and(|t| t.contains('='));
    if keyword == "ENV" && !first_has_eq {
        // Legacy `ENV NAME value with spaces`.
        return match args.split_once(char::is_whitespace) {
            Some((name, value)) => vec![(name.to_string(), Some(value.trim().to_string()))],
            None if !args.is_empty() => vec![(args.to_string(), None)],
            None => Vec::new(),
        };
    }
    tokens
        .into_iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (t, None),
        })
        .collect()
}

/// Whitespace-separated words, with `"…"`/`'…'` quoting (quotes removed).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const POINTER_SUFFIXES: [&str; 7] = [
        "_FILE",
        "_PATH",
        "_DIR",
        "_URL",
        "_URI",
        "_ENDPOINT",
        "_HOST",
    ];
    const NOT_SECRET: [&str; 6] = [
        "PUBLIC",
        "GPG",
        "PGP",
        "FINGERPRINT",
        "KEYRING",
        "KEYSERVER",
    ];
    if POINTER_SUFFIXES.iter().any(|s| upper.ends_with(s))
        || NOT_SECRET.iter().any(|s| upper.contains(s))
    {
        return false;
    }
    if [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|s| upper.contains(s))
    {
        return true;
    }
    upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|seg| seg == "KEY" || seg == "PASS" || seg == "PWD")
        || upper.ends_with("KEY")
}

// ---------------------------------------------------------------------------------------
// Kubernetes

struct Ctx<'a> {
    document: u32,
    resource: &'a str,
    findings: &'a mut Vec<IacFinding>,
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

fn scan_kubernetes(content: &str) -> Result<(Vec<IacFinding>, usize), ToolInputError> {
    let mut findings = Vec::new();
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

fn scan_object(
    obj: &Value,
    document: u32,
    prefix: &str,
    findings: &mut Vec<IacFinding>,
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

fn boolish(v: Option<&Value>) -> Option<bool> {
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

fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn scan_pod_spec(spec: &Value, base: &str, ctx: &mut Ctx<'_>) {
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
                        super::excerpt(p, 80)
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

fn scan_container(c: &Value, cpath: &str, pod_sc: Option<&Value>, ctx: &mut Ctx<'_>) {
    let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
    let cname = super::excerpt(cname, 60);
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
                super::excerpt(image, 80)
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
fn parent_path(cpath: &str) -> &str {
    cpath.rsplit_once('.').map_or("", |(p, _)| p)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn scan(content: &str, kind: Option<&str>) -> ScanIacOutput {
        scan_iac(&ScanIacArgs {
            content: content.to_string(),
            kind: kind.map(str::to_string),
        })
        .unwrap()
    }

    fn rules_at(out: &ScanIacOutput) -> Vec<(&str, Option<u32>)> {
        out.findings
            .iter()
            .map(|f| (f.rule.as_str(), f.line))
            .collect()
    }

    fn has(out: &ScanIacOutput, rule: &str) -> bool {
        out.findings.iter().any(|f| f.rule == rule)
    }

    const BAD_DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
FROM ubuntu
ENV DB_PASSWORD=hunter2 \
    APP_HOME=/app
ARG NPM_TOKEN
ADD https://example.com/tool.tar.gz /opt/
RUN apt-get update && \
    apt-get install -y curl
RUN curl -fsSL https://get.example.com/install.sh | sudo bash
EXPOSE 8080 22/tcp
USER root
"#;

    #[test]
    fn dockerfile_all_rules_fire_with_lines() {
        let out = scan(BAD_DOCKERFILE, None);
        assert_eq!(out.kind, "dockerfile");
        assert_eq!(
            rules_at(&out),
            vec![
                ("docker-image-latest", Some(2)),
                ("docker-secret-in-env", Some(3)),
                ("docker-secret-in-env", Some(5)),
                ("docker-add-remote-url", Some(6)),
                ("docker-apt-install-recommends", Some(7)),
                ("docker-curl-pipe-shell", Some(9)),
                ("docker-expose-ssh", Some(10)),
                ("docker-root-user", Some(11)),
            ]
        );
        let sev: Vec<Severity> = out.findings.iter().map(|f| f.severity).collect();
        assert_eq!(
            sev,
            vec![
                Severity::Medium,
                Severity::High,
                Severity::Medium,
                Severity::Medium,
                Severity::Low,
                Severity::High,
                Severity::Medium,
                Severity::Medium,
            ]
        );
        // The secret's value is not echoed.
        assert!(out.findings.iter().all(|f| !f.message.contains("hunter2")));
        assert_eq!(out.objects_scanned, 8);
    }

    const GOOD_DOCKERFILE: &str = r#"# escape=`
FROM rust:1.88-slim AS build
ARG APP_VERSION=1.0
ENV GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D `
    POSTGRES_PASSWORD_FILE=/run/secrets/db
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates
COPY . /src
FROM gcr.io/distroless/cc@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
FROM build AS test
FROM localhost:5000/base:2024.1
ADD --checksum=sha256:abc https://example.com/x.tgz /x
COPY --from=build /src/target/release/app /app
EXPOSE 8080 2222
USER 10001:10001
"#;

    #[test]
    fn dockerfile_negatives() {
        let out = scan(GOOD_DOCKERFILE, Some("Dockerfile"));
        // Only the checksum-pinned ADD is reported, at low severity.
        assert_eq!(rules_at(&out), vec![("docker-add-remote-url", Some(11))]);
        assert_eq!(out.findings[0].severity, Severity::Low);
    }

    #[test]
    fn dockerfile_user_rules() {
        let out = scan("FROM alpine:3.20\nRUN echo hi\n", None);
        assert_eq!(rules_at(&out), vec![("docker-root-user", None)]);
        assert!(out.findings[0].message.contains("line 1"));
        // Only the final stage's USER counts.
        let out = scan("FROM alpine:3.20 AS a\nUSER app\nFROM alpine:3.20\n", None);
        assert_eq!(rules_at(&out), vec![("docker-root-user", None)]);
        let out = scan("FROM alpine:3.20\nUSER app\nUSER 0:0\n", None);
        assert_eq!(rules_at(&out), vec![("docker-root-user", Some(3))]);
        let out = scan("FROM alpine:3.20\nUSER root\nRUN x\nUSER app\n", None);
        assert!(out.findings.is_empty());
    }

    #[test]
    fn dockerfile_from_tags() {
        let tag = |from: &str| {
            let out = scan(&format!("FROM {from}\nUSER app\n"), Some("dockerfile"));
            has(&out, "docker-image-latest")
        };
        assert!(tag("nginx"));
        assert!(tag("nginx:latest"));
        assert!(tag("docker.io/library/nginx:LATEST"));
        assert!(tag("localhost:5000/team/app"));
        assert!(tag("--platform=linux/amd64 python"));
        assert!(!tag("nginx:1.27"));
        assert!(!tag("nginx@sha256:abcd"));
        assert!(!tag("scratch"));
        assert!(!tag("${BASE_IMAGE}"));
        assert!(!tag("localhost:5000/team/app:1.2"));
    }

    #[test]
    fn dockerfile_secret_names() {
        for name in [
            "DB_PASSWORD",
            "API_KEY",
            "apiKey",
            "GITHUB_TOKEN",
            "CLIENT_SECRET",
            "SSH_PRIVATE_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "MYSQL_ROOT_PASS",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "GPG_KEY",
            "PUBLIC_KEY",
            "PASSWORD_FILE",
            "TOKEN_URL",
            "APP_HOME",
            "KEYBOARD",
            "MONKEY_BUSINESS",
            "PATH",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
        // Legacy ENV form, and empty ENV values are not secrets.
        let out = scan(
            "FROM a:1\nENV API_TOKEN abc def\nENV SECRET_X=\"\"\nUSER app\n",
            None,
        );
        assert_eq!(rules_at(&out), vec![("docker-secret-in-env", Some(2))]);
    }

    #[test]
    fn dockerfile_curl_variants() {
        let hit = |run: &str| {
            has(
                &scan(&format!("FROM a:1\nRUN {run}\nUSER app\n"), None),
                "docker-curl-pipe-shell",
            )
        };
        assert!(hit("curl -sL https://x.sh | sh"));
        assert!(hit("wget -qO- https://x.sh | bash -s -- -y"));
        assert!(hit("curl https://x | /bin/bash"));
        assert!(!hit(
            "curl -o /tmp/x.sh https://x.sh && sha256sum -c x.sha && sh /tmp/x.sh"
        ));
        assert!(!hit("curl https://x | tar xz"));
        assert!(!hit("echo hi | sh"));
    }

    const BAD_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  template:
    metadata:
      labels: {app: web}
    spec:
      hostNetwork: true
      hostPID: yes
      securityContext:
        runAsUser: 0
      volumes:
        - name: docker
          hostPath:
            path: /var/run/docker.sock
      containers:
        - name: app
          image: nginx
          securityContext:
            privileged: true
            allowPrivilegeEscalation: true
            capabilities:
              add: ["NET_ADMIN", "CAP_SYS_ADMIN", "CHOWN"]
        - name: sidecar
          image: busybox:1.36
          resources:
            limits: {cpu: 100m, memory: 64Mi}
          securityContext:
            allowPrivilegeEscalation: false
            runAsNonRoot: true
            runAsUser: 1000
            readOnlyRootFilesystem: true
"#;

    #[test]
    fn kubernetes_deployment_rules_and_paths() {
        let out = scan(BAD_DEPLOYMENT, None);
        assert_eq!(out.kind, "kubernetes");
        assert_eq!(out.objects_scanned, 1);
        let got: Vec<(&str, &str)> = out
            .findings
            .iter()
            .map(|f| (f.rule.as_str(), f.path.as_deref().unwrap()))
            .collect();
        let s = "spec.template.spec";
        let c0 = format!("{s}.containers[0]");
        let expected = vec![
            ("k8s-host-network", format!("{s}.hostNetwork")),
            ("k8s-host-pid", format!("{s}.hostPID")),
            ("k8s-host-path", format!("{s}.volumes[0].hostPath")),
            ("k8s-image-latest", format!("{c0}.image")),
            ("k8s-privileged", format!("{c0}.securityContext.privileged")),
            (
                "k8s-privilege-escalation",
                format!("{c0}.securityContext.allowPrivilegeEscalation"),
            ),
            ("k8s-run-as-root", format!("{s}.securityContext.runAsUser")),
            (
                "k8s-run-as-non-root",
                format!("{c0}.securityContext.runAsNonRoot"),
            ),
            (
                "k8s-dangerous-capabilities",
                format!("{c0}.securityContext.capabilities.add[0]"),
            ),
            (
                "k8s-dangerous-capabilities",
                format!("{c0}.securityContext.capabilities.add[1]"),
            ),
            ("k8s-missing-limits", format!("{c0}.resources.limits")),
            (
                "k8s-writable-root-fs",
                format!("{c0}.securityContext.readOnlyRootFilesystem"),
            ),
        ];
        let expected: Vec<(&str, &str)> = expected.iter().map(|(r, p)| (*r, p.as_str())).collect();
        assert_eq!(got, expected);
        assert!(
            out.findings
                .iter()
                .all(|f| f.resource.as_deref() == Some("Deployment/web")
                    && f.document == Some(0)
                    && f.line.is_none())
        );
        let privileged = out
            .findings
            .iter()
            .find(|f| f.rule == "k8s-privileged")
            .unwrap();
        assert_eq!(privileged.severity, Severity::Critical);
        let esc = out
            .findings
            .iter()
            .find(|f| f.rule == "k8s-privilege-escalation")
            .unwrap();
        assert_eq!(esc.severity, Severity::High);
        // The hardened sidecar produced nothing (its UID 1000 overrides the pod's 0).
        assert!(
            out.findings
                .iter()
                .all(|f| !f.path.as_deref().unwrap().contains("containers[1]"))
        );
    }

    const MULTI_DOC: &str = r#"---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: hardened
spec:
  securityContext:
    runAsNonRoot: true
  containers:
    - name: app
      image: registry.example.com/app@sha256:abc
      resources:
        limits: {memory: 128Mi}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          hostIPC: true
          initContainers:
            - name: init
              image: alpine:3.20
              securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: false}
              resources: {limits: {cpu: "1"}}
          containers:
            - name: job
              image: alpine:latest
              securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true}
              resources: {limits: {cpu: "1"}}
"#;

    #[test]
    fn kubernetes_multi_document_pod_and_cronjob() {
        let out = scan(MULTI_DOC, Some("Kubernetes"));
        assert_eq!(out.objects_scanned, 2);
        let got: Vec<(&str, u32, &str, &str)> = out
            .findings
            .iter()
            .map(|f| {
                (
                    f.rule.as_str(),
                    f.document.unwrap(),
                    f.resource.as_deref().unwrap(),
                    f.path.as_deref().unwrap(),
                )
            })
            .collect();
        let base = "spec.jobTemplate.spec.template.spec";
        assert_eq!(
            got,
            vec![
                (
                    "k8s-host-ipc",
                    2,
                    "CronJob/nightly",
                    "spec.jobTemplate.spec.template.spec.hostIPC"
                ),
                (
                    "k8s-run-as-non-root",
                    2,
                    "CronJob/nightly",
                    &*format!("{base}.initContainers[0].securityContext.runAsNonRoot")
                ),
                (
                    "k8s-image-latest",
                    2,
                    "CronJob/nightly",
                    &*format!("{base}.containers[0].image")
                ),
            ]
        );
    }

    #[test]
    fn kubernetes_pod_level_non_root_and_list() {
        let list = r#"apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      containers:
        - name: c
          image: nginx:1.27
          resources: {limits: {memory: 1Gi}}
          securityContext: {allowPrivilegeEscalation: "false", readOnlyRootFilesystem: "yes", runAsUser: 1000}
"#;
        let out = scan(list, None);
        assert_eq!(out.objects_scanned, 1);
        assert_eq!(out.findings.len(), 1);
        let f = &out.findings[0];
        assert_eq!(f.rule, "k8s-run-as-non-root");
        assert_eq!(f.severity, Severity::Low);
        assert_eq!(f.resource.as_deref(), Some("Pod/p"));
        assert_eq!(
            f.path.as_deref(),
            Some("items[0].spec.containers[0].securityContext.runAsNonRoot")
        );
    }

    #[test]
    fn invalid_yaml_and_kind_errors() {
        let e = scan_iac(&ScanIacArgs {
            content: "apiVersion: v1\nkind: Pod\nspec: [unclosed\n".into(),
            kind: None,
        })
        .unwrap_err();
        assert_eq!(e.field, "content");
        assert!(e.message.contains("invalid YAML"), "{}", e.message);
        let e = scan_iac(&ScanIacArgs {
            content: "hello world".into(),
            kind: None,
        })
        .unwrap_err();
        assert_eq!(e.field, "kind");
        let e = scan_iac(&ScanIacArgs {
            content: "x".into(),
            kind: Some("terraform".into()),
        })
        .unwrap_err();
        assert_eq!(e.field, "kind");
        assert!(e.message.contains("kubernetes"));
        let e = scan_iac(&ScanIacArgs {
            content: "#".repeat(MAX_CONTENT_BYTES + 1),
            kind: Some("dockerfile".into()),
        })
        .unwrap_err();
        assert_eq!(e.field, "content");
    }

    #[test]
    fn non_workload_kinds_and_empty_docs_are_ignored() {
        let out = scan(
            "---\n---\napiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n",
            Some("kubernetes"),
        );
        assert_eq!(out.objects_scanned, 0);
        assert!(out.findings.is_empty());
    }
}
