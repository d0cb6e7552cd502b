//! One metric checked at every interval: its source (a builtin or a PromQL query), its
//! accepted [`ThresholdRange`], its query window, and what no data or a metrics error means.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Timings;
use crate::duration;

/// One metric checked at every interval.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricCheck {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinMetric>,
    /// A PromQL template; see [`TEMPLATE_VARIABLES`](super::TEMPLATE_VARIABLES).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub threshold_range: ThresholdRange,
    /// The range the query looks back over; defaults to the policy's `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// A metric veer knows how to query without a user-written PromQL (names follow Flagger's).
/// The one type for it: the policy parses it, the analysis renders its query
/// (`analysis::builtin`), and it is stored under these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuiltinMetric {
    /// Percentage (0–100) of the new subset's requests that did not answer 5xx.
    RequestSuccessRate,
    /// p99 latency of the new subset, in milliseconds.
    RequestDuration,
    /// Percentage (0–100) of the service's requests that its callers saw succeed, all
    /// versions together: the view in which a fault the route injects shows.
    CallerRequestSuccessRate,
    /// p99 latency of the service as its callers see it, in milliseconds.
    CallerRequestDuration,
}

impl BuiltinMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinMetric::RequestSuccessRate => "request-success-rate",
            BuiltinMetric::RequestDuration => "request-duration",
            BuiltinMetric::CallerRequestSuccessRate => "caller-request-success-rate",
            BuiltinMetric::CallerRequestDuration => "caller-request-duration",
        }
    }

    /// Measured for the whole service by its callers' sidecars, not for one version.
    pub fn is_caller_side(self) -> bool {
        match self {
            BuiltinMetric::CallerRequestSuccessRate | BuiltinMetric::CallerRequestDuration => true,
            BuiltinMetric::RequestSuccessRate | BuiltinMetric::RequestDuration => false,
        }
    }
}

/// The accepted range of a metric; an open end is unbounded. Flagger's `thresholdRange`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Why a [`ThresholdRange`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ThresholdRangeError {
    #[error("thresholdRange bounds must be numbers")]
    NotANumber,
    #[error("thresholdRange min {min} is above max {max}")]
    Inverted { min: f64, max: f64 },
}

impl ThresholdRange {
    pub fn new(min: Option<f64>, max: Option<f64>) -> Result<Self, ThresholdRangeError> {
        let range = Self { min, max };
        range.check()?;
        Ok(range)
    }

    /// A range no value can satisfy, or with a NaN bound, is a policy error.
    pub fn check(&self) -> Result<(), ThresholdRangeError> {
        if self.min.is_some_and(f64::is_nan) || self.max.is_some_and(f64::is_nan) {
            return Err(ThresholdRangeError::NotANumber);
        }
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(ThresholdRangeError::Inverted { min, max });
        }
        Ok(())
    }

    pub fn contains(&self, value: f64) -> bool {
        self.min.is_none_or(|m| value >= m) && self.max.is_none_or(|m| value <= m)
    }
}

impl fmt::Display for ThresholdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(min), Some(max)) => write!(f, "[{min}, {max}]"),
            (Some(min), None) => write!(f, ">= {min}"),
            (None, Some(max)) => write!(f, "<= {max}"),
            (None, None) => f.write_str("any value"),
        }
    }
}

/// What a check with no data means. `hold` waits (the progress deadline still runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnNoData {
    #[default]
    Hold,
    Fail,
    Pass,
}

/// What an unreachable or failing Prometheus means: an outage is not a bad canary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnMetricsError {
    #[default]
    Hold,
    Fail,
}

impl MetricCheck {
    /// The range the metric's query looks back over: its own `interval`, else the policy's.
    pub fn window(&self, timings: &Timings) -> Duration {
        self.interval
            .as_deref()
            .and_then(|t| duration::parse(t).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(timings.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_range_is_inclusive_and_open_ended() {
        let r = ThresholdRange {
            min: Some(99.0),
            max: None,
        };
        assert!(r.contains(99.0) && r.contains(100.0) && !r.contains(98.9));
        assert_eq!(r.to_string(), ">= 99");
    }

    #[test]
    fn unusable_ranges_say_why() {
        let err = |min, max| ThresholdRange::new(min, max).unwrap_err().to_string();
        assert_eq!(
            err(Some(2.0), Some(1.0)),
            "thresholdRange min 2 is above max 1"
        );
        assert_eq!(
            err(Some(f64::NAN), None),
            "thresholdRange bounds must be numbers"
        );
    }
}
