//! loadgen against MCP servers nobody here wrote, over streamable HTTP: the official Python
//! SDK's server (session and stateless versions, tools that log before their result and ask
//! the client for roots, an elicitation and a sampling message) and the TypeScript SDK's
//! `server-everything`. Installed from PyPI/npm on first use (`ci/interop/setup.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{path::Path, process::Command};

use common::interop::{ServerProcess, Software, free_port, software};
use serde_json::Value;

/// A claim every call must meet, so the exit status says whether all succeeded.
const ALL_OK: &str = "[[claims]]\nid = \"all_ok\"\ntitle = \"every call succeeds\"\n\
    quote = \"-\"\nmetric = \"success_percent\"\ncomparator = \">=\"\ntarget = 100.0\n";

/// A two-second latency run of two users against `url` with `more` flags; the run file.
fn run(dir: &Path, url: &str, more: &[&str]) -> Value {
    let claims = dir.join("claims.toml");
    std::fs::write(&claims, ALL_OK).unwrap();
    let out = dir.join("run");
    let mut flags = vec!["--target", url, "--claims", claims.to_str().unwrap()];
    flags.extend_from_slice(more);
    let args = common::short_latency(&out, &flags);
    let (code, stdout, stderr) = common::loadgen(&args);
    assert!(
        out.join("run.json").exists(),
        "no run file (exit {code}):\n{stdout}\n{stderr}"
    );
    let run = common::run_file(&out);
    assert_eq!(
        code, 0,
        "{stdout}\n{stderr}\nerrors: {}",
        run["latency"]["errors"]
    );
    run
}

fn python_server(sw: &Software, extra: &[&str]) -> ServerProcess {
    let port = free_port();
    let mut cmd = Command::new(sw.python());
    cmd.arg(Software::script("py_server.py"))
        .args(["--port", &port.to_string()])
        .args(extra);
    ServerProcess::start("python-sdk", cmd, port)
}

fn aside(run: &Value, kind: &str) -> u64 {
    run["latency"]["asides"][kind].as_u64().unwrap_or(0)
}

/// The answer is the message with our id: log notifications before it are counted, and the
/// tool's requests to the client (roots, elicitation, sampling) are answered on a second
/// connection while the server holds the stream, so the calls complete.
#[test]
fn python_sdk_session_server_with_notifications_and_requests_before_results() {
    let Some(sw) = software() else { return };
    let server = python_server(&sw, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let url = server.url("/mcp");
    let run = run(
        tmp.path(),
        &url,
        &[
            "--protocol",
            "2025-11-25",
            "--tool",
            "chatty:{\"text\":\"x\"}",
            "--tool",
            "asks",
        ],
    );
    assert_eq!(run["health"]["versions"][&url], "2025-11-25");
    assert!(run["latency"]["ok"].as_u64().unwrap() > 0);
    for kind in [
        "notifications/message",
        "roots/list",
        "elicitation/create",
        "sampling/createMessage",
    ] {
        assert!(
            aside(&run, kind) > 0,
            "{kind}: {}",
            run["latency"]["asides"]
        );
    }
}

/// `auto` finds the 2026-07-28 era of a server that answers `server/discover`; a version asked
/// for is the one spoken when the server supports it, older ones included, and `--request`
/// puts any method in the mix.
#[test]
fn python_sdk_versions_auto_and_forced() {
    let Some(sw) = software() else { return };
    let server = python_server(&sw, &[]);
    let url = server.url("/mcp");
    let tmp = tempfile::tempdir().unwrap();
    let auto = run(tmp.path(), &url, &["--tool", "echo:{\"text\":\"hi\"}"]);
    assert_eq!(auto["health"]["versions"][&url], "2026-07-28");
    for version in ["2025-06-18", "2025-03-26"] {
        let tmp = tempfile::tempdir().unwrap();
        let forced = run(
            tmp.path(),
            &url,
            &["--protocol", version, "--request", "ping", "--tool", "echo"],
        );
        assert_eq!(forced["health"]["versions"][&url], version);
        let calls: Vec<&str> = forced["latency"]["by_call"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        assert!(
            calls.contains(&"ping") && calls.contains(&"echo"),
            "{calls:?}"
        );
    }
}

/// A stateless Python server at the root path: `/` is an MCP endpoint, not an admin API.
#[test]
fn python_sdk_stateless_json_server_at_the_root_path() {
    let Some(sw) = software() else { return };
    let server = python_server(&sw, &["--stateless", "--json", "--path", "/"]);
    let url = server.url("/");
    let tmp = tempfile::tempdir().unwrap();
    let run = run(
        tmp.path(),
        &url,
        &[
            "--protocol",
            "2025-11-25",
            "--tool",
            "echo:{\"text\":\"hi\"}",
        ],
    );
    assert_eq!(run["latency"]["errors"]["http_status"], 0);
    assert!(run["latency"]["ok"].as_u64().unwrap() > 0);
}

/// The TypeScript SDK's reference server: no `server/discover`, so `auto` falls back to
/// `initialize`; its elicitation tool gets our decline and still answers.
#[test]
fn typescript_server_everything_over_streamable_http() {
    let Some(sw) = software() else { return };
    let port = free_port();
    let mut cmd = Command::new(sw.node_bin("mcp-server-everything"));
    cmd.arg("streamableHttp").env("PORT", port.to_string());
    let server = ServerProcess::start("server-everything", cmd, port);
    let url = server.url("/mcp");
    let tmp = tempfile::tempdir().unwrap();
    let run = run(
        tmp.path(),
        &url,
        &[
            "--tool",
            "echo:{\"message\":\"hi\"}",
            "--tool",
            "get-sum:{\"a\":1,\"b\":2}",
            "--tool",
            "trigger-elicitation-request",
        ],
    );
    let version = run["health"]["versions"][&url].as_str().unwrap();
    assert_ne!(version, "2026-07-28", "it has no server/discover");
    assert!(
        aside(&run, "elicitation/create") > 0,
        "{}",
        run["latency"]["asides"]
    );
}
