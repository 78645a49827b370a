//! The memory sync section: what the scenario did, its counts and latencies, the final check
//! that no acknowledged write is missing, and the verdicts of the claims it measures.

use std::fmt::Write as _;

use super::{claims, sync_charts, tables::latency_cells};
use crate::{
    escape::esc,
    run::{LatencySummary, RunFile, SyncCheck, SyncFigures, SyncResult},
};

/// The memory sync scenario: what was done, the figures, the final check and the verdicts of
/// the claims it measures.
pub(super) fn section(h: &mut String, run: &RunFile, s: &SyncResult) {
    h.push_str("<section id=\"sync\">\n<h2>Memory sync</h2>\n");
    let Some(f) = s.figures.as_ref().filter(|_| s.ran) else {
        let _ = writeln!(h, "<p>Not run: {}</p>\n</section>", esc(&s.reason));
        return;
    };
    intro(h, f);
    counts(h, f);
    latency(h, f);
    sync_charts::charts(h, f);
    check(h, &f.check);
    afterwards(h, run, f);
    verdicts(h, run);
    h.push_str("</section>\n");
}

/// What the scenario did: rate, duration, servers and how each probe is written and read.
fn intro(h: &mut String, f: &SyncFigures) {
    let _ = writeln!(
        h,
        "<p>{} writes/s (open model, at most {} in flight) for {:.1} s measured after a {:.0} s \
         warm-up, over {} servers{}{}. Each write creates one entity on a random server A \
         (<code>create_entities</code>); {}, <code>open_nodes</code> with \
         <code>minVersion</code> = the version A acknowledged (waiting up to {} ms) must \
         return it; then the same read without <code>minVersion</code> gives the baseline \
         read ({} of the {} visible writes took one). Probes are named \
         <code>sync-{}-N</code>.</p>",
        f.rate_wps,
        f.users,
        f.measured_s,
        f.warmup_s,
        f.servers,
        f.isolation
            .as_deref()
            .map_or(String::new(), |i| format!(" ({} isolation)", esc(i))),
        if f.servers_left_out > 0 {
            format!(
                "; {} targets left out (no memory tools, or no answer)",
                f.servers_left_out
            )
        } else {
            String::new()
        },
        if f.same_server {
            "then on the same server (there is only one)".to_string()
        } else if f.nodes >= 2 {
            format!(
                "then on a random server B of another node (the servers belong to {} \
                 replicating nodes, so the lag is the replication's)",
                f.nodes
            )
        } else {
            "then on a random other server B".to_string()
        },
        f.visible_wait_ms,
        f.baseline_read_us.count + f.baseline_failures,
        f.visible,
        esc(&f.tag),
    );
}

/// The counts of writes: attempted, acknowledged, failed, visible or not, warm-up, connections.
fn counts(h: &mut String, f: &SyncFigures) {
    let failed: u64 = f.failed.values().sum();
    let invisible: u64 = f.visibility_failures.values().sum();
    let mut counts: Vec<(String, String)> = vec![
        (
            "writes attempted (measured window)".into(),
            format!("{} ({:.0}/s)", f.writes, f.achieved_wps),
        ),
        ("acknowledged".into(), f.acked.to_string()),
        (
            "failed (not acknowledged)".into(),
            listed(
                failed,
                f.failed
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(c, n)| format!("{n} {}", c.name())),
            ),
        ),
        ("visible on the other server".into(), f.visible.to_string()),
        (
            "not visible".into(),
            listed(
                invisible,
                f.visibility_failures
                    .iter()
                    .map(|(k, n)| format!("{n} {k}")),
            ),
        ),
        (
            "warm-up writes (acknowledged)".into(),
            format!("{} ({})", f.warmup_writes, f.warmup_acked),
        ),
        (
            "connections opened during the run".into(),
            format!(
                "{} (besides one per server beforehand)",
                f.connections_opened
            ),
        ),
    ];
    if f.baseline_failures > 0 {
        counts.push((
            "baseline reads failed".into(),
            f.baseline_failures.to_string(),
        ));
    }
    h.push_str("<table>\n");
    for (k, v) in &counts {
        let _ = writeln!(
            h,
            "<tr><th>{}</th><td class=\"num\">{}</td></tr>",
            esc(k),
            esc(v)
        );
    }
    h.push_str("</table>\n");
}

/// `0` when `total` is, else the `parts` (counts by kind) joined by commas.
fn listed(total: u64, parts: impl Iterator<Item = String>) -> String {
    if total == 0 {
        "0".into()
    } else {
        parts.collect::<Vec<_>>().join(", ")
    }
}

/// Ack latency, service time, write-to-visible lag (by the reader and, where reported, by the
/// servers' clocks) and the baseline read.
fn latency(h: &mut String, f: &SyncFigures) {
    h.push_str(
        "<h3>Latency</h3>\n<table>\n<tr><th></th><th>count</th><th>mean</th><th>min</th>\
         <th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n",
    );
    let mut rows: Vec<(&str, &LatencySummary)> = vec![
        (
            "ack latency (from the intended send time, coordinated omission corrected)",
            &f.ack_us,
        ),
        ("ack service time (from the actual send)", &f.ack_service_us),
        (
            "write-to-visible lag (ack on A to B's answer with the entity; one read round trip \
             included)",
            &f.lag_us,
        ),
        (
            "baseline read (same read on B without minVersion)",
            &f.baseline_read_us,
        ),
    ];
    if let Some(server) = &f.server_lag_us {
        rows.insert(
            3,
            (
                "write-to-visible lag by the servers' clocks (A's ack to B's view holding the \
                 version; no read round trip)",
                server,
            ),
        );
    }
    for (name, l) in rows {
        let _ = write!(
            h,
            "<tr><th>{}</th><td class=\"num\">{}</td>",
            esc(name),
            l.count
        );
        latency_cells(h, l);
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// The end-of-run check that no acknowledged write is missing.
fn check(h: &mut String, c: &SyncCheck) {
    let outcome = match &c.skipped {
        Some(why) => format!("Skipped: {}.", esc(why)),
        None => {
            let mut text = format!(
                "All {} acknowledged writes (warm-up included) read back with \
                 <code>minVersion</code> {} on {} servers ({}) in {:.2} s: <strong>{} \
                 lost</strong>{}{}.",
                c.acked,
                c.min_version,
                c.servers.len(),
                esc(&c.servers.join(", ")),
                c.seconds,
                c.lost,
                if c.duplicates > 0 {
                    format!(", {} listed twice", c.duplicates)
                } else {
                    String::new()
                },
                if c.complete {
                    String::new()
                } else {
                    format!(
                        "; incomplete: {} reads failed twice, so no-loss is not established",
                        c.read_errors
                    )
                }
            );
            if !c.lost_examples.is_empty() {
                let _ = write!(
                    text,
                    " Missing, e.g.: {}. Per server: {}.",
                    esc(&c.lost_examples.join(", ")),
                    esc(&c
                        .missing_by_server
                        .iter()
                        .map(|(s, n)| format!("{s} {n}"))
                        .collect::<Vec<_>>()
                        .join(", "))
                );
            }
            text
        }
    };
    let _ = writeln!(
        h,
        "<h3>No acknowledged write missing</h3>\n<p>{outcome} Writes that failed are not \
         counted as lost: a write that timed out may or may not have been applied.</p>"
    );
}

/// What followed the measurements: the history sample, the clean-up of the probes and the CPU
/// used during the load.
fn afterwards(h: &mut String, run: &RunFile, f: &SyncFigures) {
    if let Some(hist) = &f.history {
        let _ = writeln!(
            h,
            "<p>History: {} of {} sampled probes show their write in <code>memory_history</code> \
             ({} naming the server that took it; {} errors; waited {:.2} s for commits).</p>",
            hist.found, hist.sampled, hist.attributed, hist.errors, hist.waited_s
        );
    }
    match &f.cleanup {
        Some(clean) => {
            let _ = writeln!(
                h,
                "<p>Clean-up: {} probes deleted with <code>delete_entities</code> after the \
                 measurements ({} calls failed).</p>",
                clean.requested, clean.failed_calls
            );
        }
        None if run.fleet.is_some() => h.push_str(
            "<p>The probes stay in the embedded fleet's memory, which belongs to this run (in \
             the run folder).</p>\n",
        ),
        None => {}
    }
    if let Some(cpu) = &f.cpu {
        let _ = writeln!(
            h,
            "<p>CPU during the load: the load generator {:.1} CPU-s ({:.0} % of the machine){}; \
             this process {:.1} CPU-s in all; all cores {:.0} % busy{}.</p>",
            cpu.generator_cpu_s,
            cpu.generator_percent_of_machine,
            cpu.fleet_cpu_s.map_or(String::new(), |f| format!(
                ", the embedded fleet's runtime threads {f:.1} CPU-s"
            )),
            cpu.process_cpu_s,
            cpu.machine_busy_percent,
            if cpu.machine_busy_percent >= 90.0 {
                ": the machine was saturated, so generator and servers competed for CPU"
            } else {
                ""
            }
        );
    }
}

/// The verdicts of the claims the sync scenario measures.
fn verdicts(h: &mut String, run: &RunFile) {
    let verdicts: Vec<_> = run
        .claims
        .iter()
        .filter(|c| {
            c.criterion.starts_with("sync_lag_p99_ms") || c.criterion.starts_with("lost_writes")
        })
        .collect();
    if !verdicts.is_empty() {
        h.push_str("<h3>Verdicts</h3>\n");
        h.push_str(claims::TABLE_OPEN);
        for c in verdicts {
            claims::row(
                h,
                c,
                &esc(&c.title),
                &esc(c.measured.as_deref().unwrap_or(&c.note)),
            );
        }
        h.push_str("</table>\n");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::{render, sample::sample_run};

    #[test]
    fn sync_section_shows_figures_check_and_verdicts() {
        let html = render(&sample_run());
        let section = &html[html.find("<section id=\"sync\">").unwrap()..];
        let section = &section[..section.find("</section>").unwrap()];
        for marker in [
            "write-to-visible lag",
            "baseline read",
            "ack latency",
            "minVersion",
            "0 lost",
            "task isolation",
            "Verdicts",
            "Shared memory loses no write",
            "Git memory shared in real time",
        ] {
            assert!(section.contains(marker), "{marker} in {section}");
        }
    }
}
