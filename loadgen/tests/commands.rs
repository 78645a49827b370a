//! The binary itself: a run's stdout and exit status by its verdicts, and the subcommands that
//! read run files, with outputs written where asked and the exit codes CI relies on (0 pass,
//! 1 fail, 2 usage or input error).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::loadgen;

use reports::synthetic::{Spec, run};

fn write_run(dir: &Path, name: &str, spec: &Spec) -> String {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("run.json"),
        serde_json::to_string(&run(spec)).unwrap(),
    )
    .unwrap();
    d.display().to_string()
}

/// A two-second latency run on a two-server embedded fleet, written to `out`, with `more`
/// flags.
fn small_run(out: &Path, more: &[&str]) -> (i32, String, String) {
    let mut args = vec!["--servers", "2", "--ephemeral-ports"];
    args.extend(common::short_latency(out, more));
    loadgen(&args)
}

/// stdout carries the run's summary only (goose's "All N users launched." goes to stderr).
#[test]
fn a_run_prints_only_its_summary_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = small_run(&tmp.path().join("run"), &[]);
    // 1 when a busy machine misses the seed report's latency claim; the output is the same.
    assert!(code == 0 || code == 1, "{code}: {stderr}");
    assert!(
        stdout.starts_with("health: 2/2 servers answered"),
        "{stdout}"
    );
    assert!(stdout.contains("run file: "), "{stdout}");
    assert!(
        stdout.contains("phases.csv") && stdout.contains("latency.hlog"),
        "{stdout}"
    );
    assert!(!stdout.contains("users launched"), "{stdout}");
    assert!(stderr.contains("users launched"), "{stderr}");
}

/// `--json --quiet`: stdout is one JSON object with the verdicts and the paths, stderr has no
/// progress; the exports beside run.json hold the run's figures: a CSV row per measured second,
/// and an interval log that HdrHistogram's reader adds up to the phase's successful requests.
#[test]
fn a_json_quiet_run_and_its_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = small_run(&tmp.path().join("run"), &["--json", "--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(summary["exit_status"], 0, "{summary}");
    assert!(summary["exit_meaning"].as_str().unwrap().contains("passed"));
    let claims = summary["claims"].as_array().unwrap();
    assert!(!claims.is_empty(), "{summary}");
    assert!(
        claims
            .iter()
            .all(|c| c["verdict"].is_string() && c["id"].is_string())
    );
    let latency = &summary["phases"][0];
    assert_eq!(latency["phase"], "latency", "{summary}");
    assert!(latency["requests"].as_u64().unwrap() > 0, "{summary}");
    for progress in [
        "health:",
        "latency:",
        "req/s",
        "embedded fleet",
        "users launched",
    ] {
        assert!(
            !stderr.contains(progress),
            "{progress} under --quiet: {stderr}"
        );
    }

    let paths = &summary["paths"];
    let path = |v: &serde_json::Value| std::path::PathBuf::from(v.as_str().expect("a path"));
    let run = reports::run::RunFile::load(&path(&paths["run_file"])).unwrap();
    assert!(path(&paths["report"]).is_file());
    let results = run.latency.as_ref().unwrap();
    assert_eq!(latency["requests"], results.requests);

    let csv = std::fs::read_to_string(path(&paths["csv"])).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), results.per_second.len(), "{csv}");
    assert_eq!(
        rows.len(),
        results.measured_s.ceil() as usize,
        "a row per measured second: {csv}"
    );
    let requests: u64 = rows
        .iter()
        .map(|r| r.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(requests, results.requests, "{csv}");

    let hlog = std::fs::read(path(&paths["interval_logs"]["latency"])).unwrap();
    let mut counted = 0;
    let mut intervals = 0;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&hlog) {
        if let hdrhistogram::serialization::interval_log::LogEntry::Interval(i) = entry.unwrap() {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(i.encoded_histogram())
                .unwrap();
            let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .unwrap();
            counted += h.len();
            intervals += 1;
        }
    }
    assert_eq!(intervals, results.per_second.len());
    // The histograms hold the successful requests' latencies, as run.json's do.
    assert_eq!(counted, results.ok);
    assert_eq!(
        results.requests,
        results.ok + results.errors.values().sum::<u64>()
    );
}

/// A run's exit status follows its verdicts: 1 when a claim failed (here one no server can
/// meet), 2 when the claims cannot be read (before anything is measured).
#[test]
fn a_run_exits_by_its_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let claims = tmp.path().join("claims.toml");
    std::fs::write(
        &claims,
        "[[claims]]\nid = \"impossible\"\ntitle = \"Answers in a nanosecond\"\n\
         quote = \"instant\"\nmetric = \"latency_mean_ms\"\ncomparator = \"<\"\n\
         target = 0.000001\n",
    )
    .unwrap();
    let out = tmp.path().join("run");
    let (code, stdout, stderr) = small_run(&out, &["--claims", claims.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(
        out.join("run.json").is_file(),
        "the run is written all the same"
    );

    std::fs::write(&claims, "[[claims]]\nid = \"no metric\"\n").unwrap();
    let (code, _, stderr) = loadgen(&["--claims", claims.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    // Under --json the failure is an object on stdout too.
    let (code, stdout, _) = loadgen(&["--claims", claims.to_str().unwrap(), "--json"]);
    assert_eq!(code, 2);
    let failed: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(failed["exit_status"], 2);
    assert!(
        failed["error"].as_str().unwrap().contains("claims"),
        "{failed}"
    );
    assert!(stderr.contains("claims"), "{stderr}");
}

#[test]
fn report_compare_and_index_write_their_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let base = write_run(tmp.path(), "20260101T000000Z", &Spec::default());
    let head = write_run(
        tmp.path(),
        "20260102T000000Z",
        &Spec {
            seed: 4,
            ..Default::default()
        },
    );
    let (code, out, err) = loadgen(&["report", &head]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("report.html"), "{out}");
    let html = std::fs::read_to_string(Path::new(&head).join("report.html")).unwrap();
    assert!(html.contains("<section id=\"diagnostics\">"));
    for export in ["phases.csv", "latency.hlog"] {
        assert!(Path::new(&head).join(export).is_file(), "{export}: {out}");
        assert!(out.contains(export), "{out}");
    }

    let target = tmp.path().join("cmp.html");
    let (code, _, err) = loadgen(&["compare", &base, &head, "--out", target.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("<section id=\"changes\">")
    );

    let (code, out, err) = loadgen(&["index", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("index.html"));
    let (code, out, err) = loadgen(&["report", &head, "--json"]);
    assert_eq!(code, 0, "{err}");
    let written: serde_json::Value = serde_json::from_str(&out).expect(&out);
    let kinds: Vec<&str> = written["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    // The table, the latency phase's log and the sync scenario's.
    assert_eq!(kinds, ["report", "export", "export", "export"], "{out}");
    let index = std::fs::read_to_string(tmp.path().join("index.html")).unwrap();
    assert!(index.contains("20260102T000000Z/report.html"));
}

#[test]
fn bad_input_exits_2_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("run.json");
    std::fs::write(&bad, "{\"schema_version\": 99}").unwrap();
    let (code, _, err) = loadgen(&["report", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("run.json") && err.contains("schema version 99"),
        "{err}"
    );
    let (code, _, err) = loadgen(&["report", "/nonexistent/run.json"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/run.json"), "{err}");
    // A usage error: clap's own exit status, also 2.
    let (code, _, _) = loadgen(&["gate", "--config"]);
    assert_eq!(code, 2);
}

#[test]
fn gate_exit_codes_and_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/gates.toml");
    let good = write_run(tmp.path(), "good", &Spec::default());
    let broken = write_run(
        tmp.path(),
        "broken",
        &Spec {
            error_every: 10,
            ..Default::default()
        },
    );
    let junit = tmp.path().join("junit.xml");
    let summary = tmp.path().join("summary.md");
    let gate = |run: &str| {
        loadgen(&[
            "gate",
            "--config",
            config,
            run,
            "--junit",
            junit.to_str().unwrap(),
            "--summary",
            summary.to_str().unwrap(),
        ])
    };
    let (code, out, err) = gate(&good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<testsuites")
    );
    let (code, out, _) = gate(&broken);
    assert_eq!(code, 1, "{out}");
    let (code, out, err) = loadgen(&[
        "gate",
        "--config",
        config,
        &broken,
        "--junit",
        junit.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1, "{err}");
    let outcome: serde_json::Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(
        (&outcome["exit_status"], &outcome["passed"]),
        (&1.into(), &false.into())
    );
    let checks = outcome["checks"].as_array().unwrap();
    assert!(checks.iter().any(|c| c["status"] == "failed"), "{out}");
    assert!(
        std::fs::read_to_string(&summary)
            .unwrap()
            .contains("errors")
    );

    let bad_config = tmp.path().join("gates.toml");
    std::fs::write(&bad_config, "[invariants]\nmax_errrors = 0\n").unwrap();
    let (code, _, err) = loadgen(&["gate", "--config", bad_config.to_str().unwrap(), &good]);
    assert_eq!(code, 2);
    assert!(
        err.contains("gates.toml") && err.contains("max_errrors"),
        "{err}"
    );
}
