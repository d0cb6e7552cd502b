//! Test fixtures shared by the rollout core's and the rollout driver's unit tests: a
//! VirtualService `shop/reviews` with subsets v1 and v2, a policy, rollout states and check
//! records.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use crate::analysis::{BaselineComparison, BaselineVerdict};
use crate::ids::RolloutId;
use crate::manifest::ObjectKey;
use crate::manifest::rollout_policy::{self as rpolicy, RolloutPolicy, RolloutPolicySpec};
use crate::rollout::state::{CheckOutcome, CheckRecord};
use crate::rollout::{AnalysisVerdict, DestinationId, Phase, RolloutState, RouteRef, TrafficSplit};

pub fn t(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, second)
        .single()
        .unwrap_or_default()
}

pub fn policy(name: &str) -> RolloutPolicy {
    RolloutPolicy {
        api_version: "veer.io/v1alpha1".into(),
        kind: "RolloutPolicy".into(),
        metadata: json!({"name": name}),
        spec: RolloutPolicySpec {
            interval: "1m".into(),
            step_weights: vec![25, 50, 75],
            ..RolloutPolicySpec::default()
        },
    }
}

pub fn vs(v1: u32, v2: u32, policy: Option<&str>) -> Value {
    let mut v = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"hosts": ["reviews"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "reviews", "subset": "v1"}, "weight": v1},
            {"destination": {"host": "reviews", "subset": "v2"}, "weight": v2},
        ]}]},
    });
    if let Some(p) = policy {
        v["metadata"]["annotations"] = json!({rpolicy::POLICY_ANNOTATION: p});
    }
    v
}

pub fn key() -> ObjectKey {
    ObjectKey {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        kind: "VirtualService".into(),
        namespace: Some("shop".into()),
        name: "reviews".into(),
    }
}

pub fn id() -> RolloutId {
    RolloutId::of(&key())
}

pub fn split(v1: u32, v2: u32) -> TrafficSplit {
    [
        (DestinationId::new("reviews", Some("v1")), v1),
        (DestinationId::new("reviews", Some("v2")), v2),
    ]
    .into_iter()
    .collect()
}

pub fn state(revision: &str, phase: Phase, from: (u32, u32), to: (u32, u32)) -> RolloutState {
    let mut s = RolloutState::new(
        revision,
        RouteRef {
            index: 0,
            name: Some("primary".into()),
        },
        &split(from.0, from.1),
        &split(to.0, to.1),
        &policy("p").spec,
        t(0),
    );
    s.phase = phase;
    s
}

pub fn record(second: u32, check: &str, value: Option<f64>, outcome: CheckOutcome) -> CheckRecord {
    CheckRecord {
        at: t(second),
        phase: Phase::Progressing,
        step: 1,
        check: check.into(),
        query: "q".into(),
        same_query: false,
        value,
        threshold: ">= 99".into(),
        verdict: match outcome {
            CheckOutcome::Passed => AnalysisVerdict::Pass,
            CheckOutcome::Failed => AnalysisVerdict::Fail {
                value: value.unwrap_or(0.0),
                min: Some(99.0),
                max: None,
            },
            CheckOutcome::Held => AnalysisVerdict::NoData,
        },
        message: String::new(),
        outcome,
        baseline: None,
    }
}

/// A p99 check inside `<= 500` whose comparison with the old version (24.85 ms) came out
/// `verdict`: 248.5 ms when worse or inconclusive, equal when it passed.
pub fn compared(second: u32, verdict: BaselineVerdict) -> CheckRecord {
    let (outcome, value, canary_samples) = match verdict {
        BaselineVerdict::Pass { .. } => (CheckOutcome::Passed, 24.85, 6),
        BaselineVerdict::WithinAllowance { .. } => (CheckOutcome::Passed, 26.0, 6),
        BaselineVerdict::Fail { .. } => (CheckOutcome::Failed, 248.5, 6),
        BaselineVerdict::Inconclusive { .. } => (CheckOutcome::Held, 248.5, 1),
    };
    CheckRecord {
        threshold: "<= 500".into(),
        verdict: match &verdict {
            BaselineVerdict::Pass { .. } | BaselineVerdict::WithinAllowance { .. } => {
                AnalysisVerdict::Pass
            }
            BaselineVerdict::Fail { p_value } => AnalysisVerdict::WorseThanBaseline {
                p_value: *p_value,
                alpha: 0.05,
            },
            BaselineVerdict::Inconclusive { .. } => AnalysisVerdict::Inconclusive,
        },
        baseline: Some(BaselineComparison {
            query: "q of v1".into(),
            canary_samples,
            baseline_samples: 9,
            canary_median: Some(value),
            baseline_median: Some(24.85),
            alpha: 0.05,
            allowance: 0.0,
            verdict,
        }),
        ..record(second, "p99-latency", Some(value), outcome)
    }
}
