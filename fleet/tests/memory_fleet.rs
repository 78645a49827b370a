//! The shared memory as clients see it: the memory tools on real fleets (task and process
//! isolation), concurrent writers across servers, restart and clone-restore, bad input, and a
//! kill -9 of the owning process in the middle of a write storm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead as _, BufReader},
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use fleet::{Fleet, FleetOptions, FleetSpec, Isolation};
use serde_json::{Value, json};

async fn start(mut spec: FleetSpec, repo: &Path) -> Fleet {
    // Patient health checks: these tests load a shared machine hard, and a server restarted
    // for a slow probe would reset the writers' connections (that is supervision's test).
    spec.health.interval = Duration::from_millis(500);
    spec.health.timeout = Duration::from_secs(5);
    spec.health.failures_to_unhealthy = 10;
    let total = spec.server_count();
    let fleet = Fleet::start(
        spec,
        FleetOptions {
            child: Some(common::child_program()),
            admin: true,
            gateway: false,
            memory_repo: Some(repo.to_path_buf()),
            memory_replica: Default::default(),
            admin_token: None,
        },
    )
    .await
    .expect("fleet starts");
    let healthy = fleet.wait_healthy(Duration::from_secs(20), |_, _| {}).await;
    assert_eq!(healthy, total, "every server becomes healthy");
    fleet
}

/// Calls a tool (2026-07-28, stateless); returns the JSON-RPC message.
async fn call(url: &str, tool: &str, arguments: Value) -> Value {
    let (status, body) = common::post_stateless(
        url,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    )
    .await;
    let body = body.unwrap_or_else(|| panic!("{tool} on {url}: HTTP {status} without a message"));
    assert!(
        status == 200 || body.get("error").is_some(),
        "{tool}: HTTP {status}: {body}"
    );
    body
}

/// Calls a tool that must succeed; returns its structured result.
async fn ok(url: &str, tool: &str, arguments: Value) -> Value {
    let body = call(url, tool, arguments).await;
    let result = &body["result"];
    assert_ne!(result["isError"], json!(true), "{tool} failed: {body}");
    assert!(body.get("error").is_none(), "{tool} failed: {body}");
    result["structuredContent"].clone()
}

fn urls(fleet: &Fleet) -> Vec<String> {
    fleet.endpoints().iter().map(|e| e.mcp_url()).collect()
}

/// Every entity of `graph` by name, with its observations.
fn entities(graph: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for e in graph["entities"].as_array().expect("entities") {
        let name = e["name"].as_str().unwrap().to_string();
        let obs = e["observations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_string())
            .collect();
        assert!(
            out.insert(name.clone(), obs).is_none(),
            "{name} listed twice"
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_on_ten_servers_lose_nothing_and_history_restart_and_clone_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("memory");
    let fleet = start(common::spec(8, 2, Isolation::Task), &repo).await;
    let urls = Arc::new(urls(&fleet));
    let tools = common::post_stateless(&urls[9], "tools/list", json!({}))
        .await
        .1
        .unwrap();
    let names: BTreeSet<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for tool in [
        "create_entities",
        "create_relations",
        "add_observations",
        "delete_entities",
        "delete_observations",
        "delete_relations",
        "read_graph",
        "search_nodes",
        "open_nodes",
        "memory_history",
        "memory_version",
    ] {
        assert!(names.contains(tool), "a security server lacks {tool}");
    }

    // 50 clients, 10 entities each: created on one server, observed through another.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..50usize {
        let urls = urls.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..10usize {
                let name = format!("c{c}-e{j}");
                let a = &urls[(c + j) % urls.len()];
                let b = &urls[(c + j + 1) % urls.len()];
                let created = ok(
                    a,
                    "create_entities",
                    json!({"entities": [{"name": name, "entityType": "probe", "observations": ["first"]}]}),
                )
                .await;
                assert_eq!(created["entities"][0]["name"], json!(name));
                let v1 = created["version"].as_u64().unwrap();
                // B must see A's entity before it can add to it.
                let seen = ok(b, "open_nodes", json!({"names": [name], "minVersion": v1})).await;
                assert_eq!(seen["entities"].as_array().unwrap().len(), 1, "{seen}");
                let added = ok(
                    b,
                    "add_observations",
                    json!({"observations": [{"entityName": name, "contents": [format!("from {b}")]}]}),
                )
                .await;
                let v2 = added["version"].as_u64().unwrap();
                assert!(v2 > v1);
                acked.lock().unwrap().push((name, b.clone(), v2));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 500);
    let top = acked.iter().map(|a| a.2).max().unwrap();
    assert_eq!(top, 1000, "every write took exactly one version");

    // Every server's view holds every acknowledged op exactly once.
    let expected: BTreeMap<String, Vec<String>> = acked
        .iter()
        .map(|(name, b, _)| (name.clone(), vec!["first".to_string(), format!("from {b}")]))
        .collect();
    for url in urls.iter() {
        let graph = ok(url, "read_graph", json!({"minVersion": top})).await;
        assert_eq!(entities(&graph), expected, "{url}");
        assert!(graph["version"].as_u64().unwrap() >= top);
    }

    // The git history names both writes of an entity (commits trail acks by ~100 ms).
    let mut history = Value::Null;
    for _ in 0..100 {
        history = ok(&urls[3], "memory_history", json!({"entityName": "c7-e3"})).await;
        if history["entries"].as_array().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{history}");
    assert_eq!(entries[0]["operation"], json!("add_observations"));
    assert_eq!(entries[1]["operation"], json!("create_entities"));
    assert_eq!(entries[1]["server"], json!(fleet.endpoints()[0].id.clone()));
    assert_eq!(entries[0]["commit"].as_str().unwrap().len(), 40);
    let version = ok(&urls[5], "memory_version", json!({})).await;
    assert_eq!(version["version"], json!(top));
    fleet.stop().await;

    // Sound on disk, and the history holds all 1000 ops.
    let report = fleet::memory::verify(&repo).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        (report.ops, report.version, report.entities),
        (1000, 1000, 500)
    );
    if let Ok(out) = std::process::Command::new("git")
        .args(["fsck", "--full", "--strict"])
        .current_dir(&repo)
        .output()
    {
        assert!(out.status.success(), "git fsck: {out:?}");
    }

    // A restart resumes with all data, and versions continue.
    let fleet = start(common::spec(2, 0, Isolation::Task), &repo).await;
    let url = &urls_of(&fleet)[1];
    assert_eq!(entities(&ok(url, "read_graph", json!({})).await), expected);
    let more = ok(
        url,
        "create_entities",
        json!({"entities": [{"name": "after-restart", "entityType": "probe", "observations": []}]}),
    )
    .await;
    assert_eq!(more["version"], json!(1001));
    fleet.stop().await;

    // A `git clone` is a backup: a fleet on the clone serves the same graph.
    let clone = dir.path().join("backup");
    let out = std::process::Command::new("git")
        .args(["clone", "--quiet", "--bare"])
        .arg(&repo)
        .arg(&clone)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git clone: {out:?}");
    let fleet = start(common::spec(1, 0, Isolation::Task), &clone).await;
    let restored = entities(&ok(&urls_of(&fleet)[0], "read_graph", json!({})).await);
    assert_eq!(restored.len(), 501);
    assert!(restored.contains_key("after-restart"));
    fleet.stop().await;
}

fn urls_of(fleet: &Fleet) -> Vec<String> {
    urls(fleet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_memory_calls_get_clear_errors_and_the_fleet_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(common::spec(2, 0, Isolation::Task), &dir.path().join("m")).await;
    let url = &urls(&fleet)[0];

    let body = call(
        url,
        "create_entities",
        json!({"entities": [{"name": "", "entityType": "x", "observations": []}]}),
    )
    .await;
    assert_eq!(body["error"]["code"], json!(-32602), "{body}");
    assert_eq!(
        body["error"]["data"]["field"],
        json!("entities[0].name"),
        "{body}"
    );

    let body = call(
        url,
        "create_relations",
        json!({"relations": [{"from": "a"}]}),
    )
    .await;
    assert_eq!(body["error"]["code"], json!(-32602), "{body}");
    assert!(
        body["error"]["data"]["field"]
            .as_str()
            .unwrap()
            .contains("to"),
        "{body}"
    );

    let body = call(
        url,
        "add_observations",
        json!({"observations": [{"entityName": "nobody", "contents": ["x"]}]}),
    )
    .await;
    assert_eq!(body["result"]["isError"], json!(true), "{body}");
    assert!(
        body.to_string()
            .contains("Entity with name nobody not found"),
        "{body}"
    );

    let body = call(
        url,
        "read_graph",
        json!({"minVersion": 99, "timeoutMs": 50}),
    )
    .await;
    assert_eq!(body["result"]["isError"], json!(true), "{body}");
    assert!(
        body.to_string()
            .contains("timed out waiting for version 99"),
        "{body}"
    );

    let body = call(
        url,
        "read_graph",
        json!({"minVersion": 1, "timeoutMs": 600000}),
    )
    .await;
    assert_eq!(body["error"]["data"]["field"], json!("timeoutMs"), "{body}");

    // Still serving, and nothing was written by the refused calls.
    let v = ok(url, "memory_version", json!({})).await;
    assert_eq!(v["version"], json!(0));
    let created = ok(
        url,
        "create_entities",
        json!({"entities": [{"name": "fine", "entityType": "x", "observations": ["o"]}]}),
    )
    .await;
    assert_eq!(created["version"], json!(1));
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_mode_servers_read_through_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(
        common::spec(2, 1, Isolation::Process),
        &dir.path().join("m"),
    )
    .await;
    let urls = urls(&fleet);
    let mut last = 0;
    for i in 0..20 {
        let a = &urls[i % 3];
        let b = &urls[(i + 1) % 3];
        let name = format!("p{i}");
        let created = ok(
            a,
            "create_entities",
            json!({"entities": [{"name": name, "entityType": "probe", "observations": ["o"]}]}),
        )
        .await;
        last = created["version"].as_u64().unwrap();
        // Read-your-writes on A at once, and on B with the version asked for.
        let here = ok(a, "open_nodes", json!({"names": [name]})).await;
        assert_eq!(here["entities"].as_array().unwrap().len(), 1);
        let there = ok(
            b,
            "open_nodes",
            json!({"names": [name], "minVersion": last}),
        )
        .await;
        assert_eq!(there["entities"].as_array().unwrap().len(), 1, "{there}");
        // And on C with no wait asked for: every server's reads are answered from the
        // owner's view, so an acknowledged write is everywhere at once.
        let c = &urls[(i + 2) % 3];
        let plain = ok(c, "open_nodes", json!({"names": [name]})).await;
        assert_eq!(plain["entities"].as_array().unwrap().len(), 1, "{plain}");
        assert!(plain["version"].as_u64().unwrap() >= last, "{plain}");
    }
    assert_eq!(last, 20);
    let history = ok(
        &urls[2],
        "memory_history",
        json!({"entityName": "p0", "limit": 5}),
    )
    .await;
    assert!(history["entries"].as_array().is_some(), "{history}");
    fleet.stop().await;
}

/// Reads the admin URL `fleet up` prints, then the servers' ports from it.
fn admin_and_ports(stdout: &mut impl std::io::BufRead) -> (String, Vec<u16>) {
    let mut admin = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("admin") {
            admin = rest.split_whitespace().next().map(str::to_string);
            break;
        }
    }
    let admin = admin.expect("fleet up prints its admin URL");
    let text = blocking_get(&admin);
    let view: Value = serde_json::from_str(&text).unwrap();
    let ports = view["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["port"].as_u64().unwrap() as u16)
        .collect();
    (admin, ports)
}

/// A GET from synchronous test code (on its own thread and runtime).
fn blocking_get(url: &str) -> String {
    let url = url.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                common::http()
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_owner_mid_storm_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("memory");
    let mut owner = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args([
            "up",
            "--servers",
            "3",
            "--isolation",
            "process",
            "--ephemeral-ports",
            "--admin-port",
            "0",
            "--no-gateway",
            "--admin-token-file",
        ])
        .arg(dir.path().join("admin-token"))
        .arg("--memory-repo")
        .arg(&repo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("fleet up starts");
    let mut stdout = BufReader::new(owner.stdout.take().unwrap());
    let (_admin, ports) = tokio::task::block_in_place(|| admin_and_ports(&mut stdout));
    let urls: Arc<Vec<String>> = Arc::new(
        ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/mcp"))
            .collect(),
    );

    // A storm of writers, each recording what was acknowledged, until the owner dies.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut writers = Vec::new();
    for w in 0..12usize {
        let urls = urls.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for j in 0.. {
                let name = format!("w{w}-{j}");
                let url = &urls[(w + j) % urls.len()];
                let sent = common::http()
                    .post(url)
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", "create_entities")
                    .timeout(Duration::from_secs(2))
                    .json(&json!({"jsonrpc": "2.0", "id": j, "method": "tools/call", "params": {
                        "name": "create_entities",
                        "arguments": {"entities": [{"name": name, "entityType": "storm", "observations": ["o"]}]},
                        "_meta": fleet::wire::stateless_meta(),
                    }}))
                    .send()
                    .await;
                let Ok(resp) = sent else { return };
                let Ok(text) = resp.text().await else { return };
                match fleet::wire::first_jsonrpc_message(&text) {
                    Some(m) if m["result"]["structuredContent"]["version"].is_u64() => {
                        acked.lock().unwrap().insert(name);
                    }
                    // Refused or failed: not acknowledged, so not counted.
                    _ => {}
                }
            }
        }));
    }
    // Kill once the storm is well under way (bounded: a slow machine writes less).
    for _ in 0..200 {
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    owner.kill().expect("kill -9");
    let _ = owner.wait();
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the storm wrote too little to mean anything: {}",
        acked.len()
    );

    // Restart on the same repository (the children of the dead owner exit on their own; their
    // ports were ephemeral, so the new fleet does not wait for them).
    let fleet = start(common::spec(1, 0, Isolation::Task), &repo).await;
    let graph = ok(&urls_of(&fleet)[0], "read_graph", json!({})).await;
    let present: BTreeSet<String> = entities(&graph).into_keys().collect();
    let lost: Vec<&String> = acked.difference(&present).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {lost:?}",
        lost.len()
    );
    fleet.stop().await;
    let report = fleet::memory::verify(&repo).unwrap();
    assert!(report.is_ok(), "{report:?}");
    if let Ok(out) = std::process::Command::new("git")
        .args(["fsck", "--full"])
        .current_dir(&repo)
        .output()
    {
        assert!(out.status.success(), "git fsck: {out:?}");
    }
}
