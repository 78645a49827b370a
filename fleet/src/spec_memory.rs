//! The `[memory]` section of a fleet spec: how this node's memory replicates, for deployments
//! that keep it in the spec file rather than on the command line (flags given win).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    memory::replica::{NodeId, ReplicaOptions, check_url},
    timespan::millis,
};

/// Longest `peer_timeout` accepted: a stuck peer must not hold the publishing thread for long.
const MAX_PEER_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemorySpec {
    /// Peer repositories to publish to and merge from: paths, `file://` or
    /// `ssh://[user@]host[:port]/path` URLs (as `--memory-peer`).
    pub peers: Vec<String>,
    /// This node's id among the nodes sharing the peers (as `--memory-node-id`); absent: the
    /// one remembered in the repository, else a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Time between publishing and merging rounds (as `--memory-peer-interval`).
    #[serde(with = "millis")]
    pub peer_interval: Duration,
    /// Longest one push or fetch to a peer over ssh may take (as `--memory-peer-timeout`).
    #[serde(with = "millis")]
    pub peer_timeout: Duration,
}

impl Default for MemorySpec {
    fn default() -> Self {
        let replica = ReplicaOptions::default();
        Self {
            peers: Vec::new(),
            node_id: None,
            peer_interval: replica.interval,
            peer_timeout: replica.ssh_timeout,
        }
    }
}

impl MemorySpec {
    /// What is wrong with the section, naming the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let bad = |m: String| Err(m);
        for peer in &self.peers {
            if let Err(e) = check_url(peer) {
                return bad(format!("memory.peers: {e}"));
            }
        }
        if let Some(id) = &self.node_id
            && let Err(e) = NodeId::parse(id)
        {
            return bad(format!("memory.node_id: {e}"));
        }
        if self.peer_interval.is_zero() {
            return bad("memory.peer_interval must be above 0".into());
        }
        if self.peer_timeout.is_zero() || self.peer_timeout > MAX_PEER_TIMEOUT {
            return bad(format!(
                "memory.peer_timeout must be above 0 and at most {} s",
                MAX_PEER_TIMEOUT.as_secs()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::FleetSpec;

    fn spec(toml: &str) -> Result<FleetSpec, String> {
        let spec: FleetSpec = toml::from_str(toml).map_err(|e| e.to_string())?;
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    #[test]
    fn the_memory_section_sets_replication_and_is_checked() {
        let s = spec(
            "[memory]\npeers = [\"/srv/peer.git\", \"ssh://git@h:2222/srv/p.git\"]\n\
             node_id = \"node-a\"\npeer_interval = \"250ms\"\npeer_timeout = 30000\n",
        )
        .unwrap();
        assert_eq!(s.memory.peers.len(), 2);
        assert_eq!(s.memory.node_id.as_deref(), Some("node-a"));
        assert_eq!(s.memory.peer_interval.as_millis(), 250);
        assert_eq!(s.memory.peer_timeout.as_secs(), 30);
        let defaults = spec("").unwrap().memory;
        assert!(defaults.peers.is_empty() && defaults.node_id.is_none());
        assert_eq!(defaults.peer_interval.as_millis(), 500);
        for (bad, named) in [
            ("[memory]\npeers = [\"https://h/p\"]", "memory.peers"),
            ("[memory]\nnode_id = \"../x\"", "memory.node_id"),
            ("[memory]\npeer_interval = 0", "memory.peer_interval"),
            ("[memory]\npeer_timeout = \"2h\"", "memory.peer_timeout"),
            ("[memory]\npeer = []", "unknown field"),
        ] {
            let e = spec(bad).unwrap_err();
            assert!(e.contains(named), "{bad}: {e}");
        }
    }
}
