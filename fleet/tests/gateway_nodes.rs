//! `fleet gateway` end to end over real `fleet up` processes on loopback: one endpoint lists
//! every group's tools once, spreads calls over every node's servers, pins `/mcp/NODE~ID` to
//! the right node's server, keeps answering when a whole node is SIGKILLed (the node shows
//! down in `/metrics`) and takes the node back when it restarts; `--discover dns:` finds nodes
//! by name; bad flags are usage errors. The nodes are separate processes, as on separate
//! machines, so losing one is a real loss of a process and its sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::{Value, json};

/// One `fleet up` (4 servers: 3 community, 1 security, task mode) and where it answers.
struct Node {
    child: Child,
    /// `http://127.0.0.1:PORT` of its admin API.
    admin: String,
    /// Its own (in-fleet) gateway's `/mcp`.
    own_gateway: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `child`'s stdout until each of `prefixes` starts a line; the word after each.
fn read_urls(child: &mut Child, prefixes: &[&str]) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut found = vec![String::new(); prefixes.len()];
    let deadline = Instant::now() + Duration::from_secs(30);
    while found.iter().any(String::is_empty) && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let mut words = line.split_whitespace();
        if let (Some(first), Some(url)) = (words.next(), words.next())
            && let Some(i) = prefixes.iter().position(|p| *p == first)
        {
            found[i] = url.to_string();
        }
    }
    assert!(!found.iter().any(String::is_empty), "no {prefixes:?} lines");
    found
}

/// Starts a node with its admin API on `admin_port` (0: any).
fn start_node(dir: &Path, name: &str, admin_port: u16) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["up", "--no-memory", "--servers", "4", "--isolation", "task"])
        .args(["--ephemeral-ports", "--gateway-port", "0", "--admin-port"])
        .arg(admin_port.to_string())
        .arg("--admin-token-file")
        .arg(dir.join(format!("{name}-token")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fleet up starts");
    let urls = read_urls(&mut child, &["admin", "gateway"]);
    Node {
        child,
        admin: urls[0].trim_end_matches("/servers").to_string(),
        own_gateway: urls[1].clone(),
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// `fleet gateway` with `args`; its stderr (the log) goes to `log`. Its `/mcp` URL.
fn start_gateway(args: &[String], log: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["gateway", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("fleet gateway starts");
    let url = read_urls(&mut child, &["gateway"]).remove(0);
    (child, url)
}

/// A `tools/call` of `community__echo` at `url` (`echo` on a pinned server's URL): whether it
/// succeeded.
async fn echo(url: &str) -> bool {
    let name = if url.contains('~') {
        "echo"
    } else {
        "community__echo"
    };
    let call = json!({"name": name, "arguments": {"text": "hi"}});
    let (status, body) = common::post_stateless(url, "tools/call", call).await;
    status == 200 && body.is_some_and(|b| b["result"]["structuredContent"]["text"] == "hi")
}

/// The gateway's metrics lines as name{labels} -> value.
async fn metrics(mcp: &str) -> BTreeMap<String, f64> {
    let text = common::get_text(&mcp.replace("/mcp", "/metrics")).await;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

async fn node_up(mcp: &str, node: &str) -> Option<f64> {
    metrics(mcp)
        .await
        .get(&format!("mcpfleet_gateway_node_up{{node=\"{node}\"}}"))
        .copied()
}

/// HTTP requests the node's server `id` has served.
async fn requests(admin: &str, id: &str) -> u64 {
    let view: Value = common::get_json(&format!("{admin}/servers")).await;
    let servers = view["servers"].as_array().unwrap();
    let server = servers.iter().find(|s| s["id"] == id).unwrap();
    server["requests"].as_u64().unwrap()
}

/// Successful calls each node's servers took, as the gateway's balancer counted them.
async fn successes_by_node(mcp: &str) -> BTreeMap<String, u64> {
    let view: Value = common::get_json(&mcp.replace("/mcp", "/backends")).await;
    let mut by_node = BTreeMap::new();
    for members in view["groups"].as_object().unwrap().values() {
        for m in members.as_array().unwrap() {
            let node = m["id"].as_str().unwrap().split('~').next().unwrap();
            *by_node.entry(node.to_string()).or_default() += m["successes_total"].as_u64().unwrap();
        }
    }
    by_node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gateway_over_three_nodes_survives_losing_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_node(dir.path(), n, 0))
        .collect();
    let mut args = Vec::new();
    for (name, node) in ["a", "b", "c"].iter().zip(&nodes) {
        args.extend(["--node".to_string(), format!("{name}={}", node.admin)]);
    }
    let log = dir.path().join("gateway.log");
    let (mut gateway, mcp) = start_gateway(&args, &log);

    // Every group's tools once, as one node's own gateway lists them.
    let (_, listed) = common::post_stateless(&mcp, "tools/list", json!({})).await;
    let (_, own) = common::post_stateless(&nodes[0].own_gateway, "tools/list", json!({})).await;
    let mut names = common::tool_names(&listed.unwrap());
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count, "no tool twice: {names:?}");
    assert_eq!(names, common::tool_names(&own.unwrap()));

    // Calls spread over every node's servers.
    for _ in 0..60 {
        assert!(echo(&mcp).await);
    }
    let spread = successes_by_node(&mcp).await;
    assert_eq!(spread.len(), 3, "{spread:?}");
    assert!(spread.values().all(|n| *n > 0), "{spread:?}");

    // A pinned id reaches that node's server, and no other node's.
    let pinned = format!("{mcp}/b~community-0000");
    let before: Vec<u64> =
        futures::future::join_all(nodes.iter().map(|n| requests(&n.admin, "community-0000"))).await;
    for _ in 0..30 {
        assert!(echo(&pinned).await);
    }
    let after: Vec<u64> =
        futures::future::join_all(nodes.iter().map(|n| requests(&n.admin, "community-0000"))).await;
    assert!(after[1] - before[1] >= 30, "{before:?} -> {after:?}");
    assert!(
        after[0] - before[0] < 30 && after[2] - before[2] < 30,
        "{before:?} -> {after:?}"
    );

    // `?group=NAME`: a session held by one server of the group, whichever node it is on.
    let group = format!("{mcp}?group=community");
    let (status, sid, _) = common::post_session(&group, None, common::initialize()).await;
    assert_eq!(status, 200);
    let sid = sid.unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "in a session"}}});
    let (status, _, body) = common::post_session(&group, Some(&sid), call).await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(
        body.unwrap()["result"]["structuredContent"]["text"],
        "in a session"
    );

    // A client nobody here wrote: rmcp's, in a session on the gateway.
    let client = common::client(&mcp, ProtocolVersion::V_2025_11_25).await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), count);
    let args = json!({"text": "rmcp"}).as_object().cloned().unwrap();
    let answer = client
        .call_tool(CallToolRequestParams::new("community__echo").with_arguments(args))
        .await
        .unwrap();
    assert_eq!(answer.structured_content.unwrap()["text"], "rmcp");
    let _ = client.cancel().await;

    // Kill node b whole: calls keep succeeding within a second or two, b shows down.
    let b_port = port_of(&nodes[1].admin);
    nodes[1].child.kill().unwrap();
    let killed = Instant::now();
    let mut late_failures = 0;
    while killed.elapsed() < Duration::from_secs(4) {
        if !echo(&mcp).await && killed.elapsed() > Duration::from_secs(2) {
            late_failures += 1;
        }
    }
    assert_eq!(
        late_failures, 0,
        "calls failed 2 s after the node was killed"
    );
    assert_eq!(node_up(&mcp, "b").await, Some(0.0));
    assert_eq!(node_up(&mcp, "a").await, Some(1.0));

    // Restarted on its admin port (its servers on new ports): back in rotation.
    nodes[1] = start_node(dir.path(), "b", b_port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while node_up(&mcp, "b").await != Some(1.0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(node_up(&mcp, "b").await, Some(1.0));
    let before = requests(&nodes[1].admin, "community-0000").await;
    for _ in 0..5 {
        assert!(echo(&pinned).await, "the restarted node's server answers");
    }
    assert!(requests(&nodes[1].admin, "community-0000").await >= before + 5);

    let _ = gateway.kill();
    let _ = gateway.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("node stopped answering"), "{log}");
    assert!(log.contains("node answers"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_found_in_dns() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), "a", 0);
    let port = port_of(&node.admin);
    let args = [
        format!("--discover=dns:localhost:{port}"),
        "--allowed-host=fleet-gateway.mcpfleet.svc".into(),
    ];
    let (mut gateway, mcp) = start_gateway(&args, &dir.path().join("gateway.log"));
    let name = format!("127.0.0.1:{port}");
    assert_eq!(node_up(&mcp, &name).await, Some(1.0));
    assert!(echo(&mcp).await);
    // Addressed by its Service's name (allowed) and by another name (the rebinding guard).
    let health = mcp.replace("/mcp", "/healthz");
    for (host, want) in [
        ("fleet-gateway.mcpfleet.svc:7990", 200),
        ("elsewhere.example:7990", 403),
    ] {
        let status = common::http()
            .get(&health)
            .header("host", host)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, want, "{host}");
    }
    let call =
        json!({"name": "scan_secrets", "arguments": {"content": "key = AKIAABCDEFGHIJKLMNOP"}});
    let (status, body) =
        common::post_stateless(&format!("{mcp}/{name}~security-0000"), "tools/call", call).await;
    assert_eq!(status, 200);
    assert!(body.unwrap().get("result").is_some());
    let _ = gateway.kill();
    let _ = gateway.wait();
}

#[test]
fn bad_flags_are_usage_errors() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["--node", "http://h:1", "--allowed-host", "h:80"],
            "--allowed-host \"h:80\"",
        ),
        (&[], "--node"),
        (&["--node", "ftp://127.0.0.1:7900"], "ftp://127.0.0.1:7900"),
        (&["--node", "http://127.0.0.1"], "no port"),
        (&["--discover", "dns:fleet"], "dns:fleet"),
        (
            &["--node", "http://h:1", "--node", "http://h:1/"],
            "two nodes are named",
        ),
        (
            &["--node", "http://h:1", "--poll-timeout", "2s"],
            "poll timeout",
        ),
    ];
    for (args, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_fleet"))
            .arg("gateway")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn no_node_answering_is_a_clear_error() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["gateway", "--port", "0", "--startup-timeout", "1s"])
        .args(["--node", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1: no answer"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
