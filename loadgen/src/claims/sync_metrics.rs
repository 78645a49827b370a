//! The sync scenario's metrics: the write-to-visible lag's p99 (writes never visible counted
//! as slower than all) and the acknowledged writes lost.

use crate::{fmt_micros, runfile::SyncFigures};

use super::spec::Metric;

/// Share of acknowledged writes that may fail to become visible before the lag's p99 is
/// beyond any measured value.
const SYNC_P99: f64 = 0.99;

/// Metrics of the sync scenario.
pub(super) fn sync_value(metric: Metric, f: &SyncFigures) -> Result<(f64, String), String> {
    let isolation = f
        .isolation
        .as_deref()
        .map_or(String::new(), |i| format!(", {i} isolation"));
    match metric {
        Metric::SyncLagP99Ms => {
            let invisible: u64 = f.visibility_failures.values().sum();
            let read_back = f.visible + invisible;
            if read_back == 0 {
                return Err("no acknowledged write of the measured window was read back".into());
            }
            let pairs = if f.same_server {
                "on the same server (only one server)".to_string()
            } else if f.nodes >= 2 {
                format!("on a server of another node ({} nodes)", f.nodes)
            } else {
                "on another server".to_string()
            };
            let context = format!(
                "over {read_back} writes at {:.0} writes/s on {} servers{isolation}; the lag \
                 includes one read round trip (baseline read p50 {}, p99 {})",
                f.achieved_wps,
                f.servers,
                fmt_micros(f.baseline_read_us.p50),
                fmt_micros(f.baseline_read_us.p99),
            );
            // A write that never became visible has a lag beyond any measured one: the p99
            // of all writes read back is the lag histogram's quantile that leaves room for
            // them above it.
            let q = SYNC_P99 * read_back as f64 / f.visible.max(1) as f64;
            if invisible > 0 && (f.visible == 0 || q > 1.0) {
                return Ok((
                    f64::INFINITY,
                    format!(
                        "p99 not reached: {invisible} of {read_back} acknowledged writes did not \
                         become visible {pairs} within {} ms ({context})",
                        f.visible_wait_ms
                    ),
                ));
            }
            let p99_us = if invisible == 0 {
                f.lag_us.p99
            } else {
                crate::runfile::decode_histogram(&f.histograms.lag.data)
                    .map_err(|e| format!("the lag histogram: {e:#}"))?
                    .value_at_quantile(q)
            };
            let failures = if invisible > 0 {
                format!(", counting {invisible} writes never visible as slower than all")
            } else {
                String::new()
            };
            Ok((
                p99_us as f64 / 1000.0,
                format!(
                    "p99 {} (p50 {}, max {}) from the ack on one server to visible {pairs}{failures} \
                     {context}",
                    fmt_micros(p99_us),
                    fmt_micros(f.lag_us.p50),
                    fmt_micros(f.lag_us.max),
                ),
            ))
        }
        Metric::LostWrites => {
            let c = &f.check;
            if let Some(why) = &c.skipped {
                return Err(format!("the final check did not run: {why}"));
            }
            let servers = c.servers.len();
            if c.lost > 0 {
                return Ok((
                    c.lost as f64,
                    format!(
                        "{} of {} acknowledged writes missing on at least one of {servers} \
                         servers (e.g. {})",
                        c.lost,
                        c.acked,
                        c.lost_examples.join(", ")
                    ),
                ));
            }
            if !c.complete {
                return Err(format!(
                    "the final check was incomplete: {} reads failed (none missing among the \
                     {} acknowledged writes on the reads that answered)",
                    c.read_errors, c.acked
                ));
            }
            let failed: u64 = f.failed.values().sum();
            Ok((
                0.0,
                format!(
                    "0 of {} acknowledged writes missing on each of {servers} servers read back \
                     at version >= {}{isolation} ({failed} writes failed and were not \
                     acknowledged)",
                    c.acked, c.min_version
                ),
            ))
        }
        other => Err(format!("{} is not a sync metric", other.name())),
    }
}
