//! How the standalone gateway follows its nodes ([`NodesConfig`]: poll and resolve intervals,
//! the bounds on a node's answer), and how a server's id is qualified by its node's name.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::millis;

/// Between a node's name and its server's id in a qualified id: not a character node names,
/// server ids or URLs treat specially.
pub const NODE_SEPARATOR: char = '~';

/// The id a server of `node` has behind the gateway.
pub fn qualified_id(node: &str, server: &str) -> String {
    format!("{node}{NODE_SEPARATOR}{server}")
}

/// How the gateway follows its nodes. Durations are whole milliseconds when read from TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodesConfig {
    /// How often every node is asked for its servers (default 1 s).
    #[serde(with = "millis")]
    pub poll_every: Duration,
    /// How long one node may take to answer before it counts as down (default 800 ms: under
    /// the poll interval, so a hung node is out of rotation by the next poll).
    #[serde(with = "millis")]
    pub poll_timeout: Duration,
    /// How often a `dns:` source is resolved again (default 5 s).
    #[serde(with = "millis")]
    pub resolve_every: Duration,
    /// Largest `/servers` answer read, in bytes (default 16 MiB: 1000 servers take ~0.5 MiB).
    pub max_answer_bytes: usize,
    /// Most servers one node may list (default 20 000).
    pub max_servers: usize,
}

impl Default for NodesConfig {
    fn default() -> Self {
        Self {
            poll_every: Duration::from_secs(1),
            poll_timeout: Duration::from_millis(800),
            resolve_every: Duration::from_secs(5),
            max_answer_bytes: 16 << 20,
            max_servers: 20_000,
        }
    }
}

impl NodesConfig {
    /// What serde cannot check: a poll ends before the next one starts, and nothing is zero.
    pub fn validate(&self) -> Result<(), String> {
        if self.poll_every < Duration::from_millis(50) {
            return Err(format!(
                "poll interval {:?} is under 50ms: every node would be asked constantly",
                self.poll_every
            ));
        }
        if self.poll_timeout.is_zero() || self.poll_timeout > self.poll_every {
            return Err(format!(
                "poll timeout {:?} must be above zero and at most the poll interval {:?}",
                self.poll_timeout, self.poll_every
            ));
        }
        if self.resolve_every < self.poll_every {
            return Err(format!(
                "DNS re-resolution every {:?} is more often than the polls ({:?})",
                self.resolve_every, self.poll_every
            ));
        }
        if self.max_answer_bytes < 1024 || self.max_servers == 0 {
            return Err("max_answer_bytes must be at least 1024 and max_servers at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_timings_are_named() {
        NodesConfig::default().validate().expect("defaults");
        let slow = NodesConfig {
            poll_timeout: Duration::from_secs(2),
            ..NodesConfig::default()
        };
        let err = slow.validate().unwrap_err();
        assert!(err.contains("poll timeout"), "{err}");
        let cfg: NodesConfig = toml::from_str("poll_every = 500\npoll_timeout = 400").unwrap();
        assert_eq!(cfg.poll_every, Duration::from_millis(500));
        cfg.validate().expect("valid");
    }
}
