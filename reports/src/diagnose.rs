//! What a report flags by itself: signatures in a run's figures that a reader should not have
//! to spot: delayed-ACK/Nagle stalls, tails concentrated on a few servers, a large gap between
//! corrected and uncorrected latency, and a CPU-saturated load generator or machine.

use crate::{
    fmt_micros,
    run::{PhaseKind, Results, RunFile, decode_histogram},
};

/// One flagged finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Stable identifier (`nagle_40ms`, `tail_servers`, `coordinated_omission_gap`,
    /// `generator_saturated`, `machine_saturated`), also the HTML element's class.
    pub id: &'static str,
    /// Which phase it was found in (`latency`, `connections`, ...).
    pub phase: String,
    pub title: String,
    /// The evidence, in numbers.
    pub detail: String,
}

/// The phases of a run that carry load results, with their names. Chaos is left out: its
/// faults make tails and errors on purpose, which are no findings.
pub fn phases(run: &RunFile) -> Vec<(String, &Results)> {
    run.load_phases()
        .into_iter()
        .filter(|p| p.kind != PhaseKind::Chaos)
        .map(|p| (p.label(), p.results))
        .collect()
}

/// Every finding in `run`, phase by phase.
pub fn diagnose(run: &RunFile) -> Vec<Finding> {
    let mut found = Vec::new();
    for (phase, r) in phases(run) {
        nagle(&phase, r, &mut found);
        tail_servers(&phase, r, &mut found);
        omission_gap(&phase, r, &mut found);
        saturation(&phase, r, run.environment.cpus, &mut found);
    }
    found
}

/// Delayed ACK (40 ms on Linux) meeting Nagle's algorithm stalls a request until the peer's
/// ACK timer fires: a separate mode of latencies near 40 ms, well above the main body.
fn nagle(phase: &str, r: &Results, found: &mut Vec<Finding>) {
    let Ok(h) = decode_histogram(&r.histogram.data) else {
        return;
    };
    let total = h.len();
    if total < 100 {
        return;
    }
    let band = h.count_between(37_000, 45_000);
    let below = h.count_between(28_000, 36_000);
    let above = h.count_between(46_000, 54_000);
    let median = h.value_at_quantile(0.5);
    if median < 20_000 && band * 200 >= total && band >= 5 && band > 3 * below.max(above) {
        found.push(Finding {
            id: "nagle_40ms",
            phase: phase.into(),
            title: "A latency mode near 40 ms: delayed-ACK/Nagle stalls".into(),
            detail: format!(
                "{band} of {total} requests ({:.1} %) took 37-45 ms while the median is {}; \
                 28-36 ms held {below} and 46-54 ms {above}. Small writes waiting for a delayed \
                 ACK look like this: set TCP_NODELAY on both sides.",
                100.0 * band as f64 / total as f64,
                fmt_micros(median)
            ),
        });
    }
}

/// A few servers far slower than the rest: the fleet's tail is theirs, not the fleet's.
fn tail_servers(phase: &str, r: &Results, found: &mut Vec<Finding>) {
    let mut p99s: Vec<u64> = r
        .by_server
        .iter()
        .filter(|s| s.ok >= 10)
        .map(|s| s.latency_us.p99)
        .collect();
    if p99s.len() < 5 {
        return;
    }
    p99s.sort_unstable();
    let median = p99s[p99s.len() / 2];
    let slow: Vec<_> = r
        .by_server
        .iter()
        .filter(|s| {
            s.ok >= 10 && s.latency_us.p99 > 3 * median && s.latency_us.p99 > median + 1_000
        })
        .collect();
    let share_limit = (p99s.len() / 10).max(1);
    if slow.is_empty() || slow.len() > share_limit {
        return;
    }
    let names: Vec<String> = slow
        .iter()
        .take(10)
        .map(|s| format!("{} ({})", s.name, fmt_micros(s.latency_us.p99)))
        .collect();
    found.push(Finding {
        id: "tail_servers",
        phase: phase.into(),
        title: format!(
            "The tail is concentrated on {} of {} servers",
            slow.len(),
            p99s.len()
        ),
        detail: format!(
            "p99 more than 3x the servers' median p99 ({}): {}{}.",
            fmt_micros(median),
            names.join(", "),
            if slow.len() > 10 { ", ..." } else { "" }
        ),
    });
}

/// In the open model latency counts from the intended send time; far above the service time,
/// requests waited to be sent: the servers (or the generator) fell behind the schedule.
fn omission_gap(phase: &str, r: &Results, found: &mut Vec<Finding>) {
    let (l, s) = (&r.latency_us, &r.service_latency_us);
    if r.setup.target_rps.is_none() || s.count == 0 || l.count == 0 {
        return;
    }
    if l.p99 > 2 * s.p99 && l.p99 > s.p99 + 1_000 {
        found.push(Finding {
            id: "coordinated_omission_gap",
            phase: phase.into(),
            title: "Corrected latency far above the service time".into(),
            detail: format!(
                "p99 from the intended send time is {}, from the actual send {} (p50 {} vs {}): \
                 requests queued before they could be sent, so the target rate was not \
                 sustained without delay. A generator that waits for answers would hide this \
                 (coordinated omission).",
                fmt_micros(l.p99),
                fmt_micros(s.p99),
                fmt_micros(l.p50),
                fmt_micros(s.p50)
            ),
        });
    }
}

/// A generator using (nearly) all the CPU measures itself, not the servers.
fn saturation(phase: &str, r: &Results, cpus: usize, found: &mut Vec<Finding>) {
    let Some(cpu) = &r.cpu else {
        return;
    };
    if cpu.generator_percent_of_machine >= 85.0 {
        found.push(Finding {
            id: "generator_saturated",
            phase: phase.into(),
            title: "The load generator was CPU-saturated".into(),
            detail: format!(
                "Its threads used {:.0} % of the machine's {cpus} CPUs ({:.1} CPU-s, {:.0} µs per \
                 request): latency includes waiting for the generator. Use fewer users, a lower \
                 rate or another machine for the generator.",
                cpu.generator_percent_of_machine,
                cpu.generator_cpu_s,
                cpu.generator_cpu_us_per_request
            ),
        });
    } else if cpu.machine_busy_percent >= 95.0 {
        found.push(Finding {
            id: "machine_saturated",
            phase: phase.into(),
            title: "Every CPU was busy".into(),
            detail: format!(
                "The machine was {:.0} % busy; the generator used {:.0} % of it{}. Generator and \
                 servers competed for CPU, so latency includes run-queue waits.",
                cpu.machine_busy_percent,
                cpu.generator_percent_of_machine,
                cpu.fleet_cpu_s.map_or(String::new(), |f| format!(
                    ", the embedded fleet {f:.1} CPU-s"
                ))
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use hdrhistogram::Histogram;

    use super::*;
    use crate::{
        run::EncodedHistogram,
        synthetic::{Spec, run},
    };

    fn ids(run: &RunFile) -> Vec<&'static str> {
        diagnose(run).iter().map(|f| f.id).collect()
    }

    #[test]
    fn a_healthy_run_has_no_findings() {
        assert!(ids(&run(&Spec::default())).is_empty());
    }

    #[test]
    fn flags_a_40ms_mode() {
        let mut r = run(&Spec::default());
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        h.record_n(2_000, 5_000).unwrap();
        h.record_n(40_000, 200).unwrap();
        r.latency.as_mut().unwrap().histogram = EncodedHistogram::of(&h).unwrap();
        assert_eq!(ids(&r), ["nagle_40ms"]);
    }

    #[test]
    fn names_slow_servers() {
        let r = run(&Spec {
            servers: 30,
            slow_servers: 2,
            ..Default::default()
        });
        let found = diagnose(&r);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id, "tail_servers");
        assert!(found[0].detail.contains("server-000") && found[0].detail.contains("server-001"));
        // Half the fleet slow is not a tail of a few servers.
        let r = run(&Spec {
            servers: 30,
            slow_servers: 15,
            ..Default::default()
        });
        assert!(!ids(&r).contains(&"tail_servers"));
    }

    #[test]
    fn flags_a_stall_as_an_omission_gap() {
        let r = run(&Spec {
            stall: Some((3..6, 50_000)),
            ..Default::default()
        });
        assert!(
            ids(&r).contains(&"coordinated_omission_gap"),
            "{:?}",
            ids(&r)
        );
    }

    #[test]
    fn flags_saturation() {
        let r = run(&Spec {
            generator_percent: 97.0,
            ..Default::default()
        });
        assert_eq!(ids(&r), ["generator_saturated"]);
        let mut r = run(&Spec::default());
        if let Some(cpu) = r.latency.as_mut().unwrap().cpu.as_mut() {
            cpu.machine_busy_percent = 99.0;
        }
        assert_eq!(ids(&r), ["machine_saturated"]);
    }
}
