//! Golden checks on the structure of rendered pages: sections in the reader's order, every
//! chart drawn, the report's own findings shown, and nothing that would reach the network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use reports::{
    compare, html, index,
    run::RunFile,
    synthetic::{Spec, run},
};

fn no_external_references(page: &str) {
    let lower = page.to_lowercase();
    for forbidden in [
        "http://", "https://", "src=", "@import", "url(", "<link", "<iframe", "<script", "<img",
    ] {
        assert!(!lower.contains(forbidden), "{forbidden}");
    }
}

fn section_order(page: &str, ids: &[&str]) {
    let at: Vec<usize> = ids
        .iter()
        .map(|id| {
            page.find(&format!("<section id=\"{id}\">"))
                .unwrap_or_else(|| panic!("section {id}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "order {ids:?}: {at:?}");
}

#[test]
fn report_sections_charts_and_findings() {
    let mut r = run(&Spec {
        servers: 40,
        slow_servers: 2,
        error_every: 50,
        ..Default::default()
    });
    r.config.targets.clear();
    let page = html::render(&r);
    section_order(
        &page,
        &[
            "claims",
            "diagnostics",
            "health",
            "latency",
            "sync",
            "config",
        ],
    );
    for chart in [
        "latency by percentile",
        "latency percentiles per second",
        "throughput",
        "open connections",
        "errors by class",
        "p99 by server",
        "time to first byte vs time to result",
        "write-to-visible lag",
        "sync latencies, cumulative",
        "sync p99 per second",
    ] {
        assert!(
            page.contains(&format!(">\n{chart}\n</text>")),
            "chart {chart}"
        );
    }
    assert_eq!(
        page.matches("<figure>").count(),
        page.matches("<svg").count(),
        "every chart in a figure with a caption"
    );
    assert!(page.contains("class=\"finding tail_servers\""));
    assert!(page.contains("server-000") && page.contains("server-001"));
    assert!(
        page.contains(">\ntimeout\n</text>"),
        "the error class is a series"
    );
    no_external_references(&page);
}

#[test]
fn a_run_file_round_trips_and_renders_the_same() {
    let r = run(&Spec::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    std::fs::write(&path, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    let back = RunFile::load(&path).unwrap();
    assert_eq!(html::render(&back), html::render(&r));
}

#[test]
fn bad_run_files_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let missing = dir.path().join("missing.json");
    let err = RunFile::load(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.json"), "{err}");

    let p = write("corrupt.json", "{\"schema_version\": 3, \"tool\": ");
    let err = RunFile::load(&p).unwrap_err().to_string();
    assert!(
        err.contains("corrupt.json") && err.contains("not a run file"),
        "{err}"
    );

    let p = write("future.json", "{\"schema_version\": 4}");
    let err = RunFile::load(&p).unwrap_err().to_string();
    assert!(
        err.contains("future.json") && err.contains("schema version 4"),
        "{err}"
    );

    let p = write("other.json", "[1, 2]");
    let err = RunFile::load(&p).unwrap_err().to_string();
    assert!(err.contains("no schema_version"), "{err}");

    let mut value = serde_json::to_value(run(&Spec::default())).unwrap();
    value["latency"]["per_second"][3]["p50_us"] = serde_json::json!("fast");
    let p = write("field.json", &value.to_string());
    let err = RunFile::load(&p).unwrap_err().to_string();
    assert!(
        err.contains("field.json") && err.contains("latency.per_second[3].p50_us"),
        "{err}"
    );

    // Version 2 files (before per-server breakdowns) still read.
    let mut value = serde_json::to_value(run(&Spec::default())).unwrap();
    value["schema_version"] = serde_json::json!(2);
    value["latency"]
        .as_object_mut()
        .unwrap()
        .remove("by_server");
    let p = write("v2.json", &value.to_string());
    let v2 = RunFile::load(&p).unwrap();
    assert!(v2.latency.unwrap().by_server.is_empty());
}

#[test]
fn comparison_and_index_pages() {
    let base = run(&Spec::default());
    let head = run(&Spec {
        seed: 5,
        median_us: 2_600.0,
        ..Default::default()
    });
    let page = compare::render(("base", &base), ("head", &head));
    section_order(&page, &["setup", "changes", "claims", "charts"]);
    no_external_references(&page);

    let dir = tempfile::tempdir().unwrap();
    for (name, r) in [("20260101T000000Z", &base), ("20260102T000000Z", &head)] {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("run.json"), serde_json::to_string(r).unwrap()).unwrap();
    }
    let page = index::render(&index::scan(dir.path()).unwrap());
    section_order(&page, &["trend", "runs"]);
    no_external_references(&page);
}
