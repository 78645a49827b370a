//! The scale step end to end on small fleets: the embedded fleet grown through its admin API
//! (task mode through the library entry point, process mode through the binary, which serves
//! its own server processes), its figures in the run file, and the step skipped, saying why,
//! for --target servers and for a fleet already as large as asked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::run::{healthy_fleet, quick};
use loadgen::runfile::{RunFile, ScaleResult, Verdict};

fn scale_claim(run: &RunFile) -> &loadgen::runfile::Claim {
    run.claims
        .iter()
        .find(|c| c.id == "scale_1000_servers")
        .expect("the seed claims judge scale_1000_servers")
}

fn ran(run: &RunFile) -> &loadgen::runfile::ScaleFigures {
    let s: &ScaleResult = run
        .scale
        .as_ref()
        .expect("the scale step is in the run file");
    assert!(s.ran, "{}", s.reason);
    s.figures.as_ref().expect("a step that ran has figures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_step_grows_the_fleet_through_its_admin_api_and_sweeps_every_server() {
    let run = quick(&[
        "--scenario",
        "scale",
        "--servers",
        "8",
        "--scale-to",
        "16",
        "--ephemeral-ports",
    ])
    .await;
    assert_eq!(run.config.scenarios, ["scale"]);
    assert_eq!(run.health.servers, 8);
    let f = ran(&run);
    assert_eq!((f.from_servers, f.to_servers), (8, 16));
    assert_eq!(f.isolation, "task");
    assert_eq!(f.groups.iter().map(|g| g.from).sum::<u32>(), 8);
    assert_eq!(f.groups.iter().map(|g| g.to).sum::<u32>(), 16);
    for g in &f.groups {
        // Proportional: every group doubles.
        assert_eq!(g.to, 2 * g.from, "{g:?}");
    }
    let healthy_s = f.healthy_s.expect("every server healthy");
    assert!(healthy_s > 0.0 && healthy_s < f.wait_limit_s, "{healthy_s}");
    assert_eq!(f.healthy, 16);
    assert!(f.request_ms > 0.0);
    assert_eq!(
        (f.sweep.servers, f.sweep.ok),
        (16, 16),
        "{:?}",
        f.sweep.failures
    );
    assert!(!f.sweep.interrupted);
    for (m, servers) in [(&f.memory_before, 8), (&f.memory_after, 16)] {
        assert_eq!(m.servers, servers);
        assert!(m.fleet_rss_bytes.unwrap() > 1 << 20, "{m:?}");
        assert_eq!(m.server_processes, 0, "task mode has no server processes");
    }
    // The fleet stopped at its new size.
    assert_eq!(run.fleet.as_ref().unwrap().servers, 16);
    let claim = scale_claim(&run);
    assert_eq!(claim.verdict, Verdict::NotMeasured);
    assert!(claim.note.contains("measured 16 servers"), "{}", claim.note);
    let html = reports::html::render(&run);
    assert!(html.contains("<section id=\"scale\">"));
}

#[test]
fn process_isolation_reads_the_server_processes_memory_at_both_sizes() {
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = common::loadgen(&[
        "--scenario",
        "scale",
        "--isolation",
        "process",
        "--servers",
        "3",
        "--scale-to",
        "5",
        "--ephemeral-ports",
        "--quiet",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let run = RunFile::load(&out.path().join("run.json")).unwrap();
    let f = ran(&run);
    assert_eq!(f.isolation, "process");
    assert_eq!(
        (f.sweep.servers, f.sweep.ok),
        (5, 5),
        "{:?}",
        f.sweep.failures
    );
    for (m, servers) in [(&f.memory_before, 3), (&f.memory_after, 5)] {
        assert_eq!((m.servers, m.server_processes), (servers, servers), "{m:?}");
        let (rss, pss) = (m.servers_rss_bytes.unwrap(), m.servers_pss_bytes.unwrap());
        assert!(rss > servers as u64 * (1 << 20), "{m:?}");
        assert!(pss > 0 && pss <= rss, "{m:?}");
    }
    assert!(f.memory_after.servers_rss_bytes > f.memory_before.servers_rss_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_step_says_why_it_did_not_run() {
    // Someone else's servers are not loadgen's to scale.
    let options = fleet::FleetOptions {
        admin: true,
        ..Default::default()
    };
    let fleet = healthy_fleet(3, options).await;
    let admin = format!("http://{}/servers", fleet.admin_addr().unwrap());
    let run = quick(&["--scenario", "scale", "--target", &admin]).await;
    fleet.stop().await;
    let s = run.scale.as_ref().unwrap();
    assert!(!s.ran && s.figures.is_none());
    assert!(s.reason.contains("--target"), "{}", s.reason);
    let claim = scale_claim(&run);
    assert_eq!(claim.verdict, Verdict::NotMeasured);
    assert!(claim.note.contains("did not run"), "{}", claim.note);

    // A fleet as large as asked has nothing to grow: its health sweep measured it.
    let run = quick(&[
        "--scenario",
        "scale",
        "--servers",
        "4",
        "--scale-to",
        "4",
        "--ephemeral-ports",
    ])
    .await;
    let s = run.scale.as_ref().unwrap();
    assert!(!s.ran, "{s:?}");
    assert!(s.reason.contains("already has 4 servers"), "{}", s.reason);
    assert_eq!(run.fleet.as_ref().unwrap().servers, 4);

    // A size the fleet refuses (here a group over its limit) ends the step, not the run.
    let run = quick(&[
        "--scenario",
        "scale",
        "--servers",
        "4",
        "--scale-to",
        "20000",
        "--ephemeral-ports",
    ])
    .await;
    let s = run.scale.as_ref().unwrap();
    assert!(!s.ran && s.reason.contains("--scale-to 20000"), "{s:?}");
    assert_eq!(run.fleet.as_ref().unwrap().servers, 4);
}
