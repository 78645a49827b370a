//! The repository layout: which file holds what and in which JSON shape. Kept in one place
//! because the committer writes it, and open, verify and history read it.
//!
//! ```text
//! README.md                             what this repository is (root commit only)
//! meta.json                             {"format":"mcpfleet-memory","format_version":2,"version":N,"hlc":S}
//! ops.jsonl                             the records of this commit, one JSON object per line
//! entities/<bucket>/<file-safe name>.json  one entity: name, entityType, observations, versions
//! relations/<bucket>/<file-safe from>.json the relations from one entity, sorted
//! tombstones/<bucket>/<file-safe name>.json a deleted entity's type and delete version
//! ```
//!
//! # Buckets (format 2)
//! `<bucket>` is `ab/cd`: the first two bytes of the SHA-256 of the entity name, in hex, one
//! directory level each (256 x 256 buckets). Git stores a directory as one tree object and a
//! commit rewrites every tree on the path of a changed file, whole. In format 1 every file sat
//! directly in its data directory, so each commit rewrote one tree entry per entity: with N
//! entities a 100-op commit hashed and compressed ~N x 50 bytes of tree, and commits got slower
//! as the graph grew. Fanned out, a commit rewrites the data directory (256 entries), one
//! first-level bucket per touched entity (at most 256 entries) and one small leaf: its cost is
//! bounded by the commit's ops, not by N. The hash is of the entity name, not of the file
//! name, so a bucket never depends on how a name is encoded.
//!
//! Measured before choosing (`memory-commit` in benches/: 100 `add_observations` to distinct
//! entities per commit, median time per commit and tree KB written; release build, shared
//! 2-core machine, repositories in /dev/shm; 2026-12-07):
//!
//! | entities | flat (format 1) | 256 (`ab/`) | 4096 (`abc/`) | 256 x 256 (`ab/cd/`) |
//! |---|---|---|---|---|
//! | 20k | 14.3 ms, 918 KB | 10.4 ms, 317 KB | 8.7 ms, 146 KB | 10.7 ms, 178 KB |
//! | 200k | 127.7 ms, 9180 KB | 42.8 ms, 2981 KB | 13.0 ms, 347 KB | 20.9 ms, 600 KB |
//! | 2M | | | 37.8 ms, 2335 KB | 22.5 ms, 758 KB |
//!
//! One level of 4096 is cheapest up to a few 100k entities, but its buckets grow with N (its
//! cost is the flat layout's divided by 4096, plus a 127 KB directory every commit), so it
//! triples from 200k to 2M. Two levels of 256 stop growing once the first-level buckets are
//! full (256 entries, ~65k entities): 20.9 ms at 200k, 22.5 ms at 2M. A fleet writing 1000
//! ops/s, mostly creates, passes a million entities within the hour, so the shape whose cost
//! stays flat in N wins.
//!
//! Format 1 repositories are still read: a commit's `meta.json` says which layout its files
//! follow, and the first commit after opening one moves every file to the fanned layout.

use serde::{Deserialize, Serialize};

/// `meta.json`'s `format`: how a repository says it is a memory store.
pub const FORMAT: &str = "mcpfleet-memory";
/// `meta.json`'s `format_version` this code writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest `format_version` this code reads: every file directly in its data directory.
pub const FLAT_FORMAT_VERSION: u32 = 1;

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
    /// Clock stamp of the last op in this commit ([`super::hlc`]), so that a reopened store
    /// stamps after it even when the WAL holds nothing newer; absent before stamps existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hlc: Option<u64>,
    /// The node that wrote this history (absent if it never replicated): its own adds are
    /// this node's adds for the other nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// For each other node, the newest of its versions merged into this commit's state.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub nodes: std::collections::BTreeMap<String, u64>,
    /// Its records say what each write did where the op alone does not (`effect`): written by
    /// every build that merges nodes. Another node merges only writes of such commits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub effects: bool,
}

impl Meta {
    /// The meta of a commit in the newest format whose last op is `version`.
    pub fn new(version: u64) -> Self {
        Self::of(version, Layout::CURRENT)
    }

    /// The meta of a commit whose files follow `layout`.
    pub fn of(version: u64, layout: Layout) -> Self {
        Self {
            format: FORMAT.into(),
            format_version: layout.format_version(),
            version,
            hlc: None,
            node: None,
            nodes: Default::default(),
            effects: false,
        }
    }

    /// The layout this commit's files follow, or why this build cannot read them.
    pub fn layout(&self) -> Result<Layout, String> {
        match self.format_version {
            FLAT_FORMAT_VERSION => Ok(Layout::Flat),
            FORMAT_VERSION => Ok(Layout::CURRENT),
            v if v > FORMAT_VERSION => Err(format!(
                "{META} has format_version {v}, newer than this build reads \
                 ({FLAT_FORMAT_VERSION} to {FORMAT_VERSION}): open it with a newer mcpfleet"
            )),
            v => Err(format!(
                "{META} has format_version {v}, which no mcpfleet wrote (this build reads \
                 {FLAT_FORMAT_VERSION} to {FORMAT_VERSION})"
            )),
        }
    }
}

/// Where a commit's data files live: directly in their directory (format 1) or under bucket
/// directories from the SHA-256 of the entity name (format 2; see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Format 1: `entities/<file-safe name>.json`.
    Flat,
    /// `levels` directories of `hex` hex digits each, taken from the start of the name's
    /// SHA-256. Format 2 is [`Layout::CURRENT`]; other shapes exist only to be measured.
    Fanned { levels: u8, hex: u8 },
}

impl Layout {
    /// The layout of [`FORMAT_VERSION`]: two levels of 256 buckets.
    pub const CURRENT: Layout = Layout::Fanned { levels: 2, hex: 2 };

    /// The `format_version` a commit in this layout states.
    pub fn format_version(self) -> u32 {
        match self {
            Layout::Flat => FLAT_FORMAT_VERSION,
            Layout::Fanned { .. } => FORMAT_VERSION,
        }
    }

    /// Bucket directories of `name`, each followed by `/` (empty in the flat layout).
    fn bucket(self, name: &str) -> String {
        let Layout::Fanned { levels, hex } = self else {
            return String::new();
        };
        use sha2::Digest;
        let digest = sha2::Sha256::digest(name.as_bytes());
        let digits: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let mut out = String::new();
        for level in 0..usize::from(levels) {
            let at = level * usize::from(hex);
            out.push_str(digits.get(at..at + usize::from(hex)).unwrap_or("0"));
            out.push('/');
        }
        out
    }

    /// Path of the file holding `name`'s data inside a data directory.
    pub(crate) fn file_in_dir(self, name: &str) -> String {
        format!("{}{}.json", self.bucket(name), file_stem(name))
    }

    pub fn entity_path(self, name: &str) -> String {
        format!("{ENTITIES}/{}", self.file_in_dir(name))
    }

    pub fn relation_path(self, from: &str) -> String {
        format!("{RELATIONS}/{}", self.file_in_dir(from))
    }

    pub fn tombstone_path(self, name: &str) -> String {
        format!("{TOMBSTONES}/{}", self.file_in_dir(name))
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

/// Version tags of an entity file: which adds each element owes its existence to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityVersions {
    /// Tags of the creates that made the entity exist; `null` once deletes removed them
    /// while observations added by ops the deleter had not seen kept the entity.
    pub entity: Option<TagsFile>,
    /// The tags of each observation, parallel to `observations`.
    pub observations: Vec<TagsFile>,
    /// Stamp of the create whose `entityType` holds (last writer wins across nodes); 0 in
    /// files written before stamps existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub type_hlc: u64,
    /// Node of that create, if not this repository's node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_node: Option<String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The tags of one element: a bare version (one add on this node, without a stamp, as
/// written before tags had stamps) or a list of tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TagsFile {
    Version(u64),
    Tags(Vec<TagFile>),
}

/// One tag: `[version, stamp]` for an add written on this node, `[version, stamp, node,
/// version there]` for one written on another node, each followed by the observation's place
/// among those its write added when that is not 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TagFile {
    ThereAt(u64, u64, String, u64, u32),
    There(u64, u64, String, u64),
    HereAt(u64, u64, u32),
    Here(u64, u64),
}

/// One element of `relations/<from>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelationFile {
    pub from: String,
    pub to: String,
    pub relation_type: String,
    /// Tags of the adds that created the relation.
    pub version: TagsFile,
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
    /// Stamp and node of the create its type came from (see [`EntityVersions`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub type_hlc: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_node: Option<String>,
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

- `entities/<bucket>/<name>.json`: one entity (name, entityType, observations, version tags)
- `relations/<bucket>/<from>.json`: the relations from one entity
- `tombstones/<bucket>/<name>.json`: deleted entities (type and delete version)
- `ops.jsonl`: the operations of the commit that last changed it; `git log -p ops.jsonl`
  lists every operation ever acknowledged, in order
- `meta.json`: format, and the version and clock stamp (`hlc`: ms << 16 | counter) of the
  last operation in the commit

`<bucket>` is `ab/cd`, the first two bytes (hex) of the SHA-256 of the entity name, so that a
commit rewrites a few small trees rather than one per directory holding every entity (format 1,
whose files sit directly in `entities/` etc., is still read; `meta.json` says which). Names are
percent-encoded outside `[A-Za-z0-9._-]`; very long names end in `~<sha1>`.
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

    #[test]
    fn buckets_come_from_the_name_hash() {
        assert_eq!(Layout::Flat.entity_path("a/b"), "entities/a%2Fb.json");
        // SHA-256("alice") starts 2bd806c9.
        assert_eq!(
            Layout::CURRENT.entity_path("alice"),
            "entities/2b/d8/alice.json"
        );
        assert_eq!(
            Layout::CURRENT.relation_path("alice"),
            "relations/2b/d8/alice.json"
        );
        let wide = Layout::Fanned { levels: 1, hex: 3 };
        assert_eq!(wide.tombstone_path("alice"), "tombstones/2bd/alice.json");
        assert_eq!(Meta::new(7).layout(), Ok(Layout::CURRENT));
        assert_eq!(Meta::of(7, Layout::Flat).layout(), Ok(Layout::Flat));
        let newer = Meta {
            format_version: FORMAT_VERSION + 1,
            ..Meta::new(7)
        };
        assert!(
            newer
                .layout()
                .unwrap_err()
                .contains("newer than this build")
        );
    }
}
