//! A phase's [`Recorder`] turned into the run file's [`Results`]: counts, throughput, latency
//! summaries and breakdowns, per-second summaries and the encoded histogram.

use std::collections::BTreeMap;

use crate::{
    recorder::{CallStats, Recorder},
    runfile::{
        Breakdown, EncodedHistogram, EngineFacts, ErrorClass, LatencySummary, PhaseSetup, Results,
        SecondSummary, encode_histogram, percentiles,
    },
};

/// The run file's view of what a phase recorded; the phase's other facts are set by the
/// caller (`setup`, `connections`, `window_s`, `cpu`, `engine`).
pub fn of(recorder: &Recorder, measured_s: f64) -> anyhow::Result<Results> {
    let h = &recorder.latency_us;
    let requests = recorder.requests();
    Ok(Results {
        measured_s,
        requests,
        ok: recorder.ok,
        errors: ErrorClass::ALL
            .iter()
            .map(|c| (*c, recorder.errors[*c as usize]))
            .collect(),
        throughput_rps: if measured_s > 0.0 {
            requests as f64 / measured_s
        } else {
            0.0
        },
        latency_us: LatencySummary::of(h),
        service_latency_us: LatencySummary::of(&recorder.service_us),
        ttfb_us: LatencySummary::of(&recorder.ttfb_us),
        service_histogram: Some(EncodedHistogram::of(&recorder.service_us)?),
        ttfb_histogram: Some(EncodedHistogram::of(&recorder.ttfb_us)?),
        by_call: breakdown(&recorder.by_call)?,
        by_group: breakdown(&recorder.by_group)?,
        by_server: breakdown(&recorder.by_server)?,
        percentiles_us: percentiles(h),
        per_second: recorder
            .per_second
            .iter()
            .map(|s| {
                let by_class = ErrorClass::ALL
                    .iter()
                    .map(|c| (*c, s.errors_by_class[*c as usize]))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                SecondSummary::of(s.ok, s.errors, by_class, &s.latency_us)
            })
            .collect::<Result<_, _>>()?,
        histogram: EncodedHistogram::of(h)?,
        setup: PhaseSetup::default(),
        connections: Vec::new(),
        window_s: [0.0, measured_s],
        started_unix_ms: None,
        cpu: None,
        engine: EngineFacts::default(),
        asides: recorder
            .asides
            .iter()
            .map(|(kind, n)| (kind.name().to_string(), n))
            .collect(),
    })
}

/// One line per key, most requested first.
fn breakdown<T: hdrhistogram::Counter>(
    map: &BTreeMap<String, CallStats<T>>,
) -> anyhow::Result<Vec<Breakdown>> {
    let mut lines: Vec<Breakdown> = map
        .iter()
        .map(|(name, s)| {
            Ok(Breakdown {
                name: name.clone(),
                requests: s.ok + s.errors,
                ok: s.ok,
                errors: s.errors,
                latency_us: LatencySummary::of(&s.latency_us),
                histogram: Some(encode_histogram(&s.latency_us)?),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    lines.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(lines)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use super::*;
    use crate::runfile::{PERCENTILES, decode_histogram};

    #[test]
    fn histogram_round_trips_and_results_add_up() {
        let mut r = Recorder::default();
        for us in [100, 200, 300, 400, 10_000] {
            r.record(0, Duration::from_micros(us), Ok(()));
        }
        r.record(1, Duration::from_micros(5), Err(ErrorClass::Connect));
        let results = of(&r, 2.0).unwrap();
        assert_eq!((results.requests, results.ok), (6, 5));
        assert_eq!(results.throughput_rps, 3.0);
        assert_eq!(results.errors[&ErrorClass::Connect], 1);
        assert_eq!(results.errors.len(), ErrorClass::ALL.len());
        assert_eq!(results.percentiles_us.len(), PERCENTILES.len() + 1);
        let decoded = decode_histogram(&results.histogram.data).unwrap();
        assert_eq!(decoded.len(), 5);
        assert_eq!(decoded.max(), r.latency_us.max());
        assert_eq!(results.per_second.len(), 2);
        assert_eq!(results.per_second[0].ok, 5);
        assert!(results.per_second[0].errors_by_class.is_empty());
        assert_eq!(
            decode_histogram(&results.per_second[0].histogram)
                .unwrap()
                .len(),
            5
        );
        assert_eq!(results.per_second[1].errors, 1);
        assert_eq!(
            results.per_second[1].errors_by_class,
            BTreeMap::from([(ErrorClass::Connect, 1)])
        );
        let json = serde_json::to_string(&results).unwrap();
        assert!(json.contains(r#""connect":1"#), "{json}");
    }
}
