//! Bad input over the wire: every case gets the proper error and the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use fleet::Isolation;
use serde_json::{Value, json};

async fn still_serves(url: &str) {
    let (status, body) = common::post_stateless(url, "tools/list", json!({})).await;
    assert_eq!(status, 200);
    let tools = body.expect("body")["result"]["tools"]
        .as_array()
        .map(Vec::len);
    assert_eq!(tools, Some(5));
}

fn raw(url: &str) -> reqwest::RequestBuilder {
    common::http()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
}

fn code(body: &Option<Value>) -> i64 {
    body.as_ref()
        .and_then(|b| b["error"]["code"].as_i64())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_proper_errors_and_server_keeps_serving() {
    let fleet = common::start(common::spec(1, 0, Isolation::Task)).await;
    let url = fleet.endpoints()[0].mcp_url();

    // Malformed JSON -> -32700.
    let (status, body) = common::send(raw(&url).body("{\"jsonrpc\": \"2.0\", \"method\": ")).await;
    assert_eq!((status, code(&body)), (400, -32700), "{body:?}");
    still_serves(&url).await;

    // JSON that is not a JSON-RPC message, and a batch -> -32600.
    for bad in [
        json!({"hello": 1}),
        json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
    ] {
        let (status, body) = common::send(raw(&url).json(&bad)).await;
        assert_eq!((status, code(&body)), (400, -32600), "{bad} -> {body:?}");
    }
    still_serves(&url).await;

    // Unknown method -> -32601.
    let (_, body) = common::post_stateless(&url, "tools/frobnicate", json!({})).await;
    assert_eq!(code(&body), -32601, "{body:?}");
    still_serves(&url).await;

    // Known method with unparseable params -> -32602.
    let (_, body) = common::post_stateless(&url, "tools/call", json!({"arguments": 5})).await;
    assert_eq!(code(&body), -32602, "{body:?}");

    // Wrong and missing tool arguments -> -32602 naming the field.
    let (_, body) = common::post_stateless(
        &url,
        "tools/call",
        json!({"name": "add", "arguments": {"a": "x", "b": 1}}),
    )
    .await;
    assert_eq!(code(&body), -32602, "{body:?}");
    assert_eq!(
        body.as_ref().map(|b| b["error"]["data"]["field"].clone()),
        Some(json!("a"))
    );
    still_serves(&url).await;

    // Body over the limit -> 413.
    let huge = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x".repeat(2 << 20)}}});
    let (status, _) = common::send(raw(&url).json(&huge)).await;
    assert_eq!(status, 413);
    still_serves(&url).await;

    // Host and Origin not allowed -> 403 (DNS-rebinding guard).
    let (status, _) = common::send(raw(&url).header("host", "evil.example:80").body("{}")).await;
    assert_eq!(status, 403);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let (status, _) = common::send(
        raw(&url)
            .header("origin", "http://evil.example")
            .json(&ping),
    )
    .await;
    assert_eq!(status, 403);
    still_serves(&url).await;

    // An expired or unknown session -> 404 so clients re-initialize.
    let (status, _) = common::send(
        raw(&url)
            .header("mcp-session-id", "not-a-session")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})),
    )
    .await;
    assert_eq!(status, 404);
    still_serves(&url).await;

    let requests = fleet.registry().entries()[0].view().requests;
    assert!(requests >= 15, "requests were counted: {requests}");
    fleet.stop().await;
}

/// Requests no MCP peer may send, to a server and to the gateway: each gets HTTP 400 with a
/// JSON-RPC error (rmcp alone answered most with a plain-text 415; the gateway answered some
/// itself as if they were fine), and both keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_the_wrong_shape_get_json_rpc_errors_from_server_and_gateway() {
    let fleet = common::start_with(common::spec(1, 0, Isolation::Task), true).await;
    let server = fleet.endpoints()[0].mcp_url();
    let gateway = format!("http://{}/mcp", fleet.gateway_addr().unwrap());
    let meta = fleet::wire::stateless_meta();
    let list = |extra: Value| {
        let mut r = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
            "params": {"_meta": meta}});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        serde_json::to_vec(&r).unwrap()
    };
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes();
    let not_utf8 =
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{\"x\":\"\xff\"}}";
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        ("method not a string", list(json!({"method": 5})), -32600),
        ("object id", list(json!({"id": {"a": 1}})), -32600),
        ("array params", list(json!({"params": [1]})), -32602),
        ("JSON-RPC 1.0", list(json!({"jsonrpc": "1.0"})), -32600),
        (
            "a batch",
            format!("[{}]", String::from_utf8(list(json!({}))).unwrap()).into_bytes(),
            -32600,
        ),
        ("nesting 200 deep", deep, -32700),
        ("invalid UTF-8", not_utf8.to_vec(), -32700),
    ];
    for url in [&server, &gateway] {
        for (what, body, want) in &cases {
            let (status, answer) = common::send(
                raw(url)
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/list")
                    .body(body.clone()),
            )
            .await;
            assert_eq!(
                (status, code(&answer)),
                (400, *want),
                "{url}: {what}: {answer:?}"
            );
        }
    }
    still_serves(&server).await;
    let (status, _) = common::post_stateless(&gateway, "tools/list", json!({})).await;
    assert_eq!(status, 200);
    fleet.stop().await;
}
