//! The chaos scenario end to end: servers killed and paused through the admin API while load
//! runs through the gateway, in both eras. The session era matters on its own: there the
//! gateway holds the sessions (in their ids) and restates each call to a member, so a kill must
//! neither fail calls nor end a session and make its client open another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::run::{healthy_fleet, launch, quick};
use loadgen::runfile::Verdict;

/// A healthy fleet of `servers` on ephemeral ports with its admin API and gateway, as `fleet
/// up` serves them.
async fn gateway_fleet(servers: u32) -> fleet::Fleet {
    let options = fleet::FleetOptions {
        admin: true,
        gateway: true,
        ..Default::default()
    };
    healthy_fleet(servers, options).await
}

/// A chaos run against `fleet` from outside: load through its gateway's `/mcp`, faults through
/// its admin API with the token from a file, as `fleet up` writes it, then `extra`.
async fn chaos_from_outside(fleet: &fleet::Fleet, extra: &[&str]) -> loadgen::runfile::RunFile {
    let gateway = format!("http://{}/mcp", fleet.gateway_addr().unwrap());
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    fleet.admin_token().write_to(&token_file).unwrap();
    let token_file = token_file.display().to_string();
    let mut argv = vec![
        "--target",
        &gateway,
        "--admin",
        &admin,
        "--admin-token-file",
        &token_file,
        "--scenario",
        "chaos",
    ];
    argv.extend_from_slice(extra);
    quick(&argv).await
}

/// The aim under chaos: at least 99.9 % of the measured requests succeeded.
fn assert_999(r: &loadgen::runfile::Results) {
    assert!(
        r.ok * 1000 >= r.requests * 999,
        "{} of {} succeeded: {:?}",
        r.ok,
        r.requests,
        r.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kills_and_pauses_servers_under_load_through_the_gateway() {
    let run = quick(&[
        "--servers",
        "10",
        "--scenario",
        "chaos",
        "--chaos",
        "kill:20%",
        "--chaos",
        "pause:1:300ms",
        "--chaos-time",
        "3",
        "--chaos-rate",
        "100",
        "--ephemeral-ports",
    ])
    .await;
    let c = run.chaos.as_ref().expect("the chaos scenario ran");
    assert!(c.through_gateway, "{c:?}");
    assert!(c.load_target.ends_with("/mcp"), "{}", c.load_target);
    assert_eq!(c.isolation.as_deref(), Some("task"));
    assert_eq!(c.servers, 10);
    assert_eq!(c.faults.len(), 3);
    let mut servers: Vec<&str> = c.faults.iter().map(|f| f.server.as_str()).collect();
    servers.sort_unstable();
    servers.dedup();
    assert_eq!(servers.len(), 3, "distinct servers");
    for f in &c.faults {
        assert!(f.error.is_none(), "{f:?}");
        assert!(f.recovered_ms.is_some(), "recovered: {f:?}");
        assert!(f.at_ms < 3_000, "{f:?}");
        if f.action == "kill" {
            assert!(f.fleet_detect_ms.is_some(), "{f:?}");
            assert!(f.gateway_detect_ms.is_some(), "{f:?}");
            assert!(f.recovered_ms >= f.fleet_detect_ms, "{f:?}");
        } else {
            assert_eq!(f.action, "pause");
            assert!(f.lasted_ms.is_some_and(|ms| ms >= 300), "{f:?}");
        }
    }
    assert_eq!(c.recovery().1, 0);
    assert!(c.results.requests > 100, "{}", c.results.requests);
    assert!(c.results.ok > 0);
    for id in ["recovery_uptime", "uptime_999_failover"] {
        let claim = run.claims.iter().find(|k| k.id == id).expect(id);
        assert_ne!(claim.verdict, Verdict::NotMeasured, "{claim:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_against_targets_needs_an_admin_api_and_uses_one() {
    let (_out, result) =
        launch(&["--target", "http://127.0.0.1:9/mcp", "--scenario", "chaos"]).await;
    let err = format!("{:#}", result.expect_err("no admin API"));
    assert!(err.contains("--admin"), "{err}");

    // A fleet with its gateway, measured from outside: load through the gateway, faults
    // through the admin API.
    let fleet = gateway_fleet(6).await;
    let run = chaos_from_outside(
        &fleet,
        &[
            "--chaos",
            "kill:2",
            "--chaos-time",
            "2",
            "--chaos-rate",
            "50",
            "--tool",
            r#"community__echo:{"text":"chaos"}"#,
        ],
    )
    .await;
    let c = run.chaos.expect("the chaos scenario ran");
    assert!(c.through_gateway);
    assert_eq!(c.isolation.as_deref(), Some("task"));
    assert_eq!(c.faults.len(), 2);
    assert!(c.faults.iter().all(|f| f.recovered_ms.is_some()), "{c:?}");
    assert!(c.results.ok > 0);
    fleet.stop().await;
}

/// The sum of the gateway's `/metrics` request counters for `method` (both outcomes).
async fn gateway_requests(gateway: std::net::SocketAddr, method: &str) -> u64 {
    let text = reqwest::get(format!("http://{gateway}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("method=\"{method}\"");
    text.lines()
        .filter(|l| l.starts_with("mcpfleet_gateway_requests_total{") && l.contains(&series))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_era_users_ride_out_kills_in_the_gateways_sessions() {
    // 10 servers (7 community, 3 security), one of them killed under load: each user opens one
    // gateway session and calls both groups' prefixed tools in it.
    let fleet = gateway_fleet(10).await;
    let gateway_addr = fleet.gateway_addr().unwrap();
    let run = chaos_from_outside(
        &fleet,
        &[
            "--protocol",
            "2025-11-25",
            "--chaos",
            "kill:10%",
            "--chaos-time",
            "3",
            "--chaos-rate",
            "200",
            "--tool",
            r#"community__echo@3:{"text":"chaos"}"#,
            "--tool",
            r#"security__scan_secrets:{"content":"password: hunter2"}"#,
        ],
    )
    .await;
    assert_eq!(run.config.protocol_version, "2025-11-25");
    let c = run.chaos.expect("the chaos scenario ran");
    assert!(c.through_gateway);
    assert_eq!(c.faults.len(), 1);
    assert!(c.faults.iter().all(|f| f.error.is_none()), "{c:?}");
    let r = &c.results;
    assert!(r.requests > 300, "{}", r.requests);
    assert_999(r);
    // One session per user (64 at least in chaos) and the health sweep's: a kill ended none,
    // so none was opened again; every call went through a session as a prefixed tool.
    let sessions = gateway_requests(gateway_addr, "initialize").await;
    assert!((1..=65).contains(&sessions), "{sessions} sessions opened");
    let calls = gateway_requests(gateway_addr, "tools/call").await;
    assert!(
        calls >= r.requests,
        "{calls} calls for {} requests",
        r.requests
    );
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_era_chaos_of_an_embedded_fleet_goes_through_its_gateway() {
    // What `loadgen --protocol 2025-11-25 --scenario chaos` runs, made short: the embedded
    // gateway's `/mcp` in a session, every group's tools under their prefixes.
    let run = quick(&[
        "--servers",
        "10",
        "--protocol",
        "2025-11-25",
        "--scenario",
        "chaos",
        "--chaos-time",
        "3",
        "--chaos-rate",
        "200",
        "--ephemeral-ports",
    ])
    .await;
    assert_eq!(run.config.protocol_version, "2025-11-25");
    let c = run.chaos.as_ref().expect("the chaos scenario ran");
    assert!(c.through_gateway, "{c:?}");
    assert_eq!(c.faults.len(), 1, "kill:10% of 10");
    assert!(c.faults.iter().all(|f| f.recovered_ms.is_some()), "{c:?}");
    let r = &c.results;
    assert!(r.requests > 300, "{}", r.requests);
    assert_999(r);
    let names: Vec<&str> = r.by_call.iter().map(|b| b.name.as_str()).collect();
    assert!(
        names.iter().any(|n| n.starts_with("community__"))
            && names.iter().any(|n| n.starts_with("security__")),
        "{names:?}"
    );
}
