//! Three fleets on loopback (their own ports and repositories, one peer repository in a
//! temporary directory) write the same entities through their servers with rmcp's client
//! while they cannot see each other, then replicate: every node's `read_graph` comes to the
//! result the README's model states (observations added on both kept, a delete racing an add
//! brings the entity back with just the new observation, the type of the create with the
//! highest stamp wins), and a write on one node is read on another with `minVersionNode`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, path::Path, time::Duration};

use fleet::{
    Fleet, FleetOptions, Isolation,
    memory::replica::{NodeId, ReplicaOptions, init_peer},
};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::{Value, json};

const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

async fn start(dir: &Path, node: &str, peer: Option<&Path>) -> Fleet {
    let spec = common::spec(1, 0, Isolation::Task);
    let fleet = Fleet::start(
        spec,
        FleetOptions {
            child: None,
            admin: true,
            gateway: false,
            memory_repo: Some(dir.join(node)),
            memory_replica: ReplicaOptions {
                peers: peer.iter().map(|p| p.display().to_string()).collect(),
                node_id: Some(NodeId::parse(node).unwrap()),
                interval: Duration::from_millis(100),
                ..Default::default()
            },
            admin_token: None,
        },
    )
    .await
    .expect("fleet starts");
    assert_eq!(
        fleet.wait_healthy(Duration::from_secs(20), |_, _| {}).await,
        1
    );
    fleet
}

async fn start_all(dir: &Path, peer: Option<&Path>) -> Vec<Fleet> {
    let mut fleets = Vec::new();
    for n in NODES {
        fleets.push(start(dir, n, peer).await);
    }
    fleets
}

async fn stop_all(fleets: Vec<Fleet>) {
    for f in fleets {
        f.stop().await;
    }
}

/// Calls a memory tool on the fleet's server with rmcp's client; returns its structured result.
async fn tool(fleet: &Fleet, name: &'static str, args: Value) -> Value {
    let url = fleet.endpoints()[0].mcp_url();
    let client = common::client(&url, ProtocolVersion::V_2025_06_18).await;
    let params =
        CallToolRequestParams::new(name).with_arguments(args.as_object().cloned().unwrap());
    let result = client
        .call_tool(params)
        .await
        .unwrap_or_else(|e| panic!("{name}({args}): {e}"));
    assert_ne!(result.is_error, Some(true), "{name}({args}): {result:?}");
    let out = result
        .structured_content
        .clone()
        .expect("structured content");
    let _ = client.cancel().await;
    out
}

/// Entity name -> (type, observations in order), as `read_graph` gives them.
fn entities(graph: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    graph["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| {
            let obs = e["observations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o.as_str().unwrap().to_string())
                .collect();
            (
                e["name"].as_str().unwrap().to_string(),
                (e["entityType"].as_str().unwrap().to_string(), obs),
            )
        })
        .collect()
}

/// Waits until every node has merged every other node's newest write and all `read_graph`
/// answers agree; returns that graph.
async fn converged(fleets: &[Fleet]) -> BTreeMap<String, (String, Vec<String>)> {
    let mut last = Vec::new();
    for _ in 0..150 {
        let merged = fleets.iter().all(|f| {
            let nodes = f.memory().unwrap().stats().nodes;
            nodes.len() == fleets.len() - 1 && nodes.iter().all(|n| n.merged == n.version)
        });
        last = Vec::new();
        for f in fleets {
            last.push(entities(&tool(f, "read_graph", json!({})).await));
        }
        if merged && last.windows(2).all(|w| w[0] == w[1]) {
            return last.swap_remove(0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the nodes did not converge within 15 s: {last:#?}");
}

fn create(name: &str, entity_type: &str, observations: &[&str]) -> Value {
    json!({"entities": [{"name": name, "entityType": entity_type, "observations": observations}]})
}

fn observe(name: &str, text: &str) -> Value {
    json!({"observations": [{"entityName": name, "contents": [text]}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_writing_the_same_entities_apart_converge_to_the_documented_graph() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    init_peer(&peer).unwrap();

    // Together: a base every node has merged.
    let fleets = start_all(dir.path(), Some(&peer)).await;
    tool(
        &fleets[0],
        "create_entities",
        create("base", "thing", &["b0"]),
    )
    .await;
    tool(
        &fleets[0],
        "create_entities",
        create("doomed", "thing", &["d0"]),
    )
    .await;
    let base = converged(&fleets).await;
    assert_eq!(base["doomed"], ("thing".into(), vec!["d0".into()]));
    stop_all(fleets).await;

    // Apart (no peer): each node writes the same entities without seeing the others.
    let fleets = start_all(dir.path(), None).await;
    let (a, b, c) = (&fleets[0], &fleets[1], &fleets[2]);
    tool(a, "add_observations", observe("base", "from-a")).await;
    tool(b, "add_observations", observe("base", "from-b")).await;
    tool(a, "delete_entities", json!({"entityNames": ["doomed"]})).await;
    tool(b, "add_observations", observe("doomed", "late-b")).await;
    tool(a, "create_entities", create("twice", "person", &["t-a"])).await;
    // Later by the clock than a's create: its type wins everywhere.
    tokio::time::sleep(Duration::from_millis(20)).await;
    tool(c, "create_entities", create("twice", "robot", &["t-c"])).await;
    stop_all(fleets).await;

    // Together again: every node comes to the same graph, the one the model states.
    let fleets = start_all(dir.path(), Some(&peer)).await;
    let graph = converged(&fleets).await;
    let obs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        graph["base"],
        ("thing".into(), obs(&["b0", "from-a", "from-b"]))
    );
    assert_eq!(
        graph["doomed"],
        ("thing".into(), obs(&["late-b"])),
        "the add racing the delete brings the entity back with just its observation"
    );
    assert_eq!(graph["twice"], ("robot".into(), obs(&["t-a", "t-c"])));
    assert_eq!(graph.len(), 3, "{graph:#?}");

    // A write on one node, read on another once that node's version is merged there.
    let (a, c) = (&fleets[0], &fleets[2]);
    tool(a, "add_observations", observe("base", "now")).await;
    let v = tool(a, "memory_version", json!({})).await;
    assert_eq!(v["node"], json!("node-a"), "{v}");
    let read = tool(
        c,
        "open_nodes",
        json!({"names": ["base"], "minVersion": v["version"], "minVersionNode": "node-a",
               "timeoutMs": 10_000}),
    )
    .await;
    let seen = entities(&read);
    assert_eq!(
        seen["base"].1.last().map(String::as_str),
        Some("now"),
        "{read}"
    );
    stop_all(fleets).await;
}
