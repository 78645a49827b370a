//! The stdio transport against a peer the tests control (`fake_server.py`, a real process):
//! answers out of order, asides before an answer, lines that are not JSON or too long, a
//! server that exits mid-call, the negotiated version, and no process left after `stop`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, time::Duration};

use serde_json::json;

use super::{StdioClient, StdioPool, StdioSettings, lines::MAX_LINE, pool::StdioError};
use crate::mcp::{Aside, Call, ErrorClass, Version};

fn settings(dir: &Path, mode: &str, processes: usize, version: Option<Version>) -> StdioSettings {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/transport/stdio/fake_server.py");
    StdioSettings {
        command: vec!["python3".into(), script.display().to_string(), mode.into()],
        processes,
        log_dir: dir.to_path_buf(),
        timeout: Duration::from_secs(10),
        version,
    }
}

/// A pool of `processes` fake servers in `mode`, opened in the version they negotiate.
async fn started(dir: &Path, mode: &str, processes: usize) -> StdioPool {
    StdioPool::start(settings(dir, mode, processes, None))
        .await
        .unwrap()
}

fn tool(name: &str, arguments: serde_json::Value) -> Call {
    Call::tool(name, arguments)
}

fn client(pool: &StdioPool, slot: usize) -> StdioClient {
    StdioClient::of_slot(&pool.handle(), slot)
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[tokio::test]
async fn pipelined_calls_are_answered_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = started(dir.path(), "2025-11-25", 1).await;
    let (mut a, mut b) = (client(&pool, 0), client(&pool, 1));
    a.open().await.unwrap();
    let slow = tool("slow", json!({"ms": 400}));
    let echo = tool("echo", json!({"text": "x"}));
    let (slow_sent, echo_sent) = tokio::join!(a.call(&slow, 1), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.call(&echo, 1).await
    });
    assert_eq!(slow_sent.outcome, Ok(()));
    assert_eq!(echo_sent.outcome, Ok(()));
    // The echo went out after the slow call and came back before it.
    assert!(
        echo_sent.elapsed < slow_sent.elapsed,
        "{echo_sent:?} {slow_sent:?}"
    );
    assert_eq!(pool.version(), Some(Version::V2025_11_25));
    let facts = pool.stop().await;
    assert_eq!((facts.processes, facts.started, facts.exited), (1, 1, 0));
}

#[tokio::test]
async fn asides_are_counted_and_server_requests_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = started(dir.path(), "2025-11-25", 1).await;
    let mut client = client(&pool, 0);
    let sent = client.call(&tool("chatty", json!({})), 1).await;
    assert_eq!(sent.outcome, Ok(()));
    assert_eq!(sent.asides.get(Aside::Log), 1, "{:?}", sent.asides);
    assert_eq!(sent.asides.get(Aside::Roots), 1, "{:?}", sent.asides);
    // The server's roots/list got an answer on stdin before the next call was read.
    let replies = client.call(&tool("replies", json!({})), 2).await;
    assert_eq!(replies.outcome, Ok(()));
    pool.stop().await;
}

#[tokio::test]
async fn bad_lines_are_protocol_errors_and_the_process_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = started(dir.path(), "discover", 1).await;
    assert_eq!(pool.version(), Some(Version::V2026_07_28));
    let mut client = client(&pool, 0);
    let garbage = client.call(&tool("garbage", json!({})), 1).await;
    assert_eq!(garbage.outcome, Err(ErrorClass::Protocol));
    let huge = client
        .call(&tool("huge", json!({"bytes": MAX_LINE + 10})), 2)
        .await;
    assert_eq!(huge.outcome, Err(ErrorClass::Protocol));
    let fine = client.call(&tool("huge", json!({"bytes": 1000})), 3).await;
    assert_eq!(fine.outcome, Ok(()));
    // A 2026-07-28 process gets its client context in every request.
    let meta = tool("meta", json!({"expect": true}));
    assert_eq!(client.call(&meta, 4).await.outcome, Ok(()));
    let facts = pool.stop().await;
    assert_eq!(facts.exited, 0);
}

#[tokio::test]
async fn a_process_that_exits_fails_its_calls_and_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = started(dir.path(), "2025-11-25", 1).await;
    let (mut a, mut b) = (client(&pool, 0), client(&pool, 0));
    let slow = tool("slow", json!({"ms": 2000}));
    let (in_flight, died) = tokio::join!(a.call(&slow, 1), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.call(&tool("die", json!({})), 2).await
    });
    assert_eq!(in_flight.outcome, Err(ErrorClass::Exited));
    assert_eq!(died.outcome, Err(ErrorClass::Exited));
    // The next call waits for the restarted process.
    let after = a.call(&tool("echo", json!({"text": "again"})), 3).await;
    assert_eq!(after.outcome, Ok(()));
    let facts = pool.stop().await;
    assert_eq!((facts.started, facts.exited, facts.restarts), (2, 1, 1));
    assert!(dir.path().join("stdio-0.log").is_file());
}

#[tokio::test]
async fn the_negotiated_version_is_what_calls_are_sent_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = started(dir.path(), "2024-11-05", 1).await;
    assert_eq!(pool.version(), Some(Version::V2024_11_05));
    let mut client = client(&pool, 0);
    let meta = tool("meta", json!({"expect": false}));
    assert_eq!(client.call(&meta, 1).await.outcome, Ok(()));
    pool.stop().await;
    // Asked for 2026-07-28 of a server that does not know it: the handshake fails, clearly.
    let err = StdioPool::start(settings(
        dir.path(),
        "2025-11-25",
        1,
        Some(Version::V2026_07_28),
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, StdioError::Handshake { .. }), "{err}");
}

#[tokio::test]
async fn stop_leaves_no_process_and_a_bad_command_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut pool = started(dir.path(), "2025-11-25", 3).await;
    let pids = pool.pids();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|p| alive(*p)));
    let facts = pool.stop().await;
    assert!(pids.iter().all(|p| !alive(*p)), "{pids:?}");
    assert_eq!(facts.logs, ["stdio-0.log", "stdio-1.log", "stdio-2.log"]);
    let err = StdioPool::start(StdioSettings {
        command: vec!["/nonexistent/mcp-server".into()],
        ..settings(dir.path(), "", 1, None)
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/mcp-server"), "{err}");
}
