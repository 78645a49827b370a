//! Which sets of run files make one run: every file a shard of the same run (run id, shard
//! count, schema version, configuration but for each shard's share of the users), each shard
//! number once, none missing, none itself a merge. Each refusal names the file.

use std::collections::BTreeMap;

use super::ShardRun;
use crate::run::{Config, HistogramError, PhaseSetup, RunFile};

/// Why shard files cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no run files to merge")]
    Empty,
    #[error("{file} is not a shard: it has no `shard` facts (run it with --shard I/N)")]
    NotAShard { file: String },
    #[error("{file} is already a merged run; merge the shard files themselves")]
    AlreadyMerged { file: String },
    #[error("{file} has schema version {found}, {first} has {expected}")]
    Schema {
        file: String,
        found: u32,
        first: String,
        expected: u32,
    },
    #[error("{file} belongs to run {found:?}, {first} to run {expected:?}")]
    DifferentRun {
        file: String,
        found: String,
        first: String,
        expected: String,
    },
    #[error("{file} is shard {index} of {found}, {first} is one of {expected}")]
    DifferentCount {
        file: String,
        index: u32,
        found: u32,
        first: String,
        expected: u32,
    },
    #[error(
        "{file} says it is shard {index} of {count}: shards count from 1 to the shard count, \
         at most {MAX_SHARDS}"
    )]
    OutOfRange {
        file: String,
        index: u32,
        count: u32,
    },
    #[error("{file} and {other} are both shard {index}")]
    Duplicate {
        file: String,
        other: String,
        index: u32,
    },
    #[error("shard(s) {missing:?} of {count} missing (have {have:?})")]
    Missing {
        missing: Vec<u32>,
        have: Vec<u32>,
        count: u32,
    },
    #[error(
        "{file} was run with another configuration than {first}: {field} differs ({found} vs {expected})"
    )]
    DifferentConfig {
        file: String,
        first: String,
        field: &'static str,
        found: String,
        expected: String,
    },
    #[error("{file}: {what}")]
    Unmergeable { file: String, what: String },
    #[error("{file}: {field}: {source}")]
    Histogram {
        file: String,
        field: String,
        source: HistogramError,
    },
}

/// Most shards a run may have (as `--shard` allows): a corrupt count cannot make the check
/// list billions of missing shards.
pub const MAX_SHARDS: u32 = 10_000;

/// The shards' positions in `shards`, ordered by shard number, once the set is whole.
pub(super) fn shard_set(shards: &[ShardRun]) -> Result<Vec<usize>, MergeError> {
    let first = shards.first().ok_or(MergeError::Empty)?;
    let base = facts(first)?;
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for (at, s) in shards.iter().enumerate() {
        let f = facts(s)?;
        let file = || s.name.clone();
        if s.run.schema_version != first.run.schema_version {
            return Err(MergeError::Schema {
                file: file(),
                found: s.run.schema_version,
                first: first.name.clone(),
                expected: first.run.schema_version,
            });
        }
        if f.run_id != base.run_id {
            return Err(MergeError::DifferentRun {
                file: file(),
                found: f.run_id.clone(),
                first: first.name.clone(),
                expected: base.run_id.clone(),
            });
        }
        if f.count != base.count {
            return Err(MergeError::DifferentCount {
                file: file(),
                index: f.index,
                found: f.count,
                first: first.name.clone(),
                expected: base.count,
            });
        }
        if f.index == 0 || f.index > f.count || f.count > MAX_SHARDS {
            return Err(MergeError::OutOfRange {
                file: file(),
                index: f.index,
                count: f.count,
            });
        }
        if let Some(&other) = seen.get(&f.index) {
            return Err(MergeError::Duplicate {
                file: file(),
                other: shards[other].name.clone(),
                index: f.index,
            });
        }
        if f.start_at != base.start_at {
            return Err(MergeError::DifferentConfig {
                file: file(),
                first: first.name.clone(),
                field: "shard.start_at",
                found: format!("{:?}", f.start_at),
                expected: format!("{:?}", base.start_at),
            });
        }
        same_phases(&s.run, &first.run)
            .and_then(|()| same_config(&s.run.config, &first.run.config))
            .map_err(|(field, found, expected)| MergeError::DifferentConfig {
                file: file(),
                first: first.name.clone(),
                field,
                found,
                expected,
            })?;
        seen.insert(f.index, at);
    }
    let missing: Vec<u32> = (1..=base.count).filter(|i| !seen.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing,
            have: seen.keys().copied().collect(),
            count: base.count,
        });
    }
    Ok(seen.into_values().collect())
}

fn facts(s: &ShardRun) -> Result<&crate::run::ShardFacts, MergeError> {
    if !s.run.merged_from.is_empty() {
        return Err(MergeError::AlreadyMerged {
            file: s.name.clone(),
        });
    }
    s.run.shard.as_ref().ok_or_else(|| MergeError::NotAShard {
        file: s.name.clone(),
    })
}

/// The configuration every shard must share: each records the whole run's (its share of users
/// and rate is in its phases), so any difference is a shard of another run's settings.
fn same_config(c: &Config, first: &Config) -> Result<(), (&'static str, String, String)> {
    let fields: [(&'static str, String, String); 11] = [
        ("users", c.users.to_string(), first.users.to_string()),
        ("load_model", c.load_model.clone(), first.load_model.clone()),
        ("mode", c.mode.clone(), first.mode.clone()),
        ("servers", c.servers.to_string(), first.servers.to_string()),
        (
            "scenarios",
            c.scenarios.join(","),
            first.scenarios.join(","),
        ),
        (
            "warmup_s",
            c.warmup_s.to_string(),
            first.warmup_s.to_string(),
        ),
        (
            "duration_s",
            c.duration_s.to_string(),
            first.duration_s.to_string(),
        ),
        (
            "timeout_s",
            c.timeout_s.to_string(),
            first.timeout_s.to_string(),
        ),
        ("targets", c.targets.join(","), first.targets.join(",")),
        ("protocol", c.protocol.clone(), first.protocol.clone()),
        ("mix", format!("{:?}", mix(c)), format!("{:?}", mix(first))),
    ];
    match fields.into_iter().find(|(_, a, b)| a != b) {
        Some(differs) => Err(differs),
        None => Ok(()),
    }
}

/// Each load phase's timing, and the open-model phases' rate (every shard sends R/N), must be
/// the first shard's; the users are each shard's share and may differ by one.
fn same_phases(run: &RunFile, first: &RunFile) -> Result<(), (&'static str, String, String)> {
    let setups = |r: &RunFile| -> Vec<(&'static str, PhaseSetup, bool)> {
        let mut out = Vec::new();
        if let Some(l) = &r.latency {
            out.push(("latency", l.setup.clone(), true));
        }
        if let Some(c) = &r.connections {
            out.push(("connections", c.results.setup.clone(), false));
        }
        if let Some(c) = &r.chaos {
            out.push(("chaos", c.results.setup.clone(), true));
        }
        out
    };
    for ((phase, a, open), (_, b, _)) in setups(run).into_iter().zip(setups(first)) {
        let timing = |s: &PhaseSetup| format!("{}+{}+{} s", s.ramp_up_s, s.warmup_s, s.duration_s);
        if timing(&a) != timing(&b) {
            return Err((phase, timing(&a), timing(&b)));
        }
        if open && a.target_rps != b.target_rps {
            return Err((
                phase,
                format!("{:?} req/s", a.target_rps),
                format!("{:?} req/s", b.target_rps),
            ));
        }
    }
    Ok(())
}

fn mix(c: &Config) -> Vec<(String, String, String)> {
    c.mix
        .iter()
        .map(|m| (m.group.clone(), m.call.clone(), format!("{:.3}", m.percent)))
        .collect()
}
