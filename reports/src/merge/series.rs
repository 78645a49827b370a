//! The shards' time series on one wall clock: second *k* of the merged window is the sum of
//! every shard's second that started in the same wall-clock second (counts, error classes and
//! histograms added), and the connections held are summed per second (the seconds every shard
//! sampled). Shards started at slightly different instants (each its own process) fall into the
//! nearest second.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::{MergeError, add::add};
use crate::run::{ConnectionSample, ErrorClass, Results, SecondSummary};

/// Per second: ok, errors, errors by class, the histogram.
type Second = (u64, u64, BTreeMap<ErrorClass, u64>, Option<Histogram<u64>>);

/// The shards' series on one clock.
pub(super) struct Aligned {
    pub per_second: Vec<SecondSummary>,
    pub connections: Vec<ConnectionSample>,
    /// The earliest shard's phase start, ms since the epoch.
    pub started_unix_ms: Option<u64>,
    /// The merged measured window, seconds from that start.
    pub window_s: [f64; 2],
}

/// The merged per-second summaries and connection samples, and where they sit in time.
pub(super) fn align(parts: &[(&str, &Results)], phase: &str) -> Result<Aligned, MergeError> {
    let mut starts = Vec::new();
    for (file, r) in parts {
        let at = r.started_unix_ms.ok_or_else(|| MergeError::Unmergeable {
            file: (*file).into(),
            what: "the phase has no wall-clock start (started_unix_ms), so its seconds cannot \
                   be lined up with the other shards'"
                .into(),
        })?;
        starts.push(at as f64);
    }
    let windows: Vec<(f64, f64)> = parts
        .iter()
        .zip(&starts)
        .map(|((_, r), s)| wall_window(*s, r))
        .collect();
    together(parts, &windows, phase)?;
    let phase_start = starts.iter().copied().fold(f64::INFINITY, f64::min);
    // The merged window starts with the earliest shard's and lasts as long as the longest.
    let window_start = windows.iter().map(|w| w.0).fold(f64::INFINITY, f64::min);
    let mut seconds: BTreeMap<usize, Second> = BTreeMap::new();
    // Per second: each shard's sample (the last, if two fell into one second).
    let mut connections: BTreeMap<usize, BTreeMap<usize, ConnectionSample>> = BTreeMap::new();
    let mut window_end: f64 = window_start;
    for (shard, (((file, r), start), (first_second, end))) in
        parts.iter().zip(&starts).zip(&windows).enumerate()
    {
        window_end = window_end.max(*end);
        for (i, s) in r.per_second.iter().enumerate() {
            let slot = slot(first_second + i as f64 * 1000.0, window_start);
            let sum = seconds.entry(slot).or_default();
            sum.0 += s.ok;
            sum.1 += s.errors;
            for (class, n) in &s.errors_by_class {
                *sum.2.entry(*class).or_insert(0) += n;
            }
            add(
                &mut sum.3,
                &s.histogram,
                file,
                &format!("per_second[{i}].histogram"),
            )?;
        }
        for c in &r.connections {
            let slot = slot(start + c.t * 1000.0, phase_start);
            connections.entry(slot).or_default().insert(shard, *c);
        }
    }
    let last = seconds.keys().next_back().map_or(0, |k| k + 1);
    let per_second = (0..last)
        .map(|k| {
            let (ok, errors, classes, h) = seconds.remove(&k).unwrap_or_default();
            let h = match h {
                Some(h) => h,
                // A second no shard recorded: empty, at the per-second precision.
                None => Histogram::new(2).map_err(|e| MergeError::Unmergeable {
                    file: parts[0].0.into(),
                    what: format!("an empty second's histogram: {e:?}"),
                })?,
            };
            SecondSummary::of(ok, errors, classes, &h).map_err(|source| MergeError::Histogram {
                file: parts[0].0.into(),
                field: format!("per_second[{k}].histogram"),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    // Only the seconds every shard sampled: a sum missing a shard would look like connections
    // dropped.
    let connections = connections
        .into_iter()
        .filter(|(_, by_shard)| by_shard.len() == parts.len())
        .map(|(k, by_shard)| ConnectionSample {
            t: k as f64,
            client: by_shard.values().fold(None, |sum, c| plus(sum, c.client)),
            server: by_shard.values().fold(None, |sum, c| plus(sum, c.server)),
        })
        .collect();
    let window = [
        (window_start - phase_start) / 1000.0,
        (window_end - phase_start) / 1000.0,
    ];
    Ok(Aligned {
        per_second,
        connections,
        started_unix_ms: Some(phase_start as u64),
        window_s: window,
    })
}

/// Least share of the shortest shard window that every shard's window must cover: shards that
/// did not run together did not put their combined load on the servers.
const TOGETHER: f64 = 0.5;

/// A phase's measured window on the wall clock (ms since the epoch), its phase having started
/// at `start_ms`.
fn wall_window(start_ms: f64, r: &Results) -> (f64, f64) {
    (
        start_ms + r.window_s[0] * 1000.0,
        start_ms + r.window_s[1] * 1000.0,
    )
}

/// Refuses shards whose measured `windows` (ms since the epoch, one per part) did not overlap
/// for at least [`TOGETHER`] of the shortest, naming the one that started last or ended first.
fn together(
    parts: &[(&str, &Results)],
    windows: &[(f64, f64)],
    phase: &str,
) -> Result<(), MergeError> {
    let shortest = windows
        .iter()
        .map(|(a, b)| b - a)
        .fold(f64::INFINITY, f64::min);
    let (latest_start, late) = windows
        .iter()
        .enumerate()
        .map(|(i, w)| (w.0, i))
        .fold((f64::NEG_INFINITY, 0), |m, x| if x.0 > m.0 { x } else { m });
    let (earliest_end, early) = windows
        .iter()
        .enumerate()
        .map(|(i, w)| (w.1, i))
        .fold((f64::INFINITY, 0), |m, x| if x.0 < m.0 { x } else { m });
    let overlap = earliest_end - latest_start;
    if shortest > 0.0 && overlap < TOGETHER * shortest {
        let odd = if late != 0 { late } else { early };
        return Err(MergeError::Unmergeable {
            file: parts[odd].0.into(),
            what: format!(
                "its {phase} phase overlapped the other shards' for {:.1} s of {:.1} s: shards \
                 that did not run together cannot be merged into one run (give them one \
                 --start-at)",
                overlap.max(0.0) / 1000.0,
                shortest / 1000.0
            ),
        });
    }
    Ok(())
}

/// The span of time every shard's measured window covers, ms since the epoch.
pub(super) fn common_window(parts: &[(&str, &Results)]) -> Option<(f64, f64)> {
    let windows = parts
        .iter()
        .map(|(_, r)| Some(wall_window(r.started_unix_ms? as f64, r)));
    let mut span = (f64::NEG_INFINITY, f64::INFINITY);
    for w in windows {
        let (a, b) = w?;
        span = (span.0.max(a), span.1.min(b));
    }
    (span.0 < span.1).then_some(span)
}

/// The whole second, from `origin`, that `at` (ms) falls nearest to.
fn slot(at: f64, origin: f64) -> usize {
    ((at - origin) / 1000.0).round().max(0.0) as usize
}

fn plus(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}
