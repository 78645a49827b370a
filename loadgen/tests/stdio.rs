//! loadgen against stdio servers, as real processes it spawns: our `fleet serve-stdio` (one
//! process per user, and one process shared by several users with pipelined requests), the
//! official Python SDK's stdio server and the TypeScript `server-everything` (skipped, saying
//! so, only when their registries cannot be reached), and a server that exits mid-run: its
//! calls in flight are `exited` errors, it is restarted, and the run still ends cleanly with no
//! server process left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use serde_json::Value;

use common::{interop::software, loadgen, run_file};

/// The `fleet` binary, built by cargo for this test (a test of another crate has no
/// `CARGO_BIN_EXE_fleet`): `cargo build -p fleet`, its path read from cargo's own report, so
/// it works in a fresh clone with any target directory or profile.
fn fleet_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "fleet",
                "--bin",
                "fleet",
                "--message-format=json",
            ])
            .current_dir(&root)
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "cargo build -p fleet failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "fleet")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the fleet executable")
    })
}

/// A short latency run against `target` with `users` users calling `tool`; more flags after.
fn stdio_run(out: &Path, target: &str, users: &str, tool: &str, more: &[&str]) -> (Value, String) {
    let mut args = vec![
        "--target",
        target,
        "--scenario",
        "latency",
        "--users",
        users,
        "--warmup",
        "0",
        "--run-time",
        "2",
        "--timeout",
        "5",
        "--tool",
        tool,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let (code, stdout, stderr) = loadgen(&args);
    assert!(
        code == 0 || code == 1,
        "loadgen exited {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (run_file(out), stdout)
}

/// The latency scenario's error classes that occurred, with their counts.
fn errors(run: &Value) -> serde_json::Map<String, Value> {
    let all = run["latency"]["errors"].as_object().cloned();
    all.unwrap_or_default()
        .into_iter()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .collect()
}

fn requests(run: &Value) -> u64 {
    run["latency"]["requests"].as_u64().unwrap()
}

/// Processes whose command line holds `marker`, other than this test's own.
fn processes_with(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n != me && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker))
        .collect()
}

#[test]
fn one_fleet_server_process_per_user() {
    let tmp = tempfile::tempdir().unwrap();
    let target = format!(
        "stdio:{} serve-stdio --profile community",
        fleet_binary().display()
    );
    let (run, stdout) = stdio_run(
        &tmp.path().join("run"),
        &target,
        "3",
        r#"echo:{"text":"hi"}"#,
        &[],
    );
    assert!(requests(&run) > 0, "{stdout}");
    assert!(errors(&run).is_empty(), "{:?}", errors(&run));
    let stdio = &run["stdio"];
    assert_eq!(stdio["processes"], 3, "{stdio}");
    assert_eq!(stdio["started"], 3, "{stdio}");
    assert_eq!(stdio["exited"], 0, "{stdio}");
    assert_eq!(stdio["protocol_version"], "2026-07-28", "{stdio}");
    assert!(stdio["rss_bytes_max"].as_u64().unwrap() > 0, "{stdio}");
    assert!(!stdio["samples"].as_array().unwrap().is_empty(), "{stdio}");
    for log in stdio["logs"].as_array().unwrap() {
        assert!(
            tmp.path().join("run").join(log.as_str().unwrap()).is_file(),
            "{log}"
        );
    }
    assert!(
        stdout.contains("stdio:"),
        "the summary has a stdio line:\n{stdout}"
    );
}

#[test]
fn users_share_one_process_with_pipelined_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let target = format!("stdio:{} serve-stdio", fleet_binary().display());
    let (run, _) = stdio_run(
        &tmp.path().join("run"),
        &target,
        "4",
        r#"work:{"micros":2000,"mode":"sleep"}"#,
        &["--stdio-processes", "1", "--protocol", "2025-11-25"],
    );
    assert!(requests(&run) > 0);
    assert!(errors(&run).is_empty(), "{:?}", errors(&run));
    assert_eq!(run["stdio"]["processes"], 1);
    assert_eq!(run["stdio"]["started"], 1);
    assert_eq!(run["stdio"]["protocol_version"], "2025-11-25");
}

/// A server that exits after a few calls: the calls in flight get `exited`, it is started
/// again, and the run ends by itself with no server left.
#[test]
fn a_server_that_exits_is_restarted_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("dies_after_20_calls.py");
    std::fs::write(&script, DYING_SERVER).unwrap();
    let target = format!("stdio:python3 {}", script.display());
    let (run, _) = stdio_run(
        &tmp.path().join("run"),
        &target,
        "2",
        r#"echo:{"text":"hi"}"#,
        &[],
    );
    let errors = errors(&run);
    assert!(
        errors.get("exited").and_then(Value::as_u64).unwrap_or(0) > 0,
        "{errors:?}"
    );
    let stdio = &run["stdio"];
    assert!(stdio["restarts"].as_u64().unwrap() >= 1, "{stdio}");
    assert!(stdio["exited"].as_u64().unwrap() >= 1, "{stdio}");
    assert!(requests(&run) > errors.values().filter_map(Value::as_u64).sum::<u64>());
    assert_eq!(processes_with("dies_after_20_calls"), Vec::<String>::new());
}

/// Answers `initialize` (with the version asked for), `tools/list` and `tools/call`, and exits
/// after 20 calls, mid-way through the 20th.
const DYING_SERVER: &str = r#"
import json, sys, os
calls = 0
for line in sys.stdin:
    msg = json.loads(line)
    if "id" not in msg or "method" not in msg:
        continue
    if msg["method"] == "tools/list":
        result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
    elif msg["method"] == "initialize":
        result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "dying", "version": "0"}}
    elif msg["method"] == "tools/call":
        calls += 1
        if calls == 20:
            os._exit(1)
        result = {"content": [{"type": "text", "text": "ok"}], "isError": False}
    else:
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "no"}}), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
"#;

#[test]
fn the_python_sdk_stdio_server() {
    let Some(sw) = software() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let target = format!(
        "stdio:{} {} --transport stdio",
        sw.python().display(),
        common::interop::Software::script("py_server.py").display()
    );
    let (run, _) = stdio_run(
        &tmp.path().join("run"),
        &target,
        "2",
        r#"chatty:{"text":"hi"}"#,
        &["--protocol", "2025-11-25"],
    );
    assert!(requests(&run) > 0);
    assert!(errors(&run).is_empty(), "{:?}", errors(&run));
    assert_eq!(run["stdio"]["started"], 2);
    // `chatty` logs twice before each answer (in a session; 2026-07-28 logs only when asked
    // to); the logs were counted, not taken for answers.
    let logs = run["latency"]["asides"]["notifications/message"].as_u64();
    assert!(
        logs.unwrap_or(0) >= 2 * requests(&run),
        "{}",
        run["latency"]["asides"]
    );
}

#[test]
fn the_typescript_server_everything_over_stdio() {
    let Some(sw) = software() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let target = format!(
        "stdio:{} stdio",
        sw.node_bin("mcp-server-everything").display()
    );
    let (run, _) = stdio_run(
        &tmp.path().join("run"),
        &target,
        "2",
        r#"echo:{"message":"hi"}"#,
        &["--stdio-processes", "1"],
    );
    assert!(requests(&run) > 0);
    assert!(errors(&run).is_empty(), "{:?}", errors(&run));
    assert_eq!(run["stdio"]["processes"], 1);
}
