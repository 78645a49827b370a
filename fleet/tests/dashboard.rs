//! The live dashboard over real sockets: the page and its event stream (frames that follow
//! traffic and a kill), the browser sign-in (a one-time link, the admin token pasted, a
//! cookie honoured only from the page's own origin), the bound on viewers; the page itself in
//! headless Chromium (`ci/check-dashboard.sh`); and the alert rules and Grafana dashboard in
//! `deploy/`, checked by promtool and against the series a running fleet really exports
//! (`ci/check-alerts.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{path::Path, process::Command, time::Duration};

use fleet::{
    Fleet, FleetOptions, Isolation,
    memory::replica::{NodeId, ReplicaOptions, init_peer},
};
use serde_json::{Value, json};

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Runs a script of `ci/` from the repository's root; its output, once it has succeeded.
fn run_script(script: &str, args: &[&Path]) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join(script))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}

async fn start(dir: &Path, peer: Option<&Path>) -> Fleet {
    start_node(dir, peer, "node-a").await
}

async fn start_node(dir: &Path, peer: Option<&Path>, node: &str) -> Fleet {
    let spec = common::spec(3, 1, Isolation::Task);
    let fleet = Fleet::start(
        spec,
        FleetOptions {
            child: None,
            admin: true,
            gateway: true,
            memory_repo: Some(dir.join(node)),
            memory_replica: ReplicaOptions {
                peers: peer.iter().map(|p| p.display().to_string()).collect(),
                node_id: peer.map(|_| NodeId::parse(node).unwrap()),
                interval: Duration::from_millis(100),
                ..Default::default()
            },
            admin_token: None,
        },
    )
    .await
    .expect("fleet starts");
    assert_eq!(
        fleet.wait_healthy(Duration::from_secs(20), |_, _| {}).await,
        4
    );
    fleet
}

/// An open `/events` stream, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(admin: &str) -> Self {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{admin}/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an event stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event as (name, parsed data).
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = "message".to_string();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(n) = line.strip_prefix("event:") {
                        name = n.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return (name, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.response.chunk())
                .await
                .expect("an event within 5 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Frames until one satisfies `want` (at most `n`).
    async fn frame_where(&mut self, n: usize, want: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..n {
            let (name, frame) = self.next().await;
            if name == "message" && want(&frame) {
                return frame;
            }
        }
        panic!("no frame of {n} was as wanted");
    }
}

fn position(frame: &Value, id: &str) -> usize {
    frame["servers"]["id"]
        .as_array()
        .unwrap()
        .iter()
        .position(|v| v == id)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_follow_traffic_and_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(dir.path(), None).await;
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let page = common::http()
        .get(format!("{admin}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("new EventSource(\"/events\")"));
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(
            !html.contains(external),
            "the page loads nothing from elsewhere"
        );
    }

    let mut events = Events::open(&admin).await;
    let (first, history) = events.next().await;
    assert_eq!(first, "history");
    assert_eq!(history["groups"].as_array().unwrap().len(), 2);
    let frame = events.frame_where(3, |_| true).await;
    assert_eq!(frame["servers"]["id"].as_array().unwrap().len(), 4);
    assert!(frame["memory"]["version"].is_u64(), "{frame}");
    assert_eq!(frame["gateway"]["groups"][0]["members"], 3, "{frame}");

    // Traffic on one server shows as its rate and latency.
    let url = fleet.endpoints()[0].mcp_url();
    let id = fleet.endpoints()[0].id.clone();
    for _ in 0..40 {
        let (status, _) = common::post_stateless(&url, "tools/list", json!({})).await;
        assert_eq!(status, 200);
    }
    let frame = events
        .frame_where(4, |f| {
            f["servers"]["rps"][position(f, &id)].as_f64() > Some(1.0)
        })
        .await;
    let i = position(&frame, &id);
    assert!(
        frame["servers"]["p99_ms"][i].as_f64().unwrap() > 0.0,
        "{frame}"
    );
    assert!(frame["groups"][0]["rps"].as_f64().unwrap() > 1.0);

    // A kill shows, even though a task-mode server is back in milliseconds.
    let victim = fleet.endpoints()[1].id.clone();
    let resp = common::admin_post(&fleet, &format!("/servers/{victim}/kill"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let frame = events
        .frame_where(4, |f| {
            f["servers"]["state"][position(f, &victim)] != "healthy"
        })
        .await;
    assert_eq!(frame["servers"]["restarts"][position(&frame, &victim)], 1);
    events
        .frame_where(15, |f| {
            f["servers"]["state"][position(f, &victim)] == "healthy"
        })
        .await;
    drop(events);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_once_and_acts_only_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(dir.path(), None).await;
    let addr = fleet.admin_addr().unwrap();
    let admin = format!("http://{addr}");
    let id = fleet.endpoints()[0].id.clone();
    let link = fleet.dashboard_link().expect("a sign-in link");
    let (page, token) = link
        .split_once("#token=")
        .expect("the token in the fragment");
    assert_eq!(page, format!("{admin}/"));
    assert_ne!(token, fleet.admin_token().as_str());
    let client = common::http();
    let login = |body: Value, origin: Option<&str>| {
        let mut req = client.post(format!("{admin}/login")).json(&body);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req
    };

    // The link's token, from the page's origin only, once.
    let foreign = login(json!({"link": token}), Some("http://127.0.0.1:1"));
    assert_eq!(foreign.send().await.unwrap().status(), 403);
    let r = login(json!({"link": "nope"}), Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = login(json!({"link": token}), Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = r.json::<Value>().await.unwrap()["session"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(session, fleet.admin_token().as_str());
    let again = login(json!({"link": token}), Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401, "the link works once");
    assert_eq!(fleet.dashboard_link(), None);

    // The session acts only from the page's origin; it is no cookie, and no bearer token.
    let post = |path: &str, origin: Option<&str>, header: (&str, String)| {
        let mut req = client
            .post(format!("{admin}{path}"))
            .header(header.0, header.1)
            .json(&json!({"ms": 0}));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req
    };
    let resume = format!("/servers/{id}/resume");
    let as_session = || ("x-mcpfleet-session", session.clone());
    let r = post(&resume, Some(&admin), as_session())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for foreign in [None, Some("http://127.0.0.1:1"), Some("null")] {
        let status = post(&resume, foreign, as_session())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 403, "session with Origin {foreign:?}");
    }
    for other in [
        ("cookie", format!("mcpfleet_session={session}")),
        ("authorization", format!("Bearer {session}")),
        ("x-mcpfleet-session", format!("{session}x")),
    ] {
        let status = post(&resume, Some(&admin), other.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "{}", other.0);
    }
    let signed_in = |value: String| {
        let client = client.clone();
        let url = format!("{admin}/login");
        async move {
            client
                .get(url)
                .header("x-mcpfleet-session", value)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(signed_in(session.clone()).await, json!({"signed_in": true}));
    assert_eq!(signed_in("x".into()).await, json!({"signed_in": false}));

    // The admin token pasted into the page signs it in too; only from the page.
    let real = json!({"token": fleet.admin_token().as_str()});
    let r = login(real.clone(), Some(&admin)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["session"], session);
    let r = login(json!({"token": "wrong"}), Some(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = login(real.clone(), Some("http://127.0.0.1:1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = login(real, None).send().await.unwrap();
    assert_eq!(r.status(), 403);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_are_bounded_and_streams_end_with_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = start(dir.path(), None).await;
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(Events::open(&admin).await);
    }
    let refused = common::http()
        .get(format!("{admin}/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let why = refused.text().await.unwrap();
    assert!(
        why.contains("16 dashboard viewers are connected already"),
        "{why}"
    );
    // The operator's own requests still get through.
    let status = common::http()
        .get(format!("{admin}/servers"))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    drop(open.pop());
    // The freed place is taken again (the stream's end is noticed at its next write).
    let mut reopened = None;
    for _ in 0..50 {
        let r = common::http()
            .get(format!("{admin}/events"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            reopened = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a place frees when a viewer leaves");
    let stopped = tokio::time::timeout(Duration::from_secs(20), fleet.stop()).await;
    assert!(stopped.is_ok(), "open pages do not hold the stop");
}

/// Every series the rules and the Grafana dashboard name is one a fleet with a gateway and a
/// replicating memory exports, and promtool accepts and tests the rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_and_grafana_name_real_series() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    init_peer(&peer).unwrap();
    // A second node, so the series about other nodes exist too.
    let other = start_node(dir.path(), Some(&peer), "node-b").await;
    let fleet = start(dir.path(), Some(&peer)).await;
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let gateway = format!("http://{}", fleet.gateway_addr().unwrap());
    let (status, _) = common::post_stateless(
        &format!("{gateway}/mcp"),
        "tools/call",
        json!({"name": "community__echo", "arguments": {"text": "hi"}}),
    )
    .await;
    assert_eq!(status, 200);
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = common::get_text(&format!("{admin}/metrics")).await;
        if metrics.contains("mcpfleet_memory_peer_up")
            && metrics.contains("mcpfleet_memory_node_merge_failing{")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains("mcpfleet_memory_node_merge_failing{"),
        "{metrics}"
    );
    other.stop().await;
    metrics.push_str(&common::get_text(&format!("{gateway}/metrics")).await);
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &metrics).unwrap();
    fleet.stop().await;

    let text = run_script("ci/check-alerts.sh", &[Path::new("--metrics"), &file]);
    assert!(!text.contains("SKIP"), "every check ran:\n{text}");
}

/// The page in a real browser against `fleet up` with 500 servers: every cell renders healthy,
/// a kill through the admin API and one from the page turn a cell non-healthy and back, the
/// cookie is refused to another origin, no console errors, nothing fetched from elsewhere.
#[test]
fn the_page_in_headless_chromium() {
    let text = run_script(
        "ci/check-dashboard.sh",
        &[Path::new(env!("CARGO_BIN_EXE_fleet"))],
    );
    assert!(text.contains("check-dashboard: OK"), "{text}");
}
