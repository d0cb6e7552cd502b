//! The `RolloutPolicy` kind (`veer.io/v1alpha1`): how a traffic shift proceeds, with
//! Flagger-familiar field names. Typed with serde (unknown fields are errors, closed sets of
//! words are enums, so a typo fails at its line); the semantic checks (durations, step
//! weights, ranges, template variables, URLs) live in `validate::rollout_policy`.
//!
//! Also owns the pure helpers both the state machine and the analysis need to agree on: the
//! step weights a policy implies, the PromQL template variables and a check's
//! [`ThresholdRange`]. Lives with the manifests (not in `rollout`), since reading a
//! repository must know the kind and nothing here depends on rollouts or analysis.
//!
//! This file holds the object, its spec and the spec's derived values (timings, step
//! weights); `metric` the metric checks and their ranges, `baseline` the comparison with the
//! old version, `phases` the optional phases, webhooks and revert, `template` the PromQL
//! template variables, `binding` which policy governs a VirtualService, `shipped` the
//! policies embedded in veer.

mod baseline;
mod binding;
mod metric;
mod phases;
mod shipped;
mod template;

pub use baseline::{
    Baseline, BaselineMetric, DEFAULT_ALPHA, Direction, DirectionError, MannWhitney,
};
pub use binding::{Binding, Selector, bind};
pub use metric::{
    BuiltinMetric, MetricCheck, OnMetricsError, OnNoData, ThresholdRange, ThresholdRangeError,
};
pub use phases::{FaultPhase, MatchPhase, MirrorPhase, Revert, Webhook, WebhookKind};
pub use shipped::{SHIPPED_FILES, effective, shipped};
pub use template::{TEMPLATE_VARIABLES, TemplatePart, TemplateSyntaxError, parse_template};

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration;

pub const GROUP: &str = "veer.io";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "RolloutPolicy";
/// Annotation on a VirtualService naming the policy that governs its weight changes.
pub const POLICY_ANNOTATION: &str = "veer.io/rollout-policy";

/// Defaults when a policy leaves a field out (Flagger's, where it has one).
pub const DEFAULT_THRESHOLD: u32 = 5;
pub const DEFAULT_PROGRESS_DEADLINE: &str = "10m";

/// A RolloutPolicy object: the envelope around [`RolloutPolicySpec`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolloutPolicy {
    pub api_version: String,
    pub kind: String,
    pub metadata: serde_json::Value,
    pub spec: RolloutPolicySpec,
}

impl RolloutPolicy {
    pub fn name(&self) -> &str {
        self.metadata
            .get("name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolloutPolicySpec {
    /// Time between checks (and between steps): a duration such as `1m` or `30s`.
    pub interval: String,
    /// Failed checks before rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    /// Increment of the new version's weight per step (with `maxWeight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_weight: Option<u32>,
    /// Highest weight of the new version before promotion (with `stepWeight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_weight: Option<u32>,
    /// The new version's weight at each step, strictly increasing, each in (0, 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub step_weights: Vec<u32>,
    /// How long the health gate, or one step, may take before the rollout is rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricCheck>,
    /// Requests the new version must have served before any metric gives a verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
    #[serde(default)]
    pub on_no_data: OnNoData,
    #[serde(default)]
    pub on_metrics_error: OnMetricsError,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorPhase>,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matching: Option<MatchPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    #[serde(default)]
    pub revert: Revert,
    /// Author of revert commits, e.g. `veer <veer@example.com>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// VirtualServices this policy governs without an annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
}

/// Durations of a policy, parsed. Built by [`RolloutPolicySpec::timings`]; a policy that
/// passed validation always has valid ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub interval: Duration,
    pub progress_deadline: Duration,
}

impl RolloutPolicySpec {
    pub fn threshold(&self) -> u32 {
        self.threshold.unwrap_or(DEFAULT_THRESHOLD).max(1)
    }

    /// The interval and progress deadline; unparseable values fall back to 1m and 10m so
    /// that the state machine never divides by nothing (validation reports them).
    pub fn timings(&self) -> Timings {
        let interval = duration::parse(&self.interval)
            .ok()
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(60));
        let progress_deadline = duration::parse(
            self.progress_deadline
                .as_deref()
                .unwrap_or(DEFAULT_PROGRESS_DEADLINE),
        )
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(600));
        Timings {
            interval,
            progress_deadline,
        }
    }

    /// The new version's weights before promotion, strictly increasing, each in 1..=99:
    /// `stepWeights` as listed, or `stepWeight, 2·stepWeight, …` up to `maxWeight`.
    pub fn step_values(&self) -> Vec<u32> {
        let mut out: Vec<u32> = if !self.step_weights.is_empty() {
            self.step_weights.clone()
        } else {
            let step = self.step_weight.unwrap_or(10).max(1);
            let max = self.max_weight.unwrap_or(50).min(100);
            let mut v = Vec::new();
            let mut w = step;
            while w < max {
                v.push(w);
                w += step;
            }
            v.push(max);
            v
        };
        out.retain(|w| (1..100).contains(w));
        out.dedup();
        // Keep only a strictly increasing run, so a policy that slipped past validation still
        // never moves weight backwards.
        let mut last = 0;
        out.retain(|w| {
            let keep = *w > last;
            if keep {
                last = *w;
            }
            keep
        });
        out
    }

    /// The highest weight the new version reaches before promotion.
    pub fn max_weight(&self) -> u32 {
        self.step_values().last().copied().unwrap_or(0)
    }

    pub fn webhooks_of(&self, kind: WebhookKind) -> impl Iterator<Item = &Webhook> {
        self.webhooks.iter().filter(move |w| w.kind == kind)
    }

    pub fn has_webhooks(&self, kind: WebhookKind) -> bool {
        self.webhooks_of(kind).next().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn spec(
        step_weight: Option<u32>,
        max: Option<u32>,
        steps: &[u32],
    ) -> RolloutPolicySpec {
        RolloutPolicySpec {
            interval: "1m".into(),
            step_weight,
            max_weight: max,
            step_weights: steps.to_vec(),
            ..RolloutPolicySpec::default()
        }
    }

    #[test]
    fn step_values_from_either_form() {
        assert_eq!(
            spec(Some(10), Some(50), &[]).step_values(),
            [10, 20, 30, 40, 50]
        );
        assert_eq!(spec(Some(20), Some(50), &[]).step_values(), [20, 40, 50]);
        assert_eq!(spec(Some(25), Some(100), &[]).step_values(), [25, 50, 75]);
        assert_eq!(
            spec(None, None, &[5, 10, 25, 50]).step_values(),
            [5, 10, 25, 50]
        );
        assert_eq!(spec(None, None, &[5, 3, 0, 100, 60]).step_values(), [5, 60]);
        assert_eq!(spec(None, None, &[5, 10, 25, 50]).max_weight(), 50);
    }
}
