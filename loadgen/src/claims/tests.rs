//! The claims judged on made-up evidence: verdicts, claims files, the sync and chaos claims.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::{collections::BTreeMap, path::Path, time::Duration};

use super::{
    evidence::Evidence,
    judge::evaluate,
    spec::{load, parse},
};
use crate::{
    mcp::ErrorClass,
    measure::HealthSweep,
    recorder::Recorder,
    runfile::{
        ChaosResult, Claim, Config, FleetMemory, ScaleFigures, ScaleResult, SyncFigures,
        SyncResult, Verdict,
    },
};

fn config(users: usize) -> Config {
    Config {
        mode: "embedded".into(),
        servers: 500,
        users,
        warmup_s: 0.0,
        duration_s: 1.0,
        timeout_s: 1.0,
        ephemeral_ports: false,
        targets: vec![],
        scenarios: vec!["latency".into()],
        protocol: "auto".into(),
        protocol_version: "2026-07-28".into(),
        load_model: String::new(),
        mix: vec![],
        tls: None,
    }
}

fn sweep(servers: usize, ok: usize) -> HealthSweep {
    HealthSweep {
        servers,
        checked: servers,
        ok,
        availability: ok as f64 / servers as f64,
        seconds: 0.1,
        interrupted: false,
        failures: vec![],
        protocols: BTreeMap::new(),
        versions: BTreeMap::new(),
    }
}

/// Evidence with none of the scenarios' sections; tests add the one they judge.
fn evidence<'a>(config: &'a Config, health: &'a HealthSweep) -> Evidence<'a> {
    Evidence {
        config,
        fleet: None,
        health,
        latency: None,
        connections: None,
        capacity: None,
        sync: None,
        chaos: None,
        scale: None,
    }
}

/// The seed claims a latency run with a health sweep judges.
const LATENCY_RUN_CLAIMS: [&str; 4] = [
    "average_response_21ms",
    "availability_100",
    "success_rate_100",
    "servers_500",
];

/// Asserts that every claim in `ids` got `want`.
fn assert_verdicts(v: &[(String, Verdict)], ids: [&str; 4], want: Verdict) {
    for id in ids {
        assert_eq!(verdict(v, id), want, "{id}");
    }
}

fn verdicts(health: &HealthSweep, recorder: &Recorder) -> Vec<(String, Verdict)> {
    let results = crate::results::of(recorder, 1.0).unwrap();
    let config = config(64);
    let e = Evidence {
        latency: Some(&results),
        ..evidence(&config, health)
    };
    let specs = load(None).expect("the shipped claims parse");
    evaluate(&specs, &e)
        .into_iter()
        .map(|c| (c.id, c.verdict))
        .collect()
}

fn verdict(v: &[(String, Verdict)], id: &str) -> Verdict {
    v.iter().find(|c| c.0 == id).expect(id).1
}

#[test]
fn verdicts_follow_the_evidence() {
    let mut fast = Recorder::default();
    fast.record(0, Duration::from_millis(2), Ok(()));
    let v = verdicts(&sweep(500, 500), &fast);
    assert_verdicts(&v, LATENCY_RUN_CLAIMS, Verdict::Pass);
    assert_verdicts(
        &v,
        [
            "scale_1000_servers",
            "connections_1000",
            "git_memory_sync",
            "recovery_uptime",
        ],
        Verdict::NotMeasured,
    );

    let mut slow = Recorder::default();
    slow.record(0, Duration::from_millis(40), Ok(()));
    slow.record(0, Duration::from_millis(1), Err(ErrorClass::Timeout));
    let v = verdicts(&sweep(500, 499), &slow);
    assert_verdicts(&v, LATENCY_RUN_CLAIMS, Verdict::Fail);

    let v = verdicts(&sweep(10, 10), &fast);
    assert_eq!(
        verdict(&v, "servers_500"),
        Verdict::NotMeasured,
        "a 10-server fleet says nothing about 500"
    );
    let v = verdicts(&sweep(10, 10), &Recorder::default());
    assert_eq!(verdict(&v, "average_response_21ms"), Verdict::NotMeasured);
    assert_eq!(verdict(&v, "success_rate_100"), Verdict::NotMeasured);
}

fn chaos_run(errors: u64, recovered: &[Option<u64>]) -> ChaosResult {
    let mut r = Recorder::default();
    for _ in 0..10_000 {
        r.record(0, Duration::from_millis(2), Ok(()));
    }
    for _ in 0..errors {
        r.record(0, Duration::from_millis(2), Err(ErrorClass::Connect));
    }
    let fault = |recovered_ms: Option<u64>| crate::runfile::FaultRecord {
        server: "community-0001".into(),
        action: "kill".into(),
        at_ms: 10,
        at_unix_ms: 1,
        lasted_ms: None,
        fleet_detect_ms: Some(1),
        gateway_detect_ms: Some(1),
        recovered_ms,
        error: None,
    };
    ChaosResult {
        specs: vec!["kill:10%".into()],
        load_target: "http://127.0.0.1:7999/mcp".into(),
        through_gateway: true,
        isolation: Some("process".into()),
        servers: 10,
        faults: recovered.iter().map(|r| fault(*r)).collect(),
        recovery_wait_ms: 15_000,
        results: crate::results::of(&r, 10.0).unwrap(),
    }
}

#[test]
fn chaos_claims_judge_recovery_and_success_under_faults() {
    let config = config(64);
    let health = sweep(10, 10);
    let judge = |c: &ChaosResult| {
        let e = Evidence {
            chaos: Some(c),
            ..evidence(&config, &health)
        };
        let specs = load(None).expect("the shipped claims parse");
        evaluate(&specs, &e)
            .into_iter()
            .map(|c| (c.id, c.verdict))
            .collect::<Vec<_>>()
    };
    let good = judge(&chaos_run(5, &[Some(300), Some(1_900)]));
    assert_eq!(verdict(&good, "recovery_uptime"), Verdict::Pass);
    assert_eq!(verdict(&good, "uptime_999_failover"), Verdict::Pass);
    let slow = judge(&chaos_run(5, &[Some(300), Some(2_100)]));
    assert_eq!(verdict(&slow, "recovery_uptime"), Verdict::Fail);
    let never = judge(&chaos_run(5, &[Some(300), None]));
    assert_eq!(verdict(&never, "recovery_uptime"), Verdict::Fail);
    let failing = judge(&chaos_run(11, &[Some(300)]));
    assert_eq!(verdict(&failing, "uptime_999_failover"), Verdict::Fail);
    let none = judge(&chaos_run(0, &[]));
    assert_eq!(verdict(&none, "recovery_uptime"), Verdict::NotMeasured);
}

#[test]
fn claims_files_are_validated_with_the_file_named() {
    let bad = |text: &str, expect: &str| {
        let err = parse(text, "mine.toml").expect_err(text);
        let msg = format!(
            "{err}: {}",
            std::error::Error::source(&err).map_or(String::new(), |s| s.to_string())
        );
        assert!(msg.contains("mine.toml") && msg.contains(expect), "{msg}");
    };
    let ok = "[[claims]]\nid = \"a\"\ntitle = \"A\"\nquote = \"q\"\nmetric = \"latency_p99_ms\"\ncomparator = \"<\"\ntarget = 5\n";
    assert_eq!(parse(ok, "mine.toml").expect("valid").len(), 1);
    bad(
        &ok.replace("latency_p99_ms", "latency_p42_ms"),
        "latency_p42_ms",
    );
    bad(&ok.replace("\"<\"", "\"=<\""), "=<");
    bad(&format!("{ok}colour = \"red\"\n"), "colour");
    bad(&format!("{ok}{ok}"), "used twice");
    bad("claims = []", "no [[claims]]");
    bad(&ok.replace("id = \"a\"", "id = \"A b\""), "[a-z0-9_]");
    let missing = load(Some(Path::new("/nonexistent/claims.toml"))).expect_err("missing");
    assert!(missing.to_string().contains("/nonexistent/claims.toml"));
}

fn sync_verdicts(sync: &SyncResult) -> Vec<Claim> {
    let config = config(64);
    let health = sweep(4, 4);
    let specs = load(None).expect("the shipped claims parse");
    evaluate(
        &specs,
        &Evidence {
            sync: Some(sync),
            ..evidence(&config, &health)
        },
    )
    .into_iter()
    .filter(|c| c.id == "git_memory_sync" || c.id == "memory_no_lost_writes")
    .collect()
}

fn ran(figures: SyncFigures) -> SyncResult {
    SyncResult {
        available: true,
        ran: true,
        reason: crate::scenario::sync::figures::summary(&figures),
        figures: Some(figures),
    }
}

#[test]
fn sync_claims_judge_lag_and_lost_writes() {
    use crate::scenario::sync::figures::example_figures;
    // 100 writes visible within 1-3 ms, nothing lost: both pass.
    let fast: Vec<u64> = (0..100).map(|i| 1_000 + i * 20).collect();
    let v = sync_verdicts(&ran(example_figures(&fast, 0, 0)));
    assert_eq!(v[0].verdict, Verdict::Pass, "{:?}", v[0]);
    assert!(v[0].measured.as_deref().unwrap().contains("baseline read"));
    assert_eq!(v[1].verdict, Verdict::Pass, "{:?}", v[1]);
    assert!(v[1].measured.as_deref().unwrap().starts_with("0 of 100"));

    // A lost write fails the claim, whatever the lag.
    let v = sync_verdicts(&ran(example_figures(&fast, 0, 1)));
    assert_eq!(v[1].verdict, Verdict::Fail);
    assert!(
        v[1].measured
            .as_deref()
            .unwrap()
            .contains("sync-0a1b2c3d-0")
    );

    // Writes never visible count as slower than all: 2 of 100 push p99 past every lag.
    let v = sync_verdicts(&ran(example_figures(&fast[..98], 2, 0)));
    assert_eq!(v[0].verdict, Verdict::Fail, "{:?}", v[0]);
    assert!(
        v[0].measured
            .as_deref()
            .unwrap()
            .starts_with("p99 not reached")
    );
    // One of 1000 does not: p99 is then a measured lag, the failure named.
    let many: Vec<u64> = (0..999).map(|i| 1_000 + i).collect();
    let v = sync_verdicts(&ran(example_figures(&many, 1, 0)));
    assert_eq!(v[0].verdict, Verdict::Pass, "{:?}", v[0]);
    assert!(v[0].measured.as_deref().unwrap().contains("never visible"));

    // An incomplete check gives no verdict on lost writes (but a loss it saw fails).
    let mut figures = example_figures(&fast, 0, 0);
    figures.check.complete = false;
    figures.check.read_errors = 1;
    let v = sync_verdicts(&ran(figures));
    assert_eq!(v[1].verdict, Verdict::NotMeasured);
    assert!(v[1].note.contains("incomplete"), "{}", v[1].note);

    // Not run: both not measured, with the reason.
    let not_run = SyncResult {
        available: false,
        ran: false,
        reason: "the target x lacks the memory tools".into(),
        figures: None,
    };
    for c in sync_verdicts(&not_run) {
        assert_eq!(c.verdict, Verdict::NotMeasured);
        assert!(c.note.contains("lacks the memory tools"), "{}", c.note);
    }
}

#[test]
fn own_claims_judge_throughput() {
    let specs = parse(
        "[[claims]]\nid = \"rps\"\ntitle = \"Fast\"\nquote = \"q\"\nmetric = \"throughput_rps\"\ncomparator = \">=\"\ntarget = 0.5\n",
        "mine.toml",
    )
    .expect("valid");
    let mut r = Recorder::default();
    r.record(0, Duration::from_millis(2), Ok(()));
    let results = crate::results::of(&r, 1.0).unwrap();
    let config = config(1);
    let health = sweep(1, 1);
    let claims = evaluate(
        &specs,
        &Evidence {
            latency: Some(&results),
            ..evidence(&config, &health)
        },
    );
    assert_eq!(claims[0].verdict, Verdict::Pass);
    assert_eq!(claims[0].criterion, "throughput_rps >= 0.5");
}

/// A scale step that grew 500 servers to `servers`, of which `ok` answered its sweep.
fn scaled(servers: usize, ok: usize) -> ScaleResult {
    ScaleResult {
        ran: true,
        reason: String::new(),
        figures: Some(ScaleFigures {
            isolation: "task".into(),
            from_servers: 500,
            to_servers: servers,
            groups: vec![],
            request_ms: 3.0,
            healthy_s: Some(0.5),
            healthy: servers,
            wait_limit_s: 60.0,
            memory_before: FleetMemory::default(),
            memory_after: FleetMemory::default(),
            sweep: sweep(servers, ok),
        }),
    }
}

/// The scale claim judged on a 500-server health sweep (or `health`) and `scale`.
fn scale_claim(health: &HealthSweep, scale: Option<&ScaleResult>) -> Claim {
    let config = config(64);
    let e = Evidence {
        scale,
        ..evidence(&config, health)
    };
    let specs = load(None).unwrap();
    evaluate(&specs, &e)
        .into_iter()
        .find(|c| c.id == "scale_1000_servers")
        .unwrap()
}

#[test]
fn the_scale_claim_is_judged_on_the_sweep_after_the_fleet_grew() {
    let h = sweep(500, 500);
    let c = scale_claim(&h, Some(&scaled(1000, 1000)));
    assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
    let measured = c.measured.unwrap();
    assert!(measured.contains("1000/1000 servers answered after the fleet grew from 500"));
    assert!(
        measured.contains("0.50 s after the scale request"),
        "{measured}"
    );

    // One server that does not answer at 1000 fails it.
    let c = scale_claim(&h, Some(&scaled(1000, 999)));
    assert_eq!(c.verdict, Verdict::Fail, "{c:?}");

    // Growing to fewer servers than the claim names says nothing about it.
    let c = scale_claim(&h, Some(&scaled(16, 16)));
    assert_eq!(c.verdict, Verdict::NotMeasured);
    assert!(c.note.contains("measured 16 servers"), "{}", c.note);

    // Without the step, the 500-server sweep is too small, and the note says why.
    let c = scale_claim(&h, None);
    assert_eq!(c.verdict, Verdict::NotMeasured);
    assert!(c.note.contains("did not include it"), "{}", c.note);
    let skipped = ScaleResult {
        ran: false,
        reason: "the servers are --target servers".into(),
        figures: None,
    };
    let c = scale_claim(&h, Some(&skipped));
    assert_eq!(c.verdict, Verdict::NotMeasured);
    assert!(
        c.note.contains("did not run: the servers are --target"),
        "{}",
        c.note
    );

    // A fleet started at 1000 (`--servers 1000 --ephemeral-ports`) is judged on its sweep.
    let started_big = sweep(1000, 1000);
    let c = scale_claim(&started_big, Some(&skipped));
    assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
    assert!(c.measured.unwrap().contains("health sweep"));
    let c = scale_claim(&sweep(1000, 990), None);
    assert_eq!(c.verdict, Verdict::Fail);
}
