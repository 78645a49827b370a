//! End to end through the library entry point `loadgen::run`, the same code the binary runs:
//! a small embedded fleet, then `--target` against a fleet started here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::run::{args, healthy_fleet, launch, quick};
use loadgen::runfile::{ErrorClass, RunFile, Verdict};
use tokio_util::sync::CancellationToken;

/// A healthy fleet of `servers` on ephemeral ports, with its admin API.
async fn start_fleet(servers: u32) -> fleet::Fleet {
    start_fleet_with(servers, None).await
}

/// A healthy fleet of `servers` on ephemeral ports, with its admin API and, when `memory_repo`
/// is given, a shared memory there.
async fn start_fleet_with(servers: u32, memory_repo: Option<&std::path::Path>) -> fleet::Fleet {
    let options = fleet::FleetOptions {
        admin: true,
        memory_repo: memory_repo.map(std::path::Path::to_path_buf),
        ..Default::default()
    };
    healthy_fleet(servers, options).await
}

/// Waits (up to 5 s) until the fleet's servers hold no session: every one was deleted.
async fn assert_sessions_closed(fleet: &fleet::Fleet) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let open: u64 = fleet
            .registry()
            .entries()
            .iter()
            .map(|e| e.view().open_sessions)
            .sum();
        if open == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{open} sessions left open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_fleet_run_writes_run_file_and_report() {
    let (_out, outcome) = launch(&[
        "--servers",
        "10",
        "--duration",
        "2",
        "--warmup",
        "0",
        "--users",
        "4",
        "--ephemeral-ports",
    ])
    .await;
    let outcome = outcome.expect("run completes");

    let text = std::fs::read_to_string(&outcome.run_file).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["schema_version"], reports::run::SCHEMA_VERSION);
    assert_eq!(json["latency"]["errors"]["tool_error"], 0);
    let run: RunFile = serde_json::from_str(&text).unwrap();
    assert!(!run.interrupted);
    assert!(run.connections.is_none() && run.capacity.is_none() && run.sync.is_none());
    let r = run.latency.as_ref().expect("the latency scenario ran");
    assert!(r.requests > 0, "measured something");
    assert_eq!(r.ok, r.requests, "no errors: {:?}", r.errors);
    for class in ErrorClass::ALL {
        assert_eq!(r.errors[&class], 0, "{class:?}");
    }
    assert!(r.throughput_rps > 0.0 && r.latency_us.p50 > 0 && r.latency_us.max >= r.latency_us.p99);
    assert_eq!(r.per_second.len(), 2);
    assert_eq!(r.per_second.iter().map(|s| s.ok).sum::<u64>(), r.ok);
    assert!(
        r.per_second
            .iter()
            .all(|s| s.p50_us > 0 && s.p99_us >= s.p50_us)
    );
    // Goose ran the users and counted every request we did (warm-up included).
    assert_eq!(r.engine.name, "goose");
    assert_eq!(r.engine.users_max, 4);
    assert!(r.engine.requests >= r.requests && r.engine.failures == 0);
    // Both groups of the fleet, adding up to the whole.
    let groups: Vec<&str> = r.by_group.iter().map(|g| g.name.as_str()).collect();
    assert!(
        groups.contains(&"community") && groups.contains(&"security"),
        "{groups:?}"
    );
    assert_eq!(
        r.by_group.iter().map(|g| g.requests).sum::<u64>(),
        r.requests
    );
    // Each of the 4 users holds its own connection to each of its servers (10 servers: one
    // connection each), seen from both sides; the fleet's own health probes may add a few.
    assert!(
        r.connections
            .iter()
            .all(|c| c.client >= Some(10) && c.server >= Some(10)),
        "{:?}",
        r.connections
    );
    // Headers never come after the whole body: time to first byte is at most the latency.
    assert_eq!(r.ttfb_us.count, r.ok);
    assert!(r.ttfb_us.p50 <= r.latency_us.p50 && r.ttfb_us.max <= r.latency_us.max);
    assert_eq!(
        r.service_latency_us, r.latency_us,
        "closed loop: nothing to correct"
    );
    // Every call of both profiles' mixes, adding up to the whole.
    let calls: Vec<&str> = r.by_call.iter().map(|c| c.name.as_str()).collect();
    for tool in [
        "echo",
        "add",
        "text_stats",
        "json_query",
        "scan_secrets",
        "check_package",
    ] {
        assert!(calls.contains(&tool), "{tool} in {calls:?}");
    }
    assert_eq!(
        r.by_call.iter().map(|c| c.requests).sum::<u64>(),
        r.requests
    );
    let histogram = loadgen::runfile::decode_histogram(&r.histogram.data).unwrap();
    assert_eq!(histogram.len(), r.ok);
    assert_eq!((run.health.servers, run.health.ok), (10, 10));
    let fleet = run.fleet.as_ref().expect("embedded fleet facts");
    assert_eq!((fleet.servers, fleet.healthy_at_start), (10, 10));
    assert!(
        fleet.requests_total >= r.requests,
        "servers counted our requests"
    );
    let verdict = |id: &str| run.claims.iter().find(|c| c.id == id).unwrap().verdict;
    assert_eq!(verdict("availability_100"), Verdict::Pass);
    assert_eq!(
        verdict("servers_500"),
        Verdict::NotMeasured,
        "only 10 servers ran"
    );
    assert_eq!(verdict("git_memory_sync"), Verdict::NotMeasured);

    let html = std::fs::read_to_string(&outcome.report).unwrap();
    assert!(html.contains("<section id=\"claims\">") && html.contains("<svg"));
    assert!(html.contains("Per call") && html.contains("scan_secrets"));
    assert!(!html.contains("src=") && !html.contains("href="));
    assert!(outcome.run_file.is_absolute() && outcome.report.is_absolute());
    let cpu = r.cpu.expect("CPU use read from /proc");
    assert!(cpu.includes_embedded_fleet && cpu.process_cpu_s > 0.0 && cpu.cpu_us_per_request > 0.0);
    assert!(cpu.generator_cpu_s > 0.0 && cpu.fleet_cpu_s.is_some_and(|f| f > 0.0));
    assert!(html.contains("CPU during the phase"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_get_tools_list_and_dead_targets_fail_clearly() {
    let spec = fleet::FleetSpec::default()
        .scaled_to(2)
        .unwrap()
        .with_ephemeral_ports();
    let fleet = fleet::Fleet::start(spec, fleet::FleetOptions::default())
        .await
        .unwrap();
    assert_eq!(
        fleet
            .wait_healthy(std::time::Duration::from_secs(10), |_, _| {})
            .await,
        2
    );
    let urls: Vec<String> = fleet.endpoints().iter().map(|e| e.mcp_url()).collect();

    let mut extra = vec![
        "--duration",
        "1",
        "--warmup",
        "0",
        "--users",
        "2",
        "--target",
    ];
    extra.extend(urls.iter().map(String::as_str));
    let run = quick(&extra).await;
    assert_eq!(run.config.mode, "targets");
    assert!(run.fleet.is_none());
    assert!(run.config.mix.iter().all(|m| m.call == "tools/list"));
    let r = run.latency.as_ref().unwrap();
    assert!(r.requests > 0 && r.ok == r.requests);

    // Calls chosen with --tool on the community server: a weighted mix; and a tool the server
    // lacks shows as errors.
    let community = fleet
        .endpoints()
        .into_iter()
        .find(|e| e.group == "community")
        .unwrap()
        .mcp_url();
    let mut extra = vec!["--duration", "1", "--warmup", "0", "--users", "2"];
    extra.extend([
        "--tool",
        "echo@3:{\"text\":\"x\"}",
        "--tool",
        "add:{\"a\":1,\"b\":2}",
    ]);
    extra.extend(["--target", &community]);
    let run = quick(&extra).await;
    let calls: Vec<(&str, f64)> = run
        .config
        .mix
        .iter()
        .map(|m| (m.call.as_str(), m.percent))
        .collect();
    assert_eq!(calls, [("echo", 75.0), ("add", 25.0)]);
    let r = run.latency.as_ref().unwrap();
    assert!(r.requests > 0 && r.ok == r.requests);
    let mut extra = vec![
        "--duration",
        "1",
        "--warmup",
        "0",
        "--users",
        "1",
        "--tool",
        "nope",
    ];
    extra.extend(["--target", &community]);
    let run = quick(&extra).await;
    let r = run.latency.as_ref().unwrap();
    assert!(r.requests > 0 && r.ok == 0);
    assert_eq!(r.errors[&ErrorClass::JsonrpcError], r.requests);
    // Goose was told about the MCP-level failures behind HTTP 200s.
    assert_eq!(r.engine.failures, r.engine.requests);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/mcp", closed.local_addr().unwrap());
    drop(closed);
    let err = launch(&["--duration", "1", "--target", &dead])
        .await
        .1
        .expect_err("a dead target is an error");
    let msg = format!("{err:#}");
    assert!(msg.contains(&dead) && msg.contains("connect"), "{msg}");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_and_port_range_targets() {
    let fleet = start_fleet(4).await;
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let short = ["--duration", "1", "--warmup", "0", "--users", "2"];

    // Discovered through the admin API: ids, groups and each profile's tool mix.
    let mut extra = short.to_vec();
    extra.extend(["--target", &admin]);
    let run = quick(&extra).await;
    assert_eq!(run.health.servers, 4);
    assert!(
        run.config.mix.iter().any(|m| m.call == "echo"),
        "{:?}",
        run.config.mix
    );
    assert!(run.config.mix.iter().any(|m| m.group == "security"));
    let r = run.latency.as_ref().unwrap();
    assert_eq!(r.ok, r.requests);

    // A port range (of one port: this fleet's ports are ephemeral, not consecutive).
    let port = fleet.endpoints()[0].addr.port();
    let range = format!("127.0.0.1:{port}-{port}/mcp");
    let mut extra = short.to_vec();
    extra.extend(["--target", &range]);
    let run = quick(&extra).await;
    assert_eq!(run.health.servers, 1);
    assert!(run.config.mix.iter().all(|m| m.call == "tools/list"));
    assert_eq!(run.config.targets, [format!("http://{range}")]);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_era_opens_uses_and_closes_sessions() {
    let fleet = start_fleet(3).await;
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let extra = [
        "--duration",
        "1",
        "--warmup",
        "0",
        "--users",
        "4",
        "--protocol",
        "2025-11-25",
        "--target",
        &admin,
    ];
    let run = quick(&extra).await;
    assert_eq!(run.config.protocol_version, "2025-11-25");
    assert_eq!(run.health.ok, 3);
    let r = run.latency.as_ref().unwrap();
    assert!(r.requests > 0);
    assert_eq!(r.ok, r.requests, "{:?}", r.errors);
    // Every session was deleted at the end: the servers hold none.
    assert_sessions_closed(&fleet).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_mcp_is_a_clear_error() {
    // A plain HTTP server that answers everything with a web page.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let page = "<html>hello</html>";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    });
    let err = launch(&["--duration", "1", "--target", &url])
        .await
        .1
        .expect_err("not MCP");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&url) && msg.contains("protocol") && msg.contains("MCP"),
        "{msg}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_shows_a_one_second_stall_in_the_tails() {
    let fleet = start_fleet(2).await;
    let entry = fleet.registry().entries()[0].clone();
    let url = fleet.endpoints()[0].mcp_url();
    // The server hangs for one second in the middle of the run.
    let staller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        entry.faults.send_modify(|f| f.paused = true);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        entry.faults.send_modify(|f| f.paused = false);
    });
    let extra = [
        "--rate",
        "200",
        "--users",
        "16",
        "--duration",
        "3.5",
        "--warmup",
        "0",
        "--target",
        &url,
    ];
    let (_out, outcome) = launch(&extra).await;
    let outcome = outcome.expect("run");
    let run = &outcome.run;
    staller.await.unwrap();
    let r = run.latency.as_ref().unwrap();
    let (corrected, service) = (&r.latency_us, &r.service_latency_us);
    assert_eq!(r.ok, r.requests, "{:?}", r.errors);
    assert!(run.config.load_model.starts_with("open model: 200 req/s"));
    // About 200 requests fell due during the stall: their latency counts from when they were
    // due, so the tail shows the second; the service time of most requests stayed short.
    assert!(
        corrected.max >= 800_000,
        "corrected max {} us",
        corrected.max
    );
    assert!(
        corrected.p90 >= 200_000,
        "corrected p90 {} us",
        corrected.p90
    );
    assert!(service.p50 < 100_000, "service p50 {} us", service.p50);
    assert!(
        (500..=800).contains(&r.requests),
        "about 3.5 s x 200 req/s: {}",
        r.requests
    );
    let html = std::fs::read_to_string(&outcome.report).unwrap();
    assert!(html.contains("service time") && html.contains("intended send time"));
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_held_and_counted_on_both_sides() {
    let extra = [
        "--scenario",
        "connections",
        "--servers",
        "6",
        "--ephemeral-ports",
        "--connections",
        "40",
        "--connections-ramp-up",
        "1",
        "--hold",
        "2",
        "--connection-rate",
        "5",
    ];
    let (_out, outcome) = launch(&extra).await;
    let outcome = outcome.expect("run");
    let run = &outcome.run;
    assert!(run.latency.is_none());
    let c = run
        .connections
        .as_ref()
        .expect("the connections scenario ran");
    assert_eq!(c.asked, 40);
    assert!(c.samples >= 2, "{c:?}");
    assert_eq!(c.held_min_client, Some(40), "{:?}", c.results.connections);
    assert_eq!(c.held_min_server, Some(40), "{:?}", c.results.connections);
    assert_eq!(c.held(), Some(40));
    let r = &c.results;
    assert_eq!(r.ok, r.requests, "{:?}", r.errors);
    // 40 connections at 5 req/s each for 2 s: about 400 requests.
    assert!((300..=500).contains(&r.requests), "{}", r.requests);
    assert!(r.setup.load_model.starts_with("per-connection rate"));
    let verdict = |id: &str| run.claims.iter().find(|c| c.id == id).unwrap();
    let held = verdict("connections_1000");
    assert_eq!(held.verdict, Verdict::Fail, "40 < 1000");
    assert!(held.measured.as_deref().unwrap().starts_with("40 of 40"));
    let html = std::fs::read_to_string(&outcome.report).unwrap();
    assert!(html.contains("<section id=\"connections\">") && html.contains("client sockets"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_search() {
    let extra = [
        "--scenario",
        "capacity",
        "--servers",
        "4",
        "--ephemeral-ports",
        "--capacity-step",
        "1",
        "--capacity-p99",
        "1000",
    ];
    let (_out, outcome) = launch(&extra).await;
    let outcome = outcome.expect("run");
    let run = &outcome.run;
    let c = run.capacity.as_ref().expect("the capacity scenario ran");
    assert_eq!(c.p99_bound_us, 1_000_000);
    assert!(!c.steps.is_empty() && c.steps.len() <= 8);
    // With no latency run to start from, the search starts at 500 req/s and doubles while
    // steps pass; the best rate is the highest passing step.
    assert_eq!(c.steps[0].rate, 500.0);
    let best = c
        .steps
        .iter()
        .filter(|s| s.passed)
        .map(|s| s.rate)
        .fold(0.0, f64::max);
    assert_eq!(c.best_rps, (best > 0.0).then_some(best));
    assert!(
        c.best_rps.is_some(),
        "500 req/s with a 1 s p99 bound: {:?}",
        c.steps.iter().map(|s| &s.reason).collect::<Vec<_>>()
    );
    for s in &c.steps {
        assert_eq!(s.passed, s.reason.starts_with("achieved"), "{}", s.reason);
    }
}

/// A server that speaks only the 2025-11-25 era, as older SDKs do: a request without a session
/// is refused with 400; `initialize` hands out a session, which expires (404) after 50 calls.
/// Returns its URL and the number of sessions it handed out.
async fn legacy_only_server() -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };

    use axum::{
        extract::State,
        http::{HeaderMap, StatusCode},
        response::IntoResponse,
        routing::post,
    };
    #[derive(Clone, Default)]
    struct Sessions {
        opened: Arc<AtomicU64>,
        calls: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
    }
    async fn mcp(
        State(sessions): State<Sessions>,
        headers: HeaderMap,
        body: String,
    ) -> axum::response::Response {
        let message: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let id = message["id"].clone();
        if message["method"] == "initialize" {
            let n = sessions.opened.fetch_add(1, Ordering::Relaxed) + 1;
            let reply = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "legacy", "version": "1"}}});
            let session = format!("legacy-{n}");
            sessions.calls.lock().unwrap().insert(session.clone(), 0);
            return ([("mcp-session-id", session)], axum::Json(reply)).into_response();
        }
        let Some(session) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) else {
            let refusal = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {
                "code": -32000, "message": "Bad Request: No valid session ID provided"}});
            return (StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response();
        };
        {
            let mut calls = sessions.calls.lock().unwrap();
            match calls.get_mut(session) {
                Some(n) if *n < 50 => *n += 1,
                _ => {
                    calls.remove(session);
                    return StatusCode::NOT_FOUND.into_response();
                }
            }
        }
        if id.is_null() {
            return StatusCode::ACCEPTED.into_response();
        }
        axum::Json(serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}}))
            .into_response()
    }
    let sessions = Sessions::default();
    let opened = sessions.opened.clone();
    let app = axum::Router::new()
        .route("/mcp", post(mcp).delete(|| async { StatusCode::OK }))
        .with_state(sessions);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, opened, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_auto_falls_back_to_sessions_for_a_legacy_server() {
    let (url, opened, server) = legacy_only_server().await;
    let short = ["--run-time", "1", "--warmup", "0", "--users", "2"];
    let mut extra = short.to_vec();
    extra.extend(["--target", &url]);
    let run = quick(&extra).await;
    assert_eq!(run.config.protocol, "auto");
    assert_eq!(run.config.protocol_version, "2025-11-25");
    assert_eq!(run.health.protocols.get("2025-11-25"), Some(&1));
    let r = run.latency.as_ref().unwrap();
    // Sessions expire every 50 calls: each expiry costs one call (404, an HTTP status error),
    // and the next call re-initializes.
    let expired = r.errors[&ErrorClass::HttpStatus];
    assert!(r.requests > 200, "{}", r.requests);
    assert_eq!(r.ok + expired, r.requests, "{:?}", r.errors);
    assert!(
        expired > 0 && r.ok >= 45 * expired,
        "{} ok, {expired} expired",
        r.ok
    );
    let sessions = opened.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sessions > expired,
        "{sessions} sessions for {expired} expiries"
    );

    // Asked for the 2026 era only, the server's refusal is the error.
    let mut extra = short.to_vec();
    extra.extend(["--protocol", "2026-07-28", "--target", &url]);
    let err = launch(&extra)
        .await
        .1
        .expect_err("the server refuses stateless requests");
    let msg = format!("{err:#}");
    assert!(msg.contains(&url) && msg.contains("http_status"), "{msg}");
    server.abort();
}

/// A fleet of `servers` with a shared memory in `repo`, its admin API on.
async fn start_memory_fleet(servers: u32, repo: &std::path::Path) -> fleet::Fleet {
    start_fleet_with(servers, Some(repo)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_writes_are_visible_across_servers_and_none_is_lost() {
    let extra = [
        "--scenario",
        "sync",
        "--servers",
        "6",
        "--ephemeral-ports",
        "--sync-rate",
        "200",
        "--sync-time",
        "2",
    ];
    let (_out, outcome) = launch(&extra).await;
    let outcome = outcome.expect("run");
    // The run file on disk is valid and holds the scenario's figures.
    let text = std::fs::read_to_string(&outcome.run_file).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(json["sync"]["figures"]["lag_us"]["p99"].as_u64().unwrap() > 0);
    let run: RunFile = serde_json::from_str(&text).unwrap();
    assert!(!run.interrupted);
    let sync = run.sync.as_ref().expect("the sync scenario ran");
    assert!(sync.available && sync.ran, "{}", sync.reason);
    let f = sync.figures.as_ref().expect("figures");
    assert_eq!(f.isolation.as_deref(), Some("task"));
    assert_eq!(
        (f.servers, f.servers_left_out, f.same_server),
        (6, 0, false)
    );
    // 200 writes/s for 2 s: about 400 writes, all acknowledged and visible on another server.
    assert!((300..=500).contains(&f.writes), "{}", f.writes);
    assert!(f.acked > 0);
    assert_eq!(f.acked, f.writes, "failed: {:?}", f.failed);
    assert_eq!(f.visible, f.acked, "{:?}", f.visibility_failures);
    assert_eq!(f.lag_us.count, f.visible);
    assert!(f.lag_us.p50 > 0 && f.lag_us.max >= f.lag_us.p99);
    // Our servers report both clocks; in task mode every server reads the owner's own view,
    // which holds a write before its ack leaves, so the servers' lag is nil (the 1 µs floor).
    let server = f.server_lag_us.expect("the servers' clocks were reported");
    assert_eq!(server.count + f.server_lag_unknown, f.visible);
    assert_eq!(f.server_lag_unknown, 0);
    assert!(server.p99 <= 1, "{server:?}");
    assert_eq!(f.ack_us.count, f.acked);
    assert!(f.ack_us.p50 >= f.ack_service_us.p50.min(f.ack_us.p50));
    // One write in four (by its number in the timetable) takes a baseline read.
    let sampled = f.baseline_read_us.count + f.baseline_failures;
    assert!(
        sampled.abs_diff(f.visible / 4) <= 1,
        "{sampled} of {}",
        f.visible
    );
    assert!(f.warmup_acked > 0, "the warm-up wrote too");
    assert_eq!(f.per_second.len(), 2);
    assert_eq!(f.per_second.iter().map(|s| s.writes).sum::<u64>(), f.writes);
    let lag = loadgen::runfile::decode_histogram(&f.histograms.lag.data).unwrap();
    assert_eq!(lag.len(), f.visible);
    // The final check read every acknowledged write back on servers of both groups.
    let c = &f.check;
    assert_eq!(c.skipped, None);
    assert!(c.complete, "{c:?}");
    assert_eq!(c.lost, 0, "{c:?}");
    assert_eq!(c.duplicates, 0);
    assert_eq!(c.acked, f.acked + f.warmup_acked);
    assert_eq!(c.servers.len(), 5);
    assert!(
        c.servers.iter().any(|s| s.starts_with("community")),
        "{:?}",
        c.servers
    );
    assert!(
        c.servers.iter().any(|s| s.starts_with("security")),
        "{:?}",
        c.servers
    );
    // The history shows the sampled writes, naming the servers that took them.
    let h = f.history.as_ref().expect("memory_history offered");
    assert_eq!(h.sampled, 20);
    assert_eq!((h.found, h.attributed, h.errors), (20, 20, 0), "{h:?}");
    assert!(
        f.cleanup.is_none(),
        "the embedded fleet's memory is the run's own: probes stay"
    );
    let verdict = |id: &str| run.claims.iter().find(|c| c.id == id).unwrap();
    assert_eq!(verdict("memory_no_lost_writes").verdict, Verdict::Pass);
    let lag_claim = verdict("git_memory_sync");
    assert_ne!(
        lag_claim.verdict,
        Verdict::NotMeasured,
        "{}",
        lag_claim.note
    );
    assert!(
        lag_claim
            .measured
            .as_deref()
            .unwrap()
            .contains("baseline read")
    );
    let html = std::fs::read_to_string(&outcome.report).unwrap();
    assert!(html.contains("<section id=\"sync\">") && html.contains("write-to-visible lag"));
    eprintln!("figures: {}", sync.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_in_the_session_era_against_an_admin_api() {
    let repo = tempfile::tempdir().unwrap();
    let fleet = start_memory_fleet(3, repo.path()).await;
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let extra = [
        "--scenario",
        "sync",
        "--protocol",
        "2025-11-25",
        "--sync-rate",
        "100",
        "--sync-time",
        "1",
        "--target",
        &admin,
    ];
    let run = quick(&extra).await;
    assert_eq!(run.config.protocol_version, "2025-11-25");
    let sync = run.sync.as_ref().unwrap();
    assert!(sync.ran, "{}", sync.reason);
    let f = sync.figures.as_ref().unwrap();
    assert_eq!(
        f.isolation.as_deref(),
        Some("task"),
        "read from the admin API"
    );
    assert_eq!(f.servers, 3);
    assert!(f.acked > 0 && f.acked == f.writes, "{:?}", f.failed);
    assert_eq!(f.visible, f.acked, "{:?}", f.visibility_failures);
    assert!(f.check.complete && f.check.lost == 0, "{:?}", f.check);
    // Someone else's memory: the probes are deleted afterwards.
    let cleanup = f.cleanup.as_ref().expect("delete_entities offered");
    assert_eq!(cleanup.requested, f.writes + f.warmup_writes);
    assert_eq!(cleanup.failed_calls, 0);
    // Every session was deleted at the end.
    assert_sessions_closed(&fleet).await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_says_why_it_cannot_run_without_memory_tools() {
    // A fleet started without a memory offers none of the memory tools.
    let fleet = start_fleet(2).await;
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let (_out, outcome) = launch(&["--scenario", "sync", "--target", &admin]).await;
    let run = outcome.expect("not an error").run;
    let sync = run.sync.as_ref().expect("the sync scenario ran");
    assert!(!sync.available && !sync.ran && sync.figures.is_none());
    assert!(
        sync.reason.contains("lacks the memory tools") && sync.reason.contains("memory_version"),
        "{}",
        sync.reason
    );
    for id in ["git_memory_sync", "memory_no_lost_writes"] {
        let claim = run.claims.iter().find(|c| c.id == id).unwrap();
        assert_eq!(claim.verdict, Verdict::NotMeasured);
        assert!(
            claim.note.contains("lacks the memory tools"),
            "{}",
            claim.note
        );
    }
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_sync_run_keeps_its_figures_and_skips_the_check() {
    let out = tempfile::tempdir().unwrap();
    let argv = [
        "--scenario",
        "sync",
        "--servers",
        "4",
        "--ephemeral-ports",
        "--sync-rate",
        "100",
        "--sync-time",
        "30",
    ];
    let stop = CancellationToken::new();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            stop.cancel();
        })
    };
    let started = std::time::Instant::now();
    let outcome = loadgen::run(args(&argv, out.path()), stop)
        .await
        .expect("the run ends cleanly");
    stopper.await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let run = &outcome.run;
    assert!(run.interrupted);
    let sync = run.sync.as_ref().unwrap();
    assert!(sync.ran, "{}", sync.reason);
    let f = sync.figures.as_ref().unwrap();
    assert!(f.measured_s < 10.0 && f.acked > 0, "{}", sync.reason);
    assert!(f.check.skipped.is_some() && f.cleanup.is_none());
    let lost = run
        .claims
        .iter()
        .find(|c| c.id == "memory_no_lost_writes")
        .unwrap();
    assert_eq!(lost.verdict, Verdict::NotMeasured, "{}", lost.note);
    assert!(lost.note.contains("interrupted"), "{}", lost.note);
}
