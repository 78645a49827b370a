//! The per-server session cap: one client opening sessions in a loop can hold at most
//! `[server] max_sessions` of a server's sessions (each costs memory until it idles out); the
//! next `initialize` gets HTTP 503 with a JSON-RPC error saying what to do, stateless requests
//! and the sessions already open go on, and ending a session makes room for another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use fleet::Isolation;
use serde_json::json;

const MAX: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_holds_at_most_its_sessions_and_keeps_serving() {
    let mut spec = common::spec(1, 0, Isolation::Task);
    spec.server.max_sessions = MAX;
    let fleet = common::start(spec).await;
    let url = fleet.endpoints()[0].mcp_url();
    let mut sessions = Vec::new();
    for _ in 0..MAX {
        let (status, sid, _) = common::post_session(&url, None, common::initialize()).await;
        assert_eq!(status, 200);
        sessions.push(sid.expect("a session id"));
    }
    let (status, sid, body) = common::post_session(&url, None, common::initialize()).await;
    assert_eq!(status, 503, "{body:?}");
    assert!(sid.is_none());
    let error = &body.expect("a JSON-RPC error")["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("most sessions (3)"),
        "{error}"
    );

    // The open sessions and stateless requests are served meanwhile.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (status, _, _) = common::post_session(&url, Some(&sessions[0]), list).await;
    assert_eq!(status, 200);
    let (status, _) = common::post_stateless(&url, "tools/list", json!({})).await;
    assert_eq!(status, 200);

    // Ending one makes room.
    assert_eq!(common::end_session(&url, &sessions[0]).await, 204);
    let room = common::eventually(std::time::Duration::from_secs(5), || {
        fleet.registry().entries()[0].view().open_sessions < MAX as u64
    })
    .await;
    assert!(room, "the ended session is counted out");
    let (status, _, _) = common::post_session(&url, None, common::initialize()).await;
    assert_eq!(status, 200);
    let server = fleet.registry().entries()[0].view();
    assert_eq!(server.restarts, 0, "{server:?}");
    fleet.stop().await;
}
