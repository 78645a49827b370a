//! Supervision, health monitoring and the admin API, in both isolation modes: killed servers are
//! restarted and healthy again, hung servers are detected and replaced, a taken port fails fast
//! without leaving anything running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use fleet::{Fleet, FleetOptions, FleetView, Isolation, ServerState};
use serde_json::json;

async fn admin_view(fleet: &Fleet) -> FleetView {
    let url = format!("http://{}/servers", fleet.admin_addr().expect("admin"));
    common::http()
        .get(url)
        .send()
        .await
        .expect("admin answers")
        .json()
        .await
        .expect("fleet view")
}

async fn admin_post(fleet: &Fleet, path: &str, body: Option<serde_json::Value>) -> u16 {
    let mut req = common::admin_post(fleet, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("admin answers").status().as_u16()
}

async fn kill_and_recover(isolation: Isolation) {
    let fleet = common::start(common::spec(12, 8, isolation)).await;
    let view = admin_view(&fleet).await;
    assert_eq!((view.total, view.healthy), (20, 20));
    let victim = view.servers[3].clone();
    if isolation == Isolation::Process {
        assert!(victim.pid.is_some(), "process mode reports pids");
    }
    let entry = fleet.registry().get(&victim.id).expect("entry").clone();
    // Traffic and an open session on the victim when it dies.
    let victim_url = format!("http://127.0.0.1:{}/mcp", victim.port);
    for _ in 0..5 {
        common::post_stateless(&victim_url, "tools/list", json!({})).await;
    }
    let session = common::client(&victim_url, rmcp::model::ProtocolVersion::V_2025_11_25).await;
    if isolation == Isolation::Task {
        assert_eq!(entry.view().open_sessions, 1);
    }
    let served = entry.view().requests;
    assert_eq!(
        admin_post(&fleet, &format!("/servers/{}/kill", victim.id), None).await,
        200
    );
    let recovered = common::eventually(Duration::from_secs(10), || {
        let v = entry.view();
        v.restarts >= 1 && v.state == ServerState::Healthy
    })
    .await;
    assert!(
        recovered,
        "killed server is restarted and healthy: {:?}",
        entry.view()
    );
    let after = entry.view();
    if isolation == Isolation::Process {
        assert_ne!(after.pid, victim.pid, "a new process serves");
    }
    // Gauges start afresh with the new instance (no wrap-around from the dead one's
    // connections and session) while the request total survives the restart.
    drop(session);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = entry.view();
    assert_eq!(after.open_sessions, 0, "{after:?}");
    assert!(after.open_connections < 10, "{after:?}");
    if isolation == Isolation::Task {
        assert!(after.requests >= served, "{} < {served}", after.requests);
    }
    // It serves MCP again on the same port.
    let url = format!("http://127.0.0.1:{}/mcp", after.port);
    let (status, _) = common::post_stateless(&url, "tools/list", json!({})).await;
    assert_eq!(status, 200);
    // Unknown servers are a 404 from the admin API.
    assert_eq!(
        admin_post(&fleet, "/servers/nope-0001/kill", None).await,
        404
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_mode_kill_is_recovered() {
    kill_and_recover(Isolation::Task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_mode_kill_is_recovered() {
    kill_and_recover(Isolation::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_mode_external_sigkill_is_recovered() {
    let fleet = common::start(common::spec(3, 1, Isolation::Process)).await;
    let entry = fleet.registry().entries()[1].clone();
    let pid = entry.view().pid.expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let recovered = common::eventually(Duration::from_secs(10), || {
        let v = entry.view();
        v.restarts >= 1 && v.state == ServerState::Healthy && v.pid != Some(pid)
    })
    .await;
    assert!(recovered, "{:?}", entry.view());
    fleet.stop().await;
}

async fn pause_latency_resume(isolation: Isolation) {
    let fleet = common::start(common::spec(2, 1, isolation)).await;
    let id = fleet.endpoints()[0].id.clone();
    let entry = fleet.registry().get(&id).expect("entry").clone();
    let url = fleet.endpoints()[0].mcp_url();

    // Added latency shows in a call's time and is reported.
    assert_eq!(
        admin_post(
            &fleet,
            &format!("/servers/{id}/latency"),
            Some(json!({"ms": 150}))
        )
        .await,
        200
    );
    assert_eq!(entry.view().faults.added_latency_ms, 150);
    // The admin API answers once the server has applied the change (in process mode it
    // reaches the child over a pipe and the child acknowledges it): the very next call is slow.
    assert!(entry.view().faults_applied, "{:?}", entry.view());
    let t = std::time::Instant::now();
    let (status, _) = common::post_stateless(&url, "tools/list", json!({})).await;
    assert_eq!(status, 200);
    let slowest = t.elapsed();
    assert!(slowest >= Duration::from_millis(150), "{slowest:?}");
    assert_eq!(
        admin_post(
            &fleet,
            &format!("/servers/{id}/latency"),
            Some(json!({"ms": 0}))
        )
        .await,
        200
    );

    // A paused server hangs; the monitor declares it unhealthy and the supervisor replaces it.
    assert_eq!(
        admin_post(&fleet, &format!("/servers/{id}/pause"), None).await,
        200
    );
    let replaced = common::eventually(Duration::from_secs(10), || {
        let v = entry.view();
        v.restarts >= 1 && v.state == ServerState::Healthy && !v.faults.paused && v.faults_applied
    })
    .await;
    assert!(replaced, "hung server is replaced: {:?}", entry.view());
    let history = entry.lifecycle().health.transitions.clone();
    assert!(
        history.iter().any(|t| t.state == ServerState::Unhealthy),
        "{history:?}"
    );
    assert!(entry.view().probes_failed >= 3);
    let availability = entry.view().availability.expect("probed");
    assert!(availability < 1.0 && availability > 0.0);

    // Pause then resume before detection: no restart needed.
    let restarts = entry.view().restarts;
    assert_eq!(
        admin_post(&fleet, &format!("/servers/{id}/pause"), None).await,
        200
    );
    assert_eq!(
        admin_post(&fleet, &format!("/servers/{id}/resume"), None).await,
        200
    );
    let (status, _) = common::post_stateless(&url, "tools/list", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(entry.view().restarts, restarts);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_mode_faults() {
    pause_latency_resume(Isolation::Task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_mode_faults() {
    pause_latency_resume(Isolation::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_counters() {
    let fleet = common::start(common::spec(2, 1, Isolation::Task)).await;
    let url = fleet.endpoints()[0].mcp_url();
    for _ in 0..5 {
        common::post_stateless(
            &url,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        )
        .await;
    }
    let text = common::http()
        .get(format!(
            "http://{}/metrics",
            fleet.admin_addr().expect("admin")
        ))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(text.contains("mcpfleet_servers 3"), "{text}");
    assert!(text.contains("mcpfleet_servers_healthy 3"));
    let line = text
        .lines()
        .find(|l| l.starts_with("mcpfleet_server_requests_total{server=\"community-0000\""))
        .expect("request counter line");
    let n: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!(n >= 5.0, "{line}");
    // Bad admin input: an absurd latency is refused, and so is a foreign Host (DNS rebinding).
    let id = fleet.endpoints()[0].id.clone();
    let status = admin_post(
        &fleet,
        &format!("/servers/{id}/latency"),
        Some(json!({"ms": 10_000_000})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        fleet.registry().entries()[0].view().faults.added_latency_ms,
        0
    );
    let foreign = common::http()
        .post(format!(
            "http://{}/servers/{id}/kill",
            fleet.admin_addr().expect("admin")
        ))
        .header("host", "rebound.example")
        .send()
        .await
        .expect("answered");
    assert_eq!(foreign.status().as_u16(), 403);
    assert_eq!(fleet.registry().entries()[0].view().restarts, 0);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_port_fails_fast_and_leaves_nothing_running() {
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = blocker.local_addr().expect("addr").port();
    let mut spec = common::spec(3, 0, Isolation::Task);
    // Two free ports before the taken one, which the third server needs.
    let first = taken - 2;
    let free: Vec<std::net::TcpListener> = (first..taken)
        .filter_map(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
        .collect();
    if free.len() != 2 {
        return; // the neighbouring ports are busy on this machine; nothing to prove here
    }
    drop(free);
    spec.groups[0].first_port = first;
    let t = std::time::Instant::now();
    let err = Fleet::start(spec, FleetOptions::default())
        .await
        .expect_err("port is taken");
    assert!(t.elapsed() < Duration::from_secs(2));
    let msg = err.to_string();
    assert!(
        msg.contains(&taken.to_string()) && msg.contains("community-0002"),
        "{msg}"
    );
    // The ports bound before the failure were released.
    for p in first..taken {
        std::net::TcpListener::bind(("127.0.0.1", p)).expect("port released");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_through_admin_api_and_clean_stop() {
    let fleet = common::start(common::spec(3, 2, Isolation::Process)).await;
    let token = fleet.shutdown_requested();
    assert_eq!(admin_post(&fleet, "/shutdown", None).await, 202);
    assert!(token.is_cancelled());
    let pids: Vec<u32> = fleet
        .registry()
        .entries()
        .iter()
        .filter_map(|e| e.view().pid)
        .collect();
    assert_eq!(pids.len(), 5);
    let registry = fleet.registry().clone();
    fleet.stop().await;
    assert!(
        registry
            .entries()
            .iter()
            .all(|e| e.state() == ServerState::Stopped)
    );
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
            "pid {pid} gone"
        );
    }
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z "))
        .unwrap_or(true)
}
