//! The gateway as an MCP server of its own on `/mcp`, against a real fleet on loopback, spoken
//! to by hand so every status and field is seen: sessions the gateway holds (negotiated version,
//! requests it refuses, notifications, DELETE), paging, the list_changed stream when a group is
//! scaled and its end when the fleet stops, DELETE of a pinned session, and the Host/Origin guard
//! on everything the gateway answers itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use fleet::Isolation;
use futures::StreamExt as _;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_answers_as_one_server_and_guards_its_own_routes() {
    let fleet = common::start_with(common::spec(2, 1, Isolation::Task), true).await;
    let base = format!("http://{}", fleet.gateway_addr().unwrap());
    let mcp = format!("{base}/mcp");

    // A 2025-03-26 client gets that version, the gateway's own identity and a session.
    let mut init = common::initialize();
    init["params"]["protocolVersion"] = json!("2025-03-26");
    let (status, sid, body) = common::post_session(&mcp, None, init).await;
    assert_eq!(status, 200, "{body:?}");
    let result = &body.as_ref().unwrap()["result"];
    assert_eq!(result["protocolVersion"], "2025-03-26");
    assert_eq!(result["serverInfo"]["name"], "mcpfleet-gateway");
    assert_eq!(result["capabilities"]["tools"]["listChanged"], true);
    let sid = sid.expect("a session id");

    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(common::post_session(&mcp, Some(&sid), note).await.0, 202);
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let (status, _, body) = common::post_session(&mcp, Some(&sid), ping).await;
    assert_eq!((status, &body.unwrap()["result"]), (200, &json!({})));

    // Both groups' tools in one list; a cursor the gateway did not hand out is invalid params.
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let (_, _, body) = common::post_session(&mcp, Some(&sid), list).await;
    let names = common::tool_names(&body.unwrap());
    assert!(names.contains(&"community__echo".to_string()), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("security__")),
        "{names:?}"
    );
    let bad = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {"cursor": "x"}});
    let (_, _, body) = common::post_session(&mcp, Some(&sid), bad).await;
    assert_eq!(body.unwrap()["error"]["code"], -32602);

    // A second initialize in the session, and a stateless version header, are refused.
    let (status, _, _) = common::post_session(&mcp, Some(&sid), common::initialize()).await;
    assert_eq!(status, 400);
    let (status, _) = common::send(
        common::http()
            .post(&mcp)
            .header("mcp-session-id", &sid)
            .header("mcp-protocol-version", "2026-07-28")
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 5, "method": "ping"})),
    )
    .await;
    assert_eq!(status, 400);

    // A 2026-07-28 client discovers the gateway and every version it speaks.
    let (status, body) = common::post_stateless(&mcp, "server/discover", json!({})).await;
    assert_eq!(status, 200);
    let versions = body.unwrap()["result"]["supportedVersions"].clone();
    assert_eq!(versions.as_array().map(Vec::len), Some(5), "{versions}");

    // The gateway's session and a pinned one both end with 204.
    let delete = |sid: String| common::http().delete(&mcp).header("mcp-session-id", sid);
    assert_eq!(delete(sid).send().await.unwrap().status(), 204);
    let pinned = format!("{mcp}?group=community");
    let (status, pinned_sid, _) = common::post_session(&pinned, None, common::initialize()).await;
    assert_eq!(status, 200);
    let pinned_sid = pinned_sid.unwrap();
    assert_eq!(delete(pinned_sid).send().await.unwrap().status(), 204);

    // A foreign Host or Origin is refused on everything the gateway answers.
    for path in ["/metrics", "/backends", "/healthz"] {
        let r = common::http()
            .get(format!("{base}{path}"))
            .header("host", "attacker.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let r = common::http()
        .post(&mcp)
        .header("origin", "http://attacker.example")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 6, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_stream_hears_of_a_scale_and_ends_with_the_fleet() {
    let fleet = common::start_with(common::spec(2, 0, Isolation::Task), true).await;
    let mcp = format!("http://{}/mcp", fleet.gateway_addr().unwrap());
    let (_, sid, _) = common::post_session(&mcp, None, common::initialize()).await;
    let stream = common::http()
        .get(&mcp)
        .header("mcp-session-id", sid.unwrap())
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = stream.bytes_stream();

    let scaled = common::admin_post(&fleet, "/groups/community/scale")
        .json(&json!({"count": 3}))
        .send()
        .await
        .unwrap();
    assert!(scaled.status().is_success(), "{:?}", scaled.text().await);
    let mut seen = String::new();
    let heard = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(heard, Ok(true), "stream so far: {seen:?}");
    let event = seen
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str::<Value>(d.trim()).unwrap());
    assert_eq!(event.unwrap()["method"], "notifications/tools/list_changed");

    // Stopping the fleet ends the stream cleanly (its last chunk sent) rather than by the
    // connection being dropped once the graceful stop's time is up.
    let stop = tokio::spawn(fleet.stop());
    let ending = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            if let Err(e) = chunk {
                return Err(e.to_string());
            }
        }
        Ok(())
    })
    .await;
    assert_eq!(ending, Ok(Ok(())), "the stream did not end cleanly");
    stop.await.unwrap();
}
