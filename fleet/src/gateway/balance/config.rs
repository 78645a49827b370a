//! A pool's tuning as the fleet spec's TOML gives it: ejection thresholds, the doubling
//! backoff and the latency estimate's weights, with the validation serde cannot do and the
//! few derived values (threshold per failure kind, `n`th backoff) the health state machine
//! asks for.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::outcome::FailureKind;
use crate::spec::millis;

/// Tuning of a pool: ejection thresholds, backoffs and the latency estimate. Durations are
/// whole milliseconds in TOML (`eject_base = 200`), like the rest of the fleet spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Consecutive failures ending in a connection error that eject a member (default 1: a
    /// refused connection means the server is not there).
    pub connect_failures_to_eject: u32,
    /// Consecutive failures ending in a timeout, a 5xx or a garbled response that eject a
    /// member (default 3: one slow or failing request can be the request's fault).
    pub failures_to_eject: u32,
    /// First ejection's length (default 200 ms, short enough that a restarted server is back
    /// within the chaos target's 2 s).
    #[serde(with = "millis")]
    pub eject_base: Duration,
    /// Upper bound of the doubling backoff (default 5 s).
    #[serde(with = "millis")]
    pub eject_max: Duration,
    /// Weight of one latency sample in a member's EWMA, in `(0, 1]` (default 0.3).
    pub ewma_alpha: f64,
    /// Latency assumed for members of a pool that has no samples yet, in microseconds
    /// (default 1000).
    pub initial_latency_us: u64,
    /// Half-life with which a member's latency estimate relaxes towards the pool's typical
    /// latency while it gets no samples (default 1000 ms; 0 turns relaxing off).
    #[serde(with = "millis")]
    pub idle_half_life: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            connect_failures_to_eject: 1,
            failures_to_eject: 3,
            eject_base: Duration::from_millis(200),
            eject_max: Duration::from_secs(5),
            ewma_alpha: 0.3,
            initial_latency_us: 1000,
            idle_half_life: Duration::from_secs(1),
        }
    }
}

impl PoolConfig {
    /// Checks what serde cannot, naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.connect_failures_to_eject == 0 {
            return Err("`connect_failures_to_eject` must be at least 1".into());
        }
        if self.failures_to_eject == 0 {
            return Err("`failures_to_eject` must be at least 1".into());
        }
        if self.eject_base.is_zero() {
            return Err("`eject_base` must be positive".into());
        }
        if self.eject_max < self.eject_base {
            return Err(format!(
                "`eject_max` ({} ms) must be at least `eject_base` ({} ms)",
                self.eject_max.as_millis(),
                self.eject_base.as_millis()
            ));
        }
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0) {
            return Err(format!(
                "`ewma_alpha` must be in (0, 1], got {}",
                self.ewma_alpha
            ));
        }
        if self.initial_latency_us == 0 {
            return Err("`initial_latency_us` must be at least 1".into());
        }
        Ok(())
    }

    /// Consecutive failures that eject a member when the latest one is of this kind.
    pub(super) fn threshold(&self, kind: FailureKind) -> u32 {
        let t = match kind {
            FailureKind::Connect => self.connect_failures_to_eject,
            _ => self.failures_to_eject,
        };
        t.max(1)
    }

    /// Length of the `n`th ejection in a row (`n ≥ 1`): `eject_base × 2ⁿ⁻¹`, at most
    /// `eject_max`.
    pub(super) fn backoff(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(31);
        self.eject_base
            .saturating_mul(1u32 << doublings)
            .min(self.eject_max.max(self.eject_base))
    }

    pub(super) fn alpha(&self) -> f64 {
        if self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0 {
            self.ewma_alpha
        } else {
            0.3
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn config_defaults_validate_and_parse() {
        let config = PoolConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.backoff(1), Duration::from_millis(200));
        assert_eq!(config.backoff(3), Duration::from_millis(800));
        assert_eq!(config.backoff(100), Duration::from_secs(5));

        let parsed: PoolConfig = toml::from_str("eject_base = 100\newma_alpha = 0.5").unwrap();
        assert_eq!(parsed.eject_base, Duration::from_millis(100));
        assert_eq!(parsed.ewma_alpha, 0.5);
        assert_eq!(parsed.eject_max, Duration::from_secs(5));
        let text = toml::to_string(&parsed).unwrap();
        assert_eq!(toml::from_str::<PoolConfig>(&text).unwrap(), parsed);
        assert!(toml::from_str::<PoolConfig>("eject_bse = 1").is_err());

        let bad = |c: PoolConfig, field: &str| {
            let err = c.validate().unwrap_err();
            assert!(err.contains(field), "{err}");
        };
        let d = PoolConfig::default;
        bad(
            PoolConfig {
                connect_failures_to_eject: 0,
                ..d()
            },
            "connect_failures_to_eject",
        );
        bad(
            PoolConfig {
                failures_to_eject: 0,
                ..d()
            },
            "failures_to_eject",
        );
        bad(
            PoolConfig {
                eject_base: Duration::ZERO,
                ..d()
            },
            "eject_base",
        );
        bad(
            PoolConfig {
                eject_max: Duration::from_millis(100),
                ..d()
            },
            "eject_max",
        );
        for alpha in [0.0, 1.5, f64::NAN] {
            bad(
                PoolConfig {
                    ewma_alpha: alpha,
                    ..d()
                },
                "ewma_alpha",
            );
        }
        bad(
            PoolConfig {
                initial_latency_us: 0,
                ..d()
            },
            "initial_latency_us",
        );
    }
}
