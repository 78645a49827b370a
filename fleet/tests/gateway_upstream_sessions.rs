//! A group whose servers speak only the session eras (`stateless = false`), beside one that
//! speaks every era, behind the gateway: the health monitor probes them in sessions, and the
//! gateway learns what each member speaks and calls the session-era ones over sessions it
//! opens and reuses, for stateless clients and its own sessions alike. Requests carrying the
//! same JSON-RPC id at once never meet in one upstream session; a session the server expired
//! is replaced without the client noticing; a killed member is forgotten; a client's malformed
//! request does not make a stateless member look session-only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use fleet::{GroupSpec, Isolation, Profile, gateway::BackendsView};
use serde_json::{Value, json};

/// Servers expire a session idle this long, so the test sees the gateway replace one (long
/// enough that a busy machine's pauses between two calls rarely reach it).
const SESSION_IDLE: Duration = Duration::from_millis(1000);
/// Sequential calls that must reuse sessions rather than open one each.
const SEQUENTIAL: u64 = 20;

fn spec(isolation: Isolation) -> fleet::FleetSpec {
    let mut spec = common::spec(1, 0, isolation);
    spec.groups.push(GroupSpec {
        name: "legacy".into(),
        profile: Profile::Community,
        count: 2,
        first_port: 0,
        stateless: Some(false),
    });
    spec.server.session_idle = SESSION_IDLE;
    spec
}

/// `legacy__echo` of `text` through the gateway as a stateless client, with JSON-RPC id 7 as
/// every such call here; the echoed text.
async fn echo(mcp: &str, text: &str) -> String {
    let (status, body) = common::post_stateless(
        mcp,
        "tools/call",
        json!({"name": "legacy__echo", "arguments": {"text": text}}),
    )
    .await;
    let body = body.expect("an answer");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], 7, "{body}");
    // The answer of a session-era server, in the stateless form the client speaks.
    assert_eq!(body["result"]["resultType"], "complete", "{body}");
    body["result"]["structuredContent"]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("an echo: {body}"))
        .to_string()
}

/// Every server as the admin API shows it.
async fn servers(admin: &str) -> Vec<Value> {
    let all: Value = common::get_json(&format!("{admin}/servers")).await;
    all["servers"].as_array().unwrap().clone()
}

async fn backends(base: &str) -> BackendsView {
    common::get_json(&format!("{base}/backends")).await
}

/// The legacy members' upstream sessions open now and opened in all.
async fn legacy_sessions(base: &str) -> (usize, u64) {
    let view = backends(base).await;
    view.groups["legacy"].iter().fold((0, 0), |(n, o), m| {
        (n + m.upstream_sessions, o + m.upstream_sessions_opened)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_calls_session_era_members_over_sessions_it_holds() {
    let fleet = common::start_with(spec(Isolation::Task), true).await;
    let base = format!("http://{}", fleet.gateway_addr().unwrap());
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let mcp = format!("{base}/mcp");

    // The servers refuse the stateless era themselves, as a session-era server does ...
    let servers = servers(&admin).await;
    let legacy: Vec<&Value> = servers.iter().filter(|s| s["group"] == "legacy").collect();
    let direct = format!("http://127.0.0.1:{}/mcp", legacy[0]["port"]);
    let (status, body) = common::post_stateless(&direct, "tools/list", json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(body.unwrap()["error"]["code"], -32022);
    // ... yet pass their health probes, made in sessions that are ended after.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for s in self::servers(&admin)
        .await
        .iter()
        .filter(|s| s["group"] == "legacy")
    {
        assert_eq!(s["state"], "healthy", "{s}");
        assert_eq!(s["probes_failed"], 0, "{s}");
        assert_eq!(s["restarts"], 0, "{s}");
    }

    // Their tools are listed with the others', and called for a stateless client ...
    let (_, body) = common::post_stateless(&mcp, "tools/list", json!({})).await;
    let names = common::tool_names(&body.unwrap());
    assert!(names.contains(&"legacy__echo".to_string()), "{names:?}");
    assert!(names.contains(&"community__echo".to_string()), "{names:?}");
    assert_eq!(echo(&mcp, "first").await, "first");
    // ... and in one of the gateway's own sessions, in an older version.
    let mut init = common::initialize();
    init["params"]["protocolVersion"] = json!("2025-03-26");
    let (_, sid, _) = common::post_session(&mcp, None, init).await;
    let call = json!({"jsonrpc": "2.0", "id": "s", "method": "tools/call",
        "params": {"name": "legacy__echo", "arguments": {"text": "in a session"}}});
    let (status, _, body) = common::post_session(&mcp, sid.as_deref(), call).await;
    let body = body.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["structuredContent"]["text"], "in a session");

    // A call asking for progress gets the member's event stream, restated as it passes; one
    // that does not gets the answer as one JSON body.
    for (progress, streamed) in [(true, true), (false, false)] {
        let mut meta = fleet::wire::stateless_meta();
        if progress {
            meta["progressToken"] = json!("p1");
        }
        let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
            "name": "legacy__echo", "arguments": {"text": "p"}, "_meta": meta}});
        let resp = common::http()
            .post(&mcp)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "legacy__echo")
            .json(&call)
            .send()
            .await
            .unwrap();
        let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(kind.starts_with("text/event-stream"), streamed, "{kind}");
        let answer = fleet::wire::message_with_id(&resp.text().await.unwrap(), 5).unwrap();
        assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
        assert_eq!(
            answer["result"]["structuredContent"]["text"], "p",
            "{answer}"
        );
    }

    // Every member learnt; sessions reused, not opened per call (a session that expired in a
    // pause of the machine is replaced, hence not exactly one per member).
    let (_, before) = legacy_sessions(&base).await;
    for _ in 0..SEQUENTIAL {
        echo(&mcp, "again").await;
    }
    let view = backends(&base).await;
    for m in &view.groups["legacy"] {
        assert_eq!(m.speaks.as_deref(), Some("sessions"), "{m:?}");
    }
    let (open, opened) = legacy_sessions(&base).await;
    assert!(
        open <= 2 && opened - before < SEQUENTIAL / 4,
        "open {open}, opened {before} -> {opened}"
    );

    // 32 calls at once, all with JSON-RPC id 7: each gets its own answer.
    let calls = (0..32).map(|i| {
        let mcp = mcp.clone();
        tokio::spawn(async move { (i, echo(&mcp, &format!("call {i}")).await) })
    });
    for call in calls {
        let (i, text) = call.await.unwrap();
        assert_eq!(text, format!("call {i}"));
    }
    let (open, opened) = legacy_sessions(&base).await;
    assert!(
        open as u64 <= opened && open <= 64,
        "open {open}, opened {opened}"
    );

    // The servers expire idle sessions; the next call opens a new one and succeeds.
    tokio::time::sleep(SESSION_IDLE * 3).await;
    let (_, before) = legacy_sessions(&base).await;
    assert_eq!(echo(&mcp, "after expiry").await, "after expiry");
    let (_, after) = legacy_sessions(&base).await;
    assert!(after > before, "a session replaced: {before} -> {after}");

    // A killed member is forgotten (its next instance may speak otherwise); calls go on.
    let victim = legacy[0]["id"].as_str().unwrap();
    let resp = common::admin_post(&fleet, &format!("/servers/{victim}/kill"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    for i in 0..10 {
        assert_eq!(echo(&mcp, &format!("kill {i}")).await, format!("kill {i}"));
    }

    // A client's own bad request (a version no server speaks) draws the refusal of a version
    // from a stateless member: relayed, and the member is confirmed stateless (it answers the
    // gateway's server/discover) rather than taken for a session-era one.
    let mut meta = fleet::wire::stateless_meta();
    meta["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let bad = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "community__echo", "arguments": {"text": "x"}, "_meta": meta}});
    let (status, answer) = common::send(
        common::http()
            .post(&mcp)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2099-01-01")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "community__echo")
            .json(&bad),
    )
    .await;
    assert_eq!(status, 400, "{answer:?}");
    let view = backends(&base).await;
    let member = &view.groups["community"][0];
    assert_eq!(member.speaks.as_deref(), Some("stateless"), "{member:?}");
    assert_eq!(member.upstream_sessions_opened, 0);
    let (status, body) = common::post_stateless(
        &mcp,
        "tools/call",
        json!({"name": "community__echo", "arguments": {"text": "still stateless"}}),
    )
    .await;
    assert_eq!(status, 200, "{body:?}");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_era_servers_in_their_own_processes() {
    let mut spec = spec(Isolation::Process);
    spec.groups[1].count = 1;
    let fleet = common::start_with(spec, true).await;
    let mcp = format!("http://{}/mcp", fleet.gateway_addr().unwrap());
    assert_eq!(echo(&mcp, "over a process").await, "over a process");
    fleet.stop().await;
}
