//! An analysis: the queries planned in core (`rollout::queries`) run through the metrics
//! provider (Prometheus), and the checks logged.

use chrono::{DateTime, Utc};
use tracing::info;

use super::{RolloutDriver, RolloutId};
use crate::analysis;
use crate::manifest::rollout_policy::RolloutPolicy;
use crate::rollout::queries::plan_queries;
use crate::rollout::{DestinationId, RolloutState};

impl RolloutDriver {
    pub(super) async fn analyse(
        &self,
        id: &RolloutId,
        policy: &RolloutPolicy,
        state: &RolloutState,
        versions: Versions<'_>,
        names: &[String],
        now: DateTime<Utc>,
    ) -> Vec<analysis::Check> {
        let planned = plan_queries(
            policy,
            &id.namespace,
            versions.canary,
            versions.baseline,
            names,
            state,
            now,
        );
        let min_requests = policy.spec.min_requests.unwrap_or(0);
        let mut checks = Vec::new();
        for q in planned {
            match &self.provider {
                Some(p) => checks.extend(
                    analysis::analyse(
                        p.as_ref(),
                        std::slice::from_ref(&q.metric),
                        &q.vars,
                        min_requests,
                    )
                    .await,
                ),
                None => checks.push(analysis::Check {
                    metric: q.metric.name.clone(),
                    query: String::new(),
                    value: None,
                    threshold: q.metric.threshold,
                    requests: None,
                    verdict: analysis::AnalysisVerdict::MetricsError {
                        kind: analysis::MetricsErrorKind::Unreachable,
                        reason: "no Prometheus configured (`analysis.prometheus.url`)".into(),
                    },
                    baseline: None,
                }),
            }
        }
        for c in &checks {
            let baseline = c.baseline.as_ref().map(ToString::to_string);
            info!(rollout = %id, metric = %c.metric, value = %c.value.map_or_else(|| "-".to_string(), crate::figures::for_people), threshold = %c.threshold, baseline = ?baseline, verdict = c.verdict.metric_label(), "check");
        }
        checks
    }
}

/// The new and the old version's destinations of an analysis.
#[derive(Clone, Copy)]
pub(super) struct Versions<'a> {
    pub(super) canary: &'a [DestinationId],
    pub(super) baseline: &'a [DestinationId],
}
