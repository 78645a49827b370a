//! The first layer: facts scheduler noise cannot break, checked on every judged run (no errors,
//! connections held, the intended rate achieved, no lost memory write, not interrupted, the
//! required scenarios present, the chaos scenario's recoveries, every server of a grown fleet
//! answering).

use super::{
    check::Checks,
    config::{Invariants, Phase, sync_figures},
};
use crate::run::{ChaosResult, Results, RunFile, ScaleFigures, SyncFigures};

/// Every invariant of one run.
pub(super) fn check(inv: &Invariants, run: &RunFile, c: &mut Checks) {
    c.judge(
        "run.complete",
        !run.interrupted || inv.allow_interrupted,
        if run.interrupted {
            "interrupted"
        } else {
            "ran to the end"
        }
        .into(),
        if inv.allow_interrupted {
            "interruption allowed"
        } else {
            "not interrupted"
        }
        .into(),
        if run.interrupted {
            "the run was stopped early: its figures cover only part of the plan".into()
        } else {
            "the run completed its plan".into()
        },
    );
    for phase in Phase::ALL {
        let absent = match phase {
            Phase::Latency => run.latency.is_none().then(|| "not in this run".to_string()),
            Phase::Connections => run.connections.is_none().then(|| "not in this run".into()),
            Phase::Capacity => run.capacity.is_none().then(|| "not in this run".into()),
            Phase::Sync => sync_figures(run).err(),
            Phase::Chaos => run.chaos.is_none().then(|| "not in this run".into()),
        };
        let required = inv.required_phases.contains(&phase);
        let name = format!("{}.ran", phase.name());
        match absent {
            Some(why) if required => c.judge(
                &name,
                false,
                why.clone(),
                "required".into(),
                format!("the {} scenario is required ({why})", phase.name()),
            ),
            Some(why) if phase != Phase::Capacity => {
                c.skip(&name, format!("{why}: its invariants do not apply"))
            }
            Some(_) => {}
            None if required || phase != Phase::Capacity => c.judge(
                &name,
                true,
                "ran".into(),
                if required { "required" } else { "optional" }.into(),
                format!("the {} scenario ran", phase.name()),
            ),
            None => {}
        }
    }
    if let Some(l) = &run.latency {
        phase_errors(inv, "latency", l, c);
        phase_rate(inv, "latency", l, c);
    }
    if let Some(conn) = &run.connections {
        phase_errors(inv, "connections", &conn.results, c);
        phase_rate(inv, "connections", &conn.results, c);
        if inv.connections_held {
            match conn.held() {
                None => c.skip(
                    "connections.held",
                    "held connections could not be counted (neither /proc nor the servers)",
                ),
                Some(held) => c.judge(
                    "connections.held",
                    held >= conn.asked as u64,
                    format!("{held} held"),
                    format!("≥ {} asked", conn.asked),
                    if held >= conn.asked as u64 {
                        "every connection asked for was held through the window".into()
                    } else {
                        format!(
                            "only {held} of {} connections were held through the window",
                            conn.asked
                        )
                    },
                ),
            }
        }
    }
    if let Ok(f) = sync_figures(run) {
        sync_invariants(inv, f, c);
    }
    if let Some(chaos) = &run.chaos {
        chaos_invariants(inv, chaos, c);
    }
    if let Some(f) = run.scale.as_ref().and_then(|s| s.figures.as_ref()) {
        scale_answered(f, c);
    }
}

/// The scale step: a fleet grown while serving must have every server healthy within the wait
/// and answering the sweep; one that does not is a fault, whatever the machine's load.
fn scale_answered(f: &ScaleFigures, c: &mut Checks) {
    let sw = &f.sweep;
    let ok = f.healthy_s.is_some() && sw.ok == f.to_servers && !sw.interrupted;
    c.judge(
        "scale.answered",
        ok,
        format!(
            "{} of {} answered, {} healthy",
            sw.ok, f.to_servers, f.healthy
        ),
        "all".into(),
        format!(
            "the fleet grew from {} to {} servers: {} healthy within {:.0} s, {} answered",
            f.from_servers, f.to_servers, f.healthy, f.wait_limit_s, sw.ok
        ),
    );
}

fn chaos_invariants(inv: &Invariants, chaos: &ChaosResult, c: &mut Checks) {
    let r = &chaos.results;
    if r.requests == 0 {
        c.skip("chaos.failed", "the chaos load measured no requests");
    } else {
        let failed = r.requests - r.ok;
        let percent = failed as f64 * 100.0 / r.requests as f64;
        let ok = percent <= inv.chaos_max_failed_percent;
        c.judge(
            "chaos.failed",
            ok,
            format!("{percent:.3} % ({failed} of {})", r.requests),
            format!("≤ {} %", inv.chaos_max_failed_percent),
            if ok {
                format!(
                    "requests kept succeeding while {} faults hit the servers",
                    chaos.faults.len()
                )
            } else {
                format!(
                    "{failed} requests failed during {} faults ({})",
                    chaos.faults.len(),
                    chaos.specs.join(", ")
                )
            },
        );
    }
    if inv.chaos_all_recovered {
        let (_, never) = chaos.recovery();
        let n = chaos.recoverable().count();
        let unreported: Vec<&str> = chaos
            .recoverable()
            .filter(|f| f.recovered_ms.is_none())
            .map(|f| f.server.as_str())
            .take(5)
            .collect();
        c.judge(
            "chaos.recovered",
            never == 0,
            format!("{} of {n}", n - never),
            "all".into(),
            if never == 0 {
                format!("every one of {n} failed servers was healthy again")
            } else {
                format!(
                    "{never} failed servers were not healthy again within {:.1} s (e.g. {})",
                    chaos.recovery_wait_ms as f64 / 1000.0,
                    unreported.join(", ")
                )
            },
        );
    }
}

fn phase_errors(inv: &Invariants, phase: &str, r: &Results, c: &mut Checks) {
    let total: u64 = r.errors.values().sum();
    let classes: Vec<String> = r
        .errors
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(class, n)| format!("{} {n}", class.name()))
        .collect();
    let ok = total <= inv.max_errors;
    c.judge(
        &format!("{phase}.errors"),
        ok,
        if classes.is_empty() {
            format!("{total} errors")
        } else {
            format!("{total} errors ({})", classes.join(", "))
        },
        format!("≤ {}", inv.max_errors),
        if ok {
            format!("{} of {} requests failed", total, r.requests)
        } else {
            format!(
                "{total} of {} requests failed in the {phase} phase ({})",
                r.requests,
                classes.join(", ")
            )
        },
    );
}

fn phase_rate(inv: &Invariants, phase: &str, r: &Results, c: &mut Checks) {
    let name = format!("{phase}.rate");
    let achieved = r.throughput_rps;
    match r.setup.target_rps {
        None => c.judge(
            &name,
            r.ok > 0,
            format!("{achieved:.1} req/s, {} ok", r.ok),
            "> 0 completed (closed loop: no intended rate)".into(),
            if r.ok > 0 {
                "closed loop: requests completed".into()
            } else {
                format!("no request of the {phase} phase succeeded")
            },
        ),
        Some(target) if target.is_finite() && target > 0.0 => {
            rate(inv, &name, achieved, target, "req/s", c)
        }
        Some(target) => c.skip(&name, format!("no usable intended rate ({target})")),
    }
}

fn rate(inv: &Invariants, name: &str, achieved: f64, target: f64, unit: &str, c: &mut Checks) {
    let need = inv.min_rate_ratio * target;
    let ok = achieved >= need;
    c.judge(
        name,
        ok,
        format!(
            "{achieved:.1} {unit} ({:.1} % of {target})",
            100.0 * achieved / target
        ),
        format!(
            "≥ {need:.1} {unit} ({:.0} % of {target})",
            100.0 * inv.min_rate_ratio
        ),
        if ok {
            "the intended rate was achieved".into()
        } else {
            format!(
                "achieved {achieved:.1} {unit} of the {target} intended: the generator or the \
                 servers could not keep up"
            )
        },
    );
}

fn sync_invariants(inv: &Invariants, f: &SyncFigures, c: &mut Checks) {
    let failed: u64 = f.failed.values().sum();
    let ok = failed <= inv.max_errors;
    c.judge(
        "sync.write_errors",
        ok,
        format!("{failed} failed writes"),
        format!("≤ {}", inv.max_errors),
        format!("{failed} of {} writes failed", f.writes),
    );
    if f.rate_wps.is_finite() && f.rate_wps > 0.0 {
        rate(inv, "sync.rate", f.achieved_wps, f.rate_wps, "writes/s", c);
    } else {
        c.skip(
            "sync.rate",
            format!("no usable intended write rate ({})", f.rate_wps),
        );
    }
    let check = &f.check;
    let limit = format!("≤ {} lost", inv.max_lost_writes);
    if let Some(why) = &check.skipped {
        c.skip(
            "sync.lost_writes",
            format!("the end-of-run check did not run: {why}"),
        );
    } else if check.lost > inv.max_lost_writes {
        let examples = if check.lost_examples.is_empty() {
            String::new()
        } else {
            format!(" (e.g. {})", check.lost_examples.join(", "))
        };
        c.judge(
            "sync.lost_writes",
            false,
            format!("{} lost of {}", check.lost, check.acked),
            limit,
            format!("{} acknowledged writes are missing{examples}", check.lost),
        );
    } else if !check.complete {
        c.judge(
            "sync.lost_writes",
            false,
            format!("{} lost, check incomplete", check.lost),
            limit,
            format!(
                "the check could not read every write back ({} read errors): lost writes cannot \
                 be ruled out",
                check.read_errors
            ),
        );
    } else {
        c.judge(
            "sync.lost_writes",
            true,
            format!("{} lost of {}", check.lost, check.acked),
            limit,
            "every acknowledged write was read back".into(),
        );
    }
}
