//! One load phase's section (the latency scenario, the load under held connections, each
//! capacity step's and the chaos load): its setup, latency tables, errors, CPU and goose's own
//! counts, with the phase's charts from [`super::phase_charts`].

use std::fmt::Write as _;

use super::{
    phase_charts,
    tables::{breakdown_row, latency_cells},
};
use crate::{
    escape::esc,
    fmt_micros,
    run::{ErrorClass, Results},
};

/// Everything one load phase measured: latency table, per call and group, percentiles,
/// throughput and p50/p99 over time, errors, CPU and goose's own counts.
pub(super) fn section(h: &mut String, id: &str, title: &str, r: &Results) {
    let l = &r.latency_us;
    let open = r.setup.load_model.starts_with("open model")
        || r.setup.load_model.starts_with("per-connection");
    let _ = write!(
        h,
        "<section id=\"{id}\">\n<h2>{}</h2>\n<p>{} users, {:.0} s ramp-up, {:.0} s warm-up, \
         {:.1} s measured; {}.</p>\n<p>Successful requests only, {} to having read the whole \
         response body. {} successful of {} requests, {:.0} req/s.</p>\n\
         <table>\n<tr><th></th><th>mean</th><th>min</th><th>p50</th><th>p90</th>\
         <th>p99</th><th>p99.9</th><th>max</th></tr>\n",
        esc(title),
        r.setup.users,
        r.setup.ramp_up_s,
        r.setup.warmup_s,
        r.measured_s,
        esc(&r.setup.load_model),
        if open {
            "from each request's intended send time (coordinated omission corrected)"
        } else {
            "from sending the request"
        },
        l.count,
        r.requests,
        r.throughput_rps
    );
    let mut rows = vec![("latency", l)];
    if open {
        rows.push((
            "service time (from the actual send, uncorrected)",
            &r.service_latency_us,
        ));
    }
    if r.ttfb_us.count > 0 {
        rows.push(("time to first byte (response headers)", &r.ttfb_us));
    }
    for (name, l) in rows {
        let _ = write!(h, "<tr><th>{}</th>", esc(name));
        latency_cells(h, l);
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    for (what, rows) in [("call", &r.by_call), ("target group", &r.by_group)] {
        if rows.len() < 2 && what == "target group" {
            continue;
        }
        let _ = write!(
            h,
            "<h3>Per {what}</h3>\n<table>\n<tr><th>{what}</th>\
             <th class=\"num\">requests</th><th class=\"num\">errors</th>\
             <th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">max</th></tr>\n",
        );
        for c in rows.iter() {
            breakdown_row(h, c);
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h3>Percentiles</h3>\n<table>\n<tr><th class=\"num\">percentile</th><th class=\"num\">latency</th><th class=\"num\">microseconds</th></tr>\n");
    for p in &r.percentiles_us {
        let name = if p.percentile >= 100.0 {
            "max".to_string()
        } else {
            format!("{}", p.percentile)
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&name),
            esc(&fmt_micros(p.us)),
            p.us
        );
    }
    h.push_str("</table>\n");
    phase_charts::charts(h, id, r);
    h.push_str("<h3>Errors</h3>\n<table>\n<tr><th>class</th><th class=\"num\">count</th><th>meaning</th></tr>\n");
    for class in ErrorClass::ALL {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td></tr>",
            class.name(),
            r.errors.get(&class).copied().unwrap_or(0),
            esc(class.describe())
        );
    }
    h.push_str("</table>\n");
    if let Some(cpu) = &r.cpu {
        let fleet = match cpu.fleet_cpu_s {
            Some(f) => format!(", the embedded fleet's threads {f:.1} CPU-s"),
            None => String::new(),
        };
        let _ = writeln!(
            h,
            "<p>CPU during the phase: the load generator {:.1} CPU-s ({:.0} % of the machine, \
             {:.0} µs per request){fleet}; this process {:.1} CPU-s in all; all cores {:.0} % \
             busy{}.</p>",
            cpu.generator_cpu_s,
            cpu.generator_percent_of_machine,
            cpu.generator_cpu_us_per_request,
            cpu.process_cpu_s,
            cpu.machine_busy_percent,
            if cpu.machine_busy_percent >= 90.0 {
                ": the machine was saturated, so generator and servers competed for CPU"
            } else {
                ""
            }
        );
    }
    let e = &r.engine;
    let _ = writeln!(
        h,
        "<p>Engine: {} {}: {} users at most, {} requests counted by goose (warm-up included), \
         {} marked failed.</p>\n</section>",
        esc(&e.name),
        esc(&e.version),
        e.users_max,
        e.requests,
        e.failures
    );
}
