//! The `RolloutPolicy` kind (`veer.io/v1alpha1`): how a traffic shift proceeds, with
//! Flagger-familiar field names. Typed with serde (unknown fields are errors, closed sets of
//! words are enums, so a typo fails at its line); the semantic checks (durations, step
//! weights, ranges, template variables, URLs) live in `validate::rollout_policy`.
//!
//! Also owns the pure helpers both the state machine and the analysis need to agree on: the
//! step weights a policy implies, the PromQL template variables and a check's
//! [`ThresholdRange`]. Lives with the manifests (not in `rollout`), since reading a
//! repository must know the kind and nothing here depends on rollouts or analysis.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::istio::virtual_service::StringMatch;
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

/// One metric checked at every interval.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricCheck {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinMetric>,
    /// A PromQL template; see [`TEMPLATE_VARIABLES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub threshold_range: ThresholdRange,
    /// The range the query looks back over; defaults to the policy's `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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

impl ThresholdRange {
    pub fn new(min: Option<f64>, max: Option<f64>) -> Result<Self, String> {
        let range = Self { min, max };
        range.check()?;
        Ok(range)
    }

    /// A range no value can satisfy, or with a NaN bound, is a policy error.
    pub fn check(&self) -> Result<(), String> {
        if self.min.is_some_and(f64::is_nan) || self.max.is_some_and(f64::is_nan) {
            return Err("thresholdRange bounds must be numbers".to_string());
        }
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(format!("thresholdRange min {min} is above max {max}"));
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

/// Mirror `weight`% of the traffic to the new version for `iterations` passing checks before
/// any real traffic moves.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MirrorPhase {
    pub weight: u32,
    pub iterations: u32,
}

/// A/B: only requests matching `headers` (or carrying `cookie`, `name=value`) go to the new
/// version for `iterations` passing checks.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchPhase {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    pub iterations: u32,
}

/// Inject a delay or an abort into `percent`% of the new version's traffic for `iterations`
/// passing checks: the metrics must hold under it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultPhase {
    /// A duration, e.g. `500ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// An HTTP status, e.g. `503`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<u32>,
    pub percent: f64,
    pub iterations: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Webhook {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: WebhookKind,
    pub url: String,
    /// A duration; defaults to 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookKind {
    /// Before any traffic moves; a failure counts as a failed check.
    PreRollout,
    /// Before every check; a failure counts as a failed check.
    #[default]
    Rollout,
    /// Before promotion; a failure holds (a gate, e.g. a human approval), never rolls back.
    ConfirmPromotion,
    /// After promotion; a failure is reported only.
    PostRollout,
    /// After a rollback; a failure is reported only.
    Rollback,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::PreRollout => "pre-rollout",
            WebhookKind::Rollout => "rollout",
            WebhookKind::ConfirmPromotion => "confirm-promotion",
            WebhookKind::PostRollout => "post-rollout",
            WebhookKind::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Revert {
    /// After a rollback, push a revert commit of the offending change.
    Git,
    #[default]
    None,
}

/// Compare the new version with the old one (the baseline) as well as with each metric's
/// `thresholdRange`: a one-sided Mann-Whitney U test over both versions' samples of the
/// metric (one per `step`), Kayenta-style. A metric inside its range but significantly worse
/// than the old version fails the check; too few samples hold it (inconclusive).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Baseline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mann_whitney: Option<MannWhitney>,
    /// One sample every `step` (a duration); defaults to each metric's interval, so that
    /// samples cover disjoint windows. A shorter step gives more samples sooner, but they
    /// overlap and the test becomes over-confident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// How far back samples go at most (a duration); never before the current phase began
    /// (the new version's traffic was different then). Default: the whole phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<String>,
    /// How much worse than the old version (percent of its median) a metric may be before a
    /// significant difference fails, Kayenta's effect size: with 10, a new version 4 % slower
    /// passes even when the test is sure it is slower. Default 0: any significant worsening
    /// fails. A metric's own `allowance` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<f64>,
    /// The metrics compared, each with the direction that is bad. Default: every metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<BaselineMetric>,
}

/// Significance level used when `mannWhitney` is left out.
pub const DEFAULT_ALPHA: f64 = 0.05;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MannWhitney {
    /// Significance level, in (0, 1); 0.05 is usual.
    pub alpha: f64,
}

/// One metric of `spec.metrics` compared with the old version.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaselineMetric {
    pub name: String,
    /// Which way is bad; see [`Baseline::direction_of`] for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// This metric's allowance (percent), instead of `spec.baseline.allowance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<f64>,
}

/// The direction in which a metric gets worse (Kayenta's `direction`): `increase` fails a new
/// version whose values are higher (latency, errors), `decrease` one whose values are lower
/// (success rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Increase,
    Decrease,
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

impl Baseline {
    /// Time between two samples of a metric whose query window is `window`: `step`, else the
    /// window (one sample per metric interval). Validation and the rollout both ask here.
    pub fn step_for(&self, window: Duration) -> Duration {
        self.step
            .as_deref()
            .and_then(|t| duration::parse(t).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(window)
    }

    pub fn alpha(&self) -> f64 {
        self.mann_whitney
            .as_ref()
            .map_or(DEFAULT_ALPHA, |m| m.alpha)
    }

    /// The allowance for metric `name` as a fraction (10 % → 0.1): the metric's own, else
    /// the policy's, else 0.
    pub fn allowance_of(&self, name: &str) -> f64 {
        self.metrics
            .iter()
            .find(|b| b.name == name)
            .and_then(|b| b.allowance)
            .or(self.allowance)
            .unwrap_or(0.0)
            / 100.0
    }

    /// Is `metric` compared, and in which direction is it worse? `None`: not compared (the
    /// policy lists other metrics). The direction is the listed one, else the builtin's
    /// (success rate: decrease, duration: increase), else the side `thresholdRange` bounds
    /// (only `max`: increase, only `min`: decrease); `Err` says why it cannot be told.
    /// Caller-side builtins measure the whole service, so there is no old version to compare
    /// them with: left out unless listed, and an `Err` when listed.
    pub fn direction_of(&self, metric: &MetricCheck) -> Option<Result<Direction, String>> {
        let listed = if self.metrics.is_empty() {
            None
        } else {
            Some(self.metrics.iter().find(|b| b.name == metric.name)?)
        };
        if let Some(builtin) = metric.builtin.filter(|b| b.is_caller_side()) {
            return listed.map(|_| {
                Err(format!(
                    "`{}` ({}) measures the whole service as its callers see it, not one version, so there is no old version to compare it with",
                    metric.name,
                    builtin.as_str()
                ))
            });
        }
        if let Some(d) = listed.and_then(|b| b.direction) {
            return Some(Ok(d));
        }
        Some(match (metric.builtin, metric.threshold_range) {
            (
                Some(BuiltinMetric::RequestSuccessRate | BuiltinMetric::CallerRequestSuccessRate),
                _,
            ) => Ok(Direction::Decrease),
            (Some(BuiltinMetric::RequestDuration | BuiltinMetric::CallerRequestDuration), _) => {
                Ok(Direction::Increase)
            }
            (
                None,
                ThresholdRange {
                    min: None,
                    max: Some(_),
                },
            ) => Ok(Direction::Increase),
            (
                None,
                ThresholdRange {
                    min: Some(_),
                    max: None,
                },
            ) => Ok(Direction::Decrease),
            (None, ThresholdRange { .. }) => Err(format!(
                "cannot tell whether higher or lower values of `{}` are worse",
                metric.name
            )),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

impl Selector {
    /// Does a VirtualService with these labels match? An empty selector matches nothing (a
    /// policy must not silently govern every VirtualService).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.match_labels.is_empty()
            && self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
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

/// Variables a PromQL template may use, as `{{ name }}`: the same as `analysis::template`
/// renders, so a policy that validates also renders.
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "namespace", // the VirtualService's namespace
    "service",   // the destination host's service name (first label)
    "subset",    // the new version's subset
    "version",   // alias of subset, as Istio's `destination_version` label names it
    "interval",  // the metric's interval as a PromQL range, e.g. `1m`
];

/// A piece of a template: literal text or a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart<'a> {
    Text(&'a str),
    Variable(&'a str),
}

/// Split a template into text and `{{ variable }}` parts. Errors name what is wrong.
pub fn parse_template(template: &str) -> Result<Vec<TemplatePart<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("`{{` is not closed by `}}`".to_string());
        };
        let name = after[..close].trim();
        if name.is_empty() {
            return Err("`{{ }}` names no variable".to_string());
        }
        parts.push(TemplatePart::Variable(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest));
    }
    Ok(parts)
}

/// The policies shipped with veer (`policies/*.yaml`), embedded in the binary. A policy of the
/// same name in the config repo takes precedence.
pub const SHIPPED_FILES: &[(&str, &str)] = &[
    (
        "policies/default-canary.yaml",
        include_str!("../../../../policies/default-canary.yaml"),
    ),
    (
        "policies/conservative.yaml",
        include_str!("../../../../policies/conservative.yaml"),
    ),
    (
        "policies/ab-testing.yaml",
        include_str!("../../../../policies/ab-testing.yaml"),
    ),
    (
        "policies/mirror-then-shift.yaml",
        include_str!("../../../../policies/mirror-then-shift.yaml"),
    ),
];

/// The shipped policies, parsed once. A test keeps every one of them valid.
pub fn shipped() -> &'static [RolloutPolicy] {
    static SHIPPED: std::sync::OnceLock<Vec<RolloutPolicy>> = std::sync::OnceLock::new();
    SHIPPED.get_or_init(|| {
        let options = super::ReadOptions::default();
        SHIPPED_FILES
            .iter()
            .flat_map(|(path, text)| super::parse_file(path, text.as_bytes(), &options).manifests)
            .filter_map(|m| super::policy::rollout_policy(&m).cloned())
            .collect()
    })
}

/// The policies in force: the config repo's, then shipped ones whose names it does not use.
pub fn effective(revision: &[RolloutPolicy]) -> Vec<RolloutPolicy> {
    let mut out = revision.to_vec();
    for p in shipped() {
        if !revision.iter().any(|r| r.name() == p.name()) {
            out.push(p.clone());
        }
    }
    out
}

/// How a VirtualService is bound to a policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding<'a> {
    /// Not bound: weight changes are applied at once.
    Unbound,
    /// By the `veer.io/rollout-policy` annotation (which wins over selectors).
    Annotation(&'a RolloutPolicy),
    /// By exactly one policy's selector.
    Selector(&'a RolloutPolicy),
    /// The annotation names no known policy.
    UnknownPolicy(String),
    /// Several policies' selectors match and no annotation decides.
    Ambiguous(Vec<String>),
}

/// The policy governing a VirtualService with this annotation value and these labels.
pub fn bind<'a>(
    annotation: Option<&str>,
    labels: &BTreeMap<String, String>,
    policies: &'a [RolloutPolicy],
) -> Binding<'a> {
    if let Some(name) = annotation {
        return match policies.iter().find(|p| p.name() == name) {
            Some(p) => Binding::Annotation(p),
            None => Binding::UnknownPolicy(name.to_string()),
        };
    }
    let matching: Vec<&RolloutPolicy> = policies
        .iter()
        .filter(|p| p.spec.selector.as_ref().is_some_and(|s| s.matches(labels)))
        .collect();
    match matching.as_slice() {
        [] => Binding::Unbound,
        [one] => Binding::Selector(one),
        many => Binding::Ambiguous(many.iter().map(|p| p.name().to_string()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(step_weight: Option<u32>, max: Option<u32>, steps: &[u32]) -> RolloutPolicySpec {
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

    #[test]
    fn templates_split_into_text_and_variables() {
        let t = "sum(rate(x{ns=\"{{ namespace }}\",v=\"{{subset}}\"}[{{ interval }}]))";
        let vars: Vec<&str> = parse_template(t)
            .unwrap()
            .into_iter()
            .filter_map(|p| match p {
                TemplatePart::Variable(v) => Some(v),
                TemplatePart::Text(_) => None,
            })
            .collect();
        assert_eq!(vars, ["namespace", "subset", "interval"]);
        assert!(parse_template("a {{ b").is_err());
        assert!(parse_template("a {{ }} b").is_err());
    }

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
    fn metric_windows_and_baseline_steps() {
        let timings = spec(Some(10), Some(50), &[]).timings();
        let metric = |interval: Option<&str>| MetricCheck {
            name: "m".into(),
            builtin: Some(BuiltinMetric::RequestDuration),
            query: None,
            threshold_range: ThresholdRange {
                min: None,
                max: Some(500.0),
            },
            interval: interval.map(String::from),
        };
        let secs = Duration::from_secs;
        // Own interval, else the policy's; a zero or unreadable one is the policy's too.
        assert_eq!(metric(Some("30s")).window(&timings), secs(30));
        assert_eq!(metric(None).window(&timings), secs(60));
        assert_eq!(metric(Some("0s")).window(&timings), secs(60));
        assert_eq!(metric(Some("soon")).window(&timings), secs(60));
        let baseline = |step: Option<&str>| Baseline {
            step: step.map(String::from),
            ..Baseline::default()
        };
        assert_eq!(baseline(Some("10s")).step_for(secs(30)), secs(10));
        assert_eq!(baseline(None).step_for(secs(30)), secs(30));
        assert_eq!(baseline(Some("0s")).step_for(secs(30)), secs(30));
    }

    #[test]
    fn allowances_are_the_metrics_own_else_the_policys_as_fractions() {
        let entry = |name: &str, allowance: Option<f64>| BaselineMetric {
            name: name.into(),
            direction: None,
            allowance,
        };
        let b = Baseline {
            allowance: Some(10.0),
            metrics: vec![entry("p99", Some(25.0)), entry("success", None)],
            ..Baseline::default()
        };
        assert_eq!(b.allowance_of("p99"), 0.25);
        assert_eq!(b.allowance_of("success"), 0.1);
        assert_eq!(b.allowance_of("unlisted"), 0.1);
        assert_eq!(Baseline::default().allowance_of("p99"), 0.0);
    }

    /// Name, baseline, metric, and `None` (not compared), `Some(Ok(direction))` or
    /// `Some(Err(()))` (cannot tell).
    type DirectionCase<'a> = (
        &'static str,
        Baseline,
        &'a MetricCheck,
        Option<Result<Direction, ()>>,
    );

    #[test]
    fn baseline_directions_table() {
        let metric =
            |name: &str, builtin: Option<BuiltinMetric>, min: Option<f64>, max: Option<f64>| {
                MetricCheck {
                    name: name.into(),
                    builtin,
                    query: builtin.is_none().then(|| "q".to_string()),
                    threshold_range: ThresholdRange { min, max },
                    interval: None,
                }
            };
        let listing = |entries: &[(&str, Option<Direction>)]| Baseline {
            metrics: entries
                .iter()
                .map(|(n, d)| BaselineMetric {
                    name: n.to_string(),
                    direction: *d,
                    allowance: None,
                })
                .collect(),
            ..Baseline::default()
        };
        use Direction::{Decrease, Increase};
        let success = metric(
            "success",
            Some(BuiltinMetric::RequestSuccessRate),
            Some(99.0),
            None,
        );
        let p99 = metric(
            "p99",
            Some(BuiltinMetric::RequestDuration),
            None,
            Some(500.0),
        );
        let errors = metric("errors", None, None, Some(1.0));
        let apdex = metric("apdex", None, Some(0.9), None);
        let depth = metric("depth", None, Some(0.0), Some(100.0));
        let all = Baseline::default();
        #[rustfmt::skip]
        let cases: Vec<DirectionCase> = vec![
            ("success rate: lower is worse", all.clone(), &success, Some(Ok(Decrease))),
            ("latency: higher is worse", all.clone(), &p99, Some(Ok(Increase))),
            ("a query bounded above: higher is worse", all.clone(), &errors, Some(Ok(Increase))),
            ("a query bounded below: lower is worse", all.clone(), &apdex, Some(Ok(Decrease))),
            ("bounded both sides: cannot tell", all.clone(), &depth, Some(Err(()))),
            ("listed with a direction", listing(&[("depth", Some(Increase))]), &depth, Some(Ok(Increase))),
            ("a listed direction overrides the builtin's", listing(&[("p99", Some(Decrease))]), &p99, Some(Ok(Decrease))),
            ("listed without a direction: the default", listing(&[("p99", None)]), &p99, Some(Ok(Increase))),
            ("not listed: not compared", listing(&[("p99", None)]), &success, None),
        ];
        for (name, baseline, metric, want) in cases {
            let got = baseline.direction_of(metric).map(|r| r.map_err(|_| ()));
            assert_eq!(got, want, "{name}");
        }
        assert_eq!(all.alpha(), DEFAULT_ALPHA);
    }
}
