//! How serious a finding is: the one severity scale every security tool reports on.

/// How serious a finding is. Ordered: `low < medium < high < critical`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hygiene issue; worth fixing when convenient.
    Low,
    /// Weakens defences or may expose data under some conditions.
    Medium,
    /// Likely exploitable or directly exposes sensitive data.
    High,
    /// Immediate compromise (live credential, privileged container, poisoned tool).
    Critical,
}

impl Severity {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_serialises_lowercase() {
        assert!(Severity::Low < Severity::Medium);
        assert!(Severity::Medium < Severity::High);
        assert!(Severity::High < Severity::Critical);
        assert_eq!(
            serde_json::to_string(&Severity::Critical).ok().as_deref(),
            Some("\"critical\"")
        );
        let parsed: Result<Severity, _> = serde_json::from_str("\"medium\"");
        assert_eq!(parsed.ok(), Some(Severity::Medium));
    }
}
