//! Helpers shared by loadgen's integration tests.

pub mod interop;
pub mod run;

use std::{path::Path, process::Command};

/// Runs the loadgen binary with `args`: its exit code, stdout and stderr.
#[allow(dead_code)]
pub fn loadgen(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap_or_else(|e| panic!("loadgen runs: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The run file loadgen wrote into `dir`.
#[allow(dead_code)]
pub fn run_file(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("run.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("run.json: {e}"))
}

/// The flags of a two-second latency run of two users (no warm-up), written to `out`, followed
/// by `more`: what the interop tests run against one server.
#[allow(dead_code)]
pub fn short_latency<'a>(out: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--scenario",
        "latency",
        "--users",
        "2",
        "--warmup",
        "0",
        "--run-time",
        "2",
        "--out",
        out.to_str()
            .unwrap_or_else(|| panic!("{} is not UTF-8", out.display())),
    ];
    args.extend_from_slice(more);
    args
}
