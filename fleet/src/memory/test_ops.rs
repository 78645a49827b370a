//! Op builders the memory tests share, so each test file states only what differs (the entity
//! type and first observation its assertions expect).

use super::op::{CreateEntities, Entity, Op};

/// A `create_entities` of `names`, each of `entity_type` with the one observation
/// `observation(name)`.
pub(crate) fn create_entities(
    names: &[&str],
    entity_type: &str,
    observation: impl Fn(&str) -> String,
) -> Op {
    Op::CreateEntities(CreateEntities {
        entities: names
            .iter()
            .map(|n| Entity {
                name: (*n).into(),
                entity_type: entity_type.into(),
                observations: vec![observation(n)],
            })
            .collect(),
    })
}
