//! Servers joining and leaving a running fleet (`fleet scale`): the admin API, the CLI and the
//! gateway's pools follow without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use fleet::{FleetView, Isolation, ScaleOutcome, gateway::BackendsView};
use serde_json::json;

/// `fleet scale ARGS --admin-token-file TOKEN_FILE`, run to its end.
async fn fleet_scale(args: &[&str], token_file: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .arg("scale")
        .args(args)
        .arg("--admin-token-file")
        .arg(token_file)
        .output()
        .await
        .unwrap()
}

async fn community(admin: &str, gateway: &str) -> (Vec<String>, Vec<(String, bool)>) {
    let view: FleetView = common::get_json(&format!("{admin}/servers")).await;
    let servers = view
        .servers
        .into_iter()
        .filter(|s| s.group == "community")
        .map(|s| s.id)
        .collect();
    let backends: BackendsView = common::get_json(&format!("{gateway}/backends")).await;
    let members = backends.groups["community"]
        .iter()
        .map(|m| (m.id.clone(), m.up && !m.ejected))
        .collect();
    (servers, members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_group_adds_and_removes_servers_the_gateway_routes_to() {
    let fleet = common::start_with(common::spec(2, 1, Isolation::Task), true).await;
    let admin = format!("http://{}", fleet.admin_addr().unwrap());
    let gateway = format!("http://{}", fleet.gateway_addr().unwrap());
    let mcp = format!("{gateway}/mcp");
    // Where `fleet up` would have written the token the CLI reads.
    let tokens = tempfile::tempdir().unwrap();
    let token_file = tokens.path().join("admin-token");
    fleet.admin_token().write_to(&token_file).unwrap();
    let echo = || async {
        common::post_stateless(
            &mcp,
            "tools/call",
            json!({"name": "community__echo", "arguments": {"text": "scaled"}}),
        )
        .await
    };

    // Up to 4: two new servers, healthy, in the gateway's pool, and given calls.
    let resp = common::admin_post(&fleet, "/groups/community/scale")
        .json(&json!({"count": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let outcome: ScaleOutcome = resp.json().await.unwrap();
    assert_eq!(outcome.added, ["community-0002", "community-0003"]);
    assert!(outcome.removed.is_empty());
    assert_eq!(
        fleet.wait_healthy(Duration::from_secs(10), |_, _| {}).await,
        5
    );
    let mut members = Vec::new();
    for _ in 0..200 {
        let (servers, m) = community(&admin, &gateway).await;
        assert_eq!(servers.len(), 4);
        members = m;
        if members.len() == 4 && members.iter().all(|m| m.1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        members.len() == 4 && members.iter().all(|m| m.1),
        "{members:?}"
    );
    for _ in 0..80 {
        let (status, body) = echo().await;
        assert_eq!(status, 200, "{body:?}");
    }
    let view: FleetView = common::get_json(&format!("{admin}/servers")).await;
    for id in ["community-0002", "community-0003"] {
        let s = view.servers.iter().find(|s| s.id == id).unwrap();
        assert!(s.requests > 0, "{id} got calls through the gateway: {s:?}");
    }

    // Down to 1 with the CLI: the highest indices leave, the gateway stops routing to them,
    // pinned routes to them are 404, and calls keep succeeding.
    let out = fleet_scale(&["community", "1", "--admin", &admin], &token_file).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("community: 1 servers"), "{stdout}");
    assert!(stdout.contains("removed 3"), "{stdout}");
    let (servers, members) = community(&admin, &gateway).await;
    assert_eq!(servers, ["community-0000"]);
    assert_eq!(
        members.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        ["community-0000"]
    );
    for _ in 0..20 {
        let (status, body) = echo().await;
        assert_eq!(status, 200, "{body:?}");
    }
    let (status, _) =
        common::post_stateless(&format!("{mcp}/community-0003"), "tools/list", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(fleet.registry().healthy(), 2);

    // Bad requests are clear errors and change nothing.
    for (group, body, want) in [
        ("nope", json!({"count": 2}), 404),
        ("community", json!({"count": 1_000_000}), 400),
        ("community", json!({"count": 0}), 400),
        ("community", json!({"count": -1}), 422),
        ("community", json!({"cuont": 2}), 422),
    ] {
        let resp = common::admin_post(&fleet, &format!("/groups/{group}/scale"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want, "{group} {body}");
    }
    let out = fleet_scale(&["nope", "2", "--admin", &admin], &token_file).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no group named \"nope\""), "{stderr}");
    // Another fleet's token, or none, changes nothing.
    let other = tokens.path().join("other-token");
    fleet::AdminToken::random()
        .unwrap()
        .write_to(&other)
        .unwrap();
    let out = fleet_scale(&["community", "2", "--admin", &admin], &other).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("wrong admin token"),
        "{stderr}"
    );
    let none = tokens.path().join("none");
    let out = fleet_scale(&["community", "2", "--admin", &admin], &none).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("admin token file"),
        "{stderr}"
    );
    assert_eq!(community(&admin, &gateway).await.0, ["community-0000"]);

    // Back up to 3: the indices are reused and the servers serve.
    let resp = common::admin_post(&fleet, "/groups/community/scale")
        .json(&json!({"count": 3}))
        .send()
        .await
        .unwrap();
    let outcome: ScaleOutcome = resp.json().await.unwrap();
    assert_eq!(outcome.added, ["community-0001", "community-0002"]);
    assert_eq!(
        fleet.wait_healthy(Duration::from_secs(10), |_, _| {}).await,
        4
    );

    fleet.stop().await;
}
