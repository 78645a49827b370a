//! Nodes that write concurrently and exchange their writes end with the same graph, and the
//! documented one: observations added on both kept on both, an add racing a delete wins, the
//! entity type of the newest create wins. Each node here writes through the owner's steps
//! (apply with a stamp, keep the effect and what was seen) and merges the others' writes in
//! their order and after what they had seen, as the replication does.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;
use crate::memory::{
    op::{
        AddObservations, DeleteEntities, DeleteObservations, Deps, Effect, Merged,
        ObservationAddition, ObservationDeletion, Op, Record,
    },
    test_ops::create_entities,
};

struct Node {
    id: &'static str,
    graph: Graph,
    hlc: u64,
    clock: u64,
    history: Vec<Record>,
}

impl Node {
    fn new(id: &'static str, clock: u64) -> Node {
        let mut graph = Graph::new();
        graph.set_node(id);
        Node {
            id,
            graph,
            hlc: 0,
            clock,
            history: Vec::new(),
        }
    }

    /// A write through the owner's steps; `None` if refused.
    fn write(&mut self, op: Op) -> Option<OpResult> {
        let version = self.graph.version() + 1;
        self.clock += 1;
        let stamp = crate::memory::hlc::next(self.hlc, self.clock);
        let result = self.graph.apply_at(&op, version, version - 1, stamp).ok()?;
        self.hlc = stamp;
        let removed = self.graph.take_removed();
        let plain = Effect::is_plain(&op, &result, &removed);
        let effect = Effect::of_result(&result, removed);
        // What the owner leaves out must be what a reader derives from the op.
        assert!(
            !plain || effect == Effect::of_op(&op),
            "{op:?} -> {result:?}"
        );
        let effect = (!plain).then_some(effect);
        let deps: Deps = self
            .graph
            .nodes()
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        self.history.push(Record {
            version,
            server: format!("{}-server", self.id),
            seen: version - 1,
            time_ms: self.clock,
            hlc: stamp,
            op,
            effect,
            deps,
        });
        Some(result)
    }

    /// Merges the next write of `from` this node lacks, if what it had seen is here.
    fn merge_next(&mut self, from: &Node) -> bool {
        let done = self
            .graph
            .nodes()
            .find(|(n, _)| *n == from.id)
            .map_or(0, |(_, v)| v);
        let Some(next) = from
            .history
            .iter()
            .find(|r| r.version > done && !matches!(r.op, Op::Merged(_)))
        else {
            return false;
        };
        let have: BTreeMap<&str, u64> = self.graph.nodes().collect();
        let ready = next
            .deps
            .iter()
            .all(|(n, v)| n == self.id || have.get(n.as_str()).copied().unwrap_or(0) >= *v);
        if !ready {
            return false;
        }
        let merged = Merged::of_record(from.id, next, done).unwrap();
        let version = self.graph.version() + 1;
        self.hlc = self.hlc.max(merged.hlc);
        let hlc = merged.hlc;
        let op = Op::Merged(Box::new(merged));
        self.graph.apply_at(&op, version, version - 1, hlc).unwrap();
        self.history.push(Record {
            version,
            server: "merge".into(),
            seen: version - 1,
            time_ms: self.clock,
            hlc,
            op,
            effect: None,
            deps: Deps::new(),
        });
        true
    }
}

/// Merges until no node lacks anything (deliveries in the order `rng` picks).
fn exchange(nodes: &mut [Node], rng: &mut fastrand::Rng) {
    loop {
        let mut moved = false;
        let mut pairs: Vec<(usize, usize)> = (0..nodes.len())
            .flat_map(|a| (0..nodes.len()).map(move |b| (a, b)))
            .filter(|(a, b)| a != b)
            .collect();
        rng.shuffle(&mut pairs);
        for (to, from) in pairs {
            let (to, from) = if to < from {
                let (l, r) = nodes.split_at_mut(from);
                (&mut l[to], &r[0])
            } else {
                let (l, r) = nodes.split_at_mut(to);
                (&mut r[0], &l[from])
            };
            while to.merge_next(from) {
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

fn all_same(nodes: &[Node]) -> KnowledgeGraph {
    let first = nodes[0].graph.read_graph();
    for n in &nodes[1..] {
        assert_eq!(
            n.graph.read_graph(),
            first,
            "node {} differs from {}",
            n.id,
            nodes[0].id
        );
    }
    first
}

fn observe(name: &str, texts: &[&str]) -> Op {
    Op::AddObservations(AddObservations {
        observations: vec![ObservationAddition {
            entity_name: name.into(),
            contents: texts.iter().map(|t| (*t).into()).collect(),
        }],
    })
}

fn delete(names: &[&str]) -> Op {
    Op::DeleteEntities(DeleteEntities {
        entity_names: names.iter().map(|n| (*n).into()).collect(),
    })
}

fn unobserve(name: &str, texts: &[&str]) -> Op {
    Op::DeleteObservations(DeleteObservations {
        deletions: vec![ObservationDeletion {
            entity_name: name.into(),
            observations: texts.iter().map(|t| (*t).into()).collect(),
        }],
    })
}

fn relate(from: &str, to: &str) -> Op {
    Op::CreateRelations(crate::memory::op::CreateRelations {
        relations: vec![crate::memory::op::Relation {
            from: from.into(),
            to: to.into(),
            relation_type: "knows".into(),
        }],
    })
}

fn two() -> (Vec<Node>, fastrand::Rng) {
    (
        vec![Node::new("a", 1_000), Node::new("b", 1_000)],
        fastrand::Rng::with_seed(7),
    )
}

#[test]
fn observations_added_on_both_nodes_are_on_both_in_stamp_order() {
    let (mut nodes, mut rng) = two();
    nodes[0].write(create_entities(&["x"], "person", |_| "born".into()));
    exchange(&mut nodes, &mut rng);
    nodes[1].clock += 5;
    nodes[0].write(observe("x", &["from a"]));
    nodes[1].write(observe("x", &["from b", "both"]));
    nodes[0].write(observe("x", &["both"]));
    exchange(&mut nodes, &mut rng);
    let g = all_same(&nodes);
    assert_eq!(
        g.entities[0].observations,
        ["born", "from a", "both", "from b"]
    );
}

#[test]
fn an_add_racing_a_delete_wins_on_every_node() {
    let (mut nodes, mut rng) = two();
    nodes[0].write(create_entities(&["x"], "person", |_| "old".into()));
    exchange(&mut nodes, &mut rng);
    nodes[0].write(delete(&["x"]));
    nodes[1].write(observe("x", &["new"]));
    exchange(&mut nodes, &mut rng);
    let g = all_same(&nodes);
    assert_eq!(g.entities.len(), 1);
    assert_eq!(g.entities[0].entity_type, "person");
    assert_eq!(g.entities[0].observations, ["new"]);
    // A later delete that saw everything removes it everywhere.
    nodes[1].write(delete(&["x"]));
    exchange(&mut nodes, &mut rng);
    assert!(all_same(&nodes).entities.is_empty());
}

#[test]
fn the_same_element_added_on_both_survives_a_delete_that_saw_one() {
    let (mut nodes, mut rng) = two();
    nodes[0].write(create_entities(&["x"], "person", |_| "old".into()));
    exchange(&mut nodes, &mut rng);
    nodes[0].write(observe("x", &["twice"]));
    nodes[1].write(observe("x", &["twice"]));
    nodes[0].write(unobserve("x", &["twice"]));
    exchange(&mut nodes, &mut rng);
    assert_eq!(all_same(&nodes).entities[0].observations, ["old", "twice"]);
}

#[test]
fn the_entity_type_of_the_newest_create_wins_on_every_node() {
    let (mut nodes, mut rng) = two();
    nodes[1].clock += 10;
    nodes[0].write(create_entities(&["x"], "early", |_| "a".into()));
    nodes[1].write(create_entities(&["x"], "late", |_| "b".into()));
    exchange(&mut nodes, &mut rng);
    let g = all_same(&nodes);
    assert_eq!(g.entities[0].entity_type, "late");
    assert_eq!(g.entities[0].observations, ["a", "b"]);
}

#[test]
fn random_writes_on_three_nodes_converge_whatever_the_delivery_order() {
    let names = ["p", "q", "r"];
    let texts = ["t1", "t2", "t3", "t4"];
    for seed in 0..600 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut nodes = vec![
            Node::new("a", 1_000),
            Node::new("b", 1_003),
            Node::new("c", 998),
        ];
        for _ in 0..60 {
            let n = rng.usize(..nodes.len());
            let name = names[rng.usize(..names.len())];
            let text = texts[rng.usize(..texts.len())];
            // One to three texts a write: the observations one write adds tie on their tag.
            let some: Vec<&str> = (0..rng.usize(1..4))
                .map(|_| texts[rng.usize(..texts.len())])
                .collect();
            let op = match rng.u8(..6) {
                0 => Op::CreateEntities(crate::memory::op::CreateEntities {
                    entities: vec![crate::memory::op::Entity {
                        name: name.into(),
                        entity_type: ["t", "u"][rng.usize(..2)].into(),
                        observations: some.iter().map(|t| (*t).into()).collect(),
                    }],
                }),
                1 | 2 => observe(name, &some),
                3 => unobserve(name, &[text]),
                4 => delete(&[name]),
                5 if rng.bool() => Op::DeleteRelations(crate::memory::op::DeleteRelations {
                    relations: vec![crate::memory::op::Relation {
                        from: name.into(),
                        to: names[rng.usize(..names.len())].into(),
                        relation_type: "knows".into(),
                    }],
                }),
                _ => relate(name, names[rng.usize(..names.len())]),
            };
            nodes[n].write(op);
            if rng.u8(..4) == 0 {
                // Some of the writes travel now, in a random direction.
                let (a, b) = (rng.usize(..3), rng.usize(..3));
                if a != b {
                    let (to, from) = if a < b {
                        let (l, r) = nodes.split_at_mut(b);
                        (&mut l[a], &r[0])
                    } else {
                        let (l, r) = nodes.split_at_mut(a);
                        (&mut r[0], &l[b])
                    };
                    to.merge_next(from);
                }
            }
        }
        exchange(&mut nodes, &mut rng);
        all_same(&nodes);
        // Restarting from the files keeps the merged state (tags and all).
        for n in &nodes {
            let again = Graph::from_snapshot(n.graph.snapshot()).unwrap();
            assert_eq!(
                again, n.graph,
                "seed {seed}: node {} reloads differently",
                n.id
            );
        }
    }
}

#[test]
fn replaying_a_nodes_history_reproduces_its_merged_graph() {
    let (mut nodes, mut rng) = two();
    nodes[0].write(create_entities(&["x"], "person", |_| "old".into()));
    nodes[1].write(create_entities(&["x"], "robot", |_| "new".into()));
    exchange(&mut nodes, &mut rng);
    nodes[0].write(delete(&["x"]));
    exchange(&mut nodes, &mut rng);
    for n in &nodes {
        let mut replay = Graph::new();
        replay.set_node(n.id);
        for r in &n.history {
            replay.apply_record(r).unwrap();
        }
        assert_eq!(replay, n.graph);
    }
    // And a write refused as a duplicate changes nothing.
    let mut b = Graph::from_snapshot(nodes[1].graph.snapshot()).unwrap();
    let first = Merged::of_record("a", &nodes[0].history[0], 0).unwrap();
    let v = b.version() + 1;
    assert!(matches!(
        b.apply_at(&Op::Merged(Box::new(first)), v, v - 1, 0),
        Err(ApplyError::AlreadyMerged { .. })
    ));
    assert_eq!(b, nodes[1].graph);
}

#[test]
fn a_write_whose_predecessor_or_dependency_is_missing_waits() {
    let (mut nodes, mut rng) = two();
    nodes[0].write(create_entities(&["x"], "person", |_| "one".into()));
    nodes[0].write(observe("x", &["two"]));
    let mut b = Graph::from_snapshot(nodes[1].graph.snapshot()).unwrap();
    let before = b.clone();
    // a's second write, with its first lost on the way.
    let second = Merged::of_record("a", &nodes[0].history[1], 1).unwrap();
    let v = b.version() + 1;
    assert!(matches!(
        b.apply_at(&Op::Merged(Box::new(second)), v, v - 1, 0),
        Err(ApplyError::NotReady { .. })
    ));
    assert_eq!(b, before, "nothing applied");
    // c's write that had seen a's writes cannot precede them.
    let mut c = Node::new("c", 1_000);
    exchange(std::slice::from_mut(&mut nodes[0]), &mut rng);
    let mut pair = vec![std::mem::replace(&mut nodes[0], Node::new("a", 0)), c];
    exchange(&mut pair, &mut rng);
    c = pair.pop().unwrap();
    c.write(observe("x", &["three"]));
    let from_c = Merged::of_record("c", c.history.last().unwrap(), 0).unwrap();
    assert_eq!(from_c.deps.get("a"), Some(&2));
    let v = b.version() + 1;
    assert!(matches!(
        b.apply_at(&Op::Merged(Box::new(from_c)), v, v - 1, 0),
        Err(ApplyError::NotReady { node, version: 2, .. }) if node == "a"
    ));
}
