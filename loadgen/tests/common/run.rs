//! Runs through the library entry point `loadgen::run`, the code the binary runs, with a
//! run folder of its own: what the end-to-end test binaries share so each states only its
//! flags.

use clap::Parser as _;
use loadgen::runfile::RunFile;
use tokio_util::sync::CancellationToken;

/// Arguments for a run into `out`: the latency scenario alone unless `extra` names others.
#[allow(dead_code)]
pub fn args(extra: &[&str], out: &std::path::Path) -> loadgen::Args {
    let mut argv = vec!["loadgen"];
    if !extra.contains(&"--scenario") {
        argv.extend_from_slice(&["--scenario", "latency"]);
    }
    argv.extend_from_slice(extra);
    argv.extend_from_slice(&["--out", out.to_str().unwrap()]);
    loadgen::Args::try_parse_from(argv).unwrap()
}

/// Runs loadgen with `extra` flags into a fresh folder, which lives as long as the returned
/// guard.
#[allow(dead_code)]
pub async fn launch(extra: &[&str]) -> (tempfile::TempDir, anyhow::Result<loadgen::RunOutcome>) {
    let out = tempfile::tempdir().unwrap();
    let result = loadgen::run(args(extra, out.path()), CancellationToken::new()).await;
    (out, result)
}

/// Runs loadgen with `extra` flags and returns the run.
#[allow(dead_code)]
pub async fn quick(extra: &[&str]) -> RunFile {
    launch(extra).await.1.expect("run").run
}

/// A fleet of `servers` on ephemeral ports started with `options`, every server healthy.
#[allow(dead_code)]
pub async fn healthy_fleet(servers: u32, options: fleet::FleetOptions) -> fleet::Fleet {
    let spec = fleet::FleetSpec::default()
        .scaled_to(servers)
        .unwrap()
        .with_ephemeral_ports();
    let fleet = fleet::Fleet::start(spec, options).await.unwrap();
    let healthy = fleet
        .wait_healthy(std::time::Duration::from_secs(10), |_, _| {})
        .await;
    assert_eq!(healthy, servers as usize);
    fleet
}
