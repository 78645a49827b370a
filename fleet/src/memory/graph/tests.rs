//! The merge rules and queries on small graphs: refused and partial ops, add-wins races,
//! rollback, snapshots and deterministic replay.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::memory::op::{
    AddObservations, CreateRelations, DeleteEntities, DeleteObservations, DeleteRelations,
    ObservationAddition, ObservationDeletion, Op, Relation,
};
use crate::memory::test_ops::create_entities;

fn create(names: &[&str]) -> Op {
    create_entities(names, "person", |n| format!("{n} exists"))
}

fn observe(name: &str, texts: &[&str]) -> Op {
    Op::AddObservations(AddObservations {
        observations: vec![ObservationAddition {
            entity_name: name.into(),
            contents: texts.iter().map(|t| (*t).into()).collect(),
        }],
    })
}

fn rel(from: &str, to: &str) -> Relation {
    Relation {
        from: from.into(),
        to: to.into(),
        relation_type: "knows".into(),
    }
}

fn relate(pairs: &[(&str, &str)]) -> Op {
    Op::CreateRelations(CreateRelations {
        relations: pairs.iter().map(|(a, b)| rel(a, b)).collect(),
    })
}

fn delete(names: &[&str]) -> Op {
    Op::DeleteEntities(DeleteEntities {
        entity_names: names.iter().map(|n| (*n).into()).collect(),
    })
}

/// Applies ops as consecutive versions; each with the given `seen`.
fn run(g: &mut Graph, ops: &[(Op, u64)]) -> Vec<Result<OpResult, ApplyError>> {
    ops.iter()
        .map(|(op, seen)| g.apply(op, g.version() + 1, *seen))
        .collect()
}

#[test]
fn create_ignores_existing_and_reports_only_new() {
    let mut g = Graph::new();
    let r = run(
        &mut g,
        &[(create(&["a", "b"]), 0), (create(&["b", "c", "c"]), 1)],
    );
    let OpResult::CreatedEntities(created) = r[1].clone().unwrap() else {
        panic!()
    };
    assert_eq!(
        created.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(g.entity_count(), 3);
    assert_eq!(g.version(), 2);
}

#[test]
fn add_observations_to_a_missing_entity_is_refused_whole() {
    let mut g = Graph::new();
    run(&mut g, &[(create(&["a"]), 0)]);
    let op = Op::AddObservations(AddObservations {
        observations: vec![
            ObservationAddition {
                entity_name: "a".into(),
                contents: vec!["new".into()],
            },
            ObservationAddition {
                entity_name: "ghost".into(),
                contents: vec!["x".into()],
            },
        ],
    });
    let err = g.apply(&op, 2, 1).unwrap_err();
    assert_eq!(err.to_string(), "Entity with name ghost not found");
    assert_eq!(g.version(), 1);
    assert_eq!(g.entity("a").unwrap().observations, ["a exists"]);
    assert!(matches!(
        g.apply(&op, 5, 1),
        Err(ApplyError::OutOfOrder { current: 1, .. })
    ));
}

#[test]
fn delete_removes_only_what_the_deleter_saw() {
    // v1 create a; v2 (seen 1) add obs; v3 delete a with seen 1: the create and the
    // first observation go, the unseen observation keeps the entity.
    let mut g = Graph::new();
    let r = run(
        &mut g,
        &[
            (create(&["a"]), 0),
            (observe("a", &["late"]), 1),
            (delete(&["a"]), 1),
        ],
    );
    assert_eq!(
        r[2].clone().unwrap(),
        OpResult::Deleted(Deleted {
            entities: 0,
            observations: 1,
            relations: 0,
            kept: 1
        })
    );
    let a = g.entity("a").unwrap();
    assert_eq!(a.observations, ["late"]);
    assert_eq!(a.entity_type, "person");
    // A delete that saw everything removes it for good and leaves a tombstone.
    run(&mut g, &[(delete(&["a"]), 3)]);
    assert!(g.entity("a").is_none());
    assert_eq!(g.tombstone_count(), 1);
}

#[test]
fn add_racing_a_delete_brings_the_entity_back() {
    // The writer saw v1 (a exists) but not the delete at v2: add wins.
    let mut g = Graph::new();
    let r = run(
        &mut g,
        &[
            (create(&["a", "b"]), 0),
            (relate(&[("a", "b"), ("b", "a")]), 1),
            (delete(&["a"]), 2),
            (observe("a", &["still here"]), 2),
        ],
    );
    assert_eq!(
        r[2].clone().unwrap(),
        OpResult::Deleted(Deleted {
            entities: 1,
            observations: 1,
            relations: 2,
            kept: 0
        })
    );
    assert!(r[3].is_ok());
    let a = g.entity("a").unwrap();
    assert_eq!(a.observations, ["still here"]);
    assert_eq!(a.entity_type, "person");
    assert_eq!(g.relation_count(), 0);
    assert_eq!(g.tombstone_count(), 0);
    // A writer that had seen the delete is refused instead.
    run(&mut g, &[(delete(&["a"]), 4)]);
    let err = g.apply(&observe("a", &["x"]), 6, 5).unwrap_err();
    assert!(matches!(err, ApplyError::EntityNotFound { .. }));
}

#[test]
fn relations_created_after_seen_survive_a_delete() {
    let mut g = Graph::new();
    run(
        &mut g,
        &[
            (create(&["a", "b"]), 0),
            (relate(&[("a", "b")]), 0),
            (relate(&[("b", "a")]), 0),
            (
                Op::DeleteRelations(DeleteRelations {
                    relations: vec![rel("a", "b"), rel("b", "a"), rel("x", "y")],
                }),
                2,
            ),
        ],
    );
    assert_eq!(g.read_graph().relations, [rel("b", "a")]);
}

#[test]
fn delete_observations_can_remove_the_entity() {
    let mut g = Graph::new();
    run(
        &mut g,
        &[
            (create(&["a"]), 0),
            (observe("a", &["late"]), 0),
            (delete(&["a"]), 1),
        ],
    );
    let r = run(
        &mut g,
        &[(
            Op::DeleteObservations(DeleteObservations {
                deletions: vec![ObservationDeletion {
                    entity_name: "a".into(),
                    observations: vec!["late".into(), "absent".into()],
                }],
            }),
            3,
        )],
    );
    assert_eq!(
        r[0].clone().unwrap(),
        OpResult::Deleted(Deleted {
            entities: 1,
            observations: 1,
            relations: 0,
            kept: 0
        })
    );
    assert!(g.entity("a").is_none());
}

#[test]
fn queries_follow_the_official_relation_rule() {
    let mut g = Graph::new();
    run(
        &mut g,
        &[
            (create(&["Alice", "bob", "carol"]), 0),
            (
                relate(&[("Alice", "bob"), ("bob", "carol"), ("Alice", "zed")]),
                0,
            ),
            (observe("carol", &["Likes ALICE"]), 0),
        ],
    );
    let found = g.search_nodes("alice");
    let names: Vec<_> = found.entities.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Alice", "carol"]);
    assert!(found.relations.is_empty());
    let opened = g.open_nodes(&["bob".into(), "carol".into(), "nobody".into()]);
    assert_eq!(opened.entities.len(), 2);
    assert_eq!(opened.relations, [rel("bob", "carol")]);
    assert_eq!(g.read_graph().relations.len(), 3);
    let json = serde_json::to_value(g.open_nodes(&["bob".into()])).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"entities":[{"name":"bob","entityType":"person","observations":["bob exists"]}],"relations":[]})
    );
}

#[test]
fn rollback_restores_the_exact_state() {
    let mut g = Graph::new();
    run(
        &mut g,
        &[(create(&["a", "b"]), 0), (relate(&[("a", "b")]), 0)],
    );
    let before = g.clone();
    g.begin(true);
    run(
        &mut g,
        &[
            (observe("a", &["x"]), 2),
            (delete(&["b"]), 3),
            (create(&["c"]), 0),
            (relate(&[("c", "a")]), 0),
            (delete(&["a"]), 6),
        ],
    );
    assert_ne!(g, before);
    assert!(g.rollback());
    assert_eq!(g, before);
    assert_eq!(g.read_graph(), before.read_graph());
    assert_eq!(g.incoming, before.incoming);
}

#[test]
fn snapshot_round_trips_and_replay_is_deterministic() {
    let ops = [
        (create(&["a", "b", "c"]), 0),
        (relate(&[("a", "b"), ("b", "c")]), 1),
        (observe("a", &["o1", "o2"]), 1),
        (delete(&["b"]), 2),
        (observe("b", &["back"]), 1),
        (delete(&["c"]), 5),
    ];
    let mut g1 = Graph::new();
    let mut g2 = Graph::new();
    let r1 = run(&mut g1, &ops);
    g2.begin(false);
    let r2 = run(&mut g2, &ops);
    assert_eq!(r1, r2);
    assert_eq!(g1, g2);
    let touched = g2.finish();
    assert!(touched.entities.contains("c") && touched.relation_sources.contains("b"));
    let snap = g1.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    let back = Graph::from_snapshot(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(back, g1);
    assert_eq!(back.incoming, g1.incoming);
    assert!(back.tombstone_file("c").is_some());
}
