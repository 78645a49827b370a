//! The capacity scenario: open-model steps searching the highest rate whose p99 stays within
//! the bound, with no errors and the intended rate achieved.

use std::time::Duration;

use crate::{
    attack::{Pacing, Phase},
    runfile::{CapacityResult, CapacityStep, Results},
    verbosity::progress,
};

use super::context::{Context, SHORT_WARMUP};

/// Most requests in flight during a capacity step (the open model's users).
const CAPACITY_USERS: usize = 256;

/// Capacity steps at most, doubling then bisecting (a step confirmed by a second try counts
/// once).
const CAPACITY_MAX_STEPS: usize = 8;

/// The search stops when the failing rate is within this factor of the passing one.
const CAPACITY_RESOLUTION: f64 = 1.1;

/// A step whose achieved rate falls below this share of the intended one did not keep up.
const CAPACITY_MIN_ACHIEVED: f64 = 0.95;

/// The capacity scenario: open-model steps of --capacity-step each, doubling from `start` until
/// a step fails, then bisecting; a step passes with no error, p99 within `p99_bound` and the
/// intended rate achieved. A step that failed on latency or rate alone is run a second time
/// and fails only if that fails too.
pub async fn run(
    cx: &Context<'_>,
    p99_bound: Duration,
    start: f64,
) -> anyhow::Result<(CapacityResult, bool)> {
    let bound_us = u64::try_from(p99_bound.as_micros()).unwrap_or(u64::MAX);
    progress!(
        "capacity: searching the highest rate with p99 <= {} and no errors ({} s steps)",
        crate::fmt_micros(bound_us),
        cx.args.capacity_step.as_secs_f64()
    );
    let (mut pass, mut fail): (Option<f64>, Option<f64>) = (None, None);
    let mut rate = start.max(1.0);
    let mut steps = Vec::new();
    let mut interrupted = false;
    while steps.len() < CAPACITY_MAX_STEPS && !cx.stop.is_cancelled() {
        let phase = Phase {
            users: CAPACITY_USERS,
            ramp_up: Duration::ZERO,
            warmup: SHORT_WARMUP,
            duration: cx.args.capacity_step,
            pacing: Pacing::Open { rate },
            ..cx.phase_base(&format!("capacity {rate:.0}/s"))
        };
        let (mut results, stopped) = cx.run_phase(&phase).await?;
        interrupted |= stopped;
        let (mut passed, mut reason) = judge_step(&results, rate, bound_us);
        if !passed && results.ok == results.requests && !cx.stop.is_cancelled() {
            // Only p99 (or the rate) missed: a transient stall of this shared machine can do
            // that, so a failure counts only if it repeats.
            progress!("capacity: {rate:.0} req/s missed ({reason}); running it again to confirm");
            let stopped;
            (results, stopped) = cx.run_phase(&phase).await?;
            interrupted |= stopped;
            (passed, reason) = judge_step(&results, rate, bound_us);
            reason = format!("{reason} (second try)");
        }
        progress!(
            "capacity: {rate:.0} req/s {}: {reason}",
            if passed { "passed" } else { "failed" }
        );
        steps.push(CapacityStep {
            rate,
            passed,
            reason,
            results,
        });
        if passed {
            pass = Some(pass.map_or(rate, |p: f64| p.max(rate)));
        } else {
            fail = Some(fail.map_or(rate, |f: f64| f.min(rate)));
        }
        rate = match (pass, fail) {
            (Some(_), None) => rate * 2.0,
            (None, Some(f)) => f / 2.0,
            (Some(p), Some(f)) if f / p > CAPACITY_RESOLUTION => (p * f).sqrt(),
            _ => break,
        };
        if rate < 1.0 {
            break;
        }
    }
    if let Some(best) = pass {
        progress!("capacity: {best:.0} req/s is the highest rate that passed");
    }
    Ok((
        CapacityResult {
            p99_bound_us: bound_us,
            best_rps: pass,
            steps,
        },
        interrupted,
    ))
}

/// Whether a capacity step passed, and why in words.
fn judge_step(r: &Results, rate: f64, bound_us: u64) -> (bool, String) {
    let errors = r.requests - r.ok;
    let achieved = r.throughput_rps;
    let p99 = r.latency_us.p99;
    let facts = format!(
        "achieved {achieved:.0} req/s, p99 {}, {errors} errors",
        crate::fmt_micros(p99)
    );
    if r.ok == 0 {
        (false, format!("no request succeeded ({facts})"))
    } else if errors > 0 {
        (false, format!("errors ({facts})"))
    } else if p99 > bound_us {
        (false, format!("p99 above the bound ({facts})"))
    } else if achieved < rate * CAPACITY_MIN_ACHIEVED {
        (false, format!("did not keep up with the rate ({facts})"))
    } else {
        (true, facts)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{mcp::ErrorClass, recorder::Recorder};

    fn step(latencies_ms: &[u64], errors: u64, seconds: f64) -> Results {
        let mut r = Recorder::default();
        for ms in latencies_ms {
            r.record(0, Duration::from_millis(*ms), Ok(()));
        }
        for _ in 0..errors {
            r.record(0, Duration::from_millis(1), Err(ErrorClass::Timeout));
        }
        crate::results::of(&r, seconds).unwrap()
    }

    #[test]
    fn capacity_steps_are_judged_on_errors_p99_and_achieved_rate() {
        let fast = vec![5; 100];
        assert!(judge_step(&step(&fast, 0, 1.0), 100.0, 25_000).0);
        let (ok, why) = judge_step(&step(&fast, 1, 1.0), 100.0, 25_000);
        assert!(!ok && why.starts_with("errors"), "{why}");
        let slow = vec![30; 100];
        let (ok, why) = judge_step(&step(&slow, 0, 1.0), 100.0, 25_000);
        assert!(!ok && why.starts_with("p99"), "{why}");
        let (ok, why) = judge_step(&step(&fast, 0, 1.0), 200.0, 25_000);
        assert!(!ok && why.starts_with("did not keep up"), "{why}");
        assert!(!judge_step(&step(&[], 0, 1.0), 100.0, 25_000).0);
    }
}
