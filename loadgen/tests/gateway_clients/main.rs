//! The fleet's gateway as the one endpoint of MCP clients nobody here wrote, which judge what
//! it answers: the official Python SDK's client (PyPI `mcp`, installed by the interop fixture;
//! [`python_sdk`]) and rmcp's client ([`rmcp_client`]), each in the initialize handshake (a
//! session the gateway holds) and in the 2026-07-28 way (`server/discover`, then stateless
//! requests). Every one lists every group's tools through `/mcp` and calls one of each (the
//! `legacy` group's servers speak only the session eras, so the gateway reaches them over
//! sessions it holds, whatever the client speaks); a
//! session lives through the kill of the member that served its last call, and hears
//! `notifications/tools/list_changed` on its GET stream when a group is scaled; a list longer
//! than a page is followed to its end ([`pages`]). One fleet, started here, serves every test
//! but the paging one; the scenarios both clients play are here too, over [`McpClient`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The helpers every loadgen test binary shares (here: the interop fixture).
#[path = "../common/mod.rs"]
mod common;
mod pages;
mod python_sdk;
mod rmcp_client;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::OnceLock,
    time::{Duration, Instant},
};

use fleet::{FleetSpec, GroupSpec, Isolation, Profile, gateway::BackendsView};
use serde_json::{Value, json};
use tokio::sync::RwLock;

/// Members of the community group while no test scales it.
const COMMUNITY: u32 = 3;

/// Tests that kill or scale take it to write, so that who served a call and what announced a
/// change are theirs alone; the others share it.
static FLEET_CHANGES: RwLock<()> = RwLock::const_new(());

/// Where the shared fleet answers.
struct Addrs {
    gateway: SocketAddr,
    admin: SocketAddr,
    /// What the admin API's fault and scale requests carry.
    admin_token: fleet::AdminToken,
}

/// The fleet every test here talks to: 3 community, 1 security and 2 legacy servers (the
/// security profile, speaking only the session eras) in tasks, health
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
                let fleet = start_fleet(spec()).await;
                tx.send(Addrs::of(&fleet)).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the shared fleet starts")
    })
}

/// Starts `spec` with its gateway and admin API; waits until every server is healthy.
async fn start_fleet(spec: FleetSpec) -> fleet::Fleet {
    let total = spec.server_count();
    let options = fleet::FleetOptions {
        admin: true,
        gateway: true,
        ..Default::default()
    };
    let fleet = fleet::Fleet::start(spec, options).await.unwrap();
    let healthy = fleet.wait_healthy(Duration::from_secs(20), |_, _| {}).await;
    assert_eq!(healthy, total, "every server becomes healthy");
    fleet
}

fn spec() -> FleetSpec {
    spec_of(vec![
        group("community", Profile::Community, COMMUNITY),
        group("security", Profile::Security, 1),
        GroupSpec {
            stateless: Some(false),
            ..group("legacy", Profile::Security, 2)
        },
    ])
}

fn group(name: &str, profile: Profile, count: u32) -> GroupSpec {
    GroupSpec {
        name: name.into(),
        profile,
        count,
        first_port: 0,
        stateless: None,
    }
}

/// A fleet of `groups` in tasks on ephemeral ports, health checked every 100 ms.
fn spec_of(groups: Vec<GroupSpec>) -> FleetSpec {
    let mut spec = FleetSpec {
        isolation: Isolation::Task,
        groups,
        ..FleetSpec::default()
    }
    .with_ephemeral_ports();
    spec.health.interval = Duration::from_millis(100);
    spec.health.timeout = Duration::from_millis(500);
    spec
}

/// The shared fleet's gateway's `/mcp`.
fn gateway_mcp() -> String {
    fleet().mcp()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

async fn get_json(url: &str) -> Value {
    http().get(url).send().await.unwrap().json().await.unwrap()
}

/// What the scenarios ask of a client, whichever it is.
trait McpClient {
    /// Every tool's name, following `nextCursor`.
    async fn list(&mut self) -> Vec<String>;

    /// A `tools/call`'s structured result; it must not be an error.
    async fn call(&mut self, name: &str, arguments: Value) -> Value;

    async fn echo(&mut self, text: &str) {
        let out = self.call("community__echo", json!({"text": text})).await;
        assert_eq!(out["text"], text);
    }
}

/// Every group's tools listed through the gateway, each named `group__tool`; then a call of
/// one tool of each group (`legacy`'s over a session the gateway holds on its member).
async fn lists_and_calls_both_groups(client: &mut impl McpClient) {
    let tools = client.list().await;
    for want in [
        "community__echo",
        "security__check_package",
        "legacy__check_package",
    ] {
        assert!(tools.iter().any(|t| t == want), "{want} in {tools:?}");
    }
    let prefixed = |t: &String| {
        ["community__", "security__", "legacy__"]
            .iter()
            .any(|p| t.starts_with(p))
    };
    assert!(tools.iter().all(prefixed), "{tools:?}");
    client.echo("through the gateway").await;
    let package = json!({"ecosystem": "npm", "name": "lodash", "version": "4.17.20"});
    let out = client
        .call("security__check_package", package.clone())
        .await;
    assert_eq!(out["vulnerable"], true, "{out}");
    let out = client.call("legacy__check_package", package).await;
    assert_eq!(out["vulnerable"], true, "{out}");
}

/// In `client`'s session on `fleet`'s gateway: a call, the kill of the member that served
/// it (its instance gone: the restart counted), and more calls in the same session, which must
/// all succeed. They go to other members, or to the victim's next instance once that is back
/// in rotation (a task restarts within milliseconds, on the same port); that instance never saw
/// the session, so either way the session lived on in its id, not on a member. (A session
/// pinned to a member, `?group=`, gets 404 there instead.) Takes the fleet to itself.
async fn survives_the_kill_of_its_member(client: &mut impl McpClient, fleet: &Addrs) {
    let _alone = FLEET_CHANGES.write().await;
    // Calls only from here on: the gateway fetches a group's tools from a member once, and a
    // client may list before its first call (the Python SDK does, for output schemas).
    client.list().await;
    let before = fleet.served().await;
    client.echo("before the kill").await;
    let victim = fleet.server_since(&before).await;
    fleet.kill(&victim).await;
    let before = fleet.served().await;
    for _ in 0..5 {
        client.echo("after the kill").await;
    }
    let after = fleet.served().await;
    let calls: u64 = after
        .iter()
        .map(|(id, n)| n.saturating_sub(*before.get(id).unwrap_or(&0)))
        .sum();
    assert_eq!(
        calls, 5,
        "every call after the kill served: {before:?} -> {after:?}"
    );
    fleet.back_in_rotation(&victim).await;
}

/// Scales the shared fleet's community group to `count` members through the admin API.
async fn scale_community(count: u32) {
    let body = json!({"count": count});
    fleet().admin_post("/groups/community/scale", body).await;
}

impl Addrs {
    fn of(fleet: &fleet::Fleet) -> Addrs {
        Addrs {
            gateway: fleet.gateway_addr().unwrap(),
            admin: fleet.admin_addr().unwrap(),
            admin_token: fleet.admin_token().clone(),
        }
    }

    /// The gateway's `/mcp`.
    fn mcp(&self) -> String {
        format!("http://{}/mcp", self.gateway)
    }

    /// Each community member's count of calls the gateway saw succeed.
    async fn served(&self) -> BTreeMap<String, u64> {
        let url = format!("http://{}/backends", self.gateway);
        let view: BackendsView = serde_json::from_value(get_json(&url).await).unwrap();
        view.groups["community"]
            .iter()
            .map(|m| (m.id.clone(), m.successes_total))
            .collect()
    }

    /// The one member that served calls since `before`.
    async fn server_since(&self, before: &BTreeMap<String, u64>) -> String {
        let after = self.served().await;
        let grown: Vec<&String> = after
            .iter()
            .filter(|(id, n)| before.get(*id).is_none_or(|b| b < n))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(grown.len(), 1, "one member served the call: {after:?}");
        grown[0].clone()
    }

    /// Waits (up to 20 s) until `id` is back in the gateway's rotation, so that the next test
    /// finds the group whole.
    async fn back_in_rotation(&self, id: &str) {
        let url = format!("http://{}/backends", self.gateway);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let view: BackendsView = serde_json::from_value(get_json(&url).await).unwrap();
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

    /// POSTs `body` to the admin API's `path`; its answer.
    async fn admin_post(&self, path: &str, body: Value) -> Value {
        let url = format!("http://{}{path}", self.admin);
        let resp = http()
            .post(&url)
            .bearer_auth(self.admin_token.as_str())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// Kills server `id` through the admin API and waits (up to 10 s) until its instance is
    /// gone: its supervisor has counted the restart.
    async fn kill(&self, id: &str) {
        let killed = self
            .admin_post(&format!("/servers/{id}/kill"), json!({}))
            .await;
        let url = format!("http://{}/servers/{id}", self.admin);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = get_json(&url).await;
            if now["restarts"].as_u64() > killed["restarts"].as_u64() {
                return;
            }
            assert!(Instant::now() < deadline, "{id} is killed: {now}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
