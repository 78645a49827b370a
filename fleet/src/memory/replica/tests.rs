//! Publishing through real git repositories: a bare peer in a temporary directory receives
//! the node's history on its own ref, a clone of that ref opens as the same memory, an
//! unreachable peer is retried and reported without holding up writes, and a second node
//! publishing under the same id is refused, not overwritten.

#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use git2::Repository;

use crate::memory::{
    Store, StoreOptions,
    op::{CreateEntities, Entity, Op},
    replica::{NodeId, ReplicaOptions},
    tests::support::git_fsck,
};

fn options(peers: &[&Path], node: &str) -> StoreOptions {
    StoreOptions {
        commit_interval: Duration::from_millis(5),
        replica: ReplicaOptions {
            peers: peers.iter().map(|p| p.display().to_string()).collect(),
            node_id: Some(NodeId::parse(node).unwrap()),
            interval: Duration::from_millis(50),
            ..Default::default()
        },
        ..StoreOptions::default()
    }
}

fn create(name: &str) -> Op {
    Op::CreateEntities(CreateEntities {
        entities: vec![Entity {
            name: name.into(),
            entity_type: "thing".into(),
            observations: vec![],
        }],
    })
}

fn node_ref(peer: &Path, node: &str) -> Option<git2::Oid> {
    Repository::open(peer)
        .unwrap()
        .refname_to_id(&format!("refs/heads/nodes/{node}"))
        .ok()
}

/// The head of the node's own history.
fn main_head(repo: &Path) -> git2::Oid {
    Repository::open(repo)
        .unwrap()
        .refname_to_id("refs/heads/main")
        .unwrap()
}

/// Opens, as a memory of its own, a clone of `node`'s ref at `peer` made in `dir`.
fn restore(dir: &Path, peer: &Path, node: &str) -> Store {
    let restored = dir.join(format!("restored-{node}.git"));
    let clone = Repository::init_bare(&restored).unwrap();
    clone
        .remote_anonymous(peer.to_str().unwrap())
        .unwrap()
        .fetch(
            &[format!("refs/heads/nodes/{node}:refs/heads/main")],
            None,
            None,
        )
        .unwrap();
    drop(clone);
    Store::open(&restored, StoreOptions::default()).unwrap()
}

async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not within 5 s: {what}");
}

#[tokio::test]
async fn the_history_reaches_the_peer_on_the_nodes_own_ref_and_a_clone_of_it_restores() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    Repository::init_bare(&peer).unwrap();
    let repo = dir.path().join("node-a");
    let store = Store::open(&repo, options(&[&peer], "node-a")).unwrap();
    let h = store.handle();
    for i in 0..5 {
        h.write("srv-1", 0, create(&format!("e{i}"))).await.unwrap();
    }
    h.wait_committed(5, Duration::from_secs(5)).await.unwrap();
    let head = || main_head(&repo);
    eventually("the peer holds the head, and the status says so", || {
        node_ref(&peer, "node-a") == Some(head()) && h.stats().peers[0].state == "ok"
    })
    .await;
    let stats = h.stats();
    assert_eq!(stats.node.as_deref(), Some("node-a"));
    assert_eq!(stats.peers.len(), 1);
    assert_eq!(stats.peers[0].state, "ok");
    assert!(stats.peers[0].last_success_ms.is_some());
    let graph = crate::memory::graph::Graph::from_snapshot(h.view().snapshot()).unwrap();
    h.write("srv-1", 5, create("last")).await.unwrap();
    store.close().unwrap();
    assert_eq!(
        node_ref(&peer, "node-a"),
        Some(head()),
        "closing publishes the last commit"
    );

    // The peer's ref is a backup: cloned, it opens as this node's memory.
    let store = restore(dir.path(), &peer, "node-a");
    let view = store.handle().view().clone();
    assert_eq!(view.version(), 6);
    assert!(view.entity("last").is_some());
    assert!(view.entity("e4").is_some());
    assert_eq!(graph.entity_count(), 5);
    store.close().unwrap();
}

#[tokio::test]
async fn an_unreachable_peer_is_reported_and_retried_without_holding_up_writes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-peer.git");
    let good = dir.path().join("good.git");
    Repository::init_bare(&good).unwrap();
    let repo = dir.path().join("node-a");
    let store = Store::open(&repo, options(&[&missing, &good], "node-a")).unwrap();
    let h = store.handle();
    let started = std::time::Instant::now();
    for i in 0..20 {
        h.write("srv-1", 0, create(&format!("e{i}"))).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    h.wait_committed(20, Duration::from_secs(5)).await.unwrap();
    eventually("the good peer is published to", || {
        node_ref(&good, "node-a").is_some()
    })
    .await;
    eventually("the missing peer failed", || {
        h.stats().peers[0].state == "failing"
    })
    .await;
    let stats = h.stats();
    let bad = &stats.peers[0];
    assert!(
        bad.failures >= 1 && bad.last_success_ms.is_none(),
        "{bad:?}"
    );
    assert!(bad.last_error.as_deref().is_some_and(|e| !e.is_empty()));
    // The good peer's state is shown after its round, which may still be under way.
    eventually("the good peer is ok", || h.stats().peers[1].state == "ok").await;
    // It comes up: the next try (after its backoff) publishes.
    Repository::init_bare(&missing).unwrap();
    eventually("the peer that came up is published to", || {
        node_ref(&missing, "node-a").is_some() && h.stats().peers[0].state == "ok"
    })
    .await;
    assert_eq!(h.stats().peers[0].failures, 0);
    store.close().unwrap();
}

#[tokio::test]
async fn two_nodes_under_one_id_are_refused_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    Repository::init_bare(&peer).unwrap();
    let first = Store::open(&dir.path().join("a"), options(&[&peer], "same")).unwrap();
    first
        .handle()
        .write("srv-1", 0, create("from-a"))
        .await
        .unwrap();
    first.close().unwrap();
    let published = node_ref(&peer, "same").unwrap();

    let second = Store::open(&dir.path().join("b"), options(&[&peer], "same")).unwrap();
    let h = second.handle();
    h.write("srv-1", 0, create("from-b")).await.unwrap();
    eventually("the push is refused", || {
        h.stats().peers[0].state == "failing"
    })
    .await;
    let error = h.stats().peers[0].last_error.clone().unwrap();
    assert!(
        error.contains("another node publishes under the id"),
        "{error}"
    );
    second.close().unwrap();
    assert_eq!(node_ref(&peer, "same"), Some(published), "left alone");
}

#[tokio::test]
async fn three_nodes_share_one_peer_made_by_init_peer_each_on_its_own_ref() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("shared/peer.git");
    let made = crate::memory::replica::init_peer(&peer).unwrap();
    assert!(made.created && made.nodes.is_empty());
    for (n, writes) in [("node-a", 1u64), ("node-b", 2), ("node-c", 3)] {
        let store = Store::open(&dir.path().join(n), options(&[&peer], n)).unwrap();
        for i in 0..writes {
            store
                .handle()
                .write("srv-1", 0, create(&format!("{n}-{i}")))
                .await
                .unwrap();
        }
        store.close().unwrap();
    }
    let again = crate::memory::replica::init_peer(&peer).unwrap();
    assert!(!again.created);
    assert_eq!(
        again.nodes,
        [
            ("node-a".to_string(), 1),
            ("node-b".to_string(), 2),
            ("node-c".to_string(), 3)
        ]
    );
    // Node a, started again, reads the others' histories and shows how far each got.
    let store = Store::open(&dir.path().join("node-a"), options(&[&peer], "node-a")).unwrap();
    let h = store.handle();
    eventually("node a sees b and c", || h.stats().nodes.len() == 2).await;
    let nodes: Vec<(String, u64)> = h
        .stats()
        .nodes
        .into_iter()
        .map(|n| (n.node, n.version))
        .collect();
    assert_eq!(
        nodes,
        [("node-b".to_string(), 2), ("node-c".to_string(), 3)]
    );
    store.close().unwrap();
    // Read at the peer, not copied here.
    let local = Repository::open(dir.path().join("node-a")).unwrap();
    assert!(
        local
            .references_glob("refs/peers/*")
            .unwrap()
            .next()
            .is_none()
    );
    // The packs this build writes into the peer are git's own format.
    git_fsck(&peer);
    // Not a repository and not empty: refused, nothing made.
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("file"), "x").unwrap();
    let e = crate::memory::replica::init_peer(&busy).unwrap_err();
    assert!(e.to_string().contains("is not a git repository"), "{e}");
    assert!(!busy.join("HEAD").exists());
}

#[tokio::test]
async fn a_busy_peers_packs_are_merged_and_it_stays_a_sound_backup() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    crate::memory::replica::init_peer(&peer).unwrap();
    let repo = dir.path().join("node-a");
    let store = Store::open(&repo, options(&[&peer], "node-a")).unwrap();
    let h = store.handle();
    // Each write published on its own: one pack each at the peer, past the limit.
    for i in 0..40u64 {
        h.write("srv-1", i, create(&format!("e{i}"))).await.unwrap();
        h.wait_committed(i + 1, Duration::from_secs(5))
            .await
            .unwrap();
        let head = main_head(&repo);
        eventually("the peer holds the head", || {
            node_ref(&peer, "node-a") == Some(head)
        })
        .await;
    }
    store.close().unwrap();
    let packs = crate::memory::archive::pack_count(&peer);
    assert!(packs <= 33, "{packs} packs at the peer");
    git_fsck(&peer);
    let store = restore(dir.path(), &peer, "node-a");
    assert_eq!(store.handle().view().version(), 40);
    assert!(store.handle().view().entity("e39").is_some());
    store.close().unwrap();
}

#[tokio::test]
async fn a_peer_that_lost_its_objects_gets_the_whole_history_again() {
    let dir = tempfile::tempdir().unwrap();
    let peer = dir.path().join("peer.git");
    crate::memory::replica::init_peer(&peer).unwrap();
    let repo = dir.path().join("node-a");
    let store = Store::open(&repo, options(&[&peer], "node-a")).unwrap();
    for i in 0..3 {
        store
            .handle()
            .write("srv-1", 0, create(&format!("e{i}")))
            .await
            .unwrap();
    }
    store.close().unwrap();
    assert!(node_ref(&peer, "node-a").is_some());
    // The peer's packs are gone (pruned by hand), its ref is not; and an earlier build left
    // a copy of another node's history here.
    for e in std::fs::read_dir(peer.join("objects/pack")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    {
        let local = Repository::open(&repo).unwrap();
        let head = local.refname_to_id("refs/heads/main").unwrap();
        local
            .reference("refs/peers/0/node-b", head, true, "old build")
            .unwrap();
    }
    let store = Store::open(&repo, options(&[&peer], "node-a")).unwrap();
    let h = store.handle();
    h.write("srv-1", 0, create("after")).await.unwrap();
    h.wait_committed(4, Duration::from_secs(5)).await.unwrap();
    let head = main_head(&repo);
    eventually("the new head is published", || {
        node_ref(&peer, "node-a") == Some(head)
    })
    .await;
    store.close().unwrap();
    let p = Repository::open(&peer).unwrap();
    let mut walk = p.revwalk().unwrap();
    walk.push(head).unwrap();
    for c in walk {
        let c = p.find_commit(c.unwrap()).unwrap();
        c.tree().unwrap();
    }
    git_fsck(&peer);
    let local = Repository::open(&repo).unwrap();
    assert!(
        local
            .references_glob("refs/peers/*")
            .unwrap()
            .next()
            .is_none()
    );
}
