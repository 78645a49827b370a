//! One client's errors must not flood the fleet's log: every request a client gets wrong (here
//! a call of a tool that does not exist) was logged at WARN by rmcp, so a client could fill the
//! disk or drown what matters. With the default filter they are not logged; `RUST_LOG` still
//! brings them back for a debugging session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Bad calls sent; the old code logged one line each.
const BAD_CALLS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_s_errors_do_not_flood_the_log() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut up = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["up", "--no-memory", "--servers", "1", "--ephemeral-ports"])
        .args(["--admin-port", "0", "--gateway-port", "0"])
        .arg("--admin-token-file")
        .arg(state.path().join("admin-token"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut url = None;
    while url.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with("/mcp"))
            .filter(|_| line.trim_start().starts_with("community"))
            .map(str::to_string);
    }
    let url = url.expect("fleet up names its server");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut meta = serde_json::json!({});
    meta["_meta"] = fleet::wire::stateless_meta();
    for i in 0..BAD_CALLS {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "no_such_tool", "arguments": {}, "_meta": meta["_meta"]}});
        let resp = client
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "no_such_tool")
            .json(&body)
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        assert!(text.contains("error"), "{text}");
    }
    let _ = up.kill();
    let _ = up.wait();
    let logged = std::fs::read_to_string(log.path()).unwrap();
    let count = logged.lines().count();
    assert!(
        count < BAD_CALLS / 10,
        "{count} log lines for {BAD_CALLS} bad calls:\n{}",
        logged.lines().take(5).collect::<Vec<_>>().join("\n")
    );
}
