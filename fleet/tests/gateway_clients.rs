//! rmcp's own client using the gateway's `/mcp` as one MCP server, in both eras: with the
//! initialize handshake at 2025-11-25 (a session the gateway holds) and with `server/discover`
//! in `Auto` mode (2026-07-28, stateless). Each lists both groups' tools (`list_all_tools`,
//! following `nextCursor`) and calls one of each; a session lives through the kill of the
//! member that served its last call; and a session's handler hears
//! `notifications/tools/list_changed` on the GET stream when a group is scaled. A client the
//! gateway was not written against is what shows that its answers are the protocol's. One
//! fleet serves every test of this binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::OnceLock,
    time::{Duration, Instant},
};

use fleet::{Isolation, gateway::BackendsView};
use rmcp::{
    ClientHandler, ClientLifecycleMode, ServiceExt,
    model::{
        CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
    },
    serve_client_with_lifecycle,
    service::{NotificationContext, RoleClient, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio::sync::{RwLock, mpsc};

/// Members of the community group while no test scales it.
const COMMUNITY: u32 = 3;

/// Tests that kill or scale take it to write, so that who served a call and what announced a
/// change are theirs alone; the others share it.
static FLEET_CHANGES: RwLock<()> = RwLock::const_new(());

/// Where the shared fleet answers: its gateway and its admin API.
struct Addrs {
    gateway: SocketAddr,
    admin: SocketAddr,
}

/// The fleet every test here talks to (3 community and 1 security server in tasks, fast
/// health checks), started on first use on a runtime of its own, as each test's runtime ends
/// with the test, and living as long as the test process.
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
                let spec = common::spec(COMMUNITY, 1, Isolation::Task);
                let fleet = common::start_with(spec, true).await;
                let addrs = Addrs {
                    gateway: fleet.gateway_addr().unwrap(),
                    admin: fleet.admin_addr().unwrap(),
                };
                tx.send(addrs).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the shared fleet starts")
    })
}

/// A client handler that tells a channel of each `notifications/tools/list_changed`.
struct Watcher {
    info: ClientConfig,
    list_changed: mpsc::UnboundedSender<()>,
}

impl ClientHandler for Watcher {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.list_changed.send(());
    }
}

type Client = RunningService<RoleClient, Watcher>;

/// rmcp's client on the gateway's `/mcp`: the initialize handshake at `era`, or for
/// 2026-07-28 the `Auto` lifecycle (`server/discover`, falling back to initialize); with the
/// receiving end of its list-changed notifications.
async fn connect(era: ProtocolVersion) -> (Client, mpsc::UnboundedReceiver<()>) {
    let url = format!("http://{}/mcp", fleet().gateway);
    let cfg = StreamableHttpClientTransportConfig::with_uri(url).reinit_on_expired_session(false);
    let transport = StreamableHttpClientTransport::with_client(common::http(), cfg);
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("gateway-clients", "0"),
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let client = if era == ProtocolVersion::V_2026_07_28 {
        let watcher = Watcher {
            info,
            list_changed: tx,
        };
        let auto = ClientLifecycleMode::Auto {
            preferred_versions: vec![era.clone()],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        };
        serve_client_with_lifecycle(watcher, transport, auto)
            .await
            .expect("discover")
    } else {
        let watcher = Watcher {
            info: info.with_protocol_version(era.clone()),
            list_changed: tx,
        };
        watcher.serve(transport).await.expect("initialize")
    };
    let peer = client.peer_info().expect("the gateway described itself");
    assert_eq!(peer.protocol_version, era, "the era settled on");
    let name = peer.server_info.as_ref().map(|s| s.name.as_str());
    assert_eq!(name, Some("mcpfleet-gateway"));
    (client, rx)
}

async fn call(client: &Client, name: &str, args: Value) -> Value {
    let result = client
        .call_tool(
            CallToolRequestParams::new(name.to_string())
                .with_arguments(args.as_object().cloned().unwrap()),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_ne!(result.is_error, Some(true), "{name}: {result:?}");
    result.structured_content.expect("a structured result")
}

async fn echo(client: &Client, text: &str) {
    let out = call(client, "community__echo", json!({"text": text})).await;
    assert_eq!(out["text"], text);
}

/// Both groups' tools, every one named `group__tool`, and a call of one of each.
async fn lists_and_calls_both_groups(client: &Client) {
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for want in ["community__echo", "security__check_package"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let prefixed = |n: &&str| n.starts_with("community__") || n.starts_with("security__");
    assert!(names.iter().all(prefixed), "{names:?}");
    echo(client, "through the gateway").await;
    let package = json!({"ecosystem": "npm", "name": "lodash", "version": "4.17.20"});
    let out = call(client, "security__check_package", package).await;
    assert_eq!(out["vulnerable"], true, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_client_in_both_eras_lists_and_calls_both_groups() {
    let _shared = FLEET_CHANGES.read().await;
    for era in [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28] {
        let (client, _) = connect(era).await;
        lists_and_calls_both_groups(&client).await;
        client.cancel().await.unwrap();
    }
}

/// Each community member's count of calls the gateway saw succeed.
async fn served() -> BTreeMap<String, u64> {
    let view: BackendsView =
        common::get_json(&format!("http://{}/backends", fleet().gateway)).await;
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

/// POSTs `body` to the admin API's `path`; its answer.
async fn admin_post(path: &str, body: Value) -> Value {
    let url = format!("http://{}{path}", fleet().admin);
    let resp = common::http().post(&url).json(&body).send().await.unwrap();
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
        let now: Value = common::http()
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if now["restarts"].as_u64() > restarts.as_u64() {
            return;
        }
        assert!(Instant::now() < deadline, "{id} is killed: {now}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_session_survives_the_kill_of_the_member_that_served_it() {
    let _alone = FLEET_CHANGES.write().await;
    let (client, _) = connect(ProtocolVersion::V_2025_11_25).await;
    // The same session's next call is served, by another member. A killed task is restarted
    // within milliseconds, so the victim's next instance may be back in rotation before that
    // call and take it; then the round is played again, in the same session.
    let mut moved = false;
    for _ in 0..3 {
        let before = served().await;
        echo(&client, "before the kill").await;
        let victim = server_since(&before).await;
        kill(&victim).await;
        let before = served().await;
        echo(&client, "after the kill").await;
        let next = server_since(&before).await;
        back_in_rotation(&victim).await;
        if next != victim {
            moved = true;
            break;
        }
    }
    assert!(moved, "a call after a kill is served by another member");
    client.cancel().await.unwrap();
}

/// Waits (up to 20 s) until `id` is back in the gateway's rotation, so that the next test
/// finds the group whole.
async fn back_in_rotation(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view: BackendsView =
            common::get_json(&format!("http://{}/backends", fleet().gateway)).await;
        let back = view.groups["community"]
            .iter()
            .any(|m| m.id == id && m.up && !m.ejected);
        if back {
            return;
        }
        assert!(Instant::now() < deadline, "{id} rejoins the pool");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_session_hears_tools_list_changed_when_a_group_is_scaled() {
    let _alone = FLEET_CHANGES.write().await;
    let (client, mut list_changed) = connect(ProtocolVersion::V_2025_11_25).await;
    lists_and_calls_both_groups(&client).await;
    // rmcp opens the GET stream on its own after the handshake, and says nothing when it is
    // open: a change made before then reaches no one, so the group is scaled (up and down in
    // turn) until one is heard, a few times at most.
    let mut heard = false;
    for attempt in 1..=4u32 {
        let count = if attempt % 2 == 1 {
            COMMUNITY + 1
        } else {
            COMMUNITY
        };
        admin_post("/groups/community/scale", json!({"count": count})).await;
        let wait = tokio::time::timeout(Duration::from_secs(5), list_changed.recv());
        if let Ok(Some(())) = wait.await {
            heard = true;
            if count != COMMUNITY {
                admin_post("/groups/community/scale", json!({"count": COMMUNITY})).await;
            }
            break;
        }
    }
    assert!(
        heard,
        "notifications/tools/list_changed reaches the session"
    );
    lists_and_calls_both_groups(&client).await;
    client.cancel().await.unwrap();
}
