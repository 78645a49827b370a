//! OAuth client credentials against real software: the official Python SDK's resource-server
//! auth (401 with `resource_metadata`, RFC 9728 metadata, its token verifier) in front of an MCP
//! server, and a small authorization server (`tests/interop/auth_server.py`) issuing 2-second
//! tokens, so a 4-second run has to renew them. Each client authentication method gets a token
//! and every measured call succeeds; a refused client and a run without credentials stop with
//! exit status 2 and say why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    process::Command,
    time::Duration,
};

use common::interop::{ServerProcess, Software, free_port, software};
use serde_json::Value;

const CLIENT_ID: &str = "loadgen-test";
const SECRET: &str = "s3cret with spaces";

/// An authorization server and the protected MCP server that trusts it.
struct Protected {
    auth: ServerProcess,
    mcp: ServerProcess,
}

impl Protected {
    /// Starts both; the authorization server offers `methods` and knows the public keys in
    /// `keys` (its issuer has a path, so discovery must insert it).
    fn start(sw: &Software, methods: &str, keys: &Path) -> Protected {
        let signing = format!("signing-{}", free_port());
        let auth_port = free_port();
        let mut auth = Command::new(sw.python());
        auth.arg(Software::script("auth_server.py")).args([
            "--port",
            &auth_port.to_string(),
            "--issuer-path",
            "/tenant",
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            SECRET,
            "--methods",
            methods,
            "--expires-in",
            "2",
            "--signing-secret",
            &signing,
        ]);
        for key in ["ec.pub.pem", "rsa.pub.pem"] {
            auth.arg("--client-public-key").arg(keys.join(key));
        }
        let auth = ServerProcess::start("auth", auth, auth_port);
        let mcp_port = free_port();
        let mut mcp = Command::new(sw.python());
        mcp.arg(Software::script("py_protected_server.py")).args([
            "--port",
            &mcp_port.to_string(),
            "--issuer",
            &auth.url("/tenant"),
            "--signing-secret",
            &signing,
        ]);
        let mcp = ServerProcess::start("protected", mcp, mcp_port);
        Protected { auth, mcp }
    }

    /// The authorization server's counts (`GET /stats`).
    fn stats(&self) -> Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.auth.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body).unwrap()
    }
}

/// Key pairs for private_key_jwt, written by auth_server.py (PKCS#8 PEM).
fn keys(sw: &Software, dir: &Path) {
    let status = Command::new(sw.python())
        .arg(Software::script("auth_server.py"))
        .arg("--write-keys")
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A 4-second latency run against `target` calling `echo`, with `more` flags and the secret in
/// `LG_SECRET`: exit status, stderr, and the run file when one was written.
fn loadgen_run(target: &str, out: &Path, more: &[&str]) -> (i32, String, Option<Value>) {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", target, "--tool", r#"echo:{"text":"hi"}"#])
        .args("--scenario latency --users 2 --warmup 0 --run-time 4".split(' '))
        .arg("--out")
        .arg(out)
        .args(more)
        .env("LG_SECRET", SECRET)
        .env("LG_WRONG_SECRET", "not it")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let run = out.join("run.json").exists().then(|| common::run_file(out));
    (output.status.code().unwrap_or(-1), stderr, run)
}

#[test]
fn each_client_authentication_method_gets_tokens_that_are_renewed_and_every_call_succeeds() {
    let Some(sw) = software() else { return };
    let tmp = tempfile::tempdir().unwrap();
    keys(&sw, tmp.path());
    let key = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (ec, rsa) = (key("ec.pem"), key("rsa.pem"));
    let all = Protected::start(
        &sw,
        "client_secret_basic,client_secret_post,private_key_jwt",
        tmp.path(),
    );
    let post_only = Protected::start(&sw, "client_secret_post", tmp.path());
    let cases = [
        (
            &all,
            "client_secret_basic",
            vec!["--oauth-client-secret-env", "LG_SECRET"],
        ),
        (
            &post_only,
            "client_secret_post",
            vec!["--oauth-client-secret-env", "LG_SECRET"],
        ),
        (&all, "private_key_jwt", vec!["--oauth-private-key", &ec]),
        (&all, "private_key_jwt", vec!["--oauth-private-key", &rsa]),
    ];
    for (i, (server, method, flags)) in cases.iter().enumerate() {
        let issued_before = server.stats()["methods"][method].as_u64().unwrap_or(0);
        let mut more = vec!["--oauth-client-id", CLIENT_ID];
        more.extend(flags.iter().copied());
        let out = tmp.path().join(format!("run-{i}"));
        let (code, stderr, run) = loadgen_run(&server.mcp.url("/mcp"), &out, &more);
        assert_eq!(code, 0, "{method} {flags:?}: {stderr}");
        let run = run.unwrap();
        let latency = &run["latency"];
        let requests = latency["requests"].as_u64().unwrap();
        assert!(requests > 0, "{method}: {latency}");
        assert_eq!(
            latency["ok"].as_u64(),
            Some(requests),
            "{method}: {latency}"
        );
        let auth = &run["auth"];
        assert_eq!(auth["client_auth"], serde_json::json!([method]), "{auth}");
        assert_eq!(
            auth["authorization_servers"],
            serde_json::json!([server.auth.url("/tenant")])
        );
        // 2-second tokens over a sweep and a 4-second run: renewed at least once.
        let fetches = auth["token_fetches"].as_u64().unwrap();
        assert!(fetches > 1, "{method}: {auth}");
        assert_eq!(auth["failures"].as_u64(), Some(0), "{auth}");
        let issued = server.stats()["methods"][method].as_u64().unwrap() - issued_before;
        assert_eq!(issued, fetches, "the server issued what loadgen counted");
    }
}

#[test]
fn a_refused_client_and_a_run_without_credentials_stop_with_status_2_saying_why() {
    let Some(sw) = software() else { return };
    let tmp = tempfile::tempdir().unwrap();
    keys(&sw, tmp.path());
    let server = Protected::start(&sw, "client_secret_basic", tmp.path());
    let target = server.mcp.url("/mcp");

    let (code, stderr, run) = loadgen_run(
        &target,
        &tmp.path().join("wrong"),
        &[
            "--oauth-client-id",
            CLIENT_ID,
            "--oauth-client-secret-env",
            "LG_WRONG_SECRET",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(r#""invalid_client""#), "{stderr}");
    assert!(stderr.contains("/tenant/token"), "{stderr}");
    assert!(run.is_none(), "nothing measured");
    assert_eq!(server.stats()["refused"].as_u64(), Some(1));

    let (code, stderr, _) = loadgen_run(&target, &tmp.path().join("none"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("HTTP status 401"), "{stderr}");
    assert!(stderr.contains("--oauth-client-id"), "{stderr}");
    assert!(stderr.contains("Authorization: Bearer"), "{stderr}");
}
