//! `<phase>.hlog`: one load phase as an HdrHistogram interval log (the format HdrHistogram's
//! Java, C, Go and Rust libraries read), one interval per second of the measured window, each
//! the latency histogram of that second's successful requests in microseconds, V2 deflate
//! compressed. With the phase's wall-clock start in the run file, the log carries it as its
//! `StartTime` and `BaseTime`, and intervals count from it; without (older files), intervals
//! count from the phase's start.

use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::{V2DeflateSerializer, interval_log::IntervalLogWriterBuilder};

use super::ExportError;
use crate::run::{LoadPhase, decode_histogram};

/// The interval log of `phase`. A phase without per-second histograms gets its whole
/// histogram as one interval spanning the measured window.
pub fn render(phase: &LoadPhase<'_>) -> Result<Vec<u8>, ExportError> {
    let r = phase.results;
    let name = phase.key();
    let broken = |message: String| ExportError::IntervalLog {
        phase: name.clone(),
        message,
    };
    let undecodable = |source| ExportError::Histogram {
        phase: name.clone(),
        source,
    };
    let [from, to] = r.window_s;
    let mut intervals = Vec::with_capacity(r.per_second.len().max(1));
    for (i, s) in r.per_second.iter().enumerate() {
        let start = from + i as f64;
        // The last second of an interrupted window is cut short.
        let length = (to - start).clamp(0.0, 1.0);
        intervals.push((
            start,
            length,
            decode_histogram(&s.histogram).map_err(undecodable)?,
        ));
    }
    if intervals.is_empty() && r.ok > 0 {
        intervals.push((from, to - from, r.histogram.decode().map_err(undecodable)?));
    }

    let mut bytes = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder.add_comment(&format!(
        "loadgen phase {}: latency of successful requests, microseconds, one interval per \
         second of the measured window",
        phase.label()
    ));
    if let Some(ms) = r.started_unix_ms {
        let started = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        builder.with_start_time(started).with_base_time(started);
    }
    let mut log = builder
        .begin_log_with(&mut bytes, &mut serializer)
        .map_err(|e| broken(e.to_string()))?;
    for (start, length, h) in &intervals {
        log.write_histogram(
            h,
            Duration::from_secs_f64(start.max(0.0)),
            Duration::from_secs_f64(length.max(0.0)),
            None,
        )
        .map_err(|e| broken(format!("{e:?}")))?;
    }
    drop(log);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use hdrhistogram::serialization::{
        Deserializer,
        interval_log::{IntervalLogIterator, LogEntry},
    };

    use super::*;
    use crate::synthetic::{Spec, run};

    /// Intervals as (start, length, count).
    type Intervals = Vec<(f64, f64, u64)>;

    /// Every entry of a log: start time, base time, intervals.
    fn read(bytes: &[u8]) -> (Option<f64>, Option<f64>, Intervals) {
        let (mut start, mut base, mut intervals) = (None, None, Vec::new());
        for entry in IntervalLogIterator::new(bytes) {
            match entry.unwrap() {
                LogEntry::StartTime(t) => start = Some(t.as_secs_f64()),
                LogEntry::BaseTime(t) => base = Some(t.as_secs_f64()),
                LogEntry::Interval(i) => {
                    use base64::Engine as _;
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(i.encoded_histogram())
                        .unwrap();
                    let h: hdrhistogram::Histogram<u64> = Deserializer::new()
                        .deserialize(&mut raw.as_slice())
                        .unwrap();
                    intervals.push((
                        i.start_timestamp().as_secs_f64(),
                        i.duration().as_secs_f64(),
                        h.len(),
                    ));
                }
            }
        }
        (start, base, intervals)
    }

    #[test]
    fn one_interval_a_second_adding_up_to_the_successes() {
        let mut file = run(&Spec::default());
        let phase = file.load_phases()[0];
        let (start, base, intervals) = read(&render(&phase).unwrap());
        assert_eq!(
            (start, base),
            (Some(1_700_000_000.0), Some(1_700_000_000.0))
        );
        let r = phase.results;
        assert_eq!(intervals.len(), r.per_second.len());
        assert_eq!(intervals[0].0, r.window_s[0]);
        assert_eq!(intervals[1].0, r.window_s[0] + 1.0);
        assert!(intervals.iter().all(|i| i.1 == 1.0));
        assert_eq!(intervals.iter().map(|i| i.2).sum::<u64>(), r.ok);

        // An older file: no wall-clock start, intervals from the phase's start.
        let latency = file.latency.as_mut().unwrap();
        latency.started_unix_ms = None;
        latency.per_second.clear();
        let phase = file.load_phases()[0];
        let (start, _, intervals) = read(&render(&phase).unwrap());
        assert_eq!(start, None);
        assert_eq!(intervals.len(), 1, "the whole histogram as one interval");
        assert_eq!(intervals[0].2, phase.results.ok);
    }
}
