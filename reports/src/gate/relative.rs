//! The second layer: the judged runs against baseline runs of the same job, per-second medians
//! (or p90s) pooled by side and compared with [`stats::compare_runs`]; a regression needs a
//! significant test and a bootstrap interval wholly beyond the minimum effect.

use super::{
    check::{Check, Checks, Layer},
    config::Relative,
    input::NamedRun,
    report::{confidence, fmt_change, fmt_p, fmt_us},
};
use crate::stats;

/// The relative rules: the judged runs pooled against the baseline runs, one check a metric
/// (skipped without a baseline).
pub(super) fn check(
    rel: &Relative,
    baseline: &[NamedRun],
    runs: &[NamedRun],
    out: &mut Vec<Check>,
) {
    if rel.metrics.is_empty() {
        return;
    }
    let mut c = Checks {
        layer: Layer::Relative,
        run: None,
        out,
    };
    if baseline.is_empty() {
        c.skip(
            "baseline",
            "no --baseline run given: the relative rules were not applied",
        );
        return;
    }
    let settings = stats::Settings {
        alpha: rel.alpha,
        min_effect_percent: rel.min_effect_percent,
        ..stats::Settings::default()
    };
    let confidence = confidence(rel.alpha);
    let band = rel.min_effect_percent;
    let limit = format!(
        "fails if p < {} and the {confidence} % CI lies above +{band} %",
        rel.alpha
    );
    for metric in &rel.metrics {
        // Per run, runs without a sample left out.
        let per_run = |side: &[NamedRun]| -> Vec<Vec<f64>> {
            side.iter()
                .map(|r| metric.samples(&r.file))
                .filter(|v| !v.is_empty())
                .collect()
        };
        let (b, h) = (per_run(baseline), per_run(runs));
        let count = |v: &[Vec<f64>]| v.iter().map(Vec::len).sum::<usize>();
        let name = metric.name();
        if b.len() < rel.min_runs || h.len() < rel.min_runs {
            c.skip(
                name,
                format!(
                    "too few runs: {} baseline and {} head runs with samples, relative.min_runs \
                     = {} a side (repeat the runs: one run a side cannot tell a regression from \
                     a slow machine)",
                    b.len(),
                    h.len(),
                    rel.min_runs
                ),
            );
            continue;
        }
        if count(&b) < rel.min_samples || count(&h) < rel.min_samples {
            c.skip(
                name,
                format!(
                    "too few samples: {} baseline and {} head seconds, relative.min_samples = {} \
                     a side",
                    count(&b),
                    count(&h),
                    rel.min_samples
                ),
            );
            continue;
        }
        let (bs, hs): (Vec<&[f64]>, Vec<&[f64]>) = (
            b.iter().map(Vec::as_slice).collect(),
            h.iter().map(Vec::as_slice).collect(),
        );
        let cmp = match stats::compare_runs(&bs, &hs, &settings) {
            Ok(cmp) => cmp,
            Err(e) => {
                c.skip(name, format!("cannot compare: {e}"));
                continue;
            }
        };
        let ci = format!(
            "{} to {}",
            fmt_change(cmp.ci_low_percent),
            fmt_change(cmp.ci_high_percent)
        );
        let message = if cmp.regression {
            format!(
                "regression: {} slower ({confidence} % CI {ci}), p = {}: beyond the {band} % \
                 noise band",
                fmt_change(cmp.change_percent),
                fmt_p(cmp.p_value)
            )
        } else if cmp.improvement {
            format!(
                "improvement: {} ({confidence} % CI {ci})",
                fmt_change(cmp.change_percent)
            )
        } else if cmp.significant {
            format!(
                "significant (p = {}) but not beyond the {band} % noise band ({confidence} % \
                 CI {ci})",
                fmt_p(cmp.p_value)
            )
        } else {
            format!("no significant change (p = {})", fmt_p(cmp.p_value))
        };
        c.judge(
            name,
            !cmp.regression,
            format!(
                "{} → {} ({}, {confidence} % CI {ci}, p = {})",
                fmt_us(cmp.baseline_median),
                fmt_us(cmp.head_median),
                fmt_change(cmp.change_percent),
                fmt_p(cmp.p_value)
            ),
            limit.clone(),
            message,
        );
        if let Some(last) = c.out.last_mut() {
            last.comparison = Some(cmp);
        }
    }
}
