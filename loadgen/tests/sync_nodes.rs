//! `loadgen --scenario sync` over two replicating fleet nodes' admin APIs: every write made on
//! a server of one node is read back on a server of the other, waiting for the writer node's
//! version (versions are per node), so the lag measured is the replication's; the final check
//! finds every acknowledged write on both nodes.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::run::{healthy_fleet, launch};
use fleet::memory::replica::{NodeId, ReplicaOptions, init_peer};
use loadgen::runfile::RunFile;

async fn node(dir: &std::path::Path, peer: &std::path::Path, id: &str) -> fleet::Fleet {
    let options = fleet::FleetOptions {
        admin: true,
        memory_repo: Some(dir.join(id)),
        memory_replica: ReplicaOptions {
            peers: vec![peer.display().to_string()],
            node_id: Some(NodeId::parse(id).unwrap()),
            interval: Duration::from_millis(100),
            ..Default::default()
        },
        ..Default::default()
    };
    healthy_fleet(3, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_across_two_nodes_reads_every_write_on_the_other_node() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    init_peer(&peer).unwrap();
    let a = node(dir.path(), &peer, "node-a").await;
    let b = node(dir.path(), &peer, "node-b").await;
    let admin = |f: &fleet::Fleet| format!("http://{}", f.admin_addr().unwrap());
    let (admin_a, admin_b) = (admin(&a), admin(&b));
    let extra = [
        "--scenario",
        "sync",
        "--target",
        &admin_a,
        "--target",
        &admin_b,
        "--sync-rate",
        "50",
        "--sync-time",
        "2",
    ];
    let (_out, outcome) = launch(&extra).await;
    let outcome = outcome.expect("run");
    let text = std::fs::read_to_string(&outcome.run_file).unwrap();
    let run: RunFile = serde_json::from_str(&text).unwrap();
    let sync = run.sync.as_ref().expect("the sync scenario ran");
    assert!(sync.available && sync.ran, "{}", sync.reason);
    let f = sync.figures.as_ref().expect("figures");
    assert_eq!((f.servers, f.nodes), (6, 2));
    assert!(f.acked > 50, "{f:?}");
    assert_eq!(f.acked, f.writes, "failed: {:?}", f.failed);
    assert_eq!(f.visible, f.acked, "{:?}", f.visibility_failures);
    // Each read waited for another node's version: the lag is the replication's (rounds
    // of about 100 ms plus a commit), not the microseconds of one node's view.
    assert!(f.lag_us.p50 >= 10_000, "{:?}", f.lag_us);
    assert!(
        f.server_lag_us.is_none_or(|s| s.count == 0),
        "a node's view cannot time another node's write: {:?}",
        f.server_lag_us
    );
    let check = &f.check;
    assert!(check.complete && check.lost == 0, "{check:?}");
    assert_eq!(
        check.node_versions.keys().collect::<Vec<_>>(),
        ["node-a", "node-b"]
    );
    // Both nodes hold every probe (the check read them on servers of both).
    let report = std::fs::read_to_string(&outcome.report).unwrap();
    assert!(report.contains("of another node"), "the report says so");
    a.stop().await;
    b.stop().await;
}
