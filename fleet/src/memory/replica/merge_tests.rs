//! Nodes with their own repositories and one peer repository in a temporary directory: writes
//! of the same entities made on different nodes while they could not see each other (they
//! ran without the peer) converge, once they replicate, to the documented result on every
//! node; a node that was away catches up on start; every repository verifies.

#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use crate::memory::{
    KnowledgeGraph, Memory, MinVersion, Query, Store, StoreOptions,
    op::{AddObservations, CreateEntities, DeleteEntities, Entity, ObservationAddition, Op},
    replica::{NodeId, ReplicaOptions},
};

const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

fn options(peer: Option<&Path>, node: &str) -> StoreOptions {
    StoreOptions {
        commit_interval: Duration::from_millis(5),
        replica: ReplicaOptions {
            peers: peer.iter().map(|p| p.display().to_string()).collect(),
            node_id: Some(NodeId::parse(node).unwrap()),
            interval: Duration::from_millis(40),
            ..Default::default()
        },
        ..StoreOptions::default()
    }
}

fn create(name: &str, entity_type: &str, observations: &[&str]) -> Op {
    Op::CreateEntities(CreateEntities {
        entities: vec![Entity {
            name: name.into(),
            entity_type: entity_type.into(),
            observations: observations.iter().map(|o| (*o).into()).collect(),
        }],
    })
}

fn observe(name: &str, text: &str) -> Op {
    Op::AddObservations(AddObservations {
        observations: vec![ObservationAddition {
            entity_name: name.into(),
            contents: vec![text.into()],
        }],
    })
}

fn delete(name: &str) -> Op {
    Op::DeleteEntities(DeleteEntities {
        entity_names: vec![name.into()],
    })
}

fn open_all(dir: &Path, peer: Option<&Path>) -> Vec<Store> {
    NODES
        .iter()
        .map(|n| Store::open(&dir.join(n), options(peer, n)).unwrap())
        .collect()
}

async fn write(store: &Store, op: Op) {
    let h = store.handle();
    let seen = h.view().version();
    h.write("srv-1", seen, op).await.unwrap();
}

/// Waits until every node has merged every other node's newest write and all graphs agree.
async fn converged(stores: &[Store]) -> KnowledgeGraph {
    for _ in 0..400 {
        let graphs: Vec<KnowledgeGraph> = stores
            .iter()
            .map(|s| s.handle().view().read_graph())
            .collect();
        let merged_all = stores.iter().all(|s| {
            let nodes = s.handle().stats().nodes;
            nodes.len() == stores.len() - 1 && nodes.iter().all(|n| n.merged == n.version)
        });
        if merged_all && graphs.windows(2).all(|w| w[0] == w[1]) {
            return graphs[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let states: Vec<_> = stores
        .iter()
        .map(|s| (s.handle().stats().nodes, s.handle().view().read_graph()))
        .collect();
    panic!("the nodes did not converge within 10 s: {states:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_the_same_entities_on_different_nodes_converge_to_the_documented_result() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    crate::memory::replica::init_peer(&peer).unwrap();
    // Node a makes three entities; every node gets them.
    let stores = open_all(dir.path(), Some(&peer));
    write(&stores[0], create("x", "person", &["born"])).await;
    write(&stores[0], create("y", "person", &["first"])).await;
    write(&stores[0], create("z", "person", &["old"])).await;
    let g = converged(&stores).await;
    assert_eq!(g.entities.len(), 3);
    for s in stores {
        s.close().unwrap();
    }
    // Apart (no peer): each node writes the same entities, not seeing the others' writes.
    let stores = open_all(dir.path(), None);
    write(&stores[0], observe("x", "from a")).await;
    write(&stores[0], delete("y")).await;
    write(&stores[0], create("y", "made-on-a", &["ya"])).await;
    write(&stores[0], delete("z")).await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    write(&stores[1], observe("x", "from b")).await;
    write(&stores[1], delete("y")).await;
    write(&stores[1], create("y", "made-on-b", &["yb"])).await;
    write(&stores[2], observe("z", "late")).await;
    for s in stores {
        s.close().unwrap();
    }
    // Together again: every node ends with the same graph, the documented one.
    let stores = open_all(dir.path(), Some(&peer));
    let g = converged(&stores).await;
    let entity = |name: &str| g.entities.iter().find(|e| e.name == name).unwrap().clone();
    assert_eq!(
        entity("x").observations,
        ["born", "from a", "from b"],
        "observations added on both nodes are on both, in stamp order"
    );
    assert_eq!(
        (entity("y").entity_type.as_str(), entity("y").observations),
        ("made-on-b", vec!["ya".to_string(), "yb".to_string()]),
        "the type of the newest create wins; both creates' observations stay"
    );
    assert_eq!(
        (entity("z").entity_type.as_str(), entity("z").observations),
        ("person", vec!["late".to_string()]),
        "an add racing a delete wins: the entity comes back with only the new observation"
    );
    // Restarted, every node keeps the merged graph; every repository verifies.
    let paths: Vec<_> = NODES.iter().map(|n| dir.path().join(n)).collect();
    for s in stores {
        s.close().unwrap();
    }
    for p in &paths {
        let report = crate::memory::verify(p).unwrap();
        assert!(report.is_ok(), "{}: {:?}", p.display(), report.problems);
        let store =
            Store::open(p, options(None, p.file_name().unwrap().to_str().unwrap())).unwrap();
        assert_eq!(
            store.handle().view().read_graph(),
            g,
            "{} after a restart",
            p.display()
        );
        store.close().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_was_away_catches_up_on_start_and_a_copy_cannot_pose_as_another_node() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    crate::memory::replica::init_peer(&peer).unwrap();
    let a = Store::open(&dir.path().join("node-a"), options(Some(&peer), "node-a")).unwrap();
    for i in 0..50 {
        write(&a, create(&format!("e{i}"), "thing", &[])).await;
    }
    let written = a.handle().view().version();
    let b = Store::open(&dir.path().join("node-b"), options(Some(&peer), "node-b")).unwrap();
    let h = b.handle();
    // A read on b waits for a's version, named as a's: versions are per node.
    let wait = MinVersion {
        version: written,
        node: Some("node-a".into()),
    };
    let read = Memory::Local(h.clone())
        .read(
            Query::Open(vec!["e49".into()]),
            Some((wait, Duration::from_secs(10))),
        )
        .await
        .unwrap();
    assert_eq!(read.graph.entities.len(), 1);
    assert_eq!(h.view().read_graph(), a.handle().view().read_graph());
    h.wait_committed(h.view().version(), Duration::from_secs(5))
        .await
        .unwrap();
    let history = h.history("e7", 10);
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].node.as_deref(), history[0].operation.as_str()),
        (Some("node-a"), "create_entities"),
        "the history says which node wrote what"
    );
    b.close().unwrap();
    a.close().unwrap();
    let e = Store::open(&dir.path().join("node-b"), options(Some(&peer), "node-c")).unwrap_err();
    assert!(
        e.to_string()
            .contains("holds the history of node \"node-b\""),
        "{e}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_an_older_copy_stops_merging_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    crate::memory::replica::init_peer(&peer).unwrap();
    let a_path = dir.path().join("node-a");
    let a = Store::open(&a_path, options(Some(&peer), "node-a")).unwrap();
    write(&a, create("early", "thing", &[])).await;
    a.close().unwrap();
    let old = dir.path().join("node-a-old");
    copy_dir(&a_path, &old);
    let a = Store::open(&a_path, options(Some(&peer), "node-a")).unwrap();
    write(&a, create("later", "thing", &[])).await;
    write(&a, create("latest", "thing", &[])).await;
    a.close().unwrap();
    let b = Store::open(&dir.path().join("node-b"), options(Some(&peer), "node-b")).unwrap();
    write(&b, create("from-b", "thing", &[])).await;
    b.close().unwrap();
    // The old copy, started as node a again: the peer has a newer node-a history.
    let restored = Store::open(&old, options(Some(&peer), "node-a")).unwrap();
    let h = restored.handle();
    let mut error = None;
    for _ in 0..200 {
        error = h.stats().nodes.iter().find_map(|n| n.error.clone());
        if error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let error = error.expect("the restored node reports why it stopped merging");
    assert!(error.contains("restored from an older copy"), "{error}");
    assert!(
        h.view().entity("from-b").is_none(),
        "nothing merged once stopped"
    );
    restored.close().unwrap();
}

/// Publishes at `peer`, as node `as_node`, a root commit made from `node`'s head there with its
/// `meta.json` and `ops.jsonl` records changed by `doctor`.
fn doctored(
    peer: &Path,
    node: &str,
    as_node: &str,
    doctor: impl Fn(&mut serde_json::Value, &mut Vec<serde_json::Value>),
) {
    use crate::memory::layout::{META, OPS};
    let repo = git2::Repository::open(peer).unwrap();
    let head = repo
        .find_reference(&format!("refs/heads/nodes/{node}"))
        .unwrap()
        .peel_to_commit()
        .unwrap();
    let tree = head.tree().unwrap();
    let blob = |name: &str| {
        let id = tree.get_name(name).unwrap().id();
        repo.find_blob(id).unwrap().content().to_vec()
    };
    let mut meta: serde_json::Value = serde_json::from_slice(&blob(META)).unwrap();
    let mut ops: Vec<serde_json::Value> = blob(OPS)
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    doctor(&mut meta, &mut ops);
    let ops: Vec<String> = ops.iter().map(|o| o.to_string() + "\n").collect();
    let mut b = repo.treebuilder(Some(&tree)).unwrap();
    let meta = repo.blob(&serde_json::to_vec(&meta).unwrap()).unwrap();
    b.insert(META, meta, 0o100_644).unwrap();
    b.insert(OPS, repo.blob(ops.concat().as_bytes()).unwrap(), 0o100_644)
        .unwrap();
    let tree = repo.find_tree(b.write().unwrap()).unwrap();
    let sig = git2::Signature::now("test", "test@mcpfleet.invalid").unwrap();
    let commit = repo
        .commit(None, &sig, &sig, "doctored", &tree, &[])
        .unwrap();
    repo.reference(&format!("refs/heads/nodes/{as_node}"), commit, true, "test")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_that_cannot_be_merged_are_refused_by_name_and_the_others_still_merge() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    crate::memory::replica::init_peer(&peer).unwrap();
    let b = Store::open(&dir.path().join("node-b"), options(Some(&peer), "node-b")).unwrap();
    write(&b, create("from-b", "thing", &["ok"])).await;
    b.close().unwrap();
    // Written before writes carried their effects.
    doctored(&peer, "node-b", "node-old", |meta, _| {
        meta["effects"] = false.into();
    });
    // A write over the limits a node accepts (a 100 kB entity name).
    doctored(&peer, "node-b", "node-bad", |_, ops| {
        let long = "x".repeat(100_000);
        ops[0]["op"]["entities"][0]["name"] = long.into();
    });
    let a = Store::open(&dir.path().join("node-a"), options(Some(&peer), "node-a")).unwrap();
    let h = a.handle();
    for _ in 0..200 {
        let nodes = h.stats().nodes;
        if nodes.len() == 3
            && nodes
                .iter()
                .all(|n| n.node == "node-b" || n.error.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let nodes = h.stats().nodes;
    let error = |n: &str| {
        let found = nodes.iter().find(|s| s.node == n).unwrap();
        found.error.clone().unwrap_or_default()
    };
    assert!(
        error("node-old").contains("did not record what writes did"),
        "{nodes:?}"
    );
    assert!(error("node-bad").contains("cannot be merged"), "{nodes:?}");
    assert!(
        error("node-bad").contains("an entity name of 100000 bytes"),
        "{nodes:?}"
    );
    assert_eq!(error("node-b"), "", "{nodes:?}");
    // The good node's write is merged, neither bad one's copy of it, and a still writes.
    let names = |s: &Store| -> Vec<String> {
        s.handle()
            .view()
            .read_graph()
            .entities
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    for _ in 0..200 {
        if names(&a) == ["from-b"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(names(&a), ["from-b"]);
    write(&a, create("from-a", "thing", &[])).await;
    assert_eq!(names(&a), ["from-a", "from-b"]);
    a.close().unwrap();
}
