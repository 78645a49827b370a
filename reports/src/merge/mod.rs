//! One run from the run files of its shards (`loadgen --shard I/N`, then `loadgen merge`).
//!
//! Averaging percentiles is wrong, and most load tools do it (or round latencies first); here
//! every shard's histograms are *added*, which is exact to the histograms' precision: the
//! merged p99 is the p99 of every request of every shard. Counts and error classes are summed,
//! each second of the window is the sum of the shards' same wall-clock second, the
//! connections held are summed per second, and each shard's own figures are kept
//! ([`crate::run::MergedShard`]) so a saturated or late shard shows instead of vanishing in the
//! sum. Shards are checked first ([`check`]): files of different runs, schema versions or
//! configurations, a missing or duplicated shard are refused, naming the file.
//!
//! The claims of the merged run are left to the caller, which knows the claim set.

mod add;
mod check;
mod connections;
mod phase;
mod series;
#[cfg(test)]
mod tests;

use crate::run::{MergedShard, RunFile};

pub use check::{MAX_SHARDS, MergeError};

/// A shard's run file and the name it is known by (its path), for messages.
pub struct ShardRun {
    pub name: String,
    pub run: RunFile,
}

/// A shard whose generator used more of its machine than this was likely saturated.
const SATURATED_PERCENT: f64 = 90.0;
/// A shard that started measuring this much after the agreed instant is flagged late.
const LATE_MS: f64 = 100.0;
/// A shard that completed less than this part of its share of the requests is flagged.
const SHORT_SHARE: f64 = 0.9;
/// A shard whose clock is this far (beyond the measurements' error) from the shards' median is
/// flagged: its seconds land a quarter of a second off the others'.
const CLOCK_APART_MS: f64 = 250.0;

/// The run the shards make together. Its claims are those of the first shard until the caller
/// re-evaluates them on the merged figures.
pub fn merge(shards: &[ShardRun]) -> Result<RunFile, MergeError> {
    let order = check::shard_set(shards)?;
    let ordered: Vec<&ShardRun> = order.iter().map(|&i| &shards[i]).collect();
    let first = &ordered[0].run;
    let latency = match parts(&ordered, "latency", |r| r.latency.as_ref())? {
        Some(parts) => Some(phase::merge_results(&parts, "latency")?),
        None => None,
    };
    let connections = match parts(&ordered, "connections", |r| {
        r.connections.as_ref().map(|c| &c.results)
    })? {
        Some(parts) => Some(connections::merge(&ordered, &parts)?),
        None => None,
    };
    let chaos = match parts(&ordered, "chaos", |r| r.chaos.as_ref().map(|c| &c.results))? {
        Some(parts) => Some(chaos(&ordered, &parts)?),
        None => None,
    };
    let mut merged = first.clone();
    merged.latency = latency;
    merged.connections = connections;
    merged.chaos = chaos;
    merged.started_at = ordered
        .iter()
        .map(|s| s.run.started_at.clone())
        .min()
        .unwrap_or_default();
    merged.finished_at = ordered
        .iter()
        .map(|s| s.run.finished_at.clone())
        .max()
        .unwrap_or_default();
    merged.interrupted = ordered.iter().any(|s| s.run.interrupted);
    merged.shard = None;
    merged.merged_from = shard_lines(&ordered);
    Ok(merged)
}

/// The chaos scenario of a sharded run: every shard's load merged, the faults as shard 1 (the
/// one that injects them) recorded them.
fn chaos(
    shards: &[&ShardRun],
    parts: &[(&str, &crate::run::Results)],
) -> Result<crate::run::ChaosResult, MergeError> {
    let first = shards[0].run.chaos.as_ref();
    let mut merged = first.cloned().ok_or(MergeError::Empty)?;
    for s in &shards[1..] {
        let specs = s
            .run
            .chaos
            .as_ref()
            .map(|c| c.specs.join(","))
            .unwrap_or_default();
        if specs != merged.specs.join(",") {
            return Err(MergeError::DifferentConfig {
                file: s.name.clone(),
                first: shards[0].name.clone(),
                field: "chaos.specs",
                found: specs,
                expected: merged.specs.join(","),
            });
        }
    }
    merged.results = phase::merge_results(parts, "chaos")?;
    Ok(merged)
}

/// Every shard's results of one phase, or `None` when no shard ran it; a shard without it
/// while others have it cannot be merged.
fn parts<'a>(
    shards: &[&'a ShardRun],
    phase: &str,
    results: impl Fn(&'a RunFile) -> Option<&'a crate::run::Results>,
) -> Result<Option<Vec<(&'a str, &'a crate::run::Results)>>, MergeError> {
    let found: Vec<_> = shards
        .iter()
        .map(|s| (s.name.as_str(), results(&s.run)))
        .collect();
    if found.iter().all(|(_, r)| r.is_none()) {
        return Ok(None);
    }
    found
        .into_iter()
        .map(|(file, r)| {
            r.map(|r| (file, r)).ok_or_else(|| MergeError::Unmergeable {
                file: file.into(),
                what: format!("has no {phase} results while the other shards have them"),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Each shard's own figures, flagged where they deserve a second look.
fn shard_lines(shards: &[&ShardRun]) -> Vec<MergedShard> {
    let requests = |s: &ShardRun| s.run.latency.as_ref().map_or(0, |r| r.requests);
    // Each shard's expected part of the requests: its share of the rate in the open model (all
    // equal), of the users in the closed loop (which may differ by one).
    let weight = |s: &ShardRun| {
        s.run
            .latency
            .as_ref()
            .map_or(0.0, |r| r.setup.target_rps.unwrap_or(r.setup.users as f64))
    };
    let total: f64 = shards.iter().map(|s| requests(s) as f64).sum();
    let weights: f64 = shards.iter().map(|s| weight(s)).sum();
    let mut offsets: Vec<f64> = shards
        .iter()
        .filter_map(|s| s.run.shard.as_ref()?.clock.map(|c| c.offset_ms))
        .collect();
    offsets.sort_by(f64::total_cmp);
    let median = match offsets.len() {
        0 => None,
        n if n % 2 == 1 => Some(offsets[n / 2]),
        n => Some((offsets[n / 2 - 1] + offsets[n / 2]) / 2.0),
    };
    shards
        .iter()
        .filter_map(|s| {
            let facts = s.run.shard.as_ref()?;
            let latency = s.run.latency.as_ref();
            let generator = latency
                .and_then(|r| r.cpu)
                .map(|c| c.generator_percent_of_machine);
            let mut flags = Vec::new();
            if let Some(p) = generator.filter(|p| *p > SATURATED_PERCENT) {
                flags.push(format!(
                    "generator saturated: {p:.0} % of its machine's CPU"
                ));
            }
            if let Some(late) = facts.start_late_ms.filter(|ms| *ms > LATE_MS) {
                flags.push(format!(
                    "started measuring {late:.0} ms after the agreed instant"
                ));
            }
            if let (Some(c), Some(median)) = (facts.clock, median) {
                let apart = (c.offset_ms - median).abs() - c.error_ms;
                if apart > CLOCK_APART_MS {
                    flags.push(format!(
                        "its clock is {:.0} ms off the shards' median (by the servers' Date \
                         headers): its seconds are misplaced in the merged run",
                        c.offset_ms - median
                    ));
                }
            }
            let expected = if weights > 0.0 {
                total * weight(s) / weights
            } else {
                0.0
            };
            if expected > 0.0 && (requests(s) as f64) < SHORT_SHARE * expected {
                flags.push(format!(
                    "completed {} requests, {:.0} % of its share of the run's",
                    requests(s),
                    requests(s) as f64 * 100.0 / expected
                ));
            }
            Some(MergedShard {
                index: facts.index,
                file: s.name.clone(),
                host: facts.host.clone(),
                throughput_rps: latency.map_or(0.0, |r| r.throughput_rps),
                p99_us: latency.map_or(0, |r| r.latency_us.p99),
                generator_percent_of_machine: generator,
                start_late_ms: facts.start_late_ms,
                clock: facts.clock,
                flags,
            })
        })
        .collect()
}
