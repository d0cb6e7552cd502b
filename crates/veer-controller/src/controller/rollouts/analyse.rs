//! An analysis: the queries planned in core (`rollout::queries`), their instant answers
//! measured with the other rollouts' of the pass (`batcher`), each metric judged (and compared
//! with the old version) in core (`analysis::judge_measured`), and the checks logged. Every
//! query goes through [`Counted`], which counts it for the metrics and the bench.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tracing::info;

use super::RolloutId;
use super::tick::{Env, Slot};
use crate::analysis::{
    self, MetricsProvider, QueryOutcome, RangeOutcome, SampleRange, SeriesOutcome,
};
use crate::manifest::rollout_policy::RolloutPolicy;
use crate::metrics::Metrics;
use crate::rollout::queries::plan_queries;
use crate::rollout::{DestinationId, RolloutState};

use super::batcher::Pending;

impl<'e> Env<'e> {
    /// The checks of one analysis of `names`. While it waits for the batch's answers the
    /// rollout gives up its `slot` (waiting is not working), so every rollout due can join the
    /// batch; `pending` is its place among the rollouts the batch waits for.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn analyse(
        &self,
        id: &RolloutId,
        policy: &RolloutPolicy,
        state: &RolloutState,
        versions: Versions<'_>,
        names: &[String],
        now: DateTime<Utc>,
        pending: Option<Pending<'_>>,
        slot: &mut Slot<'e>,
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
        let Some(provider) = self.provider else {
            drop(pending);
            return planned
                .into_iter()
                .map(|q| analysis::Check {
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
                })
                .collect();
        };
        // Per metric: its request count (with `minRequests`), then its own query.
        let mut instants = Vec::new();
        for q in &planned {
            if min_requests > 0 {
                instants.push(analysis::request_count(&q.vars));
            }
            instants.push(q.metric.instant(&q.vars));
        }
        let texts: Vec<String> = instants.iter().map(|i| i.text().to_string()).collect();
        // Waiting is not working: the slot is taken again only for the writes that follow
        // the judgement (`tick::rounds`), so every rollout is judged as soon as its answers
        // come, not after the writes of those judged before it.
        slot.release();
        let outcomes = self.analysis.measure(pending, instants).await;
        if policy.spec.baseline.is_some() {
            // The baseline comparisons' range queries are work: as many at once as slots.
            slot.acquire(self.slots).await;
        }
        let mut answers = texts.into_iter().zip(outcomes);
        let mut checks = Vec::with_capacity(planned.len());
        for q in &planned {
            let count = if min_requests > 0 {
                answers.next().map(|(_, o)| o)
            } else {
                None
            };
            let (query, outcome) = answers.next().unwrap_or_else(|| {
                (
                    String::new(),
                    QueryOutcome::Unreachable("the analysis lost its answer".into()),
                )
            });
            checks.push(
                analysis::judge_measured(
                    provider,
                    &q.metric,
                    &query,
                    outcome,
                    count.as_ref(),
                    min_requests,
                )
                .await,
            );
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

/// Prometheus queries sent, by kind: one rollout's instant query, a grouped one (several
/// rollouts), a range query (a baseline comparison).
#[derive(Debug, Default)]
pub(super) struct QueryCounts {
    instant: AtomicU64,
    grouped: AtomicU64,
    range: AtomicU64,
}

/// A [`QueryCounts`] read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueriesSent {
    pub instant: u64,
    pub grouped: u64,
    pub range: u64,
}

impl QueriesSent {
    pub fn total(&self) -> u64 {
        self.instant + self.grouped + self.range
    }
}

impl QueryCounts {
    pub(super) fn snapshot(&self) -> QueriesSent {
        QueriesSent {
            instant: self.instant.load(Ordering::Relaxed),
            grouped: self.grouped.load(Ordering::Relaxed),
            range: self.range.load(Ordering::Relaxed),
        }
    }
}

/// The driver's provider, counting each query it sends (`veer_prometheus_queries_total`).
pub(super) struct Counted<'a> {
    pub(super) inner: &'a dyn MetricsProvider,
    pub(super) counts: &'a QueryCounts,
    pub(super) metrics: &'a Metrics,
}

impl Counted<'_> {
    fn count(&self, counter: &AtomicU64, kind: &'static str) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.metrics.record_prometheus_query(kind);
    }
}

impl MetricsProvider for Counted<'_> {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
        self.count(&self.counts.instant, "instant");
        self.inner.query(promql)
    }

    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        range: &'a SampleRange,
    ) -> BoxFuture<'a, RangeOutcome> {
        self.count(&self.counts.range, "range");
        self.inner.query_range(promql, range)
    }

    fn answers_series(&self) -> bool {
        self.inner.answers_series()
    }

    fn query_series<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, SeriesOutcome> {
        self.count(&self.counts.grouped, "grouped");
        self.inner.query_series(promql)
    }
}
