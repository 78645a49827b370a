//! The progress line printed once a second while a phase runs: rate, p50/p99 so far, errors
//! and the connections counted.

use std::time::{Duration, Instant};

use crate::lock::lock;

use super::{phase::ConnectionSample, users::PhaseRun};

pub(super) fn progress_line(phase_run: &PhaseRun, rate: u64, sample: ConnectionSample) -> String {
    let t = phase_run.clock.start.elapsed().as_secs_f64();
    let name = &phase_run.phase.name;
    // The servers' count is of their own sockets: through a gateway that calls them in its
    // process it is 0 while the client's connections (to the gateway) are busy.
    let conns = match (sample.client, sample.server) {
        (Some(c), Some(sv)) => format!("  conns {c} (server sockets {sv})"),
        (Some(c), None) => format!("  conns {c}"),
        (None, Some(sv)) => format!("  conns (server sockets {sv})"),
        (None, None) => String::new(),
    };
    // The tick reports the second that just ended: ramp-up or warm-up if it ended (about)
    // before measuring started.
    let now = Instant::now();
    if now < phase_run.clock.ramped + Duration::from_millis(500)
        && !phase_run.phase.ramp_up.is_zero()
    {
        return format!("  {name} {t:>4.0} s  ramp-up  {rate:>6} req/s{conns}");
    }
    if now < phase_run.clock.measure_from + Duration::from_millis(500) {
        return format!("  {name} {t:>4.0} s  warm-up  {rate:>6} req/s{conns}");
    }
    // Only what the line shows: a full merge would also copy the other histograms.
    let mut h = crate::recorder::new_histogram();
    let mut errors = 0;
    for shard in &phase_run.shards {
        let r = lock(shard);
        // Same bounds on both sides, so adding cannot fail.
        let _ = h.add(&r.latency_us);
        errors += r.error_total();
    }
    let at = |q| {
        if h.is_empty() {
            "-".to_string()
        } else {
            crate::fmt_micros(h.value_at_quantile(q))
        }
    };
    format!(
        "  {name} {t:>4.0} s  {rate:>6} req/s  p50 {}  p99 {}  errors {errors}{conns}",
        at(0.5),
        at(0.99),
    )
}
