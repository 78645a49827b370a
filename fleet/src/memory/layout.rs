//! The repository layout: which file holds what and in which JSON shape. Kept in one place
//! because the committer writes it, and open, verify and history read it.
//!
//! ```text
//! README.md                       what this repository is (root commit only)
//! meta.json                       {"format":"mcpfleet-memory","format_version":1,"version":N}
//! ops.jsonl                       the records of this commit, one JSON object per line
//! entities/<file-safe name>.json  one entity: name, entityType, observations, versions
//! relations/<file-safe from>.json the relations from one entity, sorted
//! tombstones/<file-safe name>.json a deleted entity's type and delete version
//! ```

use serde::{Deserialize, Serialize};

/// `meta.json`'s `format`: how a repository says it is a memory store.
pub const FORMAT: &str = "mcpfleet-memory";
/// `meta.json`'s `format_version` this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;

pub(crate) const META: &str = "meta.json";
pub(crate) const OPS: &str = "ops.jsonl";
pub(crate) const README: &str = "README.md";
pub(crate) const ENTITIES: &str = "entities";
pub(crate) const RELATIONS: &str = "relations";
pub(crate) const TOMBSTONES: &str = "tombstones";

/// File names longer than this (in bytes, encoded) are shortened with a hash: checkouts on
/// common file systems fail beyond 255 bytes.
const MAX_FILE_STEM: usize = 200;
/// Bytes of the readable prefix a shortened file name keeps.
const SHORT_PREFIX: usize = 150;

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format: String,
    pub format_version: u32,
    /// Version of the last op in this commit (0 for the root commit).
    pub version: u64,
}

impl Meta {
    /// The meta of a commit whose last op is `version`.
    pub fn new(version: u64) -> Self {
        Self {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            version,
        }
    }
}

/// `entities/<name>.json`: the entity as the official server shows it, plus the version tags
/// that keep deletes deterministic after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityFile {
    pub name: String,
    pub entity_type: String,
    /// Observations, oldest first.
    pub observations: Vec<String>,
    pub versions: EntityVersions,
}

/// Version tags of an entity file: which op last added each element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityVersions {
    /// Version of the create that made the entity exist; `null` once a delete removed the
    /// create while observations added by ops the deleter had not seen kept the entity.
    pub entity: Option<u64>,
    /// One tag per observation, parallel to `observations`.
    pub observations: Vec<u64>,
}

/// One element of `relations/<from>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationFile {
    pub from: String,
    pub to: String,
    pub relation_type: String,
    /// Version of the op that created the relation.
    pub version: u64,
}

/// `tombstones/<name>.json`: remembers a deleted entity so that an `add_observations` that
/// raced the delete (had not seen it) can bring the entity back with its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TombstoneFile {
    pub name: String,
    pub entity_type: String,
    /// Version of the op that deleted the entity.
    pub deleted: u64,
}

/// Injective, file-system-safe file name for an entity name: bytes outside `[A-Za-z0-9._-]`
/// (and a leading `.`) are percent-encoded; names whose encoding is long keep a readable
/// prefix followed by `~` and the SHA-1 of the full name (`~` is never produced by the
/// percent-encoding, so the two forms cannot collide).
pub fn file_stem(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-') || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() <= MAX_FILE_STEM {
        return out;
    }
    // Cut the readable prefix without splitting a %XX escape.
    let mut cut = SHORT_PREFIX;
    if let Some(pct) = out[cut.saturating_sub(2)..cut].rfind('%') {
        cut = cut - 2 + pct;
    }
    let hash = git2::Oid::hash_object(git2::ObjectType::Blob, name.as_bytes())
        .map(|oid| oid.to_string())
        .unwrap_or_else(|_| fallback_hash(name));
    format!("{}~{hash}", &out[..cut])
}

/// Only used if libgit2 cannot hash (it always can): a 64-bit FNV-1a, still deterministic.
fn fallback_hash(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub(crate) fn entity_path(name: &str) -> String {
    format!("{ENTITIES}/{}.json", file_stem(name))
}

pub(crate) fn relation_path(from: &str) -> String {
    format!("{RELATIONS}/{}.json", file_stem(from))
}

pub(crate) fn tombstone_path(name: &str) -> String {
    format!("{TOMBSTONES}/{}.json", file_stem(name))
}

/// Pretty JSON with a final newline: small, readable diffs.
pub(crate) fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail (string keys, no maps with other keys).
    let mut out = serde_json::to_vec_pretty(value).unwrap_or_default();
    out.push(b'\n');
    out
}

pub(crate) const README_TEXT: &str = "\
# mcpfleet shared memory

This repository is the archive of an mcpfleet knowledge graph (the data model of the MCP
memory server). It is written by one owner process; do not commit to it by hand.

- `entities/<name>.json`: one entity (name, entityType, observations, version tags)
- `relations/<from>.json`: the relations from one entity
- `tombstones/<name>.json`: deleted entities (type and delete version)
- `ops.jsonl`: the operations of the commit that last changed it; `git log -p ops.jsonl`
  lists every operation ever acknowledged, in order
- `meta.json`: format and the version of the last operation in the commit

Names are percent-encoded outside `[A-Za-z0-9._-]`; very long names end in `~<sha1>`.
";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use super::*;

    #[test]
    fn stems_are_safe_and_injective() {
        assert_eq!(file_stem("alice"), "alice");
        assert_eq!(file_stem("a/b"), "a%2Fb");
        assert_eq!(file_stem(".hidden"), "%2Ehidden");
        assert_eq!(file_stem("a.b"), "a.b");
        assert_eq!(file_stem("50%"), "50%25");
        assert_eq!(file_stem("Zoë"), "Zo%C3%AB");
        let names = [
            "a/b",
            "a%2Fb",
            "a b",
            "a_b",
            ".x",
            "%2Ex",
            "~",
            "%7E",
            "x".repeat(300).as_str(),
            &format!("{}y", "x".repeat(299)),
        ]
        .map(String::from);
        let stems: HashSet<String> = names.iter().map(|n| file_stem(n)).collect();
        assert_eq!(stems.len(), names.len());
        for s in &stems {
            assert!(s.len() <= MAX_FILE_STEM + 42, "{s}");
            assert!(!s.contains('/') && !s.starts_with('.'));
        }
        let long = file_stem(&"é".repeat(200));
        assert!(long.contains('~'));
        assert!(!long.split('~').next().unwrap().ends_with('%'));
    }
}
