//! Every Dockerfile and Kubernetes rule firing (and not firing) on small inputs, kind
//! detection and the input errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::dockerfile::is_secret_name;
use super::*;
use crate::tools::security::{severity::Severity, text::MAX_CONTENT_BYTES};

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
