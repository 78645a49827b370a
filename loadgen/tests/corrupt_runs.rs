//! Run files with corrupt histograms, through the binary: `report`, `compare` and `gate` each
//! refuse them as an input error (exit 2) naming the file and the histogram's JSON path.
//! Run files travel (CI artefacts, a colleague's directory), so a forged header must neither
//! abort loadgen (HdrHistogram's decoder would allocate what the header says) nor let the gate
//! judge, and pass, a run whose figures cannot be read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use base64::Engine as _;
use common::loadgen;
use reports::synthetic::{Spec, run};

/// A histogram of 60 bytes whose V2 header says the payload is 0xFFFFFFF0 bytes long.
fn forged_payload_length() -> String {
    let mut bytes = Vec::new();
    bytes.extend(0x1c84_9313u32.to_be_bytes());
    bytes.extend(0xFFFF_FFF0u32.to_be_bytes());
    bytes.extend(0u32.to_be_bytes());
    bytes.extend(3u32.to_be_bytes());
    bytes.extend(1u64.to_be_bytes());
    bytes.extend(60_000_000u64.to_be_bytes());
    bytes.extend(1f64.to_be_bytes());
    bytes.resize(60, 0);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A synthetic run in `dir/name/run.json`, changed by `corrupt`; the file's path.
fn write_run(dir: &Path, name: &str, corrupt: impl FnOnce(&mut serde_json::Value)) -> String {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let mut value = serde_json::to_value(run(&Spec::default())).unwrap();
    corrupt(&mut value);
    let file = d.join("run.json");
    std::fs::write(&file, serde_json::to_string(&value).unwrap()).unwrap();
    file.display().to_string()
}

/// The input error a command must give for `file`, whose histogram at `field` is corrupt in
/// its header field `what`.
fn assert_refused((code, out, err): (i32, String, String), file: &str, field: &str, what: &str) {
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(file) && err.contains(field) && err.contains(what),
        "{file} {field} {what}: {err}"
    );
}

#[test]
fn report_compare_and_gate_refuse_a_forged_payload_length() {
    let tmp = tempfile::tempdir().unwrap();
    let good = write_run(tmp.path(), "good", |_| {});
    let field = "latency.histogram.data";
    let forged = write_run(tmp.path(), "forged", |v| {
        v["latency"]["histogram"]["data"] = forged_payload_length().into();
    });
    assert_refused(
        loadgen(&["report", &forged]),
        &forged,
        field,
        "payload length",
    );
    let out = tmp.path().join("cmp.html");
    let out = out.to_str().unwrap();
    assert_refused(
        loadgen(&["compare", &good, &forged, "--out", out]),
        &forged,
        field,
        "payload length",
    );
    assert_refused(
        loadgen(&["compare", &forged, &good, "--out", out]),
        &forged,
        field,
        "payload length",
    );
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/gates.toml");
    assert_refused(
        loadgen(&["gate", "--config", config, &forged]),
        &forged,
        field,
        "payload length",
    );
    // The good file itself passes, so the refusals above are the histogram's doing.
    let (code, _, err) = loadgen(&["gate", "--config", config, &good]);
    assert_eq!(code, 0, "{err}");
}

/// Histograms the gate never decodes itself (one second's, the sync scenario's) fail the file
/// too: the gate once passed such a run with exit 0.
#[test]
fn the_gate_refuses_any_corrupt_histogram() {
    let tmp = tempfile::tempdir().unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../ci/gates.toml");
    type Corrupt = fn(&mut serde_json::Value);
    let cases: [(&str, &str, Corrupt); 3] = [
        ("second", "latency.per_second[1].histogram", |v| {
            v["latency"]["per_second"][1]["histogram"] = "AAAAAAAAAAAA".into();
        }),
        ("truncated", "latency.histogram.data", |v| {
            let data = v["latency"]["histogram"]["data"].as_str().unwrap();
            v["latency"]["histogram"]["data"] = data[..data.len() / 2 / 4 * 4].into();
        }),
        ("sync", "sync.figures.histograms.lag.data", |v| {
            v["sync"]["figures"]["histograms"]["lag"]["data"] = forged_payload_length().into();
        }),
    ];
    for (name, field, corrupt) in cases {
        let file = write_run(tmp.path(), name, corrupt);
        assert_refused(
            loadgen(&["gate", "--config", config, &file]),
            &file,
            field,
            "histogram is corrupt",
        );
    }
}
