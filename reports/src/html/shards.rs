//! The shards section of a merged run (`loadgen merge`): each shard's host, rate, p99,
//! generator CPU and clock beside the merged figures, and a flag on a saturated, late or short shard, so
//! one bad generator shows instead of vanishing in the sum. A shard's own run file gets one
//! line saying which shard of which run it is.

use std::fmt::Write as _;

use crate::{escape::esc, format::fmt_micros, run::RunFile};

pub(super) fn section(h: &mut String, run: &RunFile) {
    if let Some(s) = &run.shard {
        let _ = writeln!(
            h,
            "<section id=\"shard\">\n<h2>Shard</h2>\n<p>Shard {} of {} of run <code>{}</code> on \
             {}{}. Merge the shards' run files with <code>loadgen merge</code> for the run's \
             figures.</p>\n</section>",
            s.index,
            s.count,
            esc(&s.run_id),
            esc(&s.host),
            s.start_late_ms
                .map(|ms| format!(", started {ms:.0} ms after the agreed instant"))
                .unwrap_or_default()
        );
        return;
    }
    if run.merged_from.is_empty() {
        return;
    }
    let flagged = run
        .merged_from
        .iter()
        .filter(|s| !s.flags.is_empty())
        .count();
    let _ = writeln!(
        h,
        "<section id=\"shards\">\n<h2>Shards</h2>\n<p>This run was merged from {} shards: their \
         histograms added (exact percentiles), counts summed, seconds lined up by the wall \
         clock. {}</p>\n<table>\n<tr><th>shard</th><th>host</th><th>req/s</th><th>p99</th>\
         <th>generator CPU</th><th>started late</th><th>clock vs servers</th><th>flags</th>\
         <th>file</th></tr>",
        run.merged_from.len(),
        if flagged == 0 {
            "No shard was flagged.".to_string()
        } else {
            format!(
                "{flagged} shard(s) flagged: their share of the load may not have been sent as planned."
            )
        }
    );
    for s in &run.merged_from {
        let flags = if s.flags.is_empty() {
            "-".to_string()
        } else {
            s.flags
                .iter()
                .map(|f| esc(f))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            if s.flags.is_empty() {
                ""
            } else {
                " class=\"flagged\""
            },
            s.index,
            esc(&s.host),
            s.throughput_rps,
            fmt_micros(s.p99_us),
            s.generator_percent_of_machine
                .map_or("-".to_string(), |p| format!("{p:.0} %")),
            s.start_late_ms
                .map_or("-".to_string(), |ms| format!("{ms:.0} ms")),
            s.clock.map_or("-".to_string(), |c| format!(
                "{:+.0} ms ± {:.0}",
                c.offset_ms, c.error_ms
            )),
            flags,
            esc(&s.file)
        );
    }
    h.push_str("</table>\n</section>\n");
}
