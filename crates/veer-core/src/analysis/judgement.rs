//! The three-way class of a check: passed, failed, or could not tell. The detailed verdicts
//! ([`AnalysisVerdict`], [`BaselineVerdict`]) carry their figures and are stored; everything
//! that only needs the class (the `verdict` metric label, the status page's marks, alerts)
//! asks for their [`Judgement`] instead of classifying them again.

use std::fmt;

use super::baseline::BaselineVerdict;
use super::verdict::AnalysisVerdict;

/// How a check came out, in three words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Judgement {
    Pass,
    /// The new version measured bad.
    Fail,
    /// Could not measure or could not tell (no data, too few requests or samples, Prometheus
    /// down): not the same as bad.
    Inconclusive,
}

impl Judgement {
    /// A short, stable label (the `verdict` label of `veer_analysis_checks_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Pass => "pass",
            Judgement::Fail => "fail",
            Judgement::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Judgement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AnalysisVerdict {
    /// Only a failed threshold or a significant worsening is a fail; every "cannot measure"
    /// is inconclusive.
    pub fn judgement(&self) -> Judgement {
        match self {
            AnalysisVerdict::Pass => Judgement::Pass,
            AnalysisVerdict::Fail { .. } | AnalysisVerdict::WorseThanBaseline { .. } => {
                Judgement::Fail
            }
            AnalysisVerdict::NoData
            | AnalysisVerdict::TooFewRequests { .. }
            | AnalysisVerdict::MetricsError { .. }
            | AnalysisVerdict::Inconclusive => Judgement::Inconclusive,
        }
    }
}

impl BaselineVerdict {
    /// A worsening within the allowance passes.
    pub fn judgement(&self) -> Judgement {
        match self {
            BaselineVerdict::Pass { .. } | BaselineVerdict::WithinAllowance { .. } => {
                Judgement::Pass
            }
            BaselineVerdict::Fail { .. } => Judgement::Fail,
            BaselineVerdict::Inconclusive { .. } => Judgement::Inconclusive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::MetricsErrorKind;

    #[test]
    fn verdicts_fall_into_three_classes() {
        use Judgement::{Fail, Inconclusive, Pass};
        let analysis = [
            (AnalysisVerdict::Pass, Pass),
            (
                AnalysisVerdict::Fail {
                    value: 1.0,
                    min: Some(2.0),
                    max: None,
                },
                Fail,
            ),
            (
                AnalysisVerdict::WorseThanBaseline {
                    p_value: 0.01,
                    alpha: 0.05,
                },
                Fail,
            ),
            (AnalysisVerdict::NoData, Inconclusive),
            (
                AnalysisVerdict::TooFewRequests { count: 1.0, min: 9 },
                Inconclusive,
            ),
            (
                AnalysisVerdict::MetricsError {
                    kind: MetricsErrorKind::Unreachable,
                    reason: "down".into(),
                },
                Inconclusive,
            ),
            (AnalysisVerdict::Inconclusive, Inconclusive),
        ];
        for (verdict, want) in analysis {
            assert_eq!(verdict.judgement(), want, "{verdict:?}");
        }
        let baseline = [
            (BaselineVerdict::Pass { p_value: 0.5 }, Pass),
            (
                BaselineVerdict::WithinAllowance {
                    p_value: 0.01,
                    change: 0.05,
                },
                Pass,
            ),
            (BaselineVerdict::Fail { p_value: 0.01 }, Fail),
            (
                BaselineVerdict::Inconclusive {
                    reason: "few".into(),
                },
                Inconclusive,
            ),
        ];
        for (verdict, want) in baseline {
            assert_eq!(verdict.judgement(), want, "{verdict:?}");
        }
        assert_eq!(
            [Pass, Fail, Inconclusive].map(Judgement::as_str),
            ["pass", "fail", "inconclusive"]
        );
    }
}
