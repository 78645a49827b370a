//! The gateway in front of a real fleet on loopback: pinned routing in both protocol eras,
//! and what an unknown server gets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use fleet::{
    ConnectionLimits, Counters, Fleet, Isolation,
    gateway::{Backend, Directory, Gateway, session::SessionKey, upstream::Upstream},
    listener,
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
        local: None,
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
        ConnectionLimits::default(),
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
    let names = common::tool_names(&body.unwrap());
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

    // Kill one community replica: calls keep succeeding (a refused connection, or a pooled one
    // the dying server cut off under a call, sends the call to another member: `echo` is safe
    // to repeat; and the dead one is ejected).
    let victim = fleet.endpoints()[0].clone();
    assert_eq!(victim.group, "community");
    let killed = common::admin_post(&fleet, &format!("/servers/{}/kill", victim.id))
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
    let metrics = common::get_text(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("mcpfleet_gateway_calls_total{group=\"community\"} 61"),
        "{metrics}"
    );
    let failures: u64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("mcpfleet_gateway_backend_failures_total")
                && (l.contains("kind=\"connect\"") || l.contains("kind=\"bad_response\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let retries_line = metrics
        .lines()
        .find(|l| l.starts_with("mcpfleet_gateway_retries_total{group=\"community\"}"))
        .unwrap();
    let retries: u64 = retries_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(
        retries, failures,
        "every refused or cut-off call was retried once: {metrics}"
    );
    // Latency by group, method and tool, and by backend, as Prometheus histograms.
    let count = |prefix: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(
        count(
            "mcpfleet_gateway_request_duration_seconds_count{group=\"community\",method=\"tools/call\",tool=\"echo\"}"
        ),
        61,
        "{metrics}"
    );
    assert_eq!(
        count(
            "mcpfleet_gateway_requests_total{group=\"community\",method=\"tools/call\",tool=\"echo\",outcome=\"ok\"}"
        ),
        61
    );
    assert!(
        metrics.contains(
            "mcpfleet_gateway_request_duration_seconds_bucket{group=\"community\",method=\"tools/call\",tool=\"echo\",le=\"+Inf\"} 61"
        ),
        "{metrics}"
    );
    assert!(
        count("mcpfleet_gateway_backend_request_duration_seconds_count{group=\"community\"") >= 61,
        "{metrics}"
    );

    // Only the tool's name is edited: the same text inside the arguments arrives unchanged,
    // and the fields may come in any order.
    let resp = common::http()
        .post(&mcp)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "community__echo")
        .body(format!(
            r#"{{"params":{{"arguments":{{"text":"community__echo"}},"_meta":{},"name":"community__echo"}},"method":"tools/call","id":"x-1","jsonrpc":"2.0"}}"#,
            fleet::wire::stateless_meta()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = fleet::wire::first_jsonrpc_message(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["id"], "x-1");
    assert_eq!(
        body["result"]["structuredContent"]["text"], "community__echo",
        "{body}"
    );

    // Headers that contradict the body are refused.
    let resp = common::http()
        .post(&mcp)
        .header("content-type", "application/json")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "community__add")
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "community__echo", "arguments": {"text": "x"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = common::http()
        .post(&mcp)
        .header("content-type", "application/json")
        .header("mcp-method", "tools/list")
        .json(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                      "params": {"name": "community__echo", "arguments": {"text": "x"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_answering_garbage_is_a_502_with_a_json_rpc_error() {
    // A "server" that answers every POST with a JSON content type and a body that is not JSON.
    let app = axum::Router::new().route(
        "/mcp",
        axum::routing::post(|| async {
            (
                [("content-type", "application/json")],
                "{\"jsonrpc\": \"2.0\", garbage",
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let directory = Directory::new([Backend {
        id: "broken-0000".into(),
        group: "broken".into(),
        addr,
        local: None,
    }]);
    let gw = Gateway::new(
        directory,
        Upstream::new(Duration::from_secs(10)),
        SessionKey::random().unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(listener::serve(
        listener,
        gw.router(),
        Arc::new(Counters::default()),
        ConnectionLimits::default(),
        stop.clone(),
    ));
    for url in [format!("{base}/mcp"), format!("{base}/mcp/broken-0000")] {
        let (status, body) = common::post_stateless(
            &url,
            "tools/call",
            json!({"name": "broken__x", "arguments": {}}),
        )
        .await;
        assert_eq!(status, 502, "{url}");
        let body = body.unwrap();
        assert_eq!(body["id"], 7, "{body}");
        assert_eq!(body["error"]["code"], -32603);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("broken-0000") && message.contains("not JSON"),
            "{message}"
        );
    }
    // The gateway keeps serving.
    let (status, _) = common::post_stateless(&format!("{base}/mcp"), "ping", json!({})).await;
    assert_eq!(status, 200);
    stop.cancel();
}
