//! One load phase's [`Results`] from the shards': histograms added (exact), counts, error
//! classes and breakdowns summed, each figure recomputed from the sums.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::{MergeError, add::add, series};
use crate::run::{
    Breakdown, EncodedHistogram, EngineFacts, LatencySummary, PhaseSetup, Results,
    encode_histogram, percentiles,
};

/// The histogram a field needs, or why the file cannot be merged without it.
fn needed<'a>(h: Option<&'a str>, file: &str, field: &str) -> Result<&'a str, MergeError> {
    h.ok_or_else(|| MergeError::Unmergeable {
        file: file.into(),
        what: format!("{field} has no histogram (written by a loadgen without shard support)"),
    })
}

fn encoded(h: &Histogram<u64>, file: &str, field: &str) -> Result<EncodedHistogram, MergeError> {
    EncodedHistogram::of(h).map_err(|source| MergeError::Histogram {
        file: file.into(),
        field: field.into(),
        source,
    })
}

/// The phase the shards `parts` (file name, its results) ran together.
pub(super) fn merge_results(
    parts: &[(&str, &Results)],
    phase: &str,
) -> Result<Results, MergeError> {
    let (first_file, first) = parts[0];
    let mut latency = None;
    let mut service = None;
    let mut ttfb = None;
    let mut errors = BTreeMap::new();
    let (mut requests, mut ok) = (0, 0);
    let mut engine = EngineFacts {
        name: first.engine.name.clone(),
        version: first.engine.version.clone(),
        ..EngineFacts::default()
    };
    let mut asides: BTreeMap<String, u64> = BTreeMap::new();
    let mut users = 0;
    let mut target_rps: Option<f64> = None;
    for (file, r) in parts {
        add(&mut latency, &r.histogram.data, file, "histogram")?;
        let s = needed(
            r.service_histogram.as_ref().map(|h| h.data.as_str()),
            file,
            "service_histogram",
        )?;
        add(&mut service, s, file, "service_histogram")?;
        let t = needed(
            r.ttfb_histogram.as_ref().map(|h| h.data.as_str()),
            file,
            "ttfb_histogram",
        )?;
        add(&mut ttfb, t, file, "ttfb_histogram")?;
        requests += r.requests;
        ok += r.ok;
        for (class, n) in &r.errors {
            *errors.entry(*class).or_insert(0) += n;
        }
        for (kind, n) in &r.asides {
            *asides.entry(kind.clone()).or_insert(0) += n;
        }
        engine.users_max += r.engine.users_max;
        engine.requests += r.engine.requests;
        engine.failures += r.engine.failures;
        engine.seconds = engine.seconds.max(r.engine.seconds);
        users += r.setup.users;
        if let Some(rate) = r.setup.target_rps {
            *target_rps.get_or_insert(0.0) += rate;
        }
    }
    let (Some(latency), Some(service), Some(ttfb)) = (latency, service, ttfb) else {
        return Err(MergeError::Empty);
    };
    let series::Aligned {
        per_second,
        connections,
        started_unix_ms,
        window_s,
    } = series::align(parts, phase)?;
    // As one run's: the requests over the measured time (a shard stopped early counts at its
    // rate over the whole window, not as if it had run to the end).
    let measured_s = parts.iter().map(|(_, r)| r.measured_s).fold(0.0, f64::max);
    Ok(Results {
        measured_s,
        requests,
        ok,
        errors,
        throughput_rps: if measured_s > 0.0 {
            requests as f64 / measured_s
        } else {
            0.0
        },
        latency_us: LatencySummary::of(&latency),
        service_latency_us: LatencySummary::of(&service),
        ttfb_us: LatencySummary::of(&ttfb),
        service_histogram: Some(encoded(&service, first_file, "service_histogram")?),
        ttfb_histogram: Some(encoded(&ttfb, first_file, "ttfb_histogram")?),
        by_call: breakdowns(parts, |r| &r.by_call, "by_call")?,
        by_group: breakdowns(parts, |r| &r.by_group, "by_group")?,
        by_server: breakdowns(parts, |r| &r.by_server, "by_server")?,
        percentiles_us: percentiles(&latency),
        per_second,
        histogram: encoded(&latency, first_file, "histogram")?,
        setup: PhaseSetup {
            users,
            target_rps,
            ..first.setup.clone()
        },
        connections,
        window_s,
        started_unix_ms,
        // Each shard's CPU is its own machine's: kept per shard, not summed.
        cpu: None,
        engine,
        asides,
    })
}

/// One breakdown list (by call, group or server) of all shards: rows of one name added.
fn breakdowns(
    parts: &[(&str, &Results)],
    list: impl Fn(&Results) -> &Vec<Breakdown>,
    field: &str,
) -> Result<Vec<Breakdown>, MergeError> {
    // Per name: requests, ok, errors, the histogram.
    type Row = (u64, u64, u64, Option<Histogram<u64>>);
    let mut sums: BTreeMap<String, Row> = BTreeMap::new();
    for (file, r) in parts {
        for row in list(r) {
            let at = format!("{field}[{}].histogram", row.name);
            let h = needed(row.histogram.as_deref(), file, &at)?;
            let sum = sums.entry(row.name.clone()).or_default();
            sum.0 += row.requests;
            sum.1 += row.ok;
            sum.2 += row.errors;
            add(&mut sum.3, h, file, &at)?;
        }
    }
    let mut rows = sums
        .into_iter()
        // Every row was entered with its histogram added.
        .filter_map(|(name, (requests, ok, errors, h))| Some((name, requests, ok, errors, h?)))
        .map(|(name, requests, ok, errors, h)| {
            let histogram = encode_histogram(&h).map_err(|source| MergeError::Histogram {
                file: parts[0].0.into(),
                field: format!("{field}[{name}].histogram"),
                source,
            })?;
            Ok(Breakdown {
                latency_us: LatencySummary::of(&h),
                histogram: Some(histogram),
                name,
                requests,
                ok,
                errors,
            })
        })
        .collect::<Result<Vec<_>, MergeError>>()?;
    rows.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(rows)
}
