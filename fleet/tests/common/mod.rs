//! Shared helpers for the integration tests: start a small real fleet on loopback with
//! ephemeral ports and fast health checks, and talk raw HTTP or rmcp to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, time::Duration};

use fleet::{ChildProgram, Fleet, FleetOptions, FleetSpec, GroupSpec, Isolation, Profile};
use rmcp::{
    ClientCacheConfig, ClientLifecycleMode, ServiceExt,
    model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion},
    serve_client_with_lifecycle,
    service::{RoleClient, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

pub fn spec(community: u32, security: u32, isolation: Isolation) -> FleetSpec {
    let mut spec = FleetSpec {
        isolation,
        groups: vec![
            GroupSpec {
                name: "community".into(),
                profile: Profile::Community,
                count: community,
                first_port: 0,
                stateless: None,
            },
            GroupSpec {
                name: "security".into(),
                profile: Profile::Security,
                count: security,
                first_port: 0,
                stateless: None,
            },
        ],
        ..FleetSpec::default()
    }
    .with_ephemeral_ports();
    spec.groups.retain(|g| g.count > 0);
    spec.health.interval = Duration::from_millis(100);
    spec.health.timeout = Duration::from_millis(500);
    spec.health.failures_to_unhealthy = 3;
    spec.health.mcp_probe_every = 2;
    spec
}

pub fn child_program() -> ChildProgram {
    ChildProgram {
        program: PathBuf::from(env!("CARGO_BIN_EXE_fleet")),
        args: Vec::new(),
    }
}

/// Starts a fleet with the admin API and waits until it is fully healthy.
pub async fn start(spec: FleetSpec) -> Fleet {
    start_with(spec, false).await
}

/// Starts a fleet with the admin API and, if `gateway`, the gateway (on an ephemeral port);
/// waits until it is fully healthy.
pub async fn start_with(spec: FleetSpec, gateway: bool) -> Fleet {
    let total = spec.server_count();
    let fleet = Fleet::start(
        spec,
        FleetOptions {
            child: Some(child_program()),
            admin: true,
            gateway,
            memory_repo: None,
            memory_replica: Default::default(),
            admin_token: None,
        },
    )
    .await
    .expect("fleet starts");
    let healthy = fleet.wait_healthy(Duration::from_secs(20), |_, _| {}).await;
    assert_eq!(healthy, total, "every server becomes healthy");
    fleet
}

/// A POST to the fleet's admin API at `path` (`/servers/x/kill`), carrying its admin token.
pub fn admin_post(fleet: &Fleet, path: &str) -> reqwest::RequestBuilder {
    let admin = fleet.admin_addr().expect("the fleet serves its admin API");
    http()
        .post(format!("http://{admin}{path}"))
        .bearer_auth(fleet.admin_token().as_str())
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("client")
}

/// GETs `url` and parses its JSON body.
pub async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> T {
    http()
        .get(url)
        .send()
        .await
        .expect("request is answered")
        .json()
        .await
        .expect("a JSON body")
}

/// GETs `url` and gives its body as text (e.g. Prometheus metrics).
pub async fn get_text(url: &str) -> String {
    http()
        .get(url)
        .send()
        .await
        .expect("request is answered")
        .text()
        .await
        .expect("body")
}

/// A connected rmcp client in the given era.
pub async fn client(url: &str, era: ProtocolVersion) -> RunningService<RoleClient, ClientConfig> {
    let cfg = StreamableHttpClientTransportConfig::with_uri(url.to_string())
        .reinit_on_expired_session(false);
    let transport = StreamableHttpClientTransport::with_client(http(), cfg);
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("fleet-tests", "0"),
    );
    let client = if era == ProtocolVersion::V_2026_07_28 {
        serve_client_with_lifecycle(
            info,
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("discover")
    } else {
        info.with_protocol_version(era)
            .serve(transport)
            .await
            .expect("initialize")
    };
    client
        .set_response_cache_config(ClientCacheConfig::disabled())
        .await;
    client
}

/// POSTs a raw 2026-07-28 JSON-RPC request and returns (status, parsed body if any).
pub async fn post_stateless(url: &str, method: &str, params: Value) -> (u16, Option<Value>) {
    let mut params = params;
    if let Some(obj) = params.as_object_mut() {
        obj.insert("_meta".into(), fleet::wire::stateless_meta());
    }
    let mut req = http()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        req = req.header("mcp-name", name);
    }
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    send(req.json(&body)).await
}

pub async fn send(req: reqwest::RequestBuilder) -> (u16, Option<Value>) {
    let resp = req.send().await.expect("request is answered");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, fleet::wire::first_jsonrpc_message(&text))
}

/// POSTs a 2025-11-25 request to `url`, in `session` if given; (status, session header, body).
pub async fn post_session(
    url: &str,
    session: Option<&str>,
    body: Value,
) -> (u16, Option<String>, Option<Value>) {
    let mut req = http()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let resp = req.json(&body).send().await.expect("answered");
    let status = resp.status().as_u16();
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    (status, sid, fleet::wire::first_jsonrpc_message(&text))
}

/// Ends a 2025-11-25 session with DELETE; the HTTP status.
pub async fn end_session(url: &str, session: &str) -> u16 {
    http()
        .delete(url)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .expect("answered")
        .status()
        .as_u16()
}

pub fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "gateway-tests", "version": "0"}}})
}

/// The tool names of a `tools/list` answer.
pub fn tool_names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .expect("a tools/list result")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Reads a `fleet up`'s standard output until it prints its admin URL (`admin  URL/servers`),
/// and gives that URL without the `/servers`.
pub async fn admin_url_from(stdout: std::process::ChildStdout) -> String {
    use std::io::{BufRead, BufReader};
    tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.trim()
                    .strip_prefix("admin")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|u| u.strip_suffix("/servers"))
                    .map(str::to_string)
            })
    })
    .await
    .unwrap()
    .expect("fleet up prints its admin URL")
}
