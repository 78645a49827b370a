//! The official Python SDK's client (mcp 2.x) through the gateway, in its initialize handshake
//! (`legacy`, what nearly every client in use sends) and in its `auto` mode (which asks
//! `server/discover` first, and adopts 2026-07-28 when that is answered). The client runs as a
//! process the test drives line by line (`tests/interop/py_gateway_client.py`), so the test can
//! act on the fleet between two requests of one session; when it closes, it reports whatever
//! the SDK logged as a warning, which must be nothing (a DELETE answered with anything but
//! 200/204 is "Session termination failed"), and what became of its GET stream.

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout},
};

use super::{
    COMMUNITY, FLEET_CHANGES, McpClient, common::interop::Software, common::interop::software,
    gateway_mcp, lists_and_calls_both_groups, scale_community, survives_the_kill_of_its_member,
};

/// The SDK's connect modes: the initialize handshake, or `server/discover` first.
pub(super) const HANDSHAKE: &str = "legacy";
pub(super) const AUTO: &str = "auto";

/// The Python SDK's client, connected to the gateway's `/mcp`.
pub(super) struct PyClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl PyClient {
    /// Connects to the shared fleet's gateway in `mode`; see [`PyClient::start_at`].
    async fn start(sw: &Software, mode: &str, version: &str) -> PyClient {
        PyClient::start_at(&gateway_mcp(), sw, mode, version).await
    }

    /// Connects to `url` in `mode`; the SDK must have settled on `version` with the gateway
    /// itself, which announces that its tools list changes to session clients (a 2026-07-28
    /// client would need a `subscriptions/listen` stream the gateway does not offer).
    pub(super) async fn start_at(url: &str, sw: &Software, mode: &str, version: &str) -> PyClient {
        let (client, connected) = PyClient::spawn(url, sw, mode).await;
        assert_eq!(connected["protocol_version"], version, "{connected}");
        assert_eq!(connected["server"], "mcpfleet-gateway", "{connected}");
        let session = version != "2026-07-28";
        assert_eq!(connected["list_changed_capability"], session, "{connected}");
        client
    }

    /// Connects to `url` in `mode`: the client, and what it says it connected to (the
    /// negotiated `protocol_version`, the `server`'s name, `list_changed_capability`).
    async fn spawn(url: &str, sw: &Software, mode: &str) -> (PyClient, Value) {
        let mut child = tokio::process::Command::new(sw.python())
            .arg(Software::script("py_gateway_client.py"))
            .args([url, "--mode", mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the Python client starts");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut client = PyClient {
            child,
            stdin,
            lines,
        };
        let first = client.answer().await;
        (client, first["connected"].clone())
    }

    /// The client's next line, within 60 s; it must not report an error.
    async fn answer(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("the Python client answers within 60 s")
            .unwrap()
            .expect("the Python client is still running");
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert!(answer.get("error").is_none(), "{answer}");
        answer
    }

    async fn ask(&mut self, command: Value) -> Value {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.answer().await
    }

    /// How many `notifications/tools/list_changed` it has had, once it has more than `seen`
    /// (or 20 s have passed).
    async fn list_changed_after(&mut self, seen: u64) -> u64 {
        let heard = self
            .ask(json!({"op": "wait_list_changed", "timeout": 20}))
            .await;
        let count = heard["list_changed"].as_u64().unwrap();
        assert!(
            count > seen,
            "notifications/tools/list_changed arrives: {heard}"
        );
        count
    }

    /// Ends the client (a DELETE in a session); no warning may have been logged. Its report.
    pub(super) async fn close(mut self) -> Value {
        let report = self.ask(json!({"op": "close"})).await;
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the Python client exits")
            .unwrap();
        assert!(status.success(), "{status}");
        assert_eq!(report["warnings"], json!([]), "{report}");
        report
    }
}

impl McpClient for PyClient {
    async fn list(&mut self) -> Vec<String> {
        let answer = self.ask(json!({"op": "list"})).await;
        serde_json::from_value(answer["tools"].clone()).unwrap()
    }

    async fn call(&mut self, name: &str, arguments: Value) -> Value {
        let answer = self
            .ask(json!({"op": "call", "name": name, "arguments": arguments}))
            .await;
        assert_eq!(answer["isError"], false, "{name}: {answer}");
        answer["structured"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_handshake_gets_a_gateway_session_over_both_groups() {
    let Some(sw) = software() else { return };
    let _shared = FLEET_CHANGES.read().await;
    let mut client = PyClient::start(&sw, HANDSHAKE, "2025-11-25").await;
    lists_and_calls_both_groups(&mut client).await;
    // The session's other requests, answered by the gateway itself.
    client.ask(json!({"op": "ping"})).await;
    client
        .ask(json!({"op": "set_level", "level": "info"}))
        .await;
    let report = client.close().await;
    // The SDK opened the session's GET stream and met no error on it.
    assert_eq!(report["get_stream"]["established"], true, "{report}");
    assert_eq!(report["get_stream"]["errors"], 0, "{report}");
    assert_eq!(report["get_stream"]["not_opened"], 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_discovers_the_gateway_and_calls_statelessly() {
    let Some(sw) = software() else { return };
    let _shared = FLEET_CHANGES.read().await;
    // `server/discover` answered: the SDK adopts 2026-07-28 rather than falling back.
    let mut client = PyClient::start(&sw, AUTO, "2026-07-28").await;
    lists_and_calls_both_groups(&mut client).await;
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_survives_the_kill_of_the_member_that_served_it() {
    let Some(sw) = software() else { return };
    let mut client = PyClient::start(&sw, HANDSHAKE, "2025-11-25").await;
    survives_the_kill_of_its_member(&mut client, super::fleet()).await;
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_hears_tools_list_changed_when_a_group_is_scaled() {
    let Some(sw) = software() else { return };
    let _alone = FLEET_CHANGES.write().await;
    let mut client = PyClient::start(&sw, HANDSHAKE, "2025-11-25").await;
    // The SDK opens the GET stream by itself after the handshake; a change made before it is
    // open would reach no one.
    let open = client
        .ask(json!({"op": "await_stream", "timeout": 20}))
        .await;
    assert_eq!(
        open["stream"], true,
        "the SDK opens the session's GET stream"
    );

    scale_community(COMMUNITY + 1).await;
    let heard = client.list_changed_after(0).await;
    // Listing again, as the notification asks, still shows the whole fleet.
    lists_and_calls_both_groups(&mut client).await;
    scale_community(COMMUNITY).await;
    client.list_changed_after(heard).await;
    client.close().await;
}

/// `/mcp?group=NAME` and `/mcp/{server-id}` keep a session on one member, which answers as
/// itself (its own tool names); that member's answer to the DELETE that ends it, through the
/// gateway, must be one the SDK takes without a warning (200/204).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_sessions_reach_one_member_and_end_without_a_warning() {
    let Some(sw) = software() else { return };
    let _shared = FLEET_CHANGES.read().await;
    let servers = super::get_json(&format!("http://{}/servers", super::fleet().admin)).await;
    let member = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["group"] == "community")
        .map(|s| s["id"].as_str().unwrap().to_string())
        .unwrap();
    let mcp = gateway_mcp();
    for url in [format!("{mcp}?group=community"), format!("{mcp}/{member}")] {
        let (mut client, connected) = PyClient::spawn(&url, &sw, HANDSHAKE).await;
        assert_ne!(
            connected["server"], "mcpfleet-gateway",
            "{url}: {connected}"
        );
        let tools = client.list().await;
        assert!(tools.iter().any(|t| t == "echo"), "{url}: {tools:?}");
        let out = client.call("echo", json!({"text": "pinned"})).await;
        assert_eq!(out["text"], "pinned");
        client.close().await;
    }
}
