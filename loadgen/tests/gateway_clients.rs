//! The fleet's gateway as the one endpoint of the official Python SDK's client (PyPI `mcp`,
//! installed by the interop fixture), judged by software nobody here wrote: in its initialize
//! handshake (`legacy`, what nearly every client in use sends) and in its `auto` mode (which
//! asks `server/discover` first), it lists both groups' tools through `/mcp` and calls one of
//! each; its session lives through the kill of the member that served its last call and hears
//! `notifications/tools/list_changed` on its GET stream when a group is scaled; and it ends
//! without the SDK logging a warning (a DELETE answered with anything but 200/204 is one).
//! The client runs as a process the test drives line by line
//! (`tests/interop/py_gateway_client.py`), so the test can act on the fleet between two
//! requests of one session. One fleet serves every test of this binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    process::Stdio,
    sync::OnceLock,
    time::{Duration, Instant},
};

use common::interop::{Software, software};
use fleet::{FleetSpec, GroupSpec, Isolation, Profile, gateway::BackendsView};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout},
    sync::RwLock,
};

/// Members of the community group while no test scales it.
const COMMUNITY: u32 = 3;

/// Tests that kill or scale take it to write, so that who served a call and what announced a
/// change are theirs alone; the others share it.
static FLEET_CHANGES: RwLock<()> = RwLock::const_new(());

/// Where the shared fleet answers.
struct Addrs {
    gateway: SocketAddr,
    admin: SocketAddr,
}

/// The fleet every test here talks to: 3 community and 1 security server in tasks, health
/// checked every 100 ms, with its gateway and admin API, started on first use on a runtime of
/// its own (each test's runtime ends with the test) and living as long as the test process.
fn fleet() -> &'static Addrs {
    static FLEET: OnceLock<Addrs> = OnceLock::new();
    FLEET.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let fleet = fleet::Fleet::start(
                    spec(),
                    fleet::FleetOptions {
                        admin: true,
                        gateway: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
                let healthy = fleet.wait_healthy(Duration::from_secs(20), |_, _| {}).await;
                assert_eq!(healthy, COMMUNITY as usize + 1);
                tx.send(Addrs {
                    gateway: fleet.gateway_addr().unwrap(),
                    admin: fleet.admin_addr().unwrap(),
                })
                .unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the shared fleet starts")
    })
}

fn spec() -> FleetSpec {
    let group = |name: &str, profile, count| GroupSpec {
        name: name.into(),
        profile,
        count,
        first_port: 0,
    };
    let mut spec = FleetSpec {
        isolation: Isolation::Task,
        groups: vec![
            group("community", Profile::Community, COMMUNITY),
            group("security", Profile::Security, 1),
        ],
        ..FleetSpec::default()
    }
    .with_ephemeral_ports();
    spec.health.interval = Duration::from_millis(100);
    spec.health.timeout = Duration::from_millis(500);
    spec
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

/// The Python SDK's client in `mode`, connected to the gateway's `/mcp`.
struct PyClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

/// What the SDK would be asked to run as: the initialize handshake, or `server/discover` first.
const HANDSHAKE: &str = "legacy";
const AUTO: &str = "auto";

impl PyClient {
    /// Connects in `mode`; the SDK must have settled on `version` with the gateway itself, which
    /// announces that its tools list changes.
    async fn start(sw: &Software, mode: &str, version: &str) -> PyClient {
        let url = format!("http://{}/mcp", fleet().gateway);
        let mut child = tokio::process::Command::new(sw.python())
            .arg(Software::script("py_gateway_client.py"))
            .args([url.as_str(), "--mode", mode])
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
        let connected = &first["connected"];
        assert_eq!(connected["protocol_version"], version, "{first}");
        assert_eq!(connected["server"], "mcpfleet-gateway", "{first}");
        assert_eq!(connected["list_changed_capability"], true, "{first}");
        client
    }

    /// The client's next line, within 60 s.
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

    /// Every tool's name, following `nextCursor`.
    async fn list(&mut self) -> Vec<String> {
        let answer = self.ask(json!({"op": "list"})).await;
        serde_json::from_value(answer["tools"].clone()).unwrap()
    }

    /// A `tools/call`'s structured result; it must not be an error.
    async fn call(&mut self, name: &str, arguments: Value) -> Value {
        let answer = self
            .ask(json!({"op": "call", "name": name, "arguments": arguments}))
            .await;
        assert_eq!(answer["isError"], false, "{name}: {answer}");
        answer["structured"].clone()
    }

    async fn echo(&mut self, text: &str) {
        let out = self.call("community__echo", json!({"text": text})).await;
        assert_eq!(out["text"], text);
    }

    /// Ends the client (a DELETE in a session): its report of what the SDK logged.
    async fn close(mut self) -> Value {
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

/// Lists through the gateway: both groups' tools, each named `group__tool`; then calls one of
/// each group.
async fn lists_and_calls_both_groups(client: &mut PyClient) {
    let tools = client.list().await;
    for want in ["community__echo", "security__check_package"] {
        assert!(tools.iter().any(|t| t == want), "{want} in {tools:?}");
    }
    assert!(
        tools
            .iter()
            .all(|t| t.starts_with("community__") || t.starts_with("security__")),
        "{tools:?}"
    );
    client.echo("through the gateway").await;
    let package = json!({"ecosystem": "npm", "name": "lodash", "version": "4.17.20"});
    let out = client.call("security__check_package", package).await;
    assert_eq!(out["vulnerable"], true, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_initialize_handshake_gets_a_gateway_session_over_both_groups() {
    let Some(sw) = software() else { return };
    let _shared = FLEET_CHANGES.read().await;
    let mut client = PyClient::start(&sw, HANDSHAKE, "2025-11-25").await;
    lists_and_calls_both_groups(&mut client).await;
    let report = client.close().await;
    // The SDK opened the session's GET stream and met no error on it; DELETE was 200/204
    // (else "Session termination failed" is among the warnings `close` checks).
    assert_eq!(report["get_stream"]["established"], true, "{report}");
    assert_eq!(report["get_stream"]["errors"], 0, "{report}");
    assert_eq!(report["get_stream"]["not_opened"], 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_auto_mode_discovers_the_gateway_and_calls_statelessly() {
    let Some(sw) = software() else { return };
    let _shared = FLEET_CHANGES.read().await;
    // `server/discover` answered: the SDK adopts 2026-07-28 rather than falling back.
    let mut client = PyClient::start(&sw, AUTO, "2026-07-28").await;
    lists_and_calls_both_groups(&mut client).await;
    client.close().await;
}

/// Each community member's count of calls the gateway saw succeed.
async fn served() -> BTreeMap<String, u64> {
    let url = format!("http://{}/backends", fleet().gateway);
    let view: BackendsView = http().get(url).send().await.unwrap().json().await.unwrap();
    view.groups["community"]
        .iter()
        .map(|m| (m.id.clone(), m.successes_total))
        .collect()
}

/// The one member that served calls since `before`.
async fn server_since(before: &BTreeMap<String, u64>) -> String {
    let after = served().await;
    let grown: Vec<&String> = after
        .iter()
        .filter(|(id, n)| before.get(*id).is_none_or(|b| b < n))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(grown.len(), 1, "one member served the call: {after:?}");
    grown[0].clone()
}

/// Waits (up to 20 s) until `id` is back in the gateway's rotation.
async fn wait_back_in_rotation(id: &str) {
    let url = format!("http://{}/backends", fleet().gateway);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view: BackendsView = http().get(&url).send().await.unwrap().json().await.unwrap();
        if view.groups["community"]
            .iter()
            .any(|m| m.id == id && m.up && !m.ejected)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{id} rejoins the pool");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs `body` to the admin API's `path`; its answer.
async fn admin_post(path: &str, body: Value) -> Value {
    let url = format!("http://{}{path}", fleet().admin);
    let resp = http().post(&url).json(&body).send().await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().await.unwrap()
}

/// Kills server `id` through the admin API and waits (up to 10 s) until its instance is gone:
/// its supervisor has counted the restart.
async fn kill(id: &str) {
    let restarts = admin_post(&format!("/servers/{id}/kill"), json!({})).await["restarts"].clone();
    let url = format!("http://{}/servers/{id}", fleet().admin);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
        if now["restarts"].as_u64() > restarts.as_u64() {
            return;
        }
        assert!(Instant::now() < deadline, "{id} is killed: {now}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_session_survives_the_kill_of_the_member_that_served_it() {
    let Some(sw) = software() else { return };
    let _alone = FLEET_CHANGES.write().await;
    let mut client = PyClient::start(&sw, HANDSHAKE, "2025-11-25").await;
    // The same session's next call is served, by another member. A killed task is restarted
    // within milliseconds, so the victim's next instance may be back in rotation before that
    // call and take it; then the round is played again, in the same session.
    let mut moved = false;
    for _ in 0..3 {
        let before = served().await;
        client.echo("before the kill").await;
        let victim = server_since(&before).await;
        kill(&victim).await;
        let before = served().await;
        client.echo("after the kill").await;
        let next = server_since(&before).await;
        wait_back_in_rotation(&victim).await;
        if next != victim {
            moved = true;
            break;
        }
    }
    assert!(moved, "a call after a kill is served by another member");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_session_hears_tools_list_changed_when_a_group_is_scaled() {
    let Some(sw) = software() else { return };
    let _alone = FLEET_CHANGES.write().await;
    let mut client = PyClient::start(&sw, HANDSHAKE, "2025-11-25").await;
    let open = client
        .ask(json!({"op": "await_stream", "timeout": 20}))
        .await;
    assert_eq!(
        open["stream"], true,
        "the SDK opens the session's GET stream"
    );

    admin_post("/groups/community/scale", json!({"count": COMMUNITY + 1})).await;
    let heard = client
        .ask(json!({"op": "wait_list_changed", "timeout": 20}))
        .await;
    assert!(heard["list_changed"].as_u64().unwrap() >= 1, "{heard}");
    // Listing again, as the notification asks, still shows the whole fleet.
    lists_and_calls_both_groups(&mut client).await;

    admin_post("/groups/community/scale", json!({"count": COMMUNITY})).await;
    let again = client
        .ask(json!({"op": "wait_list_changed", "timeout": 20}))
        .await;
    assert!(
        again["list_changed"].as_u64() > heard["list_changed"].as_u64(),
        "{again}"
    );
    client.close().await;
}
