//! Applying another node's write ([`Merged`]): its adds go in under its dot whatever this
//! node already had (an element added on two nodes carries both dots), its deletes take away
//! exactly the dots its writer removed, and an entity's type is the one of the create with the
//! highest (stamp, node). These are commutative once each node's writes come in order and
//! after what they had seen, so every node ends with the same graph.

use std::sync::Arc;

use super::{
    data::{EntityState, Graph, Observations, Tags, TypeStamp},
    results::{ApplyError, Deleted},
    tags::{self, Dot, Tag},
};
use crate::memory::op::{DotRef, Merged, Removal};

impl Graph {
    pub(super) fn merge(&mut self, m: &Merged, version: u64) -> Result<Deleted, ApplyError> {
        if m.node.is_empty() || *m.node == *self.me {
            return Err(ApplyError::OwnNode {
                node: m.node.clone(),
            });
        }
        let node: Arc<str> = Arc::from(m.node.as_str());
        let done = self.merged_version(&node);
        if m.version <= done {
            return Err(ApplyError::AlreadyMerged {
                node: m.node.clone(),
                version: m.version,
            });
        }
        // Only right after the write before it, and after what its writer had seen: a write
        // lost on the way (a batch rolled back) is never skipped over.
        let missing = if m.prev != done {
            Some((m.node.clone(), m.prev))
        } else {
            m.deps
                .iter()
                .find(|(n, v)| n.as_str() != &*self.me && self.merged_version(n) < **v)
                .map(|(n, v)| (n.clone(), *v))
        };
        if let Some((node, version)) = missing {
            return Err(ApplyError::NotReady {
                node,
                version,
                merged: m.node.clone(),
            });
        }
        let tag = Tag {
            local: version,
            hlc: m.hlc,
            from: Some(Arc::new(Dot {
                node: node.clone(),
                version: m.version,
            })),
            index: 0,
        };
        let e = &m.effect;
        // Observations are counted over the write as its origin counted them.
        let mut index = 0;
        for entity in &e.entities {
            self.merge_create(entity, &tag, &mut index);
        }
        for o in &e.observations {
            if !self.entities.contains_key(&o.entity_name) {
                self.revive(&o.entity_name);
            }
            for text in &o.contents {
                self.add_tag_to_observation(&o.entity_name, text, &tag.at(index));
                index += 1;
            }
        }
        for r in &e.relations {
            let mut tags = self.relations.get(r).cloned().unwrap_or_default();
            tags.push(tag.clone());
            self.set_relation(r, Some(tags));
        }
        let mut deleted = Deleted::default();
        for removal in &e.removed {
            self.merge_removal(removal, &node, version, &mut deleted);
        }
        self.nodes.insert(node, m.version);
        Ok(deleted)
    }

    fn merge_create(&mut self, entity: &crate::memory::op::Entity, tag: &Tag, index: &mut u32) {
        let name = entity.name.as_str();
        let stamp = TypeStamp {
            hlc: tag.hlc,
            node: tag.from.as_ref().map(|d| d.node.clone()),
        };
        match self.entities.get(name).map(|e| {
            (
                e.created.clone(),
                self.stamp_key(&stamp) > self.stamp_key(&e.type_stamp),
            )
        }) {
            Some((mut created, newer_type)) => {
                if newer_type {
                    self.set_entity_type(name, &entity.entity_type, stamp);
                }
                created.push(tag.clone());
                self.set_created(name, created);
            }
            None => {
                // A newer type the entity had before it was deleted here still wins.
                let (mut entity_type, mut type_stamp) = (entity.entity_type.clone(), stamp);
                if let Some(t) = self.tombstones.get(name).cloned() {
                    if self.stamp_key(&t.type_stamp) > self.stamp_key(&type_stamp) {
                        (entity_type, type_stamp) = (t.entity_type, t.type_stamp);
                    }
                    self.set_tombstone(name, None);
                }
                self.insert_entity(
                    name,
                    EntityState {
                        entity_type,
                        type_stamp,
                        created: tags::one(tag.clone()),
                        observations: Observations::default(),
                    },
                );
            }
        }
        for text in &entity.observations {
            self.add_tag_to_observation(name, text, &tag.at(*index));
            *index += 1;
        }
    }

    /// (stamp, node) of a type: this node's creates under its own id.
    pub(super) fn stamp_key<'a>(&'a self, s: &'a TypeStamp) -> (u64, &'a str) {
        (s.hlc, s.node.as_deref().unwrap_or(&self.me))
    }

    fn add_tag_to_observation(&mut self, name: &str, text: &str, tag: &Tag) {
        let at = self
            .entities
            .get(name)
            .map(|e| e.observations.position(text));
        match at {
            None => {}
            Some(None) => self.insert_observation(name, text, tags::one(tag.clone())),
            Some(Some(i)) => {
                let Some(mut tags) = self
                    .entities
                    .get(name)
                    .and_then(|e| e.observations.items.get(i))
                    .map(|o| o.tags.clone())
                else {
                    return;
                };
                tags.push(tag.clone());
                self.set_observation_tags(name, i, tags);
                self.reposition(name, text);
            }
        }
    }

    /// `tags` without the ones `dots` name (an empty node in a dot is `origin`).
    fn without(&self, tags: &Tags, dots: &[DotRef], origin: &str) -> Tags {
        tags.iter()
            .filter(|t| {
                !dots.iter().any(|DotRef(node, version)| {
                    let node = if node.is_empty() { origin } else { node };
                    t.origin(&self.me) == (node, *version)
                })
            })
            .cloned()
            .collect()
    }

    fn merge_removal(&mut self, r: &Removal, origin: &str, version: u64, deleted: &mut Deleted) {
        match r {
            Removal::Entity { name, dots } => {
                let Some(e) = self.entities.get(name) else {
                    return;
                };
                let kept = self.without(&e.created, dots, origin);
                if kept.len() != e.created.len() {
                    self.set_created(name, kept);
                    self.settle(name, version, deleted);
                }
            }
            Removal::Observation { entity, text, dots } => {
                let Some((i, tags)) = self.entities.get(entity).and_then(|e| {
                    let i = e.observations.position(text)?;
                    Some((i, e.observations.items[i].tags.clone()))
                }) else {
                    return;
                };
                let kept = self.without(&tags, dots, origin);
                if kept.is_empty() {
                    self.remove_observation(entity, i);
                    deleted.observations += 1;
                    self.settle(entity, version, deleted);
                } else if kept.len() != tags.len() {
                    self.set_observation_tags(entity, i, kept);
                    self.reposition(entity, text);
                }
            }
            Removal::Relation { relation, dots } => {
                let Some(tags) = self.relations.get(relation) else {
                    return;
                };
                let kept = self.without(tags, dots, origin);
                if kept.is_empty() {
                    self.set_relation(relation, None);
                    deleted.relations += 1;
                } else if kept.len() != tags.len() {
                    self.set_relation(relation, Some(kept));
                }
            }
        }
    }
}
