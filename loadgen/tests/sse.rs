//! The legacy HTTP+SSE transport (2024-11-05) against real third-party servers: the official
//! Python SDK's SSE server and the TypeScript SDK's `server-everything sse`, started as
//! processes on loopback. Found by `--protocol auto` and by `--protocol 2024-11-05`, measured
//! with every call answered, notifications and requests of the server's before a result counted
//! apart from it (the requests answered), and a server killed mid-run giving `connect` errors
//! instead of a hang.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    interop::{ServerProcess, Software, free_port, software},
    loadgen, run_file,
};
use serde_json::Value;

/// The Python SDK's server on the SSE transport (stream at `/sse`).
fn python_sse(software: &Software) -> ServerProcess {
    let port = free_port();
    let mut command = Command::new(software.python());
    command.arg(Software::script("py_server.py")).args([
        "--transport",
        "sse",
        "--port",
        &port.to_string(),
    ]);
    ServerProcess::start("python-sse", command, port)
}

/// `mcp-server-everything sse` (its port comes from `PORT`; stream at `/sse`).
fn everything_sse(software: &Software) -> ServerProcess {
    let port = free_port();
    let mut command = Command::new(software.node_bin("mcp-server-everything"));
    command.arg("sse").env("PORT", port.to_string());
    ServerProcess::start("everything-sse", command, port)
}

/// The flags of a short latency run against `url` calling `tool`, written to `out`.
fn short_run<'a>(url: &'a str, tool: &'a str, out: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--target", url, "--tool", tool];
    args.extend(common::short_latency(out, more));
    args
}

/// A short latency run against `url` calling `tool`, with `more` flags: the run file, once a
/// run was made (exit 0 or 1 by the seed report's claims, which a slow tool can fail; the
/// calls' outcomes are checked in the run file).
fn measure(url: &str, tool: &str, more: &[&str]) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let (code, stdout, stderr) = loadgen(&short_run(url, tool, &out, more));
    assert!(code == 0 || code == 1, "{more:?}\n{stdout}\n{stderr}");
    run_file(&out)
}

/// The latency phase of a run whose every call must have succeeded, and how many there were.
fn all_ok(run: &Value) -> (&Value, u64) {
    let phase = &run["latency"];
    let requests = phase["requests"].as_u64().expect("a latency phase");
    assert!(requests > 0, "{phase}");
    assert_eq!(phase["ok"].as_u64(), Some(requests), "{}", phase["errors"]);
    (phase, requests)
}

/// The run spoke 2024-11-05 to its one server.
fn spoke_legacy(run: &Value) {
    assert_eq!(
        run["health"]["protocols"],
        serde_json::json!({"2024-11-05": 1})
    );
}

#[test]
fn the_python_sdk_sse_server_is_found_and_measured_in_its_era() {
    let Some(software) = software() else { return };
    let server = python_sse(&software);
    for protocol in ["auto", "2024-11-05"] {
        let echo = r#"echo:{"text":"hi"}"#;
        let run = measure(&server.url("/sse"), echo, &["--protocol", protocol]);
        spoke_legacy(&run);
        all_ok(&run);
    }
}

#[test]
fn notifications_before_a_result_are_counted_not_taken_for_it() {
    let Some(software) = software() else { return };
    let server = python_sse(&software);
    let run = measure(&server.url("/sse"), r#"chatty:{"text":"hi"}"#, &[]);
    let (phase, requests) = all_ok(&run);
    // `chatty` logs twice before answering (its progress reports go nowhere without a token).
    let logged = phase["asides"]["notifications/message"].as_u64();
    assert_eq!(logged, Some(2 * requests), "{}", phase["asides"]);
}

#[test]
fn the_servers_own_requests_are_answered_on_the_endpoint_and_counted() {
    let Some(software) = software() else { return };
    let server = python_sse(&software);
    let run = measure(&server.url("/sse"), "asks", &["--protocol", "2024-11-05"]);
    // `asks` answers only once each of its questions got a reply (or an error) from us.
    let (phase, requests) = all_ok(&run);
    for kind in ["roots/list", "sampling/createMessage", "elicitation/create"] {
        let asked = phase["asides"][kind].as_u64();
        assert_eq!(asked, Some(requests), "{kind}: {}", phase["asides"]);
    }
}

#[test]
fn the_typescript_everything_server_over_sse_answers_every_call() {
    let Some(software) = software() else { return };
    let server = everything_sse(&software);
    let run = measure(&server.url("/sse"), r#"echo:{"message":"hi"}"#, &[]);
    spoke_legacy(&run);
    all_ok(&run);
}

#[test]
fn a_server_killed_mid_run_gives_connect_errors_not_a_hang() {
    let Some(software) = software() else { return };
    let server = python_sse(&software);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let url = server.url("/sse");
    let mut args = short_run(&url, r#"echo:{"text":"hi"}"#, &out, &["--timeout", "2"]);
    let at = args.iter().position(|a| *a == "--run-time").unwrap();
    args[at + 1] = "5";
    let mut run = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    drop(server);
    // Bounded: 5 s of run, timeouts of 2 s, writing the run; a hang would never end.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            run.kill().unwrap();
            panic!("loadgen did not finish after its server was killed");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.code().is_some(), "{status}");
    let run = run_file(&out);
    let phase = &run["latency"];
    let connect = phase["errors"]["connect"].as_u64().unwrap_or(0);
    assert!(connect > 0, "{phase}");
    assert!(
        phase["ok"].as_u64() > Some(0),
        "calls before the kill succeeded"
    );
}
