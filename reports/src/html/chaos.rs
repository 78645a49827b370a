//! The chaos section: the faults injected, when the fleet and the gateway noticed each and when
//! its server was healthy again, then the load's own phase section.

use std::fmt::Write as _;

use super::{figure::figure, phase};
use crate::{
    chart::{self, PALETTE, Series, YAxis},
    escape::esc,
    run::ChaosResult,
};

/// The chaos scenario: the faults, when the fleet and the gateway noticed each and when its
/// server was healthy again, then the load's own section (errors per second show the impact).
pub(super) fn section(h: &mut String, c: &ChaosResult) {
    let r = &c.results;
    let (slowest, never) = c.recovery();
    let recoverable = c.recoverable().count();
    let _ = write!(
        h,
        "<section id=\"chaos\">\n<h2>Chaos</h2>\n<p>{} faults ({}) among {} servers{} while \
         {} took load {}. <strong>{:.3} %</strong> of {} requests succeeded; {} of {} servers \
         the fleet had to recover (killed, or paused long enough for it to notice) were healthy \
         again{}{}.</p>\n",
        c.faults.len(),
        esc(&c.specs.join(", ")),
        c.servers,
        c.isolation
            .as_deref()
            .map_or(String::new(), |i| format!(" ({} isolation)", esc(i))),
        esc(&c.load_target),
        if c.through_gateway {
            "as the gateway (its <code>/backends</code> timed when it took servers out)"
        } else {
            "directly"
        },
        r.success_percent().unwrap_or(0.0),
        r.requests,
        recoverable - never,
        recoverable,
        slowest.map_or(String::new(), |ms| format!(", the slowest after {ms} ms")),
        if never > 0 {
            format!(
                " (loadgen waited {:.1} s after the load)",
                c.recovery_wait_ms as f64 / 1000.0
            )
        } else {
            String::new()
        },
    );
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    let mut points: [Vec<(f64, f64)>; 3] = Default::default();
    for f in &c.faults {
        let at = f.at_ms as f64 / 1000.0;
        for (i, v) in [f.fleet_detect_ms, f.gateway_detect_ms, f.recovered_ms]
            .into_iter()
            .enumerate()
        {
            if let Some(v) = v {
                points[i].push((at, v as f64 * 1000.0));
            }
        }
    }
    let [fleet, gateway, healthy] = points;
    let mut series = vec![
        Series::new("fleet noticed", PALETTE[0], fleet),
        Series::new("healthy again", PALETTE[2], healthy),
    ];
    if c.through_gateway {
        series.insert(1, Series::new("gateway took out", PALETTE[1], gateway));
    }
    series.retain(|s| !s.points.is_empty());
    if !series.is_empty() {
        figure(
            h,
            "Per fault, by when it happened: time until the fleet noticed, the gateway took the \
             server out of rotation, and the server was healthy again.",
            chart::lines(
                "after each fault",
                "fault at (s into the measured window)",
                "time after the fault",
                YAxis::Micros,
                &series,
            ),
        );
    }
    h.push_str(
        "<table>\n<tr><th>server</th><th>fault</th><th class=\"num\">at</th>\
         <th class=\"num\">lasted</th><th class=\"num\">fleet noticed</th>\
         <th class=\"num\">gateway took out</th><th class=\"num\">healthy again</th>\
         <th>error</th></tr>\n",
    );
    for f in &c.faults {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.2} s</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td></tr>",
            esc(&f.server),
            esc(&f.action),
            f.at_ms as f64 / 1000.0,
            ms(f.lasted_ms),
            ms(f.fleet_detect_ms),
            ms(f.gateway_detect_ms),
            ms(f.recovered_ms),
            esc(f.error.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table>\n</section>\n");
    phase::section(h, "chaos-load", "Load during the chaos scenario", r);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::{render, sample::sample_run};

    #[test]
    fn chaos_section_times_each_fault_and_escapes_names() {
        use crate::run::{ChaosResult, FaultRecord};
        let mut run = sample_run();
        let load = run.latency.clone().unwrap();
        let fault = |server: &str, recovered_ms: Option<u64>| FaultRecord {
            server: server.into(),
            action: "kill".into(),
            at_ms: 1_500,
            at_unix_ms: 1,
            lasted_ms: None,
            fleet_detect_ms: Some(3),
            gateway_detect_ms: Some(4),
            recovered_ms,
            error: None,
        };
        run.chaos = Some(ChaosResult {
            specs: vec!["kill:10%".into()],
            load_target: "http://127.0.0.1:7999/mcp".into(),
            through_gateway: true,
            isolation: Some("process".into()),
            servers: 20,
            faults: vec![fault("community-0001", Some(812)), fault("<b>x</b>", None)],
            recovery_wait_ms: 15_000,
            results: load,
        });
        let html = render(&run);
        let section = &html[html.find("<section id=\"chaos\">").unwrap()..];
        let end = section.find("</section>").unwrap();
        let section = &section[..end];
        for marker in [
            "2 faults (kill:10%) among 20 servers (process isolation)",
            "1 of 2 servers the fleet had to recover (killed, or paused long enough for it to \
             notice) were healthy again, the slowest after 812 ms",
            "waited 15.0 s",
            "<svg",
            "gateway took out",
            "community-0001",
            "812 ms",
            "&lt;b&gt;x&lt;/b&gt;",
        ] {
            assert!(section.contains(marker), "{marker} in {section}");
        }
        assert!(html.contains("id=\"chaos-load\""));
    }
}
