//! Query planning for an analysis, pure: which of the policy's metrics are queried, with
//! which template values (the new version's service and subset, the metric's window), and how
//! each is compared with the old version (`spec.baseline`: the sample range of the current
//! step, the old version's values). The controller hands the plan to the metrics provider.

use chrono::{DateTime, Utc};

use super::{DestinationId, RolloutState};
use crate::analysis::{self, MetricQuery, QueryTemplate, Vars};
use crate::manifest::rollout_policy::{self as rpolicy, RolloutPolicy};

/// One metric to query, with the values its template is rendered with.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedQuery {
    pub metric: analysis::Metric,
    pub vars: Vars,
}

/// The queries of an analysis of `names` (metrics of `policy`) for the rollout in `namespace`
/// whose new version is `canary` and old version `baseline`, at `now`.
pub fn plan_queries(
    policy: &RolloutPolicy,
    namespace: &str,
    canary: &[DestinationId],
    baseline: &[DestinationId],
    names: &[String],
    state: &RolloutState,
    now: DateTime<Utc>,
) -> Vec<PlannedQuery> {
    let spec = &policy.spec;
    let timings = spec.timings();
    let (service, subset) = service_and_subset(canary);
    spec.metrics
        .iter()
        .filter(|m| names.contains(&m.name))
        .map(|m| {
            let query = match (m.builtin, &m.query) {
                (Some(builtin), _) => MetricQuery::Builtin(builtin),
                (None, Some(q)) => MetricQuery::Query(QueryTemplate::new(q.clone())),
                (None, None) => MetricQuery::Query(QueryTemplate::new("")),
            };
            let window = m.window(&timings);
            PlannedQuery {
                metric: analysis::Metric {
                    name: m.name.clone(),
                    query,
                    threshold: m.threshold_range,
                    baseline: spec
                        .baseline
                        .as_ref()
                        .and_then(|b| comparison(b, m, namespace, baseline, window, state, now)),
                },
                vars: Vars::new(namespace, &service, &subset, window),
            }
        })
        .collect()
}

/// The first label of a host (`reviews` of `reviews.shop.svc.cluster.local`): the service
/// name Istio's metrics and the `app` label carry.
pub fn short_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The service and subset the analysis queries name for a version (its first destination).
fn service_and_subset(destinations: &[DestinationId]) -> (String, String) {
    let first = destinations.first();
    (
        first
            .map(|d| short_host(&d.host).to_string())
            .unwrap_or_default(),
        first
            .and_then(|d| d.subset.as_deref())
            .unwrap_or_default()
            .to_string(),
    )
}

/// How `metric` is compared with the old version (`baseline`, its destinations) under the
/// policy's `spec.baseline`, or `None` when it is not compared. The first sample is one query
/// `window` after the split in force was written (the step's, or the phase's in a state
/// stored before veer recorded it), so that every sample's range lies inside the current
/// step: before it the new version had other traffic (or none). Pure.
fn comparison(
    spec: &rpolicy::Baseline,
    metric: &rpolicy::MetricCheck,
    namespace: &str,
    baseline: &[DestinationId],
    window: std::time::Duration,
    state: &RolloutState,
    now: DateTime<Utc>,
) -> Option<analysis::Comparison> {
    let direction = spec.direction_of(metric)?;
    let parse = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| crate::duration::parse(t).ok())
            .filter(|d| !d.is_zero())
    };
    let step = spec.step_for(window);
    let first_sample = chrono::TimeDelta::from_std(window)
        .ok()
        .and_then(|w| {
            state
                .traffic_since
                .unwrap_or(state.phase_started_at)
                .checked_add_signed(w)
        })
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let range = analysis::SampleRange::window(first_sample, now, step, parse(&spec.lookback));
    let against = match (direction, baseline.is_empty()) {
        (Err(reason), _) => Err(format!(
            "{reason}; set its direction in spec.baseline.metrics"
        )),
        (Ok(_), true) => Err(
            "no destination loses weight, so there is no old version to compare with".to_string(),
        ),
        (Ok(d), false) => {
            let (service, subset) = service_and_subset(baseline);
            Ok((Vars::new(namespace, &service, &subset, window), d))
        }
    };
    Some(analysis::Comparison {
        alpha: spec.alpha(),
        allowance: spec.allowance_of(&metric.name),
        range,
        against,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{state, t};
    use super::*;
    use crate::rollout::Phase;

    /// Name, baseline spec, metric, old destinations, expected start second and step seconds,
    /// and the old version's subset or part of why there is none.
    type ComparisonCase<'a> = (
        &'static str,
        rpolicy::Baseline,
        &'a rpolicy::MetricCheck,
        &'a [DestinationId],
        u32,
        u64,
        Result<&'static str, &'static str>,
    );

    #[test]
    fn comparisons_table() {
        use std::time::Duration;
        let metric = |name: &str, min: Option<f64>, max: Option<f64>| rpolicy::MetricCheck {
            name: name.into(),
            builtin: None,
            query: Some("q".into()),
            threshold_range: crate::rollout::ThresholdRange { min, max },
            interval: None,
        };
        let latency = metric("latency", None, Some(500.0));
        let depth = metric("depth", Some(0.0), Some(9.0));
        let v1 = [DestinationId {
            host: "reviews.shop.svc.cluster.local".into(),
            subset: Some("v1".into()),
            port: None,
        }];
        let mut st = state("c1", Phase::Progressing, (100, 0), (0, 100));
        st.phase_started_at = t(10);
        let spec = |step: Option<&str>, lookback: Option<&str>| rpolicy::Baseline {
            mann_whitney: Some(rpolicy::MannWhitney { alpha: 0.01 }),
            step: step.map(String::from),
            lookback: lookback.map(String::from),
            allowance: Some(20.0),
            metrics: Vec::new(),
        };
        let window = Duration::from_secs(4);
        #[rustfmt::skip]
        let cases: Vec<ComparisonCase> = vec![
            // The first sample is one 4 s query window into the phase (which began at 10 s).
            ("a window into the phase, a sample per metric interval", spec(None, None), &latency, &v1, 14, 4, Ok("v1")),
            ("its own step", spec(Some("1s"), None), &latency, &v1, 14, 1, Ok("v1")),
            ("a lookback shorter than the phase", spec(Some("1s"), Some("20s")), &latency, &v1, 30, 1, Ok("v1")),
            ("no old version", spec(None, None), &latency, &[], 14, 4, Err("no old version")),
            ("a direction that cannot be told", spec(None, None), &depth, &v1, 14, 4, Err("set its direction")),
        ];
        for (name, spec, metric, old, start, step, want) in cases {
            let c = comparison(&spec, metric, "shop", old, window, &st, t(50)).expect("compared");
            assert_eq!((c.alpha, c.allowance), (0.01, 0.2), "{name}");
            assert_eq!(
                (c.range.start, c.range.end, c.range.step),
                (t(start), t(50), Duration::from_secs(step)),
                "{name}"
            );
            match (&c.against, want) {
                (Ok((vars, worse)), Ok(subset)) => {
                    assert_eq!(
                        (vars.service.as_str(), vars.subset.as_str()),
                        ("reviews", subset),
                        "{name}"
                    );
                    assert_eq!(vars.interval, window, "{name}");
                    assert_eq!(*worse, rpolicy::Direction::Increase, "{name}");
                }
                (Err(reason), Err(part)) => assert!(reason.contains(part), "{name}: {reason}"),
                (got, want) => panic!("{name}: {got:?}, wanted {want:?}"),
            }
        }
        // At a later step only that step's samples count: the first is one window after the
        // step's split was written (at 30 s), not after the phase began.
        let mut later = st.clone();
        later.traffic_since = Some(t(30));
        let c = comparison(
            &spec(None, None),
            &latency,
            "shop",
            &v1,
            window,
            &later,
            t(50),
        )
        .expect("compared");
        assert_eq!((c.range.start, c.range.end), (t(34), t(50)));
        // A metric the policy does not list is not compared.
        let only_depth = rpolicy::Baseline {
            metrics: vec![rpolicy::BaselineMetric {
                name: "depth".into(),
                direction: Some(rpolicy::Direction::Increase),
                allowance: None,
            }],
            ..spec(None, None)
        };
        assert_eq!(
            comparison(&only_depth, &latency, "shop", &v1, window, &st, t(50)),
            None
        );
    }
}
