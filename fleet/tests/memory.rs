//! The shared memory under concurrent writers, through the public API only: every
//! acknowledged write is in the view and in git history exactly once, and the repository
//! passes our verify and `git fsck`.

#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use fleet::memory::{
    AddObservations, CreateEntities, Entity, ObservationAddition, Op, Record, Store, StoreOptions,
    verify,
};

const WRITERS: usize = 50;
const OBSERVATIONS: usize = 8;

fn observe(name: &str, text: String) -> Op {
    Op::AddObservations(AddObservations {
        observations: vec![ObservationAddition {
            entity_name: name.into(),
            contents: vec![text],
        }],
    })
}

/// Every record along `refs/heads/main`, by version.
fn history(path: &Path) -> BTreeMap<u64, Record> {
    let repo = git2::Repository::open(path).unwrap();
    let mut out = BTreeMap::new();
    let mut next = repo.refname_to_id("refs/heads/main").ok();
    while let Some(oid) = next {
        let commit = repo.find_commit(oid).unwrap();
        let tree = commit.tree().unwrap();
        let blob = repo
            .find_blob(tree.get_path(Path::new("ops.jsonl")).unwrap().id())
            .unwrap();
        for line in blob
            .content()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let r: Record = serde_json::from_slice(line).unwrap();
            assert!(
                out.insert(r.version, r).is_none(),
                "a version is in two commits"
            );
        }
        next = commit.parent_id(0).ok();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory");
    let store = Store::open(
        &path,
        StoreOptions {
            commit_interval: Duration::from_millis(20),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let handle = store.handle();
    let hub = Op::CreateEntities(CreateEntities {
        entities: vec![Entity {
            name: "hub".into(),
            entity_type: "place".into(),
            observations: vec![],
        }],
    });
    handle.write("srv-0000", 0, hub).await.unwrap();

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            let server = format!("srv-{w:04}");
            let name = format!("entity-{w}");
            let mut acked = Vec::new();
            let create = Op::CreateEntities(CreateEntities {
                entities: vec![Entity {
                    name: name.clone(),
                    entity_type: "thing".into(),
                    observations: vec![format!("{name} exists")],
                }],
            });
            let seen = h.view().version();
            acked.push((
                h.write(&server, seen, create.clone()).await.unwrap(),
                create,
            ));
            for i in 0..OBSERVATIONS {
                let target = if i % 2 == 0 { name.as_str() } else { "hub" };
                let op = observe(target, format!("{server} note {i}"));
                let seen = h.view().version();
                acked.push((h.write(&server, seen, op.clone()).await.unwrap(), op));
            }
            (server, acked)
        }));
    }
    let mut acked = BTreeMap::new();
    for t in tasks {
        let (server, list) = t.await.unwrap();
        for (ack, op) in list {
            assert!(acked.insert(ack.version, (server.clone(), op)).is_none());
        }
    }
    let total = 1 + WRITERS * (1 + OBSERVATIONS);
    assert_eq!(acked.len() + 1, total);

    // The view holds every write exactly once.
    let graph = handle.view().read_graph();
    assert_eq!(graph.entities.len(), WRITERS + 1);
    let hub = graph.entities.iter().find(|e| e.name == "hub").unwrap();
    assert_eq!(hub.observations.len(), WRITERS * OBSERVATIONS / 2);
    for e in graph.entities.iter().filter(|e| e.name != "hub") {
        assert_eq!(e.observations.len(), 1 + OBSERVATIONS / 2, "{}", e.name);
    }
    let stats = handle.stats();
    assert_eq!(stats.acked_version, total as u64);
    assert!(
        stats.batches < total as u64,
        "writes were grouped: {stats:?}"
    );
    store.close().unwrap();

    // Git holds every acknowledged op exactly once, as acknowledged.
    let ops = history(&path);
    assert_eq!(
        ops.keys().copied().collect::<Vec<_>>(),
        (1..=total as u64).collect::<Vec<_>>()
    );
    for (version, (server, op)) in &acked {
        let r = &ops[version];
        assert_eq!((&r.server, &r.op), (server, op));
    }
    let report = verify(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.ops, total as u64);
    if let Ok(out) = Command::new("git")
        .args(["fsck", "--full", "--strict"])
        .current_dir(&path)
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
