//! `<phase>.hlog`: one load phase as an HdrHistogram interval log (the format HdrHistogram's
//! Java, C, Go and Rust libraries read), one interval per second of the measured window, each
//! the latency histogram of that second's successful requests in microseconds, V2 deflate
//! compressed (HdrHistogram's tools assume nanoseconds unless told: HistogramLogProcessor's
//! `-outputValueUnitRatio 1000` reads these in milliseconds). With the phase's wall-clock
//! start in the run file, the log carries it as its `StartTime` and `BaseTime`, and intervals
//! count from it; without (older files), intervals count from the phase's start. The sync
//! scenario gets one too, of its write acknowledgements.

use std::time::{Duration, SystemTime};

use hdrhistogram::{
    Histogram,
    serialization::{V2DeflateSerializer, interval_log::IntervalLogWriterBuilder},
};

use super::ExportError;
use crate::run::{EncodedHistogram, LoadPhase, SyncFigures, decode_histogram};

/// One interval: its start (seconds), its length (seconds) and its histogram.
type Interval = (f64, f64, Histogram<u64>);

/// The interval log of `phase`. A phase without per-second histograms gets its whole
/// histogram as one interval spanning the measured window.
pub fn render(phase: &LoadPhase<'_>) -> Result<Vec<u8>, ExportError> {
    let r = phase.results;
    let name = phase.key();
    let seconds = r.per_second.iter().map(|s| s.histogram.as_str());
    let intervals = intervals(&name, r.window_s, seconds, r.ok > 0, &r.histogram)?;
    let comment = format!(
        "loadgen phase {}: latency of successful requests, microseconds, one interval per \
         second of the measured window",
        phase.label()
    );
    write_log(&name, &comment, r.started_unix_ms, &intervals)
}

/// The sync scenario's interval log: write acknowledgement latency (from each write's
/// intended send time), one interval per second of its measured window, which starts after
/// its warm-up; older files without per-second histograms get the whole window as one.
pub fn render_sync(f: &SyncFigures) -> Result<Vec<u8>, ExportError> {
    let window = [f.warmup_s, f.warmup_s + f.measured_s];
    // Older files have the per-second figures without their histograms.
    let known = f.per_second.iter().any(|s| !s.ack_histogram.is_empty());
    let seconds = f
        .per_second
        .iter()
        .take(if known { usize::MAX } else { 0 })
        .map(|s| s.ack_histogram.as_str());
    let intervals = intervals("sync", window, seconds, f.acked > 0, &f.histograms.ack)?;
    let comment = "loadgen sync scenario: write acknowledgement latency, microseconds, one \
                   interval per second of the measured window";
    write_log("sync", comment, f.started_unix_ms, &intervals)
}

/// One interval per encoded second from `window[0]`, the last cut at `window[1]` (an
/// interrupted window ends mid-second); with none and `any` samples, `whole` over the window.
fn intervals<'a>(
    phase: &str,
    [from, to]: [f64; 2],
    seconds: impl Iterator<Item = &'a str>,
    any: bool,
    whole: &EncodedHistogram,
) -> Result<Vec<Interval>, ExportError> {
    let undecodable = |source| ExportError::Histogram {
        phase: phase.into(),
        source,
    };
    let mut out = Vec::new();
    for (i, encoded) in seconds.enumerate() {
        let start = from + i as f64;
        let length = (to - start).clamp(0.0, 1.0);
        out.push((
            start,
            length,
            decode_histogram(encoded).map_err(undecodable)?,
        ));
    }
    if out.is_empty() && any {
        out.push((from, to - from, whole.decode().map_err(undecodable)?));
    }
    Ok(out)
}

/// The log itself: a comment, `StartTime` and `BaseTime` when the wall-clock start is known
/// (intervals count from it), then the intervals, V2 deflate compressed.
fn write_log(
    phase: &str,
    comment: &str,
    started_unix_ms: Option<u64>,
    intervals: &[Interval],
) -> Result<Vec<u8>, ExportError> {
    let broken = |message: String| ExportError::IntervalLog {
        phase: phase.into(),
        message,
    };
    let mut bytes = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder.add_comment(comment);
    if let Some(ms) = started_unix_ms {
        let started = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        builder.with_start_time(started).with_base_time(started);
    }
    let mut log = builder
        .begin_log_with(&mut bytes, &mut serializer)
        .map_err(|e| broken(e.to_string()))?;
    for (start, length, h) in intervals {
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

    #[test]
    fn the_sync_log_has_a_second_per_interval_after_the_warm_up() {
        let mut file = run(&Spec::default());
        let f = file.sync.as_mut().unwrap().figures.as_mut().unwrap();
        let (start, _, intervals) = read(&render_sync(f).unwrap());
        assert_eq!(start, Some(1_700_000_000.0));
        assert_eq!(intervals.len(), f.per_second.len());
        assert_eq!(intervals[0].0, f.warmup_s);
        assert_eq!(intervals.iter().map(|i| i.2).sum::<u64>(), f.acked);

        for s in &mut f.per_second {
            s.ack_histogram.clear();
        }
        let (_, _, intervals) = read(&render_sync(f).unwrap());
        assert_eq!(intervals.len(), 1, "an older file: the whole window");
        assert_eq!(intervals[0].2, f.histograms.ack.decode().unwrap().len());
    }
}
