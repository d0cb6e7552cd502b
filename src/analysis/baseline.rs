//! Comparison with the old version (baseline): a one-sided Mann-Whitney U test over the two
//! sample sets (e.g. each interval's value for the new and the old subset). Pure.
//!
//! Not rejecting "the new version is worse" is a pass only when the samples were numerous
//! enough that the test *could* have rejected it; otherwise the answer is inconclusive.

use serde::{Deserialize, Serialize};
use statrs::stats_tests::Alternative;
use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

/// Which direction of a metric is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WorseWhen {
    /// e.g. success rate.
    Lower,
    /// e.g. latency.
    Higher,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum BaselineVerdict {
    /// No evidence the new version is worse, with enough samples to have seen it.
    Pass {
        p_value: f64,
    },
    /// The new version is worse than the baseline at the significance level.
    Fail {
        p_value: f64,
    },
    Inconclusive {
        reason: String,
    },
}

impl BaselineVerdict {
    pub fn metric_label(&self) -> &'static str {
        match self {
            BaselineVerdict::Pass { .. } => "pass",
            BaselineVerdict::Fail { .. } => "fail",
            BaselineVerdict::Inconclusive { .. } => "inconclusive",
        }
    }
}

/// Tests whether `canary` is worse than `baseline` in the `worse` direction at level `alpha`
/// (e.g. 0.05). NaN samples (intervals without data) are left out.
pub fn compare_to_baseline(
    canary: &[f64],
    baseline: &[f64],
    worse: WorseWhen,
    alpha: f64,
) -> BaselineVerdict {
    if !(alpha > 0.0 && alpha < 1.0) {
        return BaselineVerdict::Inconclusive {
            reason: format!("significance level {alpha} is not between 0 and 1"),
        };
    }
    let canary: Vec<f64> = canary.iter().copied().filter(|v| !v.is_nan()).collect();
    let baseline: Vec<f64> = baseline.iter().copied().filter(|v| !v.is_nan()).collect();
    let (n, m) = (canary.len(), baseline.len());
    let best_p = smallest_one_sided_p(n, m);
    if best_p >= alpha {
        return BaselineVerdict::Inconclusive {
            reason: format!(
                "{n} new and {m} baseline samples cannot show a difference at level {alpha} (the smallest possible p-value is {best_p:.3}); wait for more intervals"
            ),
        };
    }
    // `Greater`: the alternative is that the first sample tends to be larger.
    let alternative = match worse {
        WorseWhen::Higher => Alternative::Greater,
        WorseWhen::Lower => Alternative::Less,
    };
    // The normal approximation with continuity correction, always: it handles ties (common
    // in per-interval values), and statrs 0.19's exact path returns the complementary tail
    // when the first sample is not the larger one (seen with 8 vs 8 samples in these tests).
    match mannwhitneyu(
        &canary,
        &baseline,
        MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
        alternative,
    ) {
        Ok((_, p_value)) if p_value < alpha => BaselineVerdict::Fail { p_value },
        Ok((_, p_value)) => BaselineVerdict::Pass { p_value },
        Err(e) => BaselineVerdict::Inconclusive {
            reason: format!("the Mann-Whitney U test could not run: {e}"),
        },
    }
}

/// The one-sided p-value when the samples are completely separated: 1 / C(n+m, n).
fn smallest_one_sided_p(n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    let mut c = 1.0_f64;
    for i in 1..=n.min(m) {
        c = c * ((n + m + 1 - i) as f64) / (i as f64);
    }
    1.0 / c
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE_LATENCY: [f64; 8] = [50.0, 52.0, 49.0, 51.0, 53.0, 48.0, 50.5, 51.5];

    #[test]
    fn slower_canary_fails_on_latency() {
        let canary = [90.0, 95.0, 88.0, 92.0, 99.0, 91.0, 93.0, 94.0];
        let v = compare_to_baseline(&canary, &BASE_LATENCY, WorseWhen::Higher, 0.05);
        assert!(
            matches!(v, BaselineVerdict::Fail { p_value } if p_value < 0.001),
            "{v:?}"
        );
    }

    #[test]
    fn faster_canary_passes_on_latency() {
        let canary = [30.0, 31.0, 29.0, 32.0, 30.5, 31.5, 28.0, 33.0];
        let v = compare_to_baseline(&canary, &BASE_LATENCY, WorseWhen::Higher, 0.05);
        assert!(
            matches!(v, BaselineVerdict::Pass { p_value } if p_value > 0.9),
            "{v:?}"
        );
    }

    #[test]
    fn similar_samples_pass() {
        let canary = [50.2, 51.2, 49.2, 50.7, 52.2, 48.7, 51.7, 49.7];
        let v = compare_to_baseline(&canary, &BASE_LATENCY, WorseWhen::Higher, 0.05);
        assert_eq!(v.metric_label(), "pass", "{v:?}");
    }

    #[test]
    fn lower_success_rate_fails() {
        let baseline = [99.9, 99.8, 100.0, 99.95, 99.85, 99.9];
        let canary = [91.0, 90.0, 93.0, 89.5, 92.0, 90.5];
        let v = compare_to_baseline(&canary, &baseline, WorseWhen::Lower, 0.05);
        assert_eq!(v.metric_label(), "fail", "{v:?}");
        // The same samples read the other way round are not a failure.
        let v = compare_to_baseline(&canary, &baseline, WorseWhen::Higher, 0.05);
        assert_eq!(v.metric_label(), "pass", "{v:?}");
    }

    #[test]
    fn too_few_samples_are_inconclusive_even_if_separated() {
        // 2 vs 2 completely separated: the best one-sided p is 1/6 > 0.05.
        let v = compare_to_baseline(&[100.0, 101.0], &[1.0, 2.0], WorseWhen::Higher, 0.05);
        assert_eq!(v.metric_label(), "inconclusive", "{v:?}");
        let v = compare_to_baseline(&[], &BASE_LATENCY, WorseWhen::Higher, 0.05);
        assert_eq!(v.metric_label(), "inconclusive");
    }

    #[test]
    fn nan_samples_are_left_out() {
        let canary = [f64::NAN, 90.0, 95.0, 88.0, 92.0, 99.0, f64::NAN];
        let v = compare_to_baseline(&canary, &BASE_LATENCY, WorseWhen::Higher, 0.05);
        assert_eq!(v.metric_label(), "fail", "{v:?}");
        let v = compare_to_baseline(&[f64::NAN; 8], &BASE_LATENCY, WorseWhen::Higher, 0.05);
        assert_eq!(v.metric_label(), "inconclusive");
    }

    #[test]
    fn smallest_p_values() {
        assert!((smallest_one_sided_p(3, 3) - 0.05).abs() < 1e-12);
        assert!((smallest_one_sided_p(2, 2) - 1.0 / 6.0).abs() < 1e-12);
        assert!((smallest_one_sided_p(4, 1) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn bad_alpha_is_inconclusive() {
        let v = compare_to_baseline(&BASE_LATENCY, &BASE_LATENCY, WorseWhen::Higher, 1.5);
        assert_eq!(v.metric_label(), "inconclusive");
    }
}
