//! `fleet up --memory-peer`: a real fleet process publishes its memory's history to a bare
//! peer repository on `refs/heads/nodes/<node id>`, shows the peer in `/metrics` and `fleet
//! status`, keeps serving writes while a second peer is unreachable, and publishes its last
//! commit when stopped.

mod common;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::json;

fn head(repo: &std::path::Path, name: &str) -> Option<git2::Oid> {
    git2::Repository::open(repo).ok()?.refname_to_id(name).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_publishes_its_memory_to_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    let made = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["memory", "init-peer"])
        .arg(&peer)
        .output()
        .unwrap();
    assert!(made.status.success());
    assert!(String::from_utf8_lossy(&made.stdout).contains("created, a bare repository"));
    let missing = dir.path().join("missing.git");
    let repo = dir.path().join("memory");
    let mut up = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args([
            "up",
            "--servers",
            "2",
            "--ephemeral-ports",
            "--admin-port",
            "0",
            "--no-gateway",
            "--memory-node-id",
            "node-a",
            "--admin-token-file",
        ])
        .arg(dir.path().join("admin-token"))
        .arg("--memory-repo")
        .arg(&repo)
        .arg("--memory-peer")
        .arg(&peer)
        .arg("--memory-peer")
        .arg(&missing)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(Running)
        .expect("fleet up starts");
    let stdout = up.0.stdout.take().unwrap();
    let admin = common::admin_url_from(stdout).await;

    // A write through one of the servers.
    let view: serde_json::Value = common::get_json(&format!("{admin}/servers")).await;
    let port = view["servers"][0]["port"].as_u64().unwrap();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let (status, answer) = common::post_stateless(
        &url,
        "tools/call",
        json!({"name": "create_entities", "arguments": {"entities": [
            {"name": "published", "entityType": "test", "observations": ["on node-a"]}
        ]}}),
    )
    .await;
    assert_eq!(status, 200, "{answer:?}");

    let metrics_url = format!("{admin}/metrics");
    let peer_label = peer.display().to_string();
    let mut text = String::new();
    for _ in 0..100 {
        text = common::get_text(&metrics_url).await;
        if text.contains(&format!(
            "mcpfleet_memory_peer_up{{node=\"node-a\",peer=\"{peer_label}\"}} 1"
        )) && text.contains("mcpfleet_memory_committed_version 1")
            && head(&peer, "refs/heads/nodes/node-a") == head(&repo, "refs/heads/main")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        head(&peer, "refs/heads/nodes/node-a"),
        head(&repo, "refs/heads/main"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "mcpfleet_memory_peer_up{{node=\"node-a\",peer=\"{}\"}} 0",
            missing.display()
        )),
        "{text}"
    );

    let status = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["status", "--admin", &admin])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("node node-a"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.contains(&peer_label) && l.contains(" ok ")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.contains("missing.git") && l.contains("failing")),
        "{status}"
    );

    // Stopped as a service manager stops it (SIGTERM): the last commit goes out too.
    let sent = Command::new("kill")
        .args(["-TERM", &up.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut child = up;
    let exit = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap();
    assert!(exit.unwrap().success());
    assert_eq!(
        head(&peer, "refs/heads/nodes/node-a"),
        head(&repo, "refs/heads/main")
    );
    assert!(head(&missing, "refs/heads/nodes/node-a").is_none());
    let listed = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["memory", "init-peer"])
        .arg(&peer)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("exists") && listed.contains("node node-a: history up to version 1"),
        "{listed}"
    );
}

/// Kills the fleet if the test fails before stopping it.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
