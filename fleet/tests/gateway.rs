//! The gateway in front of a real fleet on loopback: pinned routing in both protocol eras,
//! and what an unknown server gets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use fleet::{
    Fleet, Isolation,
    gateway::{Backend, Directory, Gateway, session::SessionKey, upstream::Upstream},
    listener,
    registry::Counters,
};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Starts a gateway over `fleet`'s servers on an ephemeral port; gives its base URL.
async fn gateway(fleet: &Fleet, stop: &CancellationToken) -> String {
    let directory = Directory::new(fleet.endpoints().into_iter().map(|e| Backend {
        id: e.id,
        group: e.group,
        addr: e.addr,
    }));
    let gw = Gateway::new(
        directory,
        Upstream::new(Duration::from_secs(10)),
        SessionKey::random().unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(listener::serve(
        listener,
        gw.router(),
        Arc::new(Counters::default()),
        stop.clone(),
    ));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_routing_in_both_eras_and_unknown_servers() {
    let fleet = common::start(common::spec(2, 1, Isolation::Task)).await;
    let stop = CancellationToken::new();
    let base = gateway(&fleet, &stop).await;
    let target = fleet.endpoints()[1].clone();

    // 2026-07-28: plain requests pass through.
    let (status, body) = common::post_stateless(
        &format!("{base}/mcp/{}", target.id),
        "tools/list",
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let tools = body.unwrap()["result"]["tools"].as_array().unwrap().len();
    assert!(tools > 0);

    // 2025-11-25: a whole session (initialize, SSE answers, session id) through the gateway.
    let client = common::client(
        &format!("{base}/mcp/{}", target.id),
        ProtocolVersion::V_2025_11_25,
    )
    .await;
    let args = json!({"text": "through the gateway"});
    let result = client
        .call_tool(
            CallToolRequestParams::new("echo").with_arguments(args.as_object().cloned().unwrap()),
        )
        .await
        .expect("echo through the gateway");
    let text = serde_json::to_string(&result).unwrap();
    assert!(text.contains("through the gateway"), "{text}");
    client.cancel().await.unwrap();

    // An unknown server: 404 with a JSON-RPC error naming it.
    let (status, body) =
        common::post_stateless(&format!("{base}/mcp/nobody-0001"), "tools/list", json!({})).await;
    assert_eq!(status, 404);
    let message = body.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("nobody-0001"), "{message}");

    stop.cancel();
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_tools_and_failover_when_a_replica_dies() {
    let fleet = common::start(common::spec(3, 1, Isolation::Task)).await;
    let stop = CancellationToken::new();
    let base = gateway(&fleet, &stop).await;
    let mcp = format!("{base}/mcp");

    let (status, body) = common::post_stateless(&mcp, "tools/list", json!({})).await;
    assert_eq!(status, 200);
    let names: Vec<String> = body.unwrap()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "community__echo",
        "community__add",
        "security__scan_secrets",
    ] {
        assert!(names.contains(&want.to_string()), "{want} in {names:?}");
    }
    assert!(names.iter().all(|n| {
        n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }));

    let echo = |text: &'static str| {
        let mcp = mcp.clone();
        async move {
            common::post_stateless(
                &mcp,
                "tools/call",
                json!({"name": "community__echo", "arguments": {"text": text}}),
            )
            .await
        }
    };
    let (status, body) = echo("one").await;
    assert_eq!(status, 200);
    assert!(body.unwrap().to_string().contains("one"));

    // Kill one community replica: calls keep succeeding (a refused connection is sent to
    // another member, and the dead one is ejected).
    let victim = fleet.endpoints()[0].clone();
    assert_eq!(victim.group, "community");
    let admin = fleet.admin_addr().unwrap();
    let killed = common::http()
        .post(format!("http://{admin}/servers/{}/kill", victim.id))
        .send()
        .await
        .unwrap();
    assert!(killed.status().is_success());
    for _ in 0..60 {
        let (status, body) = echo("again").await;
        assert_eq!(status, 200, "{body:?}");
        assert!(body.unwrap().to_string().contains("again"));
    }

    // The dead replica's refusals show in the gateway's metrics.
    let metrics = common::http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mcpfleet_gateway_calls_total{group=\"community\"} 61"),
        "{metrics}"
    );
    let connect_failures: u64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("mcpfleet_gateway_backend_failures_total")
                && l.contains("kind=\"connect\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let retries_line = metrics
        .lines()
        .find(|l| l.starts_with("mcpfleet_gateway_retries_total{group=\"community\"}"))
        .unwrap();
    let retries: u64 = retries_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(
        retries, connect_failures,
        "every refused call was retried once: {metrics}"
    );

    // Bad requests get JSON-RPC errors, not crashes.
    let (status, body) = common::post_stateless(
        &mcp,
        "tools/call",
        json!({"name": "nogroup__echo", "arguments": {}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap()["error"]["code"], -32602);
    let (_, body) =
        common::post_stateless(&mcp, "tools/call", json!({"name": "echo", "arguments": {}})).await;
    assert_eq!(body.unwrap()["error"]["code"], -32602);
    let resp = common::http()
        .post(&mcp)
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    stop.cancel();
    fleet.stop().await;
}
