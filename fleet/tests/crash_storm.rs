//! The crash test CI runs: a process-mode fleet (`fleet up` as its own process, each server
//! its own OS process) takes a storm of memory writes from concurrent clients through the
//! servers' MCP endpoints; mid-storm the whole process group is killed with SIGKILL, and the
//! fleet is started again on the same repository. After several cycles a fresh fleet must show
//! every acknowledged entity and observation, the fleet must stop cleanly, `git fsck --full`
//! must pass and `fleet memory verify` must too. It checks what the write-ahead log promises
//! (acknowledged = durable, whatever the kill interrupts: an fsync, a commit, a rotation)
//! end to end, through the real binary, and is bounded (~1 minute) so `cargo test` stays short.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead as _, BufReader},
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const CYCLES: usize = 5;
const SERVERS: &str = "12";
const WRITERS: usize = 8;

/// A `fleet up` process group, killed whole when dropped: a failing assertion leaves nothing
/// running.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        kill_group(&mut self.0);
    }
}

/// `fleet up` in process mode, in a process group of its own (its servers join it).
fn up(dir: &Path, repo: &Path) -> (Group, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["up", "--servers", SERVERS, "--isolation", "process"])
        .args(["--ephemeral-ports", "--admin-port", "0", "--no-gateway"])
        .arg("--admin-token-file")
        .arg(dir.join("admin-token"))
        .arg("--memory-repo")
        .arg(repo)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fleet up starts");
    let stdout = child.stdout.take().unwrap();
    let group = Group(child);
    let mut lines = BufReader::new(stdout).lines();
    let admin = lines
        .find_map(|l| {
            let l = l.ok()?;
            let rest = l.trim().strip_prefix("admin")?.to_string();
            rest.split_whitespace().next().map(str::to_string)
        })
        .expect("fleet up prints its admin URL");
    // Keep reading stdout so the fleet never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let view: Value = blocking(async move {
        let text = common::http().get(&admin).send().await.unwrap();
        text.json().await.unwrap()
    });
    let urls = view["servers"].as_array().unwrap().iter();
    let urls = urls.map(|s| format!("http://127.0.0.1:{}/mcp", s["port"].as_u64().unwrap()));
    (group, urls.collect())
}

fn blocking<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || tokio::runtime::Runtime::new().unwrap().block_on(f))
        .join()
        .unwrap()
}

/// One tool call; Some(result) only if the server acknowledged it (a version came back).
async fn call(url: &str, tool: &str, arguments: Value) -> Option<Value> {
    let answer = common::http()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .timeout(Duration::from_secs(5))
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": tool, "arguments": arguments, "_meta": fleet::wire::stateless_meta(),
            }}),
        )
        .send()
        .await
        .ok()?;
    let message = fleet::wire::first_jsonrpc_message(&answer.text().await.ok()?)?;
    let result = message["result"]["structuredContent"].clone();
    (result.is_object() && message["result"]["isError"] != json!(true)).then_some(result)
}

type Acked = Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>;

/// A writer: creates its entity, then adds observations to it, recording each acknowledged
/// one, until told to stop (failed calls, e.g. while the fleet is dead, are simply retried).
async fn writer(urls: Vec<String>, name: String, acked: Acked, stop: Arc<AtomicBool>) {
    let mut created = false;
    let mut j = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let url = &urls[j % urls.len()];
        let fact = format!("{name} fact {j}");
        j += 1;
        let ok = if created {
            let obs = json!({"observations": [{"entityName": name, "contents": [fact]}]});
            call(url, "add_observations", obs).await.is_some()
        } else {
            let entity = json!({"name": name, "entityType": "storm", "observations": [fact]});
            call(url, "create_entities", json!({"entities": [entity]}))
                .await
                .is_some()
        };
        if ok {
            created = true;
            acked
                .lock()
                .unwrap()
                .entry(name.clone())
                .or_default()
                .insert(fact);
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn acked_count(acked: &Acked) -> usize {
    acked.lock().unwrap().values().map(BTreeSet::len).sum()
}

/// Sends `sig` to `target` (a pid, or `-pgid` for a whole process group) with kill(1);
/// whether it reached anyone.
fn signal(sig: &str, target: &str) -> bool {
    let status = Command::new("kill")
        .args([sig, "--", target])
        .stderr(Stdio::null())
        .status();
    status.is_ok_and(|s| s.success())
}

/// SIGKILL to the fleet's whole process group: the supervisor and every server at once.
fn kill_group(child: &mut Child) -> bool {
    let killed = signal("-KILL", &format!("-{}", child.id()));
    let _ = child.wait();
    killed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_process_mode_fleet_mid_storm_loses_no_acknowledged_write() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("memory");
    let acked: Acked = Arc::default();
    for cycle in 0..CYCLES {
        let (mut fleet, urls) = tokio::task::block_in_place(|| up(dir.path(), &repo));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let name = format!("c{cycle}-w{w}");
                tokio::spawn(writer(urls.clone(), name, acked.clone(), stop.clone()))
            })
            .collect();
        // Kill once this cycle's storm is well under way (bounded for a slow machine), at a
        // moment that varies from cycle to cycle.
        let before = acked_count(&acked);
        let want = before + 200 + 150 * cycle;
        let deadline = Instant::now() + Duration::from_secs(8);
        while acked_count(&acked) < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            kill_group(&mut fleet.0),
            "cycle {cycle}: the fleet was already gone"
        );
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        let wrote = acked_count(&acked) - before;
        assert!(
            wrote > 30,
            "cycle {cycle}: too few writes to mean anything ({wrote})"
        );
    }

    // A fresh fleet on the same repository shows every acknowledged write.
    let (mut fleet, urls) = tokio::task::block_in_place(|| up(dir.path(), &repo));
    // Its servers may still be starting: retry for a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    let graph = loop {
        if let Some(graph) = call(&urls[0], "read_graph", json!({})).await {
            break graph;
        }
        assert!(
            Instant::now() < deadline,
            "the fresh fleet never answered read_graph"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut present: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in graph["entities"].as_array().unwrap() {
        let obs = e["observations"].as_array().unwrap().iter();
        let obs = obs.map(|o| o.as_str().unwrap().to_string()).collect();
        present.insert(e["name"].as_str().unwrap().to_string(), obs);
    }
    let acked = acked.lock().unwrap().clone();
    let mut missing = Vec::new();
    for (name, facts) in &acked {
        let have = present.get(name).cloned().unwrap_or_default();
        missing.extend(facts.difference(&have).cloned());
    }
    let total: usize = acked.values().map(BTreeSet::len).sum();
    assert!(
        missing.is_empty(),
        "{} of {total} acknowledged writes lost: {missing:?}",
        missing.len()
    );

    // A clean stop (Ctrl-C) commits everything; then git and verify must find it sound.
    assert!(signal("-INT", &fleet.0.id().to_string()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while fleet.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "fleet up did not stop on Ctrl-C");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything of the group still running (nothing should be) goes too.
    drop(fleet);
    let fsck = Command::new("git")
        .args(["fsck", "--full"])
        .current_dir(&repo)
        .output();
    if let Ok(out) = fsck {
        assert!(out.status.success(), "git fsck: {out:?}");
    }
    let verify = Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["memory", "verify", "--memory-repo"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(verify.status.success(), "fleet memory verify: {verify:?}");
    eprintln!(
        "{CYCLES} kill -9 cycles, {total} acknowledged writes, none lost, in {:?}",
        started.elapsed()
    );
}
