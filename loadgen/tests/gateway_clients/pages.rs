//! A tools list longer than one of the gateway's pages (100 tools): both clients, in both eras,
//! follow `nextCursor` to the end and see every tool once, so the cursors the gateway hands out
//! are ones real clients take back. The shared fleet's list fits one page, so this test has a
//! fleet of its own: 21 one-server groups of 5 tools each.

use std::{collections::BTreeSet, time::Duration};

use fleet::Profile;
use rmcp::model::ProtocolVersion;

use super::{
    Addrs, McpClient,
    common::interop::software,
    group,
    python_sdk::{AUTO, HANDSHAKE, PyClient},
    rmcp_client::Rmcp,
    spec_of, start_fleet,
};

/// Groups besides `community` and `security`, each a community server under another name.
const SHELVES: usize = 19;
/// Tools each group lists (a community server without memory, and a security server).
const TOOLS_PER_GROUP: usize = 5;

/// Every tool once, `TOOLS_PER_GROUP` of each group.
fn assert_every_tool_once(names: &[String], groups: &[String]) {
    let distinct: BTreeSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "no tool twice: {names:?}");
    for g in groups {
        let prefix = format!("{g}__");
        let of_group = names.iter().filter(|n| n.starts_with(&prefix)).count();
        assert_eq!(of_group, TOOLS_PER_GROUP, "{g}'s tools in {names:?}");
    }
    assert_eq!(names.len(), groups.len() * TOOLS_PER_GROUP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_clients_follow_next_cursor_over_a_list_longer_than_a_page() {
    let mut groups = vec![
        group("community", Profile::Community, 1),
        group("security", Profile::Security, 1),
    ];
    groups.extend((1..=SHELVES).map(|i| group(&format!("shelf{i:02}"), Profile::Community, 1)));
    let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let mut spec = spec_of(groups);
    // 21 servers: probed less often than the shared fleet's few.
    spec.health.interval = Duration::from_millis(500);
    let fleet = start_fleet(spec).await;
    let url = Addrs::of(&fleet).mcp();
    assert!(names.len() * TOOLS_PER_GROUP > 100, "more than a page");

    for era in [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28] {
        let mut client = Rmcp::connect_at(&url, era).await;
        assert_every_tool_once(&client.list().await, &names);
        client.close().await;
    }
    if let Some(sw) = software() {
        for (mode, version) in [(HANDSHAKE, "2025-11-25"), (AUTO, "2026-07-28")] {
            let mut client = PyClient::start_at(&url, &sw, mode, version).await;
            assert_every_tool_once(&client.list().await, &names);
            client.close().await;
        }
    }
    fleet.stop().await;
}
