//! Comparison with the old version (baseline): a one-sided Mann-Whitney U test over the two
//! sample sets (e.g. each interval's value for the new and the old subset). Pure.
//!
//! Not rejecting "the new version is worse" is a pass only when the samples were numerous
//! enough that the test *could* have rejected it; otherwise the answer is inconclusive.
//! Samples that are all equal (a constant metric on both sides) pass with p = 1: every
//! arrangement of the pooled samples gives the same U, so no difference can be claimed.
//! Samples are compared to 12 significant digits: PromQL's floating-point arithmetic makes
//! the same quantity differ in the last bits (e.g. `histogram_quantile` over different
//! request counts), and that noise must not rank one version above the other.
//!
//! [`compare`] wraps the test into the [`BaselineComparison`] a check records (sample counts,
//! medians, level, verdict), shown next to the metric's value and threshold.

use std::fmt;

use serde::{Deserialize, Serialize};
use statrs::stats_tests::Alternative;
use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

mod exact;

pub use exact::min_samples;
use exact::smallest_one_sided_p;

use crate::figures::for_people;
use crate::manifest::rollout_policy::Direction;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "verdict"
)]
pub enum BaselineVerdict {
    /// No evidence the new version is worse, with enough samples to have seen it.
    Pass { p_value: f64 },
    /// The new version is worse than the baseline at the significance level.
    Fail { p_value: f64 },
    /// Significantly worse, but its median by no more than the allowance (`change` is how
    /// much worse, as a fraction of the old version's median): a difference too small to
    /// matter, Kayenta's effect size.
    WithinAllowance { p_value: f64, change: f64 },
    /// The samples cannot tell (too few of them, or no old version to compare with).
    Inconclusive { reason: String },
}

impl BaselineVerdict {
    /// The test's p-value; `None` when it could not run.
    pub fn p_value(&self) -> Option<f64> {
        match self {
            BaselineVerdict::Pass { p_value }
            | BaselineVerdict::Fail { p_value }
            | BaselineVerdict::WithinAllowance { p_value, .. } => Some(*p_value),
            BaselineVerdict::Inconclusive { .. } => None,
        }
    }
}

/// Tests whether `canary` is worse than `baseline` in the `worse` direction at level `alpha`
/// (e.g. 0.05). NaN samples (intervals without data) are left out.
pub fn compare_to_baseline(
    canary: &[f64],
    baseline: &[f64],
    worse: Direction,
    alpha: f64,
) -> BaselineVerdict {
    if !(alpha > 0.0 && alpha < 1.0) {
        return BaselineVerdict::Inconclusive {
            reason: format!("significance level {alpha} is not between 0 and 1"),
        };
    }
    let numbers = |xs: &[f64]| -> Vec<f64> {
        xs.iter()
            .copied()
            .filter(|v| !v.is_nan())
            .map(significant)
            .collect()
    };
    let (canary, baseline) = (numbers(canary), numbers(baseline));
    let (n, m) = (canary.len(), baseline.len());
    let best_p = smallest_one_sided_p(n, m);
    if best_p >= alpha {
        return BaselineVerdict::Inconclusive {
            reason: format!(
                "{n} new and {m} baseline samples cannot show a difference at level {alpha} (the smallest possible p-value is {best_p:.3}); wait for more intervals"
            ),
        };
    }
    let first = canary.first().copied();
    if canary.iter().chain(&baseline).all(|v| Some(*v) == first) {
        // Every arrangement of the pooled samples gives the same U: p is exactly 1. (The
        // normal approximation would divide by a zero variance.)
        return BaselineVerdict::Pass { p_value: 1.0 };
    }
    let greater = match worse {
        Direction::Increase => true,
        Direction::Decrease => false,
    };
    if let Some(p_value) = exact::one_sided_p(&canary, &baseline, greater) {
        return verdict(p_value, alpha);
    }
    // Ties, or too many samples for the exact distribution: the normal approximation with
    // continuity correction (statrs; its own exact path returns the complementary tail when
    // the first sample is not the larger one, so it is not used).
    let alternative = if greater {
        Alternative::Greater
    } else {
        Alternative::Less
    };
    match mannwhitneyu(
        &canary,
        &baseline,
        MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
        alternative,
    ) {
        Ok((_, p_value)) if p_value.is_nan() => BaselineVerdict::Inconclusive {
            reason: "the Mann-Whitney U test gave no p-value".to_string(),
        },
        Ok((_, p_value)) => verdict(p_value, alpha),
        Err(e) => BaselineVerdict::Inconclusive {
            reason: format!("the Mann-Whitney U test could not run: {e}"),
        },
    }
}

fn verdict(p_value: f64, alpha: f64) -> BaselineVerdict {
    if p_value < alpha {
        BaselineVerdict::Fail { p_value }
    } else {
        BaselineVerdict::Pass { p_value }
    }
}

/// A baseline comparison as a check records it: what was compared and what came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineComparison {
    /// The old version's query as sent (the new version's is the check's own).
    pub query: String,
    /// Samples with a value (NaN steps left out), new and old.
    pub canary_samples: usize,
    pub baseline_samples: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_median: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_median: Option<f64>,
    /// The significance level the verdict was reached at.
    pub alpha: f64,
    /// How much worse the new version's median may be, as a fraction of the old one's,
    /// before a significant difference fails (0: any significant difference fails).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub allowance: f64,
    #[serde(flatten)]
    pub verdict: BaselineVerdict,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Compares the two sample series (see [`compare_to_baseline`]) and records the figures people
/// need to read the verdict. A significant difference whose medians differ by no more than
/// `allowance` (a fraction of the old median, e.g. 0.1) is [`BaselineVerdict::WithinAllowance`]:
/// significance says the difference is real, the allowance says whether it is big enough to
/// matter. Pure.
pub fn compare(
    canary: &[f64],
    baseline: &[f64],
    worse: Direction,
    alpha: f64,
    allowance: f64,
    baseline_query: &str,
) -> BaselineComparison {
    let count = |xs: &[f64]| xs.iter().filter(|v| !v.is_nan()).count();
    let (canary_median, baseline_median) = (median(canary), median(baseline));
    let verdict = match compare_to_baseline(canary, baseline, worse, alpha) {
        BaselineVerdict::Fail { p_value } if allowance > 0.0 => {
            match canary_median
                .zip(baseline_median)
                .map(|(new, old)| worse_by(new, old, worse))
            {
                Some(change) if change <= allowance => {
                    BaselineVerdict::WithinAllowance { p_value, change }
                }
                Some(_) | None => BaselineVerdict::Fail { p_value },
            }
        }
        verdict @ (BaselineVerdict::Pass { .. }
        | BaselineVerdict::Fail { .. }
        | BaselineVerdict::WithinAllowance { .. }
        | BaselineVerdict::Inconclusive { .. }) => verdict,
    };
    BaselineComparison {
        query: baseline_query.to_string(),
        canary_samples: count(canary),
        baseline_samples: count(baseline),
        canary_median,
        baseline_median,
        alpha,
        allowance,
        verdict,
    }
}

/// How much worse `new` is than `old` in the `worse` direction, as a fraction of `old`
/// (0.25: a quarter worse); 0 or less when not worse. Against an old value of 0, any worsening
/// is infinitely worse.
pub fn worse_by(new: f64, old: f64, worse: Direction) -> f64 {
    let delta = worse.worsening(new, old);
    if old == 0.0 {
        if delta > 0.0 { f64::INFINITY } else { 0.0 }
    } else {
        delta / old.abs()
    }
}

impl BaselineComparison {
    /// A comparison that could not run (e.g. no old version to compare with).
    pub fn inconclusive(alpha: f64, reason: impl Into<String>) -> Self {
        BaselineComparison {
            query: String::new(),
            canary_samples: 0,
            baseline_samples: 0,
            canary_median: None,
            baseline_median: None,
            alpha,
            allowance: 0.0,
            verdict: BaselineVerdict::Inconclusive {
                reason: reason.into(),
            },
        }
    }
}

/// The median of the samples that are numbers; `None` without any.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => v.get(n / 2).copied(),
        _ => v
            .get(n / 2 - 1)
            .zip(v.get(n / 2))
            .map(|(a, b)| (a + b) / 2.0),
    }
}

impl fmt::Display for BaselineComparison {
    /// e.g. `baseline fail p=0.0065 < 0.05 (median 248 vs 24.8, +900%, 6/9 samples)`: the
    /// change of the median is the effect size, beside its significance.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let median = |m: Option<f64>| m.map_or_else(|| "-".to_string(), for_people);
        let change = match (self.canary_median, self.baseline_median) {
            (Some(new), Some(old)) if old != 0.0 => {
                let percent = (new - old) / old.abs() * 100.0;
                let sign = if percent > 0.0 { "+" } else { "" };
                format!(", {sign}{}%", for_people(percent))
            }
            (Some(_) | None, Some(_) | None) => String::new(),
        };
        let figures = format!(
            "median {} vs {}{change}, {}/{} samples",
            median(self.canary_median),
            median(self.baseline_median),
            self.canary_samples,
            self.baseline_samples
        );
        match &self.verdict {
            BaselineVerdict::Pass { p_value } => write!(
                f,
                "baseline pass p={} >= {} ({figures})",
                p_text(*p_value),
                self.alpha
            ),
            BaselineVerdict::Fail { p_value } => write!(
                f,
                "baseline fail p={} < {}{} ({figures})",
                p_text(*p_value),
                self.alpha,
                if self.allowance > 0.0 {
                    format!(", beyond the {} allowance", percent(self.allowance))
                } else {
                    String::new()
                }
            ),
            BaselineVerdict::WithinAllowance { p_value, change } => write!(
                f,
                "baseline pass: worse (p={} < {}) by {}, within the {} allowance ({figures})",
                p_text(*p_value),
                self.alpha,
                percent(*change),
                percent(self.allowance)
            ),
            BaselineVerdict::Inconclusive { reason } => {
                write!(f, "baseline inconclusive: {reason}")
            }
        }
    }
}

/// A fraction as a percentage, e.g. `12.5%`; at most one decimal.
fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p.is_finite() && (p - p.round()).abs() < 0.05 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A p-value as people read it: two decimals from 0.1 up, else two significant digits
/// (`0.31`, `0.0065`), scientific below 0.001 (`1.2e-5`).
pub fn p_text(p: f64) -> String {
    if p.is_nan() || p >= 0.1 {
        format!("{p:.2}")
    } else if p >= 0.001 {
        let decimals = (1.0 - p.log10().floor()) as usize;
        format!("{p:.decimals$}")
    } else {
        format!("{p:.1e}")
    }
}

/// `v` to 12 significant digits (infinities and zero as they are).
fn significant(v: f64) -> f64 {
    if v.is_finite() {
        format!("{v:.11e}").parse().unwrap_or(v)
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Judgement;

    const BASE_LATENCY: [f64; 8] = [50.0, 52.0, 49.0, 51.0, 53.0, 48.0, 50.5, 51.5];

    #[test]
    fn slower_canary_fails_on_latency() {
        let canary = [90.0, 95.0, 88.0, 92.0, 99.0, 91.0, 93.0, 94.0];
        let v = compare_to_baseline(&canary, &BASE_LATENCY, Direction::Increase, 0.05);
        assert!(
            matches!(v, BaselineVerdict::Fail { p_value } if p_value < 0.001),
            "{v:?}"
        );
    }

    #[test]
    fn faster_canary_passes_on_latency() {
        let canary = [30.0, 31.0, 29.0, 32.0, 30.5, 31.5, 28.0, 33.0];
        let v = compare_to_baseline(&canary, &BASE_LATENCY, Direction::Increase, 0.05);
        assert!(
            matches!(v, BaselineVerdict::Pass { p_value } if p_value > 0.9),
            "{v:?}"
        );
    }

    #[test]
    fn similar_samples_pass() {
        let canary = [50.2, 51.2, 49.2, 50.7, 52.2, 48.7, 51.7, 49.7];
        let v = compare_to_baseline(&canary, &BASE_LATENCY, Direction::Increase, 0.05);
        assert_eq!(v.judgement(), Judgement::Pass, "{v:?}");
    }

    #[test]
    fn lower_success_rate_fails() {
        let baseline = [99.9, 99.8, 100.0, 99.95, 99.85, 99.9];
        let canary = [91.0, 90.0, 93.0, 89.5, 92.0, 90.5];
        let v = compare_to_baseline(&canary, &baseline, Direction::Decrease, 0.05);
        assert_eq!(v.judgement(), Judgement::Fail, "{v:?}");
        // The same samples read the other way round are not a failure.
        let v = compare_to_baseline(&canary, &baseline, Direction::Increase, 0.05);
        assert_eq!(v.judgement(), Judgement::Pass, "{v:?}");
    }

    #[test]
    fn too_few_samples_are_inconclusive_even_if_separated() {
        // 2 vs 2 completely separated: the best one-sided p is 1/6 > 0.05.
        let v = compare_to_baseline(&[100.0, 101.0], &[1.0, 2.0], Direction::Increase, 0.05);
        assert_eq!(v.judgement(), Judgement::Inconclusive, "{v:?}");
        let v = compare_to_baseline(&[], &BASE_LATENCY, Direction::Increase, 0.05);
        assert_eq!(v.judgement(), Judgement::Inconclusive);
    }

    #[test]
    fn nan_samples_are_left_out() {
        let canary = [f64::NAN, 90.0, 95.0, 88.0, 92.0, 99.0, f64::NAN];
        let v = compare_to_baseline(&canary, &BASE_LATENCY, Direction::Increase, 0.05);
        assert_eq!(v.judgement(), Judgement::Fail, "{v:?}");
        let v = compare_to_baseline(&[f64::NAN; 8], &BASE_LATENCY, Direction::Increase, 0.05);
        assert_eq!(v.judgement(), Judgement::Inconclusive);
    }

    #[test]
    fn fewest_samples_that_can_decide() {
        assert_eq!(min_samples(0.05), 4);
        assert_eq!(min_samples(0.01), 5);
        assert_eq!(min_samples(0.5), 2);
        assert_eq!(min_samples(0.6), 1);
        assert_eq!(min_samples(0.0), exact::MAX_MIN_SAMPLES);
    }

    #[test]
    fn smallest_p_values() {
        assert!((smallest_one_sided_p(3, 3) - 0.05).abs() < 1e-12);
        assert!((smallest_one_sided_p(2, 2) - 1.0 / 6.0).abs() < 1e-12);
        assert!((smallest_one_sided_p(4, 1) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn bad_alpha_is_inconclusive() {
        let v = compare_to_baseline(&BASE_LATENCY, &BASE_LATENCY, Direction::Increase, 1.5);
        assert_eq!(v.judgement(), Judgement::Inconclusive);
    }

    #[test]
    fn all_ties_pass_with_p_one_once_there_are_enough_samples() {
        // A constant metric on both sides (e.g. a fixed latency in one histogram bucket).
        let v = compare_to_baseline(&[24.85; 6], &[24.85; 9], Direction::Increase, 0.05);
        assert_eq!(v, BaselineVerdict::Pass { p_value: 1.0 });
        let v = compare_to_baseline(&[100.0; 6], &[100.0; 6], Direction::Decrease, 0.05);
        assert_eq!(v, BaselineVerdict::Pass { p_value: 1.0 });
        // Too few is still too few, ties or not.
        let v = compare_to_baseline(&[24.85; 2], &[24.85; 2], Direction::Increase, 0.05);
        assert_eq!(v.judgement(), Judgement::Inconclusive);
    }

    #[test]
    fn floating_point_noise_is_a_tie() {
        // What `histogram_quantile` gives for one constant latency over different counts.
        let canary: Vec<f64> = (95..101)
            .map(|n| 10.0 + 15.0 * (0.99 * n as f64) / n as f64)
            .collect();
        let baseline: Vec<f64> = (200..209)
            .map(|n| 10.0 + 15.0 * (0.99 * n as f64) / n as f64)
            .collect();
        assert!(
            canary.iter().chain(&baseline).any(|v| *v != 24.85),
            "the noise is there"
        );
        for worse in [Direction::Increase, Direction::Decrease] {
            let v = compare_to_baseline(&canary, &baseline, worse, 0.05);
            assert_eq!(v, BaselineVerdict::Pass { p_value: 1.0 });
        }
        assert_eq!(significant(24.849999999999998), 24.85);
        assert_eq!(significant(f64::INFINITY), f64::INFINITY);
        assert_eq!(significant(0.0), 0.0);
        assert_eq!(significant(1.23456789012345e-7), 1.23456789012e-7);
    }

    #[test]
    fn ties_within_each_side_but_apart_fail() {
        let v = compare_to_baseline(&[248.5; 6], &[24.85; 9], Direction::Increase, 0.05);
        assert!(
            matches!(v, BaselineVerdict::Fail { p_value } if p_value < 0.01),
            "{v:?}"
        );
        let v = compare_to_baseline(&[24.85; 6], &[248.5; 9], Direction::Increase, 0.05);
        assert!(
            matches!(v, BaselineVerdict::Pass { p_value } if p_value > 0.99),
            "{v:?}"
        );
    }

    /// Name, new and old samples, direction, allowance (a fraction), expected verdict.
    type AllowanceCase = (
        &'static str,
        Vec<f64>,
        Vec<f64>,
        Direction,
        f64,
        &'static str,
    );

    #[test]
    fn an_allowance_passes_a_significant_but_small_worsening() {
        // Tight enough that 5 % slower is a significant difference.
        let tight = [100.0, 100.1, 99.9, 100.2, 99.8, 100.05, 99.95, 100.15];
        let slower = |by: f64| -> Vec<f64> { tight.iter().map(|v| v * by).collect() };
        let lower = |by: f64| -> Vec<f64> { [99.0; 8].iter().map(|v| v * by).collect() };
        #[rustfmt::skip]
        let cases: Vec<AllowanceCase> = vec![
            ("no allowance: a significant worsening fails", slower(1.05), tight.to_vec(), Direction::Increase, 0.0, "fail"),
            ("5 % slower, 10 % allowed", slower(1.05), tight.to_vec(), Direction::Increase, 0.1, "within"),
            ("20 % slower, 10 % allowed", slower(1.2), tight.to_vec(), Direction::Increase, 0.1, "fail"),
            ("exactly at the allowance", slower(1.1), tight.to_vec(), Direction::Increase, 0.1 + 1e-9, "within"),
            ("success rate 2 % lower, 5 % allowed", lower(0.98), vec![99.0; 8], Direction::Decrease, 0.05, "within"),
            ("success rate 10 % lower, 5 % allowed", lower(0.90), vec![99.0; 8], Direction::Decrease, 0.05, "fail"),
            ("not worse at all: the allowance is not needed", tight.to_vec(), slower(2.0), Direction::Increase, 0.1, "pass"),
            ("an old value of 0: any worsening is too much", vec![1.0; 8], vec![0.0; 8], Direction::Increase, 5.0, "fail"),
        ];
        for (name, canary, old, worse, allowance, want) in cases {
            let c = compare(&canary, &old, worse, 0.05, allowance, "q");
            let got = match c.verdict {
                BaselineVerdict::Pass { .. } => "pass",
                BaselineVerdict::Fail { .. } => "fail",
                BaselineVerdict::WithinAllowance { change, .. } => {
                    assert!(change > 0.0 && change <= allowance, "{name}: {change}");
                    "within"
                }
                BaselineVerdict::Inconclusive { .. } => "inconclusive",
            };
            assert_eq!(got, want, "{name}: {c}");
        }
        let c = compare(&slower(1.05), &tight, Direction::Increase, 0.05, 0.1, "q");
        assert!(
            c.to_string().contains("by 5%, within the 10% allowance"),
            "{c}"
        );
        assert_eq!(c.verdict.judgement(), Judgement::Pass);
        let c = compare(&slower(1.2), &tight, Direction::Increase, 0.05, 0.125, "q");
        assert!(c.to_string().contains("beyond the 12.5% allowance"), "{c}");
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["allowance"], 0.125);
        assert_eq!(
            serde_json::from_value::<BaselineComparison>(json).unwrap(),
            c
        );
    }

    #[test]
    fn comparisons_record_counts_medians_and_read_well() {
        let c = compare(
            &[f64::NAN, 248.5, 250.0, 247.0, 249.0, 248.0, 251.0],
            &[24.85; 9],
            Direction::Increase,
            0.05,
            0.0,
            "q{v1}",
        );
        assert_eq!((c.canary_samples, c.baseline_samples), (6, 9));
        assert_eq!(
            (c.canary_median, c.baseline_median),
            (Some(248.75), Some(24.85))
        );
        let p = c.verdict.p_value().unwrap();
        assert_eq!(
            c.to_string(),
            format!(
                "baseline fail p={} < 0.05 (median 249 vs 24.9, +901%, 6/9 samples)",
                p_text(p)
            )
        );
        let c = compare(&[], &[1.0], Direction::Increase, 0.05, 0.0, "q");
        assert!(
            c.to_string()
                .starts_with("baseline inconclusive: 0 new and 1 baseline samples"),
            "{c}"
        );
        // Stored in the rollout state: it reads back as written.
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["verdict"], "inconclusive");
        assert_eq!(
            serde_json::from_value::<BaselineComparison>(json).unwrap(),
            c
        );
        let pass = BaselineComparison {
            verdict: BaselineVerdict::Pass { p_value: 0.5 },
            ..c
        };
        let json = serde_json::to_value(&pass).unwrap();
        assert_eq!(
            (json["verdict"].as_str(), json["pValue"].as_f64()),
            (Some("pass"), Some(0.5))
        );
        assert_eq!(
            serde_json::from_value::<BaselineComparison>(json).unwrap(),
            pass
        );
    }

    #[test]
    fn medians_and_p_values_as_text() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        for (p, text) in [
            (1.0, "1.00"),
            (0.31, "0.31"),
            (0.1, "0.10"),
            (0.05, "0.050"),
            (0.0065, "0.0065"),
            (0.001, "0.0010"),
            (0.0000123, "1.2e-5"),
        ] {
            assert_eq!(p_text(p), text, "{p}");
        }
    }
}
