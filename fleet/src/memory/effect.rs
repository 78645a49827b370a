//! What a write did, as other nodes apply it ([`Effect`]): computed by the owner from an op's
//! result and what it removed, and read back from a record of another node's history.
//!
//! Nodes exchange effects rather than ops because an op's outcome depends on the graph it met
//! (what existed, what the deleter had seen); replaying the op on another node's graph would
//! decide differently, applying its effect cannot. A local record carries its effect only
//! when it is not plain from the op: for a delete that removed something, and for an add
//! only when part of it was already there.

use super::graph::OpResult;
use super::op::{DotRef, Effect, Entity, Merged, ObservationAddition, Op, Record, Removal};

impl Effect {
    /// The effect of an add as the op states it (every element new, observations of one
    /// entity without repeats), or an empty one for a delete.
    pub fn of_op(op: &Op) -> Effect {
        let mut effect = Effect::default();
        match op {
            Op::CreateEntities(a) => {
                let mut names = std::collections::HashSet::new();
                for e in &a.entities {
                    if names.insert(e.name.as_str()) {
                        effect.entities.push(Entity {
                            observations: distinct(&e.observations),
                            ..e.clone()
                        });
                    }
                }
            }
            Op::CreateRelations(a) => {
                let mut seen = std::collections::HashSet::new();
                effect.relations = a
                    .relations
                    .iter()
                    .filter(|r| seen.insert(*r))
                    .cloned()
                    .collect();
            }
            Op::AddObservations(a) => {
                effect.observations = a
                    .observations
                    .iter()
                    .map(|o| ObservationAddition {
                        entity_name: o.entity_name.clone(),
                        contents: distinct(&o.contents),
                    })
                    .collect();
            }
            Op::DeleteEntities(_)
            | Op::DeleteObservations(_)
            | Op::DeleteRelations(_)
            | Op::Merged(_) => {}
        }
        effect.observations.retain(|o| !o.contents.is_empty());
        effect
    }

    /// Whether an applied op did exactly what it states (every element it names was new, or
    /// for a delete: nothing removed), so that its record needs no effect. Checked without
    /// building either effect: the owner asks it of every write.
    pub fn is_plain(op: &Op, result: &OpResult, removed: &[Removal]) -> bool {
        match (op, result) {
            (Op::CreateEntities(a), OpResult::CreatedEntities(r)) => {
                a.entities.len() == r.len()
                    && a.entities
                        .iter()
                        .zip(r)
                        .all(|(e, c)| e.name == c.name && e.observations == c.observations)
            }
            (Op::CreateRelations(a), OpResult::CreatedRelations(r)) => a.relations == *r,
            (Op::AddObservations(a), OpResult::AddedObservations(r)) => {
                a.observations.len() == r.len()
                    && a.observations.iter().zip(r).all(|(o, added)| {
                        o.entity_name == added.entity_name && o.contents == added.added_observations
                    })
            }
            (
                Op::DeleteEntities(_) | Op::DeleteObservations(_) | Op::DeleteRelations(_),
                OpResult::Deleted(_),
            ) => removed.is_empty(),
            _ => false,
        }
    }

    /// The effect of an applied op from its result and the adds it removed.
    pub fn of_result(result: &OpResult, removed: Vec<Removal>) -> Effect {
        let mut effect = Effect {
            removed,
            ..Effect::default()
        };
        match result {
            OpResult::CreatedEntities(e) => effect.entities = e.clone(),
            OpResult::CreatedRelations(r) => effect.relations = r.clone(),
            OpResult::AddedObservations(o) => {
                effect.observations = o
                    .iter()
                    .filter(|o| !o.added_observations.is_empty())
                    .map(|o| ObservationAddition {
                        entity_name: o.entity_name.clone(),
                        contents: o.added_observations.clone(),
                    })
                    .collect();
            }
            OpResult::Deleted(_) => {}
        }
        effect
    }

    /// What a local record says it did: `effect` if it has one, else the op's plain effect.
    pub fn of_record(op: &Op, effect: Option<&Effect>) -> Effect {
        match effect {
            Some(e) => e.clone(),
            None => Effect::of_op(op),
        }
    }
}

/// The texts without repeats, first occurrence kept.
fn distinct(texts: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(texts.len());
    texts
        .iter()
        .filter(|t| seen.insert(t.as_str()))
        .cloned()
        .collect()
}

impl Merged {
    /// What another node merges of `record`, a record of `node`'s history that follows
    /// `node`'s write `prev`: `None` for the records `node` itself merged from others (each
    /// node ships only its own writes).
    pub fn of_record(node: &str, record: &Record, prev: u64) -> Option<Merged> {
        if matches!(record.op, Op::Merged(_)) {
            return None;
        }
        Some(Merged {
            node: node.to_string(),
            version: record.version,
            prev,
            deps: record.deps.clone(),
            hlc: record.hlc,
            server: record.server.clone(),
            from_tool: record.op.tool().to_string(),
            effect: Effect::of_record(&record.op, record.effect.as_ref()),
        })
    }
}

/// Most elements one merged write may name: a delete names every relation of the entities it
/// removed, so far more than one op's [`MAX_ITEMS`](super::op::MAX_ITEMS).
const MAX_MERGED_ELEMENTS: usize = 100_000;
/// Most adds one removal may name (one per node that added the element, and re-adds).
const MAX_DOTS: usize = 1024;
/// Most text one merged write may carry.
const MAX_MERGED_BYTES: usize = 4 * super::op::MAX_OP_BYTES;

impl Merged {
    /// Checks a write read from another node's history before it reaches the owner: the same
    /// limits on names and texts as a local write, and bounds on its size, so a broken or
    /// hostile peer can neither stall the owner nor bloat the graph.
    pub fn check(&self) -> Result<(), String> {
        use super::op::{MAX_NAME_BYTES, MAX_OBSERVATION_BYTES, MAX_SERVER_BYTES};
        super::replica::NodeId::parse(&self.node)?;
        if self.server.len() > MAX_SERVER_BYTES || self.from_tool.len() > MAX_SERVER_BYTES {
            return Err("its server or tool name is too long".into());
        }
        let mut bytes = 0usize;
        let mut text = |what: &str, s: &str, max: usize| {
            bytes += s.len();
            if s.is_empty() || s.len() > max {
                Err(format!("{what} of {} bytes (1 to {max} allowed)", s.len()))
            } else {
                Ok(())
            }
        };
        let e = &self.effect;
        let mut elements = e.relations.len() + e.removed.len();
        for entity in &e.entities {
            text("an entity name", &entity.name, MAX_NAME_BYTES)?;
            text("an entity type", &entity.entity_type, MAX_NAME_BYTES)?;
            elements += 1 + entity.observations.len();
            for o in &entity.observations {
                text("an observation", o, MAX_OBSERVATION_BYTES)?;
            }
        }
        for o in &e.observations {
            text("an entity name", &o.entity_name, MAX_NAME_BYTES)?;
            elements += o.contents.len();
            for c in &o.contents {
                text("an observation", c, MAX_OBSERVATION_BYTES)?;
            }
        }
        let relation = |text: &mut dyn FnMut(&str, &str, usize) -> Result<(), String>,
                        r: &super::op::Relation| {
            text("a relation end", &r.from, MAX_NAME_BYTES)?;
            text("a relation end", &r.to, MAX_NAME_BYTES)?;
            text("a relation type", &r.relation_type, MAX_NAME_BYTES)
        };
        for r in &e.relations {
            relation(&mut text, r)?;
        }
        for r in &e.removed {
            let dots = match r {
                Removal::Entity { name, dots } => {
                    text("an entity name", name, MAX_NAME_BYTES)?;
                    dots
                }
                Removal::Observation {
                    entity,
                    text: t,
                    dots,
                } => {
                    text("an entity name", entity, MAX_NAME_BYTES)?;
                    text("an observation", t, MAX_OBSERVATION_BYTES)?;
                    dots
                }
                Removal::Relation { relation: r, dots } => {
                    relation(&mut text, r)?;
                    dots
                }
            };
            if dots.is_empty() || dots.len() > MAX_DOTS {
                return Err(format!(
                    "a removal names {} adds (1 to {MAX_DOTS})",
                    dots.len()
                ));
            }
            for DotRef(node, _) in dots {
                if !node.is_empty() {
                    super::replica::NodeId::parse(node)?;
                }
            }
        }
        if elements > MAX_MERGED_ELEMENTS {
            return Err(format!(
                "it names {elements} elements, over the limit of {MAX_MERGED_ELEMENTS}"
            ));
        }
        if bytes > MAX_MERGED_BYTES {
            return Err(format!(
                "it carries {bytes} bytes of text, over the limit of {MAX_MERGED_BYTES}"
            ));
        }
        Ok(())
    }
}
