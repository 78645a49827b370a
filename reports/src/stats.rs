//! Statistics for comparing two sets of measurements: the CI gate's relative rules, and the
//! comparison report. Pure functions over `f64` samples, no I/O, deterministic (the bootstrap
//! draws from a fixed-seed `fastrand` generator), so a verdict can be reproduced from the run
//! files.
//!
//! On a shared 2-core machine most latency differences between two runs are scheduler noise,
//! and a test over hundreds of samples finds even a 2 % shift "significant". So [`compare`]
//! calls a change a regression only when it is both significant (Mann-Whitney U, two-sided,
//! `p < alpha`) and large: the whole bootstrap confidence interval of the relative change of
//! the median lies beyond the minimum effect (criterion.rs's rule: the interval lies outside
//! the noise band). Medians and rank tests rather than means: a few stalled seconds move a mean
//! but barely move a median. Samples from repeated runs go through [`compare_runs`], whose
//! interval also spans the run-to-run spread.

/// `erfc(x)`, the complementary error function, with a fractional error below 1.2e-7
/// everywhere (Numerical Recipes' Chebyshev fit `erfcc`): relative accuracy matters for small
/// p-values, which an `1 - erf` approximation would round to 0.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The standard normal distribution function Φ(z) = P(Z ≤ z).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty
/// or when a value is NaN. Does not need sorted input.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut v = values.to_vec();
    median_in_place(&mut v)
}

/// Median by selection (O(n)), reordering `v`.
fn median_in_place(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (_, upper, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return Some(upper);
    }
    // The lower middle is the largest of the half below.
    let lower = v[..n / 2].iter().copied().max_by(f64::total_cmp)?;
    Some((lower + upper) / 2.0)
}

/// The `q` quantile (0 to 1) of already sorted values, interpolating between neighbours
/// (Hyndman and Fan's type 7, the default of R and numpy); `None` when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let at = q.clamp(0.0, 1.0) * last as f64;
    let (i, frac) = (at.floor() as usize, at.fract());
    let lo = *sorted.get(i)?;
    Some(match sorted.get(i + 1) {
        Some(hi) if frac > 0.0 => lo + (hi - lo) * frac,
        _ => lo,
    })
}

/// The outcome of a two-sided Mann-Whitney U test of samples `a` and `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of `a`: the pairs `(a_i, b_j)` with `a_i > b_j`, ties counting one half (scipy's `U1`).
    pub u: f64,
    /// U standardised with the tie-corrected variance and a continuity correction of 1/2;
    /// positive when `a` tends to be larger.
    pub z: f64,
    /// Two-sided p-value from the normal approximation: the chance of a `|z|` at least this
    /// large if both samples came from one distribution.
    pub p_value: f64,
}

/// The two-sided Mann-Whitney U test (Wilcoxon rank-sum) with the normal approximation, tie
/// correction and continuity correction, as scipy's `mannwhitneyu(method="asymptotic")` and R's
/// `wilcox.test(exact = FALSE, correct = TRUE)` compute it. It assumes nothing about the shape
/// of the distributions, which latencies need. The approximation is good from about 8 samples
/// a side; below that it is conservative. `None` when a sample is empty or holds a value that
/// is not finite.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    if a.is_empty() || b.is_empty() || a.iter().chain(b).any(|v| !v.is_finite()) {
        return None;
    }
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let n = n1 + n2;
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|v| (*v, true))
        .chain(b.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Midranks over runs of ties, and the tie term Σ (t³ - t).
    let (mut rank_sum_a, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i) as f64;
        let midrank = (i + j + 1) as f64 / 2.0; // ranks i+1 ..= j
        let in_a = all[i..j].iter().filter(|x| x.1).count() as f64;
        rank_sum_a += midrank * in_a;
        ties += t * t * t - t;
        i = j;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    let (z, p_value) = if variance > 0.0 && variance.is_finite() {
        let d = u - mean;
        let corrected = (d.abs() - 0.5).max(0.0).copysign(d);
        let z = corrected / variance.sqrt();
        (z, erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0))
    } else {
        // Every value tied (or a single value in all): nothing tells the samples apart.
        (0.0, 1.0)
    };
    Some(MannWhitney { u, z, p_value })
}

/// The smallest two-sided p-value [`mann_whitney`] can give for samples of `n_a` and `n_b`
/// values (complete separation, no ties): with fewer samples no difference, however large,
/// can be significant at a level below it. The gate uses it to reject a rule that could never
/// fail.
pub fn min_p_value(n_a: usize, n_b: usize) -> f64 {
    let (n1, n2) = (n_a as f64, n_b as f64);
    let variance = n1 * n2 * (n1 + n2 + 1.0) / 12.0;
    if n_a == 0 || n_b == 0 || variance <= 0.0 {
        return 1.0;
    }
    let z = ((n1 * n2 / 2.0) - 0.5).max(0.0) / variance.sqrt();
    erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// The Hodges-Lehmann estimate of the shift from `baseline` to `head`: the median of all
/// differences `head_j - baseline_i`. Robust like a median, but uses every pair, so it is
/// steadier than a difference of medians on small samples. Beyond about four million pairs
/// each side is thinned to evenly spaced order statistics first, so memory stays bounded.
/// `None` when a side is empty or holds a value that is not finite.
pub fn hodges_lehmann(baseline: &[f64], head: &[f64]) -> Option<f64> {
    const MAX_PAIRS: usize = 1 << 22;
    if baseline.is_empty() || head.is_empty() || baseline.iter().chain(head).any(|v| !v.is_finite())
    {
        return None;
    }
    let thin = |v: &[f64], keep: usize| -> Vec<f64> {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        if s.len() <= keep {
            return s;
        }
        (0..keep)
            .filter_map(|k| s.get(k * (s.len() - 1) / (keep - 1).max(1)).copied())
            .collect()
    };
    let pairs = baseline.len().saturating_mul(head.len());
    let keep = if pairs > MAX_PAIRS {
        // Keep about sqrt(MAX_PAIRS) = 2048 a side.
        2048
    } else {
        usize::MAX
    };
    let (b, h) = (thin(baseline, keep), thin(head, keep));
    let mut diffs: Vec<f64> = h
        .iter()
        .flat_map(|y| b.iter().map(move |x| y - x))
        .collect();
    median_in_place(&mut diffs)
}

/// What [`compare`] needs to decide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Significance level of the Mann-Whitney test; the bootstrap interval has confidence
    /// `1 - alpha`, so both parts of the rule are held to the same standard.
    pub alpha: f64,
    /// The noise band, in percent of the baseline median: changes smaller than this are never
    /// regressions (nor improvements), however significant.
    pub min_effect_percent: f64,
    /// Bootstrap resamples for the confidence interval.
    pub resamples: usize,
    /// Seed of the bootstrap's generator (`fastrand::Rng::with_seed`).
    pub seed: u64,
    /// True for latencies (higher is worse); false for throughput-like figures.
    pub higher_is_worse: bool,
}

impl Default for Settings {
    /// `alpha` 0.01 and a 15 % band: what a noisy shared 2-core machine needs (see the module
    /// documentation); 2000 resamples put the interval's ends within a fraction of a percent.
    fn default() -> Self {
        Self {
            alpha: 0.01,
            min_effect_percent: 15.0,
            resamples: 2_000,
            seed: 0x6A7E_5EED,
            higher_is_worse: true,
        }
    }
}

/// Two sample sets compared: the medians, their relative change with its bootstrap interval,
/// the test, and the verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Samples on each side.
    pub baseline_n: usize,
    pub head_n: usize,
    /// The medians, in the samples' unit.
    pub baseline_median: f64,
    pub head_median: f64,
    /// `100 * (head_median / baseline_median - 1)`.
    pub change_percent: f64,
    /// The percentile bootstrap interval of `change_percent`, confidence `1 - alpha`
    /// (both sides resampled independently). `+inf` can appear when resampled baseline
    /// medians reach 0.
    pub ci_low_percent: f64,
    pub ci_high_percent: f64,
    /// [`hodges_lehmann`] shift from baseline to head, in the samples' unit.
    pub shift: f64,
    /// Mann-Whitney of head against baseline: `z > 0` when head tends higher.
    pub u: f64,
    pub z: f64,
    pub p_value: f64,
    /// `p_value < alpha`.
    pub significant: bool,
    /// Significant, and the change and its whole interval lie beyond the noise band in the
    /// bad direction.
    pub regression: bool,
    /// The same in the good direction. Reported, never a failure.
    pub improvement: bool,
}

/// Why two sample sets could not be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompareError {
    /// A side has no samples.
    #[error("the {0} has no samples")]
    Empty(Side),
    /// A side holds NaN or an infinity.
    #[error("the {0} holds a value that is not a finite number")]
    NotFinite(Side),
    /// The baseline median is 0 or negative: no relative change can be computed.
    #[error("the baseline median is not above 0, so a relative change means nothing")]
    NoBaselineMedian,
}

/// Which of the two sample sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Baseline,
    Head,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Baseline => "baseline",
            Side::Head => "head",
        })
    }
}

/// Compares `head` with `baseline` (see the module documentation for the rule). Medians must
/// be of a positive quantity (latencies, rates). The samples are taken as independent; for
/// samples from several runs use [`compare_runs`].
pub fn compare(
    baseline: &[f64],
    head: &[f64],
    settings: &Settings,
) -> Result<Comparison, CompareError> {
    compare_runs(&[baseline], &[head], settings)
}

/// [`compare`] for samples that come in groups, one per run: the medians, the test and the
/// shift pool every sample, but the bootstrap resamples in two stages, runs first and then
/// samples within each drawn run. Seconds of one run share its machine state (a busy
/// neighbour slows a whole run), so pooling them as independent would make a run-to-run
/// difference look like a precise effect; the two-stage interval widens by the run-to-run
/// spread, so a whole-run shift within that spread is not called a regression. With one run a
/// side it is [`compare`]. Empty runs are ignored.
pub fn compare_runs(
    baseline: &[&[f64]],
    head: &[&[f64]],
    settings: &Settings,
) -> Result<Comparison, CompareError> {
    let baseline: Vec<&[f64]> = baseline.iter().copied().filter(|r| !r.is_empty()).collect();
    let head: Vec<&[f64]> = head.iter().copied().filter(|r| !r.is_empty()).collect();
    let (b, h) = (baseline.concat(), head.concat());
    for (side, v) in [(Side::Baseline, &b), (Side::Head, &h)] {
        if v.is_empty() {
            return Err(CompareError::Empty(side));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(CompareError::NotFinite(side));
        }
    }
    let (Some(baseline_median), Some(head_median)) = (median(&b), median(&h)) else {
        return Err(CompareError::Empty(Side::Baseline));
    };
    if baseline_median <= 0.0 {
        return Err(CompareError::NoBaselineMedian);
    }
    let change_percent = change(baseline_median, head_median);
    let (ci_low_percent, ci_high_percent) =
        bootstrap_change(&baseline, &head, settings).unwrap_or((change_percent, change_percent));
    let test = mann_whitney(&h, &b).ok_or(CompareError::Empty(Side::Head))?;
    let shift = hodges_lehmann(&b, &h).unwrap_or(head_median - baseline_median);
    let significant = test.p_value < settings.alpha;
    let band = settings.min_effect_percent;
    let higher = significant && change_percent > band && ci_low_percent > band;
    let lower = significant && change_percent < -band && ci_high_percent < -band;
    let (regression, improvement) = if settings.higher_is_worse {
        (higher, lower)
    } else {
        (lower, higher)
    };
    Ok(Comparison {
        baseline_n: b.len(),
        head_n: h.len(),
        baseline_median,
        head_median,
        change_percent,
        ci_low_percent,
        ci_high_percent,
        shift,
        u: test.u,
        z: test.z,
        p_value: test.p_value,
        significant,
        regression,
        improvement,
    })
}

/// Percent change from `base` to `head` (`+inf` from a base of 0 to anything above it).
fn change(base: f64, head: f64) -> f64 {
    if base > 0.0 {
        100.0 * (head / base - 1.0)
    } else if head > base {
        f64::INFINITY
    } else {
        0.0
    }
}

/// The percentile bootstrap interval, confidence `1 - alpha`, of the relative change of the
/// median, resampling runs and then samples within each drawn run; `None` with no resamples
/// or a side without runs.
fn bootstrap_change(baseline: &[&[f64]], head: &[&[f64]], s: &Settings) -> Option<(f64, f64)> {
    let mut rng = fastrand::Rng::with_seed(s.seed);
    let (mut b, mut h) = (Vec::new(), Vec::new());
    let mut changes = Vec::with_capacity(s.resamples);
    for _ in 0..s.resamples {
        let mut draw = |runs: &[&[f64]], into: &mut Vec<f64>| {
            into.clear();
            for _ in 0..runs.len() {
                let run = runs
                    .get(rng.usize(..runs.len()))
                    .copied()
                    .unwrap_or_default();
                for _ in 0..run.len() {
                    into.extend(run.get(rng.usize(..run.len())));
                }
            }
            median_in_place(into)
        };
        let (Some(mb), Some(mh)) = (draw(baseline, &mut b), draw(head, &mut h)) else {
            return None;
        };
        changes.push(change(mb, mh));
    }
    changes.sort_by(f64::total_cmp);
    let tail = (s.alpha / 2.0).clamp(0.0, 0.5);
    Some((
        quantile_sorted(&changes, tail)?,
        quantile_sorted(&changes, 1.0 - tail)?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn erfc_matches_known_values() {
        // Reference values from a double-precision libm (Python's math.erfc).
        for (x, want) in [
            (0.0, 1.0),
            (0.1, 0.887_537_083_981_715_2),
            (1.0, 0.157_299_207_050_285_13),
            (3.0, 2.209_049_699_858_543_8e-5),
            (5.0, 1.537_459_794_428_035_1e-12),
            (-0.5, 1.520_499_877_813_046_5),
        ] {
            assert!(close(erfc(x), want, 1.2e-7), "erfc({x}) = {}", erfc(x));
        }
        assert!(erfc(f64::NAN).is_nan());
        assert_eq!(erfc(f64::INFINITY), 0.0);
        assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!(close(normal_cdf(0.0), 0.5, 1.2e-7));
        assert!(close(normal_cdf(1.96), 0.975_002_104_851_779_5, 1e-7));
        assert!(close(normal_cdf(-3.0), 0.001_349_898_031_630_095_7, 1.2e-7));
        assert!(close(normal_cdf(-8.0), 6.220_960_574_271_819e-16, 1.2e-7));
        // The two-sided p-value of z = 1.96 is the familiar 0.05.
        let p = 2.0 * (1.0 - normal_cdf(1.96));
        assert!((p - 0.05).abs() < 1e-4, "{p}");
    }

    #[test]
    fn medians_and_quantiles() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[1.0, f64::NAN]), None);
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&s, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&s, 1.0), Some(4.0));
        assert_eq!(quantile_sorted(&s, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }

    #[test]
    fn mann_whitney_matches_scipy() {
        // scipy.stats.mannwhitneyu(males, females, method="asymptotic"): U = 17, p = 0.11135.
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let t = mann_whitney(&males, &females).unwrap();
        assert_eq!(t.u, 17.0);
        assert!(close(t.p_value, 0.111_346_886_533_140_41, 1e-6), "{t:?}");
        assert!(t.z > 0.0);
        // Complete separation of 5 and 5: U = 0, z = -(12.5 - 0.5) / sqrt(25 * 11 / 12).
        let t = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert_eq!(t.u, 0.0);
        assert!(close(t.z, -12.0 / (25.0_f64 * 11.0 / 12.0).sqrt(), 1e-12));
        assert!(close(t.p_value, min_p_value(5, 5), 1e-12));
    }

    #[test]
    fn mann_whitney_corrects_for_ties() {
        // By hand: ranks of [1,2,2,3 | 2,3,3,4] are 1,3,3,6 | 3,6,6,8; R1 = 13, U1 = 3;
        // ties: three 2s and three 3s, Σ(t³-t) = 48; var = 16/12 * (9 - 48/56);
        // z = (3 - 8 + 0.5) / sqrt(var).
        let t = mann_whitney(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 3.0, 4.0]).unwrap();
        assert_eq!(t.u, 3.0);
        let var: f64 = 16.0 / 12.0 * (9.0 - 48.0 / 56.0);
        assert!(close(t.z, -4.5 / var.sqrt(), 1e-12), "{t:?}");
        assert!(close(
            t.p_value,
            erfc(4.5 / var.sqrt() / 2f64.sqrt()),
            1e-12
        ));
        // All tied: no evidence at all.
        let t = mann_whitney(&[2.0; 4], &[2.0; 3]).unwrap();
        assert_eq!((t.z, t.p_value), (0.0, 1.0));
    }

    #[test]
    fn mann_whitney_refuses_bad_input() {
        assert_eq!(mann_whitney(&[], &[1.0]), None);
        assert_eq!(mann_whitney(&[1.0], &[f64::NAN]), None);
        assert_eq!(mann_whitney(&[f64::INFINITY], &[1.0]), None);
    }

    #[test]
    fn min_p_value_says_when_alpha_is_out_of_reach() {
        assert!(min_p_value(5, 5) > 0.01);
        assert!(min_p_value(6, 6) < 0.01);
        assert_eq!(min_p_value(0, 10), 1.0);
    }

    #[test]
    fn hodges_lehmann_is_the_median_pairwise_shift() {
        assert_eq!(
            hodges_lehmann(&[1.0, 2.0, 3.0], &[11.0, 12.0, 13.0]),
            Some(10.0)
        );
        assert_eq!(hodges_lehmann(&[], &[1.0]), None);
        // Large inputs are thinned, not allocated in full.
        let a: Vec<f64> = (0..5_000).map(f64::from).collect();
        let b: Vec<f64> = (0..5_000).map(|i| f64::from(i) + 100.0).collect();
        let shift = hodges_lehmann(&a, &b).unwrap();
        assert!((shift - 100.0).abs() < 5.0, "{shift}");
    }

    fn noisy(rng: &mut fastrand::Rng, n: usize, centre: f64, spread: f64) -> Vec<f64> {
        (0..n)
            .map(|_| centre * (1.0 + spread * (rng.f64() - 0.5)))
            .collect()
    }

    #[test]
    fn a_large_slowdown_is_a_regression_and_noise_is_not() {
        let mut rng = fastrand::Rng::with_seed(7);
        let base = noisy(&mut rng, 30, 2_000.0, 0.1);
        let same = noisy(&mut rng, 30, 2_000.0, 0.1);
        let slow = noisy(&mut rng, 30, 2_600.0, 0.1);
        let fast = noisy(&mut rng, 30, 1_400.0, 0.1);
        let s = Settings::default();

        let c = compare(&base, &same, &s).unwrap();
        assert!(!c.regression && !c.improvement, "{c:?}");
        assert!(c.change_percent.abs() < 5.0);
        assert!(c.ci_low_percent <= c.change_percent && c.change_percent <= c.ci_high_percent);

        let c = compare(&base, &slow, &s).unwrap();
        assert!(c.significant && c.regression && !c.improvement, "{c:?}");
        assert!((c.change_percent - 30.0).abs() < 5.0, "{c:?}");
        assert!((c.shift - 600.0).abs() < 100.0, "{c:?}");
        assert!(c.z > 0.0);

        let c = compare(&base, &fast, &s).unwrap();
        assert!(c.improvement && !c.regression, "{c:?}");

        // Throughput: higher is better, so the same shift reads the other way.
        let up = Settings {
            higher_is_worse: false,
            ..s
        };
        let c = compare(&base, &slow, &up).unwrap();
        assert!(c.improvement && !c.regression);
    }

    #[test]
    fn a_significant_change_inside_the_band_is_not_a_regression() {
        let mut rng = fastrand::Rng::with_seed(3);
        let base = noisy(&mut rng, 200, 2_000.0, 0.05);
        let head = noisy(&mut rng, 200, 2_160.0, 0.05); // +8 %, very significant
        let c = compare(&base, &head, &Settings::default()).unwrap();
        assert!(c.significant && !c.regression, "{c:?}");
    }

    fn refs(v: &[Vec<f64>]) -> Vec<&[f64]> {
        v.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn a_whole_run_shift_within_the_run_to_run_spread_is_not_a_regression() {
        // Runs differ by ±5 % between themselves; the head runs' pooled median is 25 % above
        // the baseline's, but the slowest baseline run is only 10 % below the fastest head run:
        // with three runs a side that is not a clear 15 % regression.
        let mut rng = fastrand::Rng::with_seed(11);
        let base: Vec<Vec<f64>> = [1_900.0, 2_000.0, 2_100.0]
            .iter()
            .map(|m| noisy(&mut rng, 20, *m, 0.02))
            .collect();
        let head: Vec<Vec<f64>> = [2_300.0, 2_500.0, 2_700.0]
            .iter()
            .map(|m| noisy(&mut rng, 20, *m, 0.02))
            .collect();
        let s = Settings::default();
        let flat = compare(&base.concat(), &head.concat(), &s).unwrap();
        assert!(flat.regression, "pooled as independent: {flat:?}");
        let runs = compare_runs(&refs(&base), &refs(&head), &s).unwrap();
        assert!(!runs.regression && runs.ci_low_percent < 15.0, "{runs:?}");
        assert_eq!(runs.change_percent, flat.change_percent);
        assert_eq!(runs.p_value, flat.p_value);

        // Runs that agree with each other keep a 30 % regression clear.
        let base: Vec<Vec<f64>> = (0..3).map(|_| noisy(&mut rng, 10, 2_000.0, 0.05)).collect();
        let head: Vec<Vec<f64>> = (0..3).map(|_| noisy(&mut rng, 10, 2_600.0, 0.05)).collect();
        let runs = compare_runs(&refs(&base), &refs(&head), &s).unwrap();
        assert!(runs.regression, "{runs:?}");

        // Empty runs are ignored; no runs at all is an error.
        let empty: &[f64] = &[];
        assert_eq!(
            compare_runs(&[empty], &refs(&head), &s),
            Err(CompareError::Empty(Side::Baseline))
        );
    }

    #[test]
    fn comparisons_are_deterministic_and_refuse_bad_input() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let s = Settings::default();
        assert_eq!(compare(&a, &b, &s), compare(&a, &b, &s));
        assert_eq!(
            compare(&[], &b, &s),
            Err(CompareError::Empty(Side::Baseline))
        );
        assert_eq!(
            compare(&a, &[f64::NAN], &s),
            Err(CompareError::NotFinite(Side::Head))
        );
        assert_eq!(
            compare(&[0.0, 0.0, 1.0], &b, &s),
            Err(CompareError::NoBaselineMedian)
        );
        let none = Settings { resamples: 0, ..s };
        let c = compare(&a, &b, &none).unwrap();
        assert_eq!(
            (c.ci_low_percent, c.ci_high_percent),
            (c.change_percent, c.change_percent)
        );
    }
}
