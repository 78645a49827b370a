//! A sharded run end to end: two loadgen shards (`--shard 1/2`, `--shard 2/2`) measure one
//! fleet at once, then `loadgen merge` makes one run of their files: counts summed,
//! histograms added exactly, the whole run's rate and connections held; and shard sets that are not one whole run
//! are refused with exit 2 and a message naming the file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::loadgen;
use loadgen::runfile::{LatencySummary, RunFile, decode_histogram};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_merge_into_one_exact_run() {
    let fleet = common::run::healthy_fleet(4, fleet::FleetOptions::default()).await;
    let urls: Vec<String> = fleet.endpoints().iter().map(|e| e.mcp_url()).collect();
    // Both shards measure from one agreed instant, a little ahead.
    let start_at = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let agreed_ms = chrono::DateTime::parse_from_rfc3339(&start_at)
        .unwrap()
        .timestamp_millis() as u64;
    let shard = |which: &'static str| {
        let mut extra = vec![
            "--start-at",
            start_at.as_str(),
            "--scenario",
            "health,latency,connections",
            "--connections",
            "8",
            "--hold",
            "2",
            "--connections-ramp-up",
            "0",
            "--connection-rate",
            "5",
            "--run-time",
            "2",
            "--warmup",
            "0",
            "--users",
            "8",
            "--rate",
            "200",
            "--run-id",
            "shards-test",
            "--shard",
            which,
            "--target",
        ];
        extra.extend(urls.iter().map(String::as_str));
        extra
    };
    let (a, b) = (shard("1/2"), shard("2/2"));
    // Separate processes, as shards are: each counts its own sockets.
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut dirs = run_shards(vec![owned(&a), owned(&b)]).await.into_iter();
    let (dir1, dir2) = (dirs.next().unwrap(), dirs.next().unwrap());
    let one = RunFile::load(&dir1.path().join("run.json")).expect("shard 1's run file");
    let two = RunFile::load(&dir2.path().join("run.json")).expect("shard 2's run file");
    for (run, index) in [(&one, 1), (&two, 2)] {
        let facts = run.shard.as_ref().expect("shard facts");
        assert_eq!((facts.index, facts.count), (index, 2));
        assert_eq!(facts.run_id, "shards-test");
        let l = run.latency.as_ref().expect("latency");
        assert_eq!(l.setup.users, 4, "each shard runs half the users");
        assert_eq!(l.setup.target_rps, Some(100.0), "and half the rate");
        // Neither began before the agreed instant, and each says how late it was.
        assert!(l.started_unix_ms.unwrap() >= agreed_ms);
        assert!(facts.start_late_ms.is_some());
        assert!(facts.start_at.is_some());
        // One machine: the clock against the servers' is 0 within the measurement's error.
        let clock = facts.clock.expect("the fleet's servers send Date headers");
        assert!(clock.error_ms < 1000.0, "{clock:?}");
        assert!(clock.offset_ms.abs() <= clock.error_ms + 2.0, "{clock:?}");
    }
    let out = tempfile::tempdir().unwrap();
    let path = |d: &tempfile::TempDir| d.path().to_str().unwrap().to_string();
    let (o, d1, d2) = (path(&out), path(&dir1), path(&dir2));
    let (code, stdout, stderr) = loadgen(&["merge", &d2, &d1, "--out", &o]);
    assert!(code == 0 || code == 1, "exit {code}: {stdout}{stderr}");
    let merged = RunFile::load(&out.path().join("run.json")).expect("merged run file");
    assert!(out.path().join("report.html").exists());
    let m = merged.latency.as_ref().expect("latency");
    let (l1, l2) = (one.latency.as_ref().unwrap(), two.latency.as_ref().unwrap());
    assert_eq!(m.requests, l1.requests + l2.requests);
    assert_eq!(m.ok, l1.ok + l2.ok);
    assert_eq!(m.setup.target_rps, Some(200.0));
    assert_eq!(m.setup.users, 8);
    let mut sum = decode_histogram(&l1.histogram.data).unwrap();
    sum.add(decode_histogram(&l2.histogram.data).unwrap())
        .unwrap();
    assert_eq!(m.latency_us.count, sum.len());
    assert_eq!(m.latency_us.p99, sum.value_at_quantile(0.99));
    assert_eq!(m.latency_us.p50, sum.value_at_quantile(0.5));
    assert_eq!(merged.merged_from.len(), 2);
    // Each shard held its half of the connections; the run held them all.
    for run in [&one, &two] {
        let c = run.connections.as_ref().expect("connections");
        assert_eq!((c.asked, c.held()), (4, Some(4)));
    }
    let c = merged.connections.as_ref().expect("connections");
    assert_eq!((c.asked, c.held()), (8, Some(8)));
    assert!(c.samples > 0);
    assert_eq!(
        c.results.requests,
        one.connections.as_ref().unwrap().results.requests
            + two.connections.as_ref().unwrap().results.requests
    );
    independent_merge_agrees(&[&dir1, &dir2], &m.latency_us);
    assert!(!merged.claims.is_empty(), "claims judged on the merged run");

    // A merged run is a run like any other to `compare` and `gate`.
    let (code, _, stderr) = loadgen(&["compare", &d1, &o, "--out", &format!("{o}/compare.html")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.path().join("compare.html").exists());
    let gates = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/gates.toml");
    let (code, stdout, stderr) = loadgen(&["gate", "--config", gates, &o]);
    assert!(code == 0 || code == 1, "exit {code}: {stdout}{stderr}");

    // Not one whole run: refused, exit 2, the file named.
    let (code, _, stderr) = loadgen(&["merge", &d1, "--out", &o]);
    assert_eq!(code, 2);
    assert!(stderr.contains("shard(s) [2] of 2 missing"), "{stderr}");
    let (code, _, stderr) = loadgen(&["merge", &d1, &d1, "--out", &o]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("are both shard 1") && stderr.contains(&d1),
        "{stderr}"
    );
    let (code, _, stderr) = loadgen(&["merge", &o, "--out", &d1]);
    assert_eq!(code, 2);
    assert!(stderr.contains("already a merged run"), "{stderr}");
}

/// Runs the loadgen binary once per argument list at once, each into its own folder, and gives
/// the folders once all have ended (exit 0 or 1: a failed claim is no failure here).
async fn run_shards(shards: Vec<Vec<String>>) -> Vec<tempfile::TempDir> {
    tokio::task::spawn_blocking(move || {
        let running: Vec<_> = shards
            .iter()
            .map(|args| {
                let dir = tempfile::tempdir().unwrap();
                let child = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
                    .args(args)
                    .args(["--out", dir.path().to_str().unwrap()])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("loadgen starts");
                (dir, child)
            })
            .collect();
        running
            .into_iter()
            .map(|(dir, child)| {
                let out = child.wait_with_output().expect("loadgen ends");
                let code = out.status.code().unwrap_or(-1);
                assert!(
                    code == 0 || code == 1,
                    "exit {code}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                dir
            })
            .collect()
    })
    .await
    .unwrap()
}

/// Chaos in a sharded run: only shard 1 injects the faults, every shard sends its share of the
/// load, and the merged run has shard 1's faults over everyone's load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_faults_come_from_shard_one() {
    let options = fleet::FleetOptions {
        admin: true,
        gateway: true,
        ..Default::default()
    };
    let fleet = common::run::healthy_fleet(4, options).await;
    let gateway = format!("http://{}/mcp", fleet.gateway_addr().unwrap());
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("admin-token");
    fleet.admin_token().write_to(&token_file).unwrap();
    let shard = |which: &str| -> Vec<String> {
        [
            "--target",
            &gateway,
            "--admin",
            &admin,
            "--admin-token-file",
            token_file.to_str().unwrap(),
            "--scenario",
            "chaos",
            "--chaos",
            "kill:1",
            "--chaos-time",
            "3",
            "--chaos-rate",
            "200",
            "--run-id",
            "chaos-shards",
            "--shard",
            which,
        ]
        .into_iter()
        .map(String::from)
        .collect()
    };
    let dirs = run_shards(vec![shard("1/2"), shard("2/2")]).await;
    let load = |d: &tempfile::TempDir| RunFile::load(&d.path().join("run.json")).unwrap();
    let (one, two) = (load(&dirs[0]), load(&dirs[1]));
    let (c1, c2) = (one.chaos.as_ref().unwrap(), two.chaos.as_ref().unwrap());
    assert_eq!(c1.faults.len(), 1, "shard 1 injects the fault");
    assert!(c2.faults.is_empty(), "shard 2 only sends load");
    assert_eq!(c1.results.setup.target_rps, Some(100.0));
    let out = tempfile::tempdir().unwrap();
    let path = |d: &tempfile::TempDir| d.path().to_str().unwrap().to_string();
    let (code, stdout, stderr) = loadgen(&[
        "merge",
        &path(&dirs[1]),
        &path(&dirs[0]),
        "--out",
        &path(&out),
    ]);
    assert!(code == 0 || code == 1, "exit {code}: {stdout}{stderr}");
    let merged = RunFile::load(&out.path().join("run.json")).unwrap();
    let c = merged.chaos.as_ref().unwrap();
    assert_eq!(c.faults, c1.faults);
    assert_eq!(
        c.results.requests,
        c1.results.requests + c2.results.requests
    );
    assert_eq!(c.results.setup.target_rps, Some(200.0));
}

/// The shards' histograms added by an HdrHistogram implementation nobody here wrote (Python's
/// `hdrh`) give the merged run's count and percentiles.
fn independent_merge_agrees(shards: &[&tempfile::TempDir], merged: &LatencySummary) {
    let Some(software) = common::interop::software() else {
        return;
    };
    let out = std::process::Command::new(software.python())
        .arg(common::interop::Software::script("hdr_merge_check.py"))
        .args(shards.iter().map(|d| d.path().join("run.json")))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ours = serde_json::json!({
        "count": merged.count,
        "p50": merged.p50,
        "p90": merged.p90,
        "p99": merged.p99,
        "p99_9": merged.p99_9,
    });
    assert_eq!(theirs, ours);
}

#[test]
fn shard_flags_are_checked_at_the_edge() {
    let (code, _, stderr) = loadgen(&[
        "--shard",
        "3/2",
        "--run-id",
        "x",
        "--target",
        "http://127.0.0.1:1/mcp",
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("shards count from 1 to N"), "{stderr}");
    let (code, _, stderr) = loadgen(&["--shard", "1/2", "--target", "http://127.0.0.1:1/mcp"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--run-id"), "{stderr}");
    for (when, says) in [
        ("yesterday", "not an RFC 3339 time"),
        ("2999-01-01T00:00:00Z", "more than 24 h ahead"),
    ] {
        let (code, _, stderr) = loadgen(&["--start-at", when]);
        assert_eq!(code, 2);
        assert!(stderr.contains(says), "{stderr}");
    }
    let (code, _, stderr) = loadgen(&["--shard", "1/2", "--run-id", "x"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--target"), "{stderr}");
}
