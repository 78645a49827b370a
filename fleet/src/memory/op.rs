//! Write operations: the six mutating tools of the official MCP memory server as data, with
//! the official argument names, so a tool call, a WAL record and a line of `ops.jsonl` are the
//! same JSON.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest entity name, entity type or relation type, in bytes. Names become file names in
/// the archive, so they are kept well under what git and file systems accept.
pub const MAX_NAME_BYTES: usize = 512;
/// Longest single observation, in bytes: room for a paragraph, not for a document.
pub const MAX_OBSERVATION_BYTES: usize = 16 * 1024;
/// Most items in any list of one operation (entities, relations, names, contents ...).
pub const MAX_ITEMS: usize = 1000;
/// Most text one operation may carry, in bytes: keeps one write from stalling the group commit
/// of everybody else.
pub const MAX_OP_BYTES: usize = 4 << 20;
/// Longest writing-server id, in bytes.
pub const MAX_SERVER_BYTES: usize = 128;

/// An entity as the official server shows it: also the input of `create_entities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    /// Unique name of the entity.
    pub name: String,
    /// Kind of entity, e.g. `person` or `service`.
    pub entity_type: String,
    /// Facts about the entity, oldest first.
    pub observations: Vec<String>,
}

/// A directed, typed edge between two entities (by name).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    /// Name of the entity the relation starts at.
    pub from: String,
    /// Name of the entity the relation points to.
    pub to: String,
    /// Kind of relation, in active voice, e.g. `works_at`.
    pub relation_type: String,
}

/// Observations to add to one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservationAddition {
    /// Entity to add the observations to.
    pub entity_name: String,
    /// Observations to add; ones already present are ignored.
    pub contents: Vec<String>,
}

/// Observations to remove from one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservationDeletion {
    /// Entity to remove the observations from.
    pub entity_name: String,
    /// Observations to remove (exact text).
    pub observations: Vec<String>,
}

/// Arguments of `create_entities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreateEntities {
    /// Entities to create; names that already exist are ignored.
    pub entities: Vec<Entity>,
}

/// Arguments of `create_relations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreateRelations {
    /// Relations to create; ones that already exist are ignored.
    pub relations: Vec<Relation>,
}

/// Arguments of `add_observations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddObservations {
    /// Observations to add, per entity.
    pub observations: Vec<ObservationAddition>,
}

/// Arguments of `delete_entities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteEntities {
    /// Entities to delete, with their observations and the relations from and to them.
    pub entity_names: Vec<String>,
}

/// Arguments of `delete_observations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeleteObservations {
    /// Observations to delete, per entity.
    pub deletions: Vec<ObservationDeletion>,
}

/// Arguments of `delete_relations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeleteRelations {
    /// Relations to delete.
    pub relations: Vec<Relation>,
}

/// One write to the graph. Serialised internally tagged by the tool name, e.g.
/// `{"tool":"add_observations","observations":[...]}`, which is how it appears in the WAL and
/// in each commit's `ops.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "tool", rename_all = "snake_case")]
pub enum Op {
    CreateEntities(CreateEntities),
    CreateRelations(CreateRelations),
    AddObservations(AddObservations),
    DeleteEntities(DeleteEntities),
    DeleteObservations(DeleteObservations),
    DeleteRelations(DeleteRelations),
    /// A write made on another node, merged here (never sent by a writer).
    Merged(Box<Merged>),
}

/// The `tool` tag of an [`Op`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tool {
    CreateEntities,
    CreateRelations,
    AddObservations,
    DeleteEntities,
    DeleteObservations,
    DeleteRelations,
    Merged,
}

/// Reads an [`Op`] without serde's buffering of internally tagged enums (every value copied
/// into an intermediate tree first): with the tag first, as every op is written, the rest of
/// the object goes straight into the tool's arguments. Every server process parses every
/// write it follows, so this is the follower's hot path. An object with the tag elsewhere
/// (written by hand) still reads, through a `serde_json::Value`.
impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Op, D::Error> {
        deserializer.deserialize_map(OpVisitor)
    }
}

struct OpVisitor;

impl<'de> serde::de::Visitor<'de> for OpVisitor {
    type Value = Op;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an operation: an object with a \"tool\" field")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Op, A::Error> {
        use serde::de::{Error as _, value::MapAccessDeserializer};
        let first: Option<String> = map.next_key()?;
        let Some(first) = first else {
            return Err(A::Error::missing_field("tool"));
        };
        if first == "tool" {
            let tool: Tool = map.next_value()?;
            return Op::from_parts(tool, MapAccessDeserializer::new(map));
        }
        let mut object = serde_json::Map::new();
        object.insert(first, map.next_value()?);
        while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
            object.insert(key, value);
        }
        let tool = object
            .remove("tool")
            .ok_or_else(|| A::Error::missing_field("tool"))?;
        let tool = Tool::deserialize(tool).map_err(A::Error::custom)?;
        Op::from_parts(tool, serde_json::Value::Object(object)).map_err(A::Error::custom)
    }
}

impl Op {
    fn from_parts<'de, D: serde::Deserializer<'de>>(tool: Tool, args: D) -> Result<Op, D::Error> {
        Ok(match tool {
            Tool::CreateEntities => Op::CreateEntities(CreateEntities::deserialize(args)?),
            Tool::CreateRelations => Op::CreateRelations(CreateRelations::deserialize(args)?),
            Tool::AddObservations => Op::AddObservations(AddObservations::deserialize(args)?),
            Tool::DeleteEntities => Op::DeleteEntities(DeleteEntities::deserialize(args)?),
            Tool::DeleteObservations => {
                Op::DeleteObservations(DeleteObservations::deserialize(args)?)
            }
            Tool::DeleteRelations => Op::DeleteRelations(DeleteRelations::deserialize(args)?),
            Tool::Merged => Op::Merged(Box::new(Merged::deserialize(args)?)),
        })
    }
}

/// An operation as the owner ordered it: the unit of the WAL, of the change stream and of
/// `ops.jsonl`. Replaying records in version order reproduces the graph exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Position in the total order of writes; the first write is 1.
    pub version: u64,
    /// Id of the server that wrote it.
    pub server: String,
    /// Version of the writer's view when it wrote (already clamped below `version`); deletes
    /// only remove what was added at or before it.
    pub seen: u64,
    /// When the owner ordered it, in milliseconds since the Unix epoch (informational only:
    /// never used by `apply`).
    pub time_ms: u64,
    /// The owner's hybrid logical clock stamp ([`super::hlc`]): increasing with the version,
    /// close to the wall clock. 0 in records written before stamps existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hlc: u64,
    pub op: Op,
    /// What the op did, where the op alone does not say it ([`Effect`]): what other nodes
    /// apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<Effect>,
    /// The other nodes' writes the writer's view held: other nodes merge them first.
    #[serde(default, skip_serializing_if = "Deps::is_empty")]
    pub deps: Deps,
}

/// A write refused before it reached the owner, naming the offending field like
/// `entities[2].name: must not be empty`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{field}: {reason}")]
pub struct InvalidOp {
    /// Path of the offending argument, e.g. `observations[0].contents[3]`.
    pub field: String,
    /// What is wrong with it, written for the caller.
    pub reason: String,
}

impl InvalidOp {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Size checks shared by every field; also sums the op's text for [`MAX_OP_BYTES`].
struct Checker {
    bytes: usize,
}

impl Checker {
    fn list<T>(&self, field: &str, items: &[T]) -> Result<(), InvalidOp> {
        if items.len() > MAX_ITEMS {
            return Err(InvalidOp::new(
                field,
                format!("{} items is over the limit of {MAX_ITEMS}", items.len()),
            ));
        }
        Ok(())
    }

    fn text(
        &mut self,
        field: impl FnOnce() -> String,
        s: &str,
        max: usize,
    ) -> Result<(), InvalidOp> {
        if s.is_empty() {
            return Err(InvalidOp::new(field(), "must not be empty"));
        }
        if s.len() > max {
            return Err(InvalidOp::new(
                field(),
                format!("{} bytes is over the limit of {max}", s.len()),
            ));
        }
        self.bytes += s.len();
        Ok(())
    }

    fn name(&mut self, field: impl FnOnce() -> String, s: &str) -> Result<(), InvalidOp> {
        self.text(field, s, MAX_NAME_BYTES)
    }

    fn relation(&mut self, list: &str, i: usize, r: &Relation) -> Result<(), InvalidOp> {
        self.name(|| format!("{list}[{i}].from"), &r.from)?;
        self.name(|| format!("{list}[{i}].to"), &r.to)?;
        self.name(|| format!("{list}[{i}].relationType"), &r.relation_type)
    }
}

impl Op {
    /// The tool this op mirrors, e.g. `add_observations`; also its name in history.
    pub fn tool(&self) -> &'static str {
        match self {
            Op::CreateEntities(_) => "create_entities",
            Op::CreateRelations(_) => "create_relations",
            Op::AddObservations(_) => "add_observations",
            Op::DeleteEntities(_) => "delete_entities",
            Op::DeleteObservations(_) => "delete_observations",
            Op::DeleteRelations(_) => "delete_relations",
            Op::Merged(_) => "merged",
        }
    }

    /// Checks sizes and emptiness before the op is submitted, so a bad op never takes a
    /// version and the caller learns which field to fix.
    pub fn validate(&self) -> Result<(), InvalidOp> {
        let mut c = Checker { bytes: 0 };
        let top = match self {
            Op::CreateEntities(a) => {
                c.list("entities", &a.entities)?;
                for (i, e) in a.entities.iter().enumerate() {
                    c.name(|| format!("entities[{i}].name"), &e.name)?;
                    c.name(|| format!("entities[{i}].entityType"), &e.entity_type)?;
                    c.list(&format!("entities[{i}].observations"), &e.observations)?;
                    for (j, o) in e.observations.iter().enumerate() {
                        c.text(
                            || format!("entities[{i}].observations[{j}]"),
                            o,
                            MAX_OBSERVATION_BYTES,
                        )?;
                    }
                }
                "entities"
            }
            Op::CreateRelations(a) => {
                c.list("relations", &a.relations)?;
                for (i, r) in a.relations.iter().enumerate() {
                    c.relation("relations", i, r)?;
                }
                "relations"
            }
            Op::AddObservations(a) => {
                c.list("observations", &a.observations)?;
                for (i, o) in a.observations.iter().enumerate() {
                    c.name(|| format!("observations[{i}].entityName"), &o.entity_name)?;
                    c.list(&format!("observations[{i}].contents"), &o.contents)?;
                    for (j, s) in o.contents.iter().enumerate() {
                        c.text(
                            || format!("observations[{i}].contents[{j}]"),
                            s,
                            MAX_OBSERVATION_BYTES,
                        )?;
                    }
                }
                "observations"
            }
            Op::DeleteEntities(a) => {
                c.list("entityNames", &a.entity_names)?;
                for (i, n) in a.entity_names.iter().enumerate() {
                    c.name(|| format!("entityNames[{i}]"), n)?;
                }
                "entityNames"
            }
            Op::DeleteObservations(a) => {
                c.list("deletions", &a.deletions)?;
                for (i, d) in a.deletions.iter().enumerate() {
                    c.name(|| format!("deletions[{i}].entityName"), &d.entity_name)?;
                    c.list(&format!("deletions[{i}].observations"), &d.observations)?;
                    for (j, s) in d.observations.iter().enumerate() {
                        c.text(
                            || format!("deletions[{i}].observations[{j}]"),
                            s,
                            MAX_OBSERVATION_BYTES,
                        )?;
                    }
                }
                "deletions"
            }
            Op::DeleteRelations(a) => {
                c.list("relations", &a.relations)?;
                for (i, r) in a.relations.iter().enumerate() {
                    c.relation("relations", i, r)?;
                }
                "relations"
            }
            Op::Merged(_) => {
                return Err(InvalidOp::new(
                    "tool",
                    "merged writes come only from other nodes' histories",
                ));
            }
        };
        if c.bytes > MAX_OP_BYTES {
            return Err(InvalidOp::new(
                top,
                format!(
                    "{} bytes of text in one op is over the limit of {MAX_OP_BYTES}",
                    c.bytes
                ),
            ));
        }
        Ok(())
    }

    /// Names of the entities this op mentions (deduplicated, in order of first mention):
    /// what the history index files it under.
    pub fn entity_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        match self {
            Op::CreateEntities(a) => names.extend(a.entities.iter().map(|e| e.name.as_str())),
            Op::CreateRelations(CreateRelations { relations })
            | Op::DeleteRelations(DeleteRelations { relations }) => {
                for r in relations {
                    names.push(r.from.as_str());
                    names.push(r.to.as_str());
                }
            }
            Op::AddObservations(a) => {
                names.extend(a.observations.iter().map(|o| o.entity_name.as_str()));
            }
            Op::DeleteEntities(a) => names.extend(a.entity_names.iter().map(String::as_str)),
            Op::DeleteObservations(a) => {
                names.extend(a.deletions.iter().map(|d| d.entity_name.as_str()));
            }
            Op::Merged(m) => {
                let e = &m.effect;
                names.extend(e.entities.iter().map(|e| e.name.as_str()));
                names.extend(e.observations.iter().map(|o| o.entity_name.as_str()));
                for r in &e.relations {
                    names.push(r.from.as_str());
                    names.push(r.to.as_str());
                }
                for r in &e.removed {
                    match r {
                        Removal::Entity { name, .. } => names.push(name),
                        Removal::Observation { entity, .. } => names.push(entity),
                        Removal::Relation { relation, .. } => {
                            names.push(relation.from.as_str());
                            names.push(relation.to.as_str());
                        }
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        names.retain(|n| seen.insert(*n));
        names
    }
}

/// Checks a writing server's id: it becomes a git author name and e-mail, so it is limited to
/// what both accept unchanged, like the fleet's own `<group>-<index>` ids.
pub fn validate_server(server: &str) -> Result<(), InvalidOp> {
    let ok = !server.is_empty()
        && server.len() <= MAX_SERVER_BYTES
        && server
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(InvalidOp::new(
            "server",
            format!("must be 1-{MAX_SERVER_BYTES} characters of [A-Za-z0-9._-]"),
        ))
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

// ---- what a write did, as other nodes merge it (see `super::effect`) ----

/// An add named by a delete: `[node, version there]`; an empty node is the record's origin.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DotRef(pub String, pub u64);

/// One element a delete took adds away from, and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "element", rename_all = "snake_case")]
pub enum Removal {
    /// The entity's own existence (its creates).
    Entity { name: String, dots: Vec<DotRef> },
    Observation {
        entity: String,
        text: String,
        dots: Vec<DotRef>,
    },
    Relation {
        #[serde(flatten)]
        relation: Relation,
        dots: Vec<DotRef>,
    },
}

/// The elements one write added (each under the write's own dot) and the adds it removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Effect {
    /// Entities created, with their type and observations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Entity>,
    /// Observations added to entities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<ObservationAddition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<Removal>,
}

/// A write made on another node, merged here: who wrote it, where it stands in that node's
/// history, its stamp, and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Merged {
    pub node: String,
    /// Its version on `node`.
    pub version: u64,
    /// The version of `node`'s write merged just before it (0: none): a write goes in only
    /// right after that one, so none is ever skipped.
    #[serde(default)]
    pub prev: u64,
    /// The other nodes' writes its writer had seen: merged before it.
    #[serde(default, skip_serializing_if = "Deps::is_empty")]
    pub deps: Deps,
    pub hlc: u64,
    /// The server on `node` that wrote it.
    pub server: String,
    /// The tool it came from there, e.g. `delete_entities`.
    pub from_tool: String,
    pub effect: Effect,
}

/// Versions of other nodes' writes a write had seen: they must be merged before it.
pub type Deps = std::collections::BTreeMap<String, u64>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entity(name: &str) -> Entity {
        Entity {
            name: name.into(),
            entity_type: "person".into(),
            observations: vec!["likes tea".into()],
        }
    }

    #[test]
    fn serialises_with_the_official_names() {
        let op = Op::AddObservations(AddObservations {
            observations: vec![ObservationAddition {
                entity_name: "alice".into(),
                contents: vec!["x".into()],
            }],
        });
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(
            json,
            r#"{"tool":"add_observations","observations":[{"entityName":"alice","contents":["x"]}]}"#
        );
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
        let op = Op::DeleteEntities(DeleteEntities {
            entity_names: vec!["a".into()],
        });
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(json, r#"{"tool":"delete_entities","entityNames":["a"]}"#);
        let json = serde_json::to_string(&entity("bob")).unwrap();
        assert_eq!(
            json,
            r#"{"name":"bob","entityType":"person","observations":["likes tea"]}"#
        );
    }

    #[test]
    fn ops_read_with_the_tag_anywhere_and_refuse_clearly() {
        let want = Op::DeleteEntities(DeleteEntities {
            entity_names: vec!["a".into()],
        });
        for json in [
            r#"{"tool":"delete_entities","entityNames":["a"]}"#,
            r#"{"entityNames":["a"],"tool":"delete_entities"}"#,
            r#"{"tool":"delete_entities","entityNames":["a"],"extra":1}"#,
        ] {
            assert_eq!(serde_json::from_str::<Op>(json).unwrap(), want, "{json}");
            let record = format!(r#"{{"version":3,"server":"s","seen":2,"timeMs":1,"op":{json}}}"#);
            assert_eq!(serde_json::from_str::<Record>(&record).unwrap().op, want);
        }
        for (json, says) in [
            (r#"{"entityNames":["a"]}"#, "missing field `tool`"),
            ("{}", "missing field `tool`"),
            (r#"{"tool":"drop_table"}"#, "unknown variant `drop_table`"),
            (
                r#"{"tool":"delete_entities"}"#,
                "missing field `entityNames`",
            ),
            (
                r#"{"tool":"delete_entities","entityNames":"a"}"#,
                "invalid type",
            ),
            (r#"["delete_entities"]"#, "invalid type"),
        ] {
            let err = serde_json::from_str::<Op>(json).unwrap_err().to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut e = vec![entity("a"), entity("b"), entity("")];
        let err = Op::CreateEntities(CreateEntities {
            entities: e.clone(),
        })
        .validate()
        .unwrap_err();
        assert_eq!(err.to_string(), "entities[2].name: must not be empty");
        e[2].name = "c".into();
        e[1].observations
            .push("x".repeat(MAX_OBSERVATION_BYTES + 1));
        let err = Op::CreateEntities(CreateEntities { entities: e })
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "entities[1].observations[1]");
        let err = Op::CreateRelations(CreateRelations {
            relations: vec![Relation {
                from: "a".into(),
                to: "b".into(),
                relation_type: "x".repeat(MAX_NAME_BYTES + 1),
            }],
        })
        .validate()
        .unwrap_err();
        assert_eq!(err.field, "relations[0].relationType");
        let err = Op::DeleteEntities(DeleteEntities {
            entity_names: vec!["a".into(); MAX_ITEMS + 1],
        })
        .validate()
        .unwrap_err();
        assert_eq!(err.field, "entityNames");
        let big = "x".repeat(MAX_OBSERVATION_BYTES);
        let err = Op::AddObservations(AddObservations {
            observations: (0..300)
                .map(|i| ObservationAddition {
                    entity_name: format!("e{i}"),
                    contents: vec![big.clone()],
                })
                .collect(),
        })
        .validate()
        .unwrap_err();
        assert_eq!(err.field, "observations");
        assert!(validate_server("srv-0003").is_ok());
        assert_eq!(validate_server("a b").unwrap_err().field, "server");
        assert!(validate_server("").is_err());
    }

    #[test]
    fn entity_names_are_deduplicated() {
        let op = Op::CreateRelations(CreateRelations {
            relations: vec![
                Relation {
                    from: "a".into(),
                    to: "b".into(),
                    relation_type: "knows".into(),
                },
                Relation {
                    from: "b".into(),
                    to: "a".into(),
                    relation_type: "knows".into(),
                },
            ],
        });
        assert_eq!(op.entity_names(), vec!["a", "b"]);
    }
}
