//! Reading a gate config: TOML first (errors carry the line and column, not a snippet), then
//! every key (unknown keys are errors naming the key), then the rules themselves (impossible
//! rules, or rules that could never fail, are rejected with the key, value and why).

use std::path::Path;

use super::{config::Config, error::GateError};
use crate::stats;

impl Config {
    /// Reads and validates a gate config; errors name `path` and the key.
    pub fn load(path: &Path) -> Result<Config, GateError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GateError::ConfigRead {
            path: name.clone(),
            source,
        })?;
        Self::parse(&text, &name)
    }

    /// [`Config::load`] of text already read; `name` stands for the file in errors.
    pub fn parse(text: &str, name: &str) -> Result<Config, GateError> {
        let syntax = |e: toml::de::Error| GateError::ConfigSyntax {
            path: name.into(),
            message: toml_message(&e, text),
        };
        let de = toml::Deserializer::parse(text).map_err(syntax)?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let message = toml_message(e.inner(), text);
            if key == "." {
                GateError::ConfigSyntax {
                    path: name.into(),
                    message,
                }
            } else {
                GateError::ConfigKey {
                    path: name.into(),
                    key,
                    message,
                }
            }
        })?;
        config
            .validate()
            .map_err(|(key, value, reason)| GateError::ConfigRule {
                path: name.into(),
                key,
                value,
                reason,
            })?;
        Ok(config)
    }

    /// Rejects rules that are impossible or could never fail: `(key, value, why)`.
    fn validate(&self) -> Result<(), (String, String, String)> {
        let inv = &self.invariants;
        let ratio = inv.min_rate_ratio;
        if !(ratio.is_finite() && ratio > 0.0 && ratio <= 1.0) {
            return Err((
                "invariants.min_rate_ratio".into(),
                ratio.to_string(),
                "must be above 0 and at most 1 (a share of the intended rate)".into(),
            ));
        }
        let failed = inv.chaos_max_failed_percent;
        if !(failed.is_finite() && (0.0..=100.0).contains(&failed)) {
            return Err((
                "invariants.chaos_max_failed_percent".into(),
                failed.to_string(),
                "must be a percentage from 0 to 100".into(),
            ));
        }
        let rel = &self.relative;
        if !(rel.alpha.is_finite() && rel.alpha > 0.0 && rel.alpha < 1.0) {
            return Err((
                "relative.alpha".into(),
                rel.alpha.to_string(),
                "must be between 0 and 1".into(),
            ));
        }
        let effect = rel.min_effect_percent;
        if !(effect.is_finite() && effect >= 0.0) {
            return Err((
                "relative.min_effect_percent".into(),
                effect.to_string(),
                "must be a percentage of 0 or more".into(),
            ));
        }
        for (i, m) in rel.metrics.iter().enumerate() {
            if rel.metrics[..i].contains(m) {
                return Err((
                    "relative.metrics".into(),
                    format!(
                        "{:?}",
                        rel.metrics.iter().map(|m| m.name()).collect::<Vec<_>>()
                    ),
                    format!("`{}` is listed twice", m.name()),
                ));
            }
        }
        if rel.min_runs == 0 {
            return Err((
                "relative.min_runs".into(),
                "0".into(),
                "must be at least 1 (2 or more to see run-to-run noise)".into(),
            ));
        }
        if stats::min_p_value(rel.min_samples, rel.min_samples) >= rel.alpha {
            let enough = (1..=1_000)
                .find(|n| stats::min_p_value(*n, *n) < rel.alpha)
                .map_or("more".to_string(), |n| format!("at least {n}"));
            return Err((
                "relative.min_samples".into(),
                rel.min_samples.to_string(),
                format!(
                    "with so few samples a side no difference can reach p < {}: the rule could \
                     never fail; use {enough}",
                    rel.alpha
                ),
            ));
        }
        for (key, _, _, value, _) in self.ceilings.rules() {
            if let Some(v) = value
                && !(v.is_finite() && v > 0.0)
            {
                return Err((
                    format!("ceilings.{key}"),
                    v.to_string(),
                    "must be a positive number (leave the key out for no bound)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A TOML error's message with its line and column (not the multi-line snippet).
fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} (line {line}, column {column})")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn toml_errors_carry_line_and_column() {
        let text = "[relative]\nalpha = \"x\"\n";
        let e = toml::from_str::<Config>(text).unwrap_err();
        let m = toml_message(&e, text);
        assert!(m.ends_with("(line 2, column 9)"), "{m}");
        assert!(!m.contains('\n'));
    }

    #[test]
    fn every_ceiling_key_is_validated() {
        let c = Config::default();
        for (key, ..) in c.ceilings.rules() {
            let text = format!("[ceilings]\n{key} = -1.0\n");
            let e = Config::parse(&text, "g.toml").unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "g.toml: ceilings.{key} = -1: must be a positive number (leave the key out \
                     for no bound)"
                )
            );
        }
    }
}
