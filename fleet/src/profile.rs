//! Server profiles: which tool set a server offers. Groups name a profile in the fleet spec.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Cheap, deterministic general-purpose tools (`echo`, `add`, `text_stats`, `json_query`,
    /// `work`), the baseline for latency measurements.
    Community,
    /// Offline security tools (secret scanning, advisories, lockfiles, IaC, tool poisoning).
    Security,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Community => "community",
            Profile::Security => "security",
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
