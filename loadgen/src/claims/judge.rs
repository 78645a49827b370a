//! The verdicts: every claim judged against the evidence (pass, fail, or not measured with the
//! reason), and the table printed at the end of a run.

use std::fmt::Write as _;

use crate::runfile::{Claim, Verdict};

use super::{evidence::Evidence, spec::ClaimSpec};

/// Judges every claim against the evidence.
pub fn evaluate(specs: &[ClaimSpec], e: &Evidence) -> Vec<Claim> {
    specs.iter().map(|spec| judge(spec, e)).collect()
}

fn judge(spec: &ClaimSpec, e: &Evidence) -> Claim {
    let mut claim = Claim {
        id: spec.id.clone(),
        title: spec.title.clone(),
        quote: spec.quote.clone(),
        verdict: Verdict::NotMeasured,
        measured: None,
        criterion: format!(
            "{} {} {}",
            spec.metric.name(),
            spec.comparator.symbol(),
            spec.target
        ),
        note: spec.note.clone(),
    };
    let mut notes = Vec::new();
    let servers = e.servers_measured(spec.metric);
    if let Some(min) = spec.min_servers
        && servers < min
    {
        notes.push(format!(
            "this run measured {servers} servers; the claim needs at least {min}"
        ));
        notes.extend(e.too_few_why(spec.metric));
    } else {
        match e.value(spec.metric) {
            Ok((value, measured)) => {
                claim.verdict = if spec.comparator.holds(value, spec.target) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                claim.measured = Some(measured);
                if spec.metric.is_latency_figure() {
                    notes.push(format!(
                        "Latency depends on the load: a closed loop of {} users with one request \
                         in flight each has mean ~ users / throughput (Little's law); here {:.0} \
                         req/s.{}",
                        e.config.users,
                        e.latency.map_or(0.0, |l| l.throughput_rps),
                        match (e.fleet, e.latency.and_then(|l| l.cpu)) {
                            (Some(_), Some(cpu)) => format!(
                                " The embedded fleet and the load generator share this \
                                 machine's CPUs ({:.0} % busy; the generator used {:.0} % of \
                                 the machine).",
                                cpu.machine_busy_percent, cpu.generator_percent_of_machine
                            ),
                            (Some(_), None) => " The embedded fleet and the load generator \
                                                share this machine's CPUs."
                                .to_string(),
                            _ => String::new(),
                        }
                    ));
                }
            }
            Err(why) => notes.push(why),
        }
    }
    for n in notes {
        if !claim.note.is_empty() {
            claim.note.push(' ');
        }
        claim.note.push_str(&n);
    }
    claim
}

/// The verdict table printed at the end of a run.
pub fn text_table(claims: &[Claim]) -> String {
    let width = claims
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = String::new();
    let _ = writeln!(out, "{:<13} {:<width$} MEASURED", "VERDICT", "CLAIM");
    for c in claims {
        let _ = writeln!(
            out,
            "{:<13} {:<width$} {}",
            c.verdict.label(),
            c.title,
            c.measured.as_deref().unwrap_or("-")
        );
    }
    out
}
