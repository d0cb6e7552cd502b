//! How the controller validates a revision: every check, with the rollout policies it knows
//! and the cluster's Services and ServiceEntries, at the severities `veer.yaml` configures
//! (`validation:`), as `veer validate --cluster` does; in proportion to what changed since
//! the last revision validated ([`Validated::next`]: the same report as a whole validation).
//!
//! The cluster's Services and ServiceEntries are listed (one LIST per kind) for the first
//! revision, then again for a new revision only once `sync.resyncInterval` has passed since
//! the last listing: a new commit does not cost two cluster-wide LISTs. The price: a Service
//! created in the cluster (not in git) within that interval is not seen yet, so a
//! VirtualService routing to it may get IST0101's "not found … nor the cluster's" warning
//! (a warning, never an error by default) until the next listing. A listing that fails is
//! not kept: the next revision asks again.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::source::LoadedRevision;
use crate::validate::{self, ClusterServices, Report, Severities, Validated};

use super::Controller;

/// What validation of the next revision builds on.
#[derive(Debug, Default)]
pub(super) struct Memo {
    /// The cluster's Services and ServiceEntries, and when they were listed.
    hosts: Option<(DateTime<Utc>, Arc<ClusterServices>)>,
    /// The last revision validated, before severities.
    last: Option<Validated>,
}

impl Controller {
    /// Validate at these severities; without it, each check's own.
    pub fn with_severities(mut self, severities: Severities) -> Self {
        self.severities = severities;
        self
    }

    /// The cluster's Services and ServiceEntries for validation: the last listing while it is
    /// younger than the resync interval, else a new one (`None`: they cannot be listed).
    async fn cluster_hosts(&mut self, now: DateTime<Utc>) -> Option<Arc<ClusterServices>> {
        let every = self.incremental.resync;
        if let Some((at, hosts)) = &self.incremental.validation.hosts
            && let Ok(age) = now.signed_duration_since(*at).to_std()
            && age < every
        {
            tracing::debug!(
                listed_secs_ago = age.as_secs(),
                "destination hosts are looked up in the cluster's Services and ServiceEntries as last listed"
            );
            return Some(hosts.clone());
        }
        let listed = self.cluster.services_for_validation().await.map(Arc::new);
        self.incremental.validation.hosts = listed.clone().map(|h| (now, h));
        listed
    }

    /// The report of a revision: the policies directory's policies known besides the
    /// revision's, the cluster's Services and ServiceEntries when they can be listed (see the
    /// module header), then the configured severities applied.
    pub(super) async fn validate(&mut self, loaded: &LoadedRevision, now: DateTime<Utc>) -> Report {
        let cluster = self.cluster_hosts(now).await;
        let local = self
            .rollouts
            .as_ref()
            .map_or(&[][..], |d| d.local_policies());
        let context = validate::ValidationContext {
            policies: local,
            cluster: cluster.as_deref(),
        };
        let (mut validated, report) = match self.incremental.validation.last.take() {
            Some(last) => last.next(&loaded.set, &context),
            None => Validated::new(&loaded.set, &context),
        };
        // The listing is kept above for the next revision: held once, not twice.
        if let Some(hosts) = &cluster {
            validated.share_cluster(hosts);
        }
        tracing::debug!(
            reused = ?validated.reuse(),
            "validated the revision against the last one"
        );
        self.incremental.validation.last = Some(validated);
        self.severities.apply(report)
    }
}
