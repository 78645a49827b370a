//! A node's name among replicating fleets. It names the ref the node publishes its history
//! on (`refs/heads/nodes/<id>`), so it must be a valid ref component, stable across restarts
//! (kept in `<gitdir>/mcpfleet/node-id`) and different on every node: two nodes publishing
//! under one name would race for one ref, which the fast-forward-only push refuses and reports.

use std::{fmt, fs, io, path::Path};

/// Longest node id, in bytes.
pub const MAX_NODE_ID: usize = 64;
/// The file under the store's state directory that remembers the id.
const FILE: &str = "node-id";

/// A validated node id: 1 to 64 of `[A-Za-z0-9._-]`, not starting with `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

impl NodeId {
    /// Checks `id`, saying what is wrong with it.
    pub fn parse(id: &str) -> Result<NodeId, String> {
        if id.is_empty() || id.len() > MAX_NODE_ID {
            return Err(format!(
                "node id {id:?} must be 1 to {MAX_NODE_ID} characters"
            ));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "node id {id:?} has {c:?}: use letters, digits, '.', '_' and '-'"
            ));
        }
        if id.starts_with(['.', '-']) || id.ends_with(".lock") || id.contains("..") {
            return Err(format!(
                "node id {id:?} is not a valid git ref name (no leading '.' or '-', no '..', \
                 no '.lock' ending)"
            ));
        }
        Ok(NodeId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id given (remembered for later opens), else the remembered one, else a new one
    /// from the host name and 8 random hex digits, remembered.
    pub fn resolve(state_dir: &Path, given: Option<&NodeId>) -> io::Result<NodeId> {
        let file = state_dir.join(FILE);
        if let Some(id) = given {
            remember(&file, id)?;
            return Ok(id.clone());
        }
        match fs::read_to_string(&file) {
            Ok(text) => NodeId::parse(text.trim()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", file.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let id = NodeId::generate();
                remember(&file, &id)?;
                Ok(id)
            }
            Err(e) => Err(e),
        }
    }

    fn generate() -> NodeId {
        let host: String = fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let host = host.trim_matches('-');
        let host = if host.is_empty() { "node" } else { host };
        NodeId(format!("{host}-{:08x}", fastrand::u32(..)))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Writes the id unless the file already holds it (write to a temporary name, then rename).
fn remember(file: &Path, id: &NodeId) -> io::Result<()> {
    if fs::read_to_string(file).is_ok_and(|t| t.trim() == id.as_str()) {
        return Ok(());
    }
    let tmp = file.with_extension("tmp");
    fs::write(&tmp, format!("{id}\n"))?;
    fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_checked() {
        for good in ["node-a", "n1", "fleet-0.eu_west", "a"] {
            assert!(NodeId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "-a",
            ".a",
            "a..b",
            "x.lock",
            "ä",
            &"x".repeat(65),
        ] {
            assert!(NodeId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_id_is_generated_once_and_a_given_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeId::resolve(dir.path(), None).unwrap();
        assert!(NodeId::parse(first.as_str()).is_ok());
        assert_eq!(NodeId::resolve(dir.path(), None).unwrap(), first);
        let given = NodeId::parse("node-b").unwrap();
        assert_eq!(NodeId::resolve(dir.path(), Some(&given)).unwrap(), given);
        assert_eq!(NodeId::resolve(dir.path(), None).unwrap(), given);
        fs::write(dir.path().join(FILE), "bad id\n").unwrap();
        assert!(NodeId::resolve(dir.path(), None).is_err());
    }
}
