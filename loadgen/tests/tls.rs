//! `https://` targets end to end: the official Python SDK's MCP server served over TLS by
//! uvicorn, with a CA and a server certificate made here, measured by the loadgen binary with
//! `--cacert`, without it (the health sweep fails on the certificate, exit 2) and with
//! `--insecure` (the run file says verification was off).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use common::{
    interop::{ServerProcess, Software, free_port, software},
    loadgen, run_file,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        std::fs::write(
            dir.path().join("ca.pem"),
            ca.self_signed(&ca_key).unwrap().pem(),
        )
        .unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server-key.pem"), key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca(&self) -> String {
        self.path("ca.pem").to_str().unwrap().to_string()
    }
}

/// The Python SDK server (streamable HTTP, sessions) on a free port, over TLS.
fn python_over_tls(software: &Software, pki: &Pki) -> ServerProcess {
    let port = free_port();
    let mut command = Command::new(software.python());
    command
        .arg(Software::script("py_server.py"))
        .args(["--port", &port.to_string()])
        .arg("--ssl-certfile")
        .arg(pki.path("server.pem"))
        .arg("--ssl-keyfile")
        .arg(pki.path("server-key.pem"));
    ServerProcess::start("python-sdk-tls", command, port)
}

/// A short closed-loop run of `echo` calls against `url`: exit code, stderr and the run folder.
fn measure(url: &str, out: &Path, more: &[&str]) -> (i32, String) {
    let mut args = vec!["--target", url, "--tool", r#"echo:{"text":"hi"}"#];
    args.extend("--scenario latency --users 2 --warmup 0 --run-time 1".split(' '));
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(more);
    let (code, _, stderr) = loadgen(&args);
    (code, stderr)
}

#[test]
fn https_targets_are_measured_with_cacert_refused_without_and_insecure_says_so() {
    let Some(software) = software() else { return };
    let pki = Pki::new();
    let server = python_over_tls(&software, &pki);
    let tmp = tempfile::tempdir().unwrap();

    // Trusting the test CA: every call succeeds, by host name and by IP address.
    for (host, name) in [("localhost", "by-name"), ("127.0.0.1", "by-ip")] {
        let url = format!("https://{host}:{}/mcp", server.port);
        let out = tmp.path().join(name);
        let (code, stderr) = measure(&url, &out, &["--cacert", &pki.ca()]);
        assert_eq!(code, 0, "{stderr}");
        let run = run_file(&out);
        let latency = &run["latency"];
        assert!(latency["ok"].as_u64().unwrap() > 0, "{latency}");
        assert_eq!(latency["ok"], latency["requests"], "{}", latency["errors"]);
        let trust = run["config"]["tls"].as_str().unwrap();
        assert!(trust.contains("ca.pem"), "{trust}");
    }

    // The machine's roots alone do not know the test CA: the sweep fails, naming why.
    let url = format!("https://localhost:{}/mcp", server.port);
    let (code, stderr) = measure(&url, &tmp.path().join("untrusted"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("TLS handshake with localhost failed"),
        "{stderr}"
    );
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    assert!(stderr.contains("--cacert FILE"), "{stderr}");
    assert!(stderr.contains("connect"), "{stderr}");
    assert_eq!(
        stderr.matches("TLS handshake with").count(),
        1,
        "the cause is logged once: {stderr}"
    );

    // --insecure: measured, and the run file says verification was off.
    let out = tmp.path().join("insecure");
    let (code, stderr) = measure(&url, &out, &["--insecure"]);
    assert_eq!(code, 0, "{stderr}");
    let run = run_file(&out);
    assert_eq!(run["latency"]["ok"], run["latency"]["requests"]);
    assert_eq!(run["config"]["tls"], "TLS verification off");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("TLS verification off"));
}

#[test]
fn a_cacert_without_certificates_is_a_usage_error() {
    let pki = Pki::new();
    let tmp = tempfile::tempdir().unwrap();
    let url = "https://127.0.0.1:9/mcp";
    for (file, why) in [
        (pki.path("missing.pem"), "cannot read"),
        (pki.path("server-key.pem"), "holds no PEM certificate"),
    ] {
        let (code, stderr) = measure(url, tmp.path(), &["--cacert", file.to_str().unwrap()]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("--cacert") && stderr.contains(why),
            "{stderr}"
        );
    }
    let (code, stderr) = measure(url, tmp.path(), &["--cacert", &pki.ca(), "--insecure"]);
    assert_eq!(code, 2, "{stderr}");
}
