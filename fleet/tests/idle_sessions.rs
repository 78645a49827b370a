//! Many 2025-11-25 sessions held open at once by one server: each stays usable after the others
//! were opened and left idle (its own calls answered under its own id, in any order), the
//! server counts exactly the open ones, and ending them brings the count back to zero. Idle
//! sessions leave rmcp's memory after `session_resident` (so that they cost little) and must
//! come back on their next request as if they had never left, until `session_idle` expires them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use fleet::Isolation;
use serde_json::json;

const SESSIONS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_idle_session_stays_usable_and_counted() {
    let spec = common::spec(1, 0, Isolation::Task);
    let fleet = common::start(spec).await;
    let url = fleet.endpoints()[0].mcp_url();
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        let (status, sid, body) = common::post_session(&url, None, common::initialize()).await;
        assert_eq!(status, 200, "{body:?}");
        let sid = sid.expect("a session id");
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let (status, _, _) = common::post_session(&url, Some(&sid), done).await;
        assert_eq!(status, 202);
        sessions.push(sid);
    }
    assert_eq!(
        fleet.registry().entries()[0].view().open_sessions,
        SESSIONS as u64
    );

    // Newest first, so the oldest sessions have idled longest when they are used.
    for (i, sid) in sessions.iter().enumerate().rev() {
        let call = json!({"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": format!("s{i}")}}});
        let (status, _, body) = common::post_session(&url, Some(sid), call).await;
        assert_eq!(status, 200, "session {i}: {body:?}");
        let body = body.expect("an answer");
        assert_eq!(body["id"], 1000 + i, "{body}");
        assert_eq!(
            body["result"]["structuredContent"]["text"],
            format!("s{i}"),
            "{body}"
        );
        // A second request in the same session is served too.
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
        let (status, _, body) = common::post_session(&url, Some(sid), list).await;
        assert_eq!(status, 200);
        assert!(common::tool_names(&body.unwrap()).contains(&"echo".to_string()));
    }

    for sid in &sessions {
        assert_eq!(common::end_session(&url, sid).await, 204);
    }
    let drained = common::eventually(Duration::from_secs(10), || {
        fleet.registry().entries()[0].view().open_sessions == 0
    })
    .await;
    assert!(drained, "every ended session is counted out");
    // An ended session is unknown from then on.
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let (status, _, _) = common::post_session(&url, Some(&sessions[0]), list).await;
    assert_eq!(status, 404);
    let server = fleet.registry().entries()[0].view();
    assert_eq!(server.restarts, 0, "{server:?}");
    fleet.stop().await;
}

/// A one-server fleet that evicts sessions idle for 50 ms and expires them after `idle`, its
/// MCP URL, and `n` sessions opened on it, oldest first.
async fn evicting_fleet(idle: Duration, n: usize) -> (fleet::Fleet, String, Vec<String>) {
    let mut spec = common::spec(1, 0, Isolation::Task);
    spec.server.session_resident = Duration::from_millis(50);
    spec.server.session_idle = idle;
    let fleet = common::start(spec).await;
    let url = fleet.endpoints()[0].mcp_url();
    let mut sessions = Vec::new();
    for _ in 0..n {
        let (status, sid, _) = common::post_session(&url, None, common::initialize()).await;
        assert_eq!(status, 200);
        sessions.push(sid.expect("a session id"));
    }
    (fleet, url, sessions)
}

/// Sessions idle past `session_resident` leave rmcp's memory and come back on their next
/// request, unchanged to the client and counted once. (`session_idle` is long, so however slow
/// the machine, none expires during the test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_come_back() {
    const N: usize = 40;
    let (fleet, url, sessions) = evicting_fleet(Duration::from_secs(60), N).await;
    let count = || fleet.registry().entries()[0].view().open_sessions;
    assert_eq!(count(), N as u64);
    // Well past `session_resident` (the sweep runs every 20 ms here).
    tokio::time::sleep(Duration::from_millis(400)).await;
    for (i, sid) in sessions.iter().enumerate() {
        let call = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": format!("back {i}")}}});
        let (status, _, body) = common::post_session(&url, Some(sid), call).await;
        assert_eq!(status, 200, "session {i}: {body:?}");
        let body = body.expect("an answer");
        assert_eq!(body["id"], i, "{body}");
        assert_eq!(
            body["result"]["structuredContent"]["text"],
            format!("back {i}")
        );
    }
    assert_eq!(count(), N as u64, "a restored session is counted once");
    fleet.stop().await;
}

/// An idle session out of rmcp's memory can still be ended by its client, and the others
/// expire after `session_idle`: gone (404) and counted out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end_and_expire() {
    const N: usize = 10;
    let (fleet, url, sessions) = evicting_fleet(Duration::from_secs(2), N).await;
    let count = || fleet.registry().entries()[0].view().open_sessions;
    // The newest session, past `session_resident`, is ended by its client.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(common::end_session(&url, &sessions[N - 1]).await, 204);
    let expired = common::eventually(Duration::from_secs(20), || count() == 0).await;
    assert!(expired, "idle sessions expire: {} left", count());
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    for sid in [&sessions[0], &sessions[N - 1]] {
        let (status, _, _) = common::post_session(&url, Some(sid), list.clone()).await;
        assert_eq!(status, 404);
    }
    assert_eq!(count(), 0);
    fleet.stop().await;
}
