//! The gateway's pinned 2025-11-25 sessions (`/mcp?group=NAME`) in front of a real fleet on
//! loopback: affinity across many sessions, 404 and re-initialization when a session's server
//! dies, forged ids, and pools that follow the registry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{BTreeMap, HashSet},
    time::{Duration, SystemTime},
};

use base64::Engine as _;
use fleet::{Fleet, FleetView, Isolation, gateway::BackendsView};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::{Value, json};

fn gateway_url(fleet: &Fleet) -> String {
    format!(
        "http://{}",
        fleet.gateway_addr().expect("the fleet serves a gateway")
    )
}

/// Opens a session through `url`; returns the gateway's session id.
async fn open_session(url: &str) -> String {
    let (status, sid, body) = common::post_session(url, None, common::initialize()).await;
    assert_eq!(status, 200, "{body:?}");
    let sid = sid.expect("initialize answers with a session id");
    let (status, _, _) = common::post_session(
        url,
        Some(&sid),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202);
    sid
}

/// The server a gateway session id names (the id is signed, not encrypted).
fn backend_of(sid: &str) -> String {
    let payload = sid.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let len = usize::from(bytes[1]);
    String::from_utf8(bytes[2..2 + len].to_vec()).unwrap()
}

async fn echo_in(url: &str, sid: &str, text: &str) -> (u16, Option<Value>) {
    let (status, _, body) = common::post_session(
        url,
        Some(sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"text": text}}}),
    )
    .await;
    (status, body)
}

async fn backends(fleet: &Fleet) -> BackendsView {
    common::get_json(&format!("{}/backends", gateway_url(fleet))).await
}

async fn servers(fleet: &Fleet) -> FleetView {
    common::get_json(&format!("http://{}/servers", fleet.admin_addr().unwrap())).await
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sessions_stay_on_their_servers_and_forged_ids_get_404() {
    // Three serving threads, each with its own runtime and connection pool: a session's calls
    // land on any of them and must still reach the session's server.
    let mut spec = common::spec(4, 1, Isolation::Task);
    spec.gateway_threads = 3;
    let fleet = common::start_with(spec, true).await;
    let base = format!("{}/mcp", gateway_url(&fleet));
    let mcp = format!("{base}?group=community");

    // 24 sessions: each one's calls must reach the server holding it (a server answers 404
    // for a session id it did not issue), and together they spread over the group.
    let mut sessions = Vec::new();
    for _ in 0..24 {
        sessions.push(open_session(&mcp).await);
    }
    for round in 0..3 {
        for sid in &sessions {
            let text = format!("round {round}");
            let (status, body) = echo_in(&mcp, sid, &text).await;
            assert_eq!(status, 200, "{body:?}");
            assert!(body.unwrap().to_string().contains(&text));
        }
    }
    let holders: HashSet<String> = sessions.iter().map(|s| backend_of(s)).collect();
    assert!(
        holders.iter().all(|h| h.starts_with("community-")),
        "{holders:?}"
    );
    assert!(
        holders.len() >= 2,
        "sessions spread over the pool: {holders:?}"
    );
    let open: BTreeMap<String, u64> = servers(&fleet)
        .await
        .servers
        .into_iter()
        .map(|s| (s.id, s.open_sessions))
        .collect();
    for h in &holders {
        assert!(open[h] > 0, "{h} holds sessions: {open:?}");
    }
    assert_eq!(open.values().sum::<u64>(), 24, "{open:?}");

    // An rmcp client works through /mcp like against one server; ?group= picks the pool.
    let client = common::client(
        &format!("{base}?group=security"),
        ProtocolVersion::V_2025_11_25,
    )
    .await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "scan_secrets"), "{tools:?}");
    let args = json!({"content": "key = AKIAABCDEFGHIJKLMNOP"});
    client
        .call_tool(
            CallToolRequestParams::new("scan_secrets")
                .with_arguments(args.as_object().cloned().unwrap()),
        )
        .await
        .expect("a tool call in a gateway session");
    client.cancel().await.unwrap();
    let (status, _, body) =
        common::post_session(&format!("{base}?group=nope"), None, common::initialize()).await;
    assert_eq!(status, 400);
    let message = body.unwrap()["error"]["message"].to_string();
    assert!(
        message.contains("nope") && message.contains("community"),
        "{message}"
    );

    // Forged, tampered, oversized and non-ASCII ids: 404 with a JSON-RPC error, and the
    // gateway keeps serving.
    let real = &sessions[0];
    let mut tampered = real.clone().into_bytes();
    let i = tampered.len() / 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other_key = fleet::gateway::session::issue(
        &fleet::gateway::session::SessionKey::from_bytes([7; 32]),
        &fleet::gateway::session::Affinity::new(backend_of(real), "whatever"),
    )
    .unwrap();
    for forged in [
        "nonsense".to_string(),
        tampered,
        other_key,
        "A".repeat(10_000),
        ".".to_string(),
        String::new(),
    ] {
        let (status, body) = echo_in(&mcp, &forged, "x").await;
        assert_eq!(status, 404, "{forged:.40}: {body:?}");
        assert_eq!(body.unwrap()["error"]["code"], -32001);
    }
    let resp = common::http()
        .post(&mcp)
        .header("content-type", "application/json")
        .header("mcp-session-id", &b"caf\xe9"[..])
        .body(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let (status, body) = echo_in(&mcp, real, "still serving").await;
    assert_eq!(status, 200, "{body:?}");

    // GET without a session has no stream to offer.
    let resp = common::http().get(&mcp).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);

    // DELETE ends the session on its server; the id is then unknown there (404).
    let resp = common::http()
        .delete(&mcp)
        .header("mcp-session-id", real)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let (status, _) = echo_in(&mcp, real, "gone").await;
    assert_eq!(status, 404);

    fleet.stop().await;
}

// Process mode: the gateway reaches the servers over HTTP; task mode: in-process (`local`),
// where a kill must end the session and the calls in flight just the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_sessions_server_means_404_then_a_new_session_elsewhere() {
    dead_sessions_server(Isolation::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_sessions_server_means_404_then_a_new_session_elsewhere_in_process() {
    dead_sessions_server(Isolation::Task).await;
}

async fn dead_sessions_server(isolation: Isolation) {
    let fleet = common::start_with(common::spec(3, 0, isolation), true).await;
    let mcp = format!("{}/mcp?group=community", gateway_url(&fleet));

    let sid = open_session(&mcp).await;
    let victim = backend_of(&sid);
    let (status, _) = echo_in(&mcp, &sid, "before").await;
    assert_eq!(status, 200);

    let killed_at = now_ms();
    let resp = common::admin_post(&fleet, &format!("/servers/{victim}/kill"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());

    // The pool drops the victim as soon as the supervisor reports it, before any request
    // could fail on it.
    let mut taken_out = None;
    for _ in 0..100 {
        let view = backends(&fleet).await;
        let m = view.groups["community"]
            .iter()
            .find(|m| m.id == victim)
            .unwrap()
            .clone();
        if let Some(at) = m.taken_out_at_ms.iter().find(|&&t| t >= killed_at) {
            taken_out = Some(*at);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let taken_out = taken_out.expect("the gateway takes the killed server out of rotation");
    assert!(taken_out - killed_at < 1_000, "{}", taken_out - killed_at);

    // The session died with its server: the client is told to initialize again (whether the
    // server is still down or already restarted without the session).
    let (status, body) = echo_in(&mcp, &sid, "after").await;
    assert_eq!(status, 404, "{body:?}");

    // A new session lands on a live member and works.
    let fresh = open_session(&mcp).await;
    let (status, body) = echo_in(&mcp, &fresh, "fresh").await;
    assert_eq!(status, 200, "{body:?}");

    // Once restarted and healthy, the victim is back in rotation.
    let mut up_again = false;
    for _ in 0..500 {
        let view = backends(&fleet).await;
        if view.groups["community"]
            .iter()
            .any(|m| m.id == victim && m.up && !m.ejected)
        {
            up_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up_again, "the restarted server rejoins the pool");

    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_call_cut_off_by_a_crash_is_retried_on_another_member() {
    call_cut_off_by_a_crash(Isolation::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_call_cut_off_by_a_crash_is_retried_on_another_member_in_process() {
    call_cut_off_by_a_crash(Isolation::Task).await;
}

async fn call_cut_off_by_a_crash(isolation: Isolation) {
    let mut spec = common::spec(2, 0, isolation);
    // Probes must not fail for the slowness below: only the kill takes a member out.
    spec.health.timeout = Duration::from_secs(5);
    let fleet = common::start_with(spec, true).await;
    let base = gateway_url(&fleet);
    // Both members answer slowly, so the call is still in flight when its server dies.
    for s in fleet.endpoints() {
        let resp = common::admin_post(&fleet, &format!("/servers/{}/latency", s.id))
            .json(&json!({"ms": 1000}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }
    let mcp = format!("{base}/mcp");
    // The latency is in force once the admin API has answered; a call that nevertheless
    // finished before the gateway's counters showed it in flight is made again.
    let mut in_flight = None;
    for _ in 0..5 {
        let mcp = mcp.clone();
        let call = tokio::spawn(async move {
            common::post_stateless(
                &mcp,
                "tools/call",
                json!({"name": "community__echo", "arguments": {"text": "survives"}}),
            )
            .await
        });
        let mut busy = None;
        while !call.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if let Some(m) = backends(&fleet).await.groups["community"]
                .iter()
                .find(|m| m.outstanding > 0)
            {
                busy = Some(m.id.clone());
                break;
            }
        }
        match busy {
            Some(busy) => {
                in_flight = Some((call, busy));
                break;
            }
            None => {
                let _ = call.await;
            }
        }
    }
    let (call, busy) = in_flight.expect("a call is in flight on one member");
    let resp = common::admin_post(&fleet, &format!("/servers/{busy}/kill"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let (status, body) = call.await.unwrap();
    assert_eq!(status, 200, "{body:?}");
    assert!(body.unwrap().to_string().contains("survives"));
    let metrics = common::get_text(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("mcpfleet_gateway_retries_total{group=\"community\"} 1"),
        "{metrics}"
    );
    fleet.stop().await;
}
