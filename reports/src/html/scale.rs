//! The scale section: the embedded fleet grown through its admin API, how long until every
//! server was healthy, the sweep at the new size, and the fleet's memory at both sizes, so a
//! reader sees what the larger fleet costs next to what it answered. A step that did not run
//! says why.

use std::fmt::Write as _;

use crate::{
    escape::esc,
    run::{FleetMemory, ScaleResult},
};

/// The step's outcome, then a table of the fleet's memory at both sizes.
pub(super) fn section(h: &mut String, s: &ScaleResult) {
    h.push_str("<section id=\"scale\">\n<h2>Scale</h2>\n");
    let Some(f) = &s.figures else {
        let _ = writeln!(
            h,
            "<p>The scale step did not run: {}.</p>\n</section>",
            esc(&s.reason)
        );
        return;
    };
    let groups: Vec<String> = f
        .groups
        .iter()
        .map(|g| format!("{} {} &rarr; {}", esc(&g.group), g.from, g.to))
        .collect();
    let healthy = match f.healthy_s {
        Some(secs) => {
            format!("every server was healthy <strong>{secs:.2} s</strong> after the scale request")
        }
        None => format!(
            "<strong>only {} of {}</strong> servers were healthy when loadgen stopped waiting \
             ({:.0} s)",
            f.healthy, f.to_servers, f.wait_limit_s
        ),
    };
    let sw = &f.sweep;
    let _ = writeln!(
        h,
        "<p>The fleet ({} isolation) grew from {} to {} servers through its admin API \
         (<code>POST /groups/{{group}}/scale</code>: {}; the requests took {:.0} ms); {healthy}. \
         A <code>tools/list</code> to every server then: <strong>{} of {}</strong> answered in \
         {:.2} s{}.</p>",
        esc(&f.isolation),
        f.from_servers,
        f.to_servers,
        groups.join(", "),
        f.request_ms,
        sw.ok,
        sw.servers,
        sw.seconds,
        if sw.interrupted { ", interrupted" } else { "" },
    );
    super::health::failures(h, &sw.failures);
    // Server processes exist in process isolation only; task mode has the one process.
    let processes = f.memory_before.server_processes + f.memory_after.server_processes > 0;
    h.push_str(
        "<table>\n<tr><th class=\"num\">servers</th><th class=\"num\">fleet process RSS</th>",
    );
    if processes {
        h.push_str(
            "<th class=\"num\">server processes</th><th class=\"num\">their RSS, added up</th>\
             <th class=\"num\">their PSS, added up</th>",
        );
    }
    h.push_str("</tr>\n");
    for m in [&f.memory_before, &f.memory_after] {
        memory_row(h, m, processes);
    }
    h.push_str(
        "</table>\n<p class=\"note\">The embedded fleet runs in loadgen's own process, so its \
         RSS includes the load generator's, and what earlier scenarios left allocated. Server \
         processes (process isolation) share pages such as the binary's code: RSS counts them \
         in every process, PSS divides them among the processes.</p>\n</section>\n",
    );
}

fn memory_row(h: &mut String, m: &FleetMemory, processes: bool) {
    let _ = write!(
        h,
        "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td>",
        m.servers,
        mib(m.fleet_rss_bytes),
    );
    if processes {
        let _ = write!(
            h,
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            m.server_processes,
            mib(m.servers_rss_bytes),
            mib(m.servers_pss_bytes),
        );
    }
    h.push_str("</tr>\n");
}

/// Bytes as MiB, `-` when unknown.
fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::{render, sample::sample_run};
    use crate::run::{FleetMemory, ScaleFigures, ScaleGroup, ScaleResult};

    fn grown(healthy_s: Option<f64>) -> ScaleResult {
        let mut run = sample_run();
        run.health.servers = 1000;
        run.health.ok = 999;
        let memory = |servers, rss| FleetMemory {
            servers,
            fleet_rss_bytes: Some(rss),
            server_processes: servers,
            servers_rss_bytes: Some(rss * 10),
            servers_pss_bytes: Some(rss * 2),
        };
        ScaleResult {
            ran: true,
            reason: "999/1000 servers answered".into(),
            figures: Some(ScaleFigures {
                isolation: "process".into(),
                from_servers: 500,
                to_servers: 1000,
                groups: vec![ScaleGroup {
                    group: "<community>".into(),
                    from: 346,
                    to: 692,
                }],
                request_ms: 12.0,
                healthy_s,
                healthy: 998,
                wait_limit_s: 60.0,
                memory_before: memory(500, 100 << 20),
                memory_after: memory(1000, 150 << 20),
                sweep: run.health,
            }),
        }
    }

    #[test]
    fn the_section_shows_time_to_healthy_sweep_and_memory_at_both_sizes() {
        let mut run = sample_run();
        run.scale = Some(grown(Some(0.84)));
        let html = render(&run);
        assert!(html.contains("<section id=\"scale\">"));
        for marker in [
            "from 500 to 1000 servers",
            "&lt;community&gt; 346 &rarr; 692",
            "<strong>0.84 s</strong>",
            "<strong>999 of 1000</strong>",
            "100.0 MiB",
            "150.0 MiB",
            "300.0 MiB",
        ] {
            assert!(html.contains(marker), "{marker}");
        }
        let mut run = sample_run();
        let mut task = grown(None);
        if let Some(f) = task.figures.as_mut() {
            for m in [&mut f.memory_before, &mut f.memory_after] {
                (m.server_processes, m.servers_rss_bytes, m.servers_pss_bytes) = (0, None, None);
            }
        }
        run.scale = Some(task);
        let html = render(&run);
        assert!(html.contains("<strong>only 998 of 1000</strong>"));
        assert!(!html.contains("server processes"), "task mode has none");
    }

    #[test]
    fn a_step_that_did_not_run_says_why_and_no_section_without_it() {
        let mut run = sample_run();
        assert!(!render(&run).contains("id=\"scale\""));
        run.scale = Some(ScaleResult {
            ran: false,
            reason: "the servers are --target <servers>".into(),
            figures: None,
        });
        let html = render(&run);
        assert!(html.contains("did not run: the servers are --target &lt;servers&gt;."));
    }
}
