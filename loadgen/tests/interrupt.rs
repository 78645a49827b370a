//! Stopping a run early (what Ctrl-C does in the binary) keeps what was measured, marked
//! interrupted. In its own test binary: goose's killswitch, which the stop pulls, is global to
//! the process and would stop other tests' runs too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use clap::Parser as _;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_writes_its_partial_results_marked_interrupted() {
    let out = tempfile::tempdir().unwrap();
    let args = loadgen::Args::try_parse_from([
        "loadgen",
        "--servers",
        "4",
        "--ephemeral-ports",
        "--scenario",
        "latency,connections",
        "--users",
        "4",
        "--warmup",
        "0",
        "--run-time",
        "30",
        "--out",
        out.path().to_str().unwrap(),
    ])
    .unwrap();
    let stop = CancellationToken::new();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            stop.cancel();
        })
    };
    let started = Instant::now();
    let outcome = loadgen::run(args, stop)
        .await
        .expect("the run ends cleanly");
    stopper.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped well before its 30 s: {:?}",
        started.elapsed()
    );
    let run = &outcome.run;
    assert!(run.interrupted);
    let latency = run
        .latency
        .as_ref()
        .expect("the interrupted scenario's results");
    assert!(latency.requests > 0 && latency.ok == latency.requests);
    assert!(latency.measured_s < 10.0, "{}", latency.measured_s);
    assert!(
        run.connections.is_none(),
        "no scenario starts after the stop"
    );
    let written: loadgen::runfile::RunFile =
        serde_json::from_str(&std::fs::read_to_string(&outcome.run_file).unwrap()).unwrap();
    assert!(written.interrupted);
    let html = std::fs::read_to_string(&outcome.report).unwrap();
    assert!(html.contains("Interrupted"));
}
