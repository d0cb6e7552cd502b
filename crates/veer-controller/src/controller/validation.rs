//! How the controller validates a revision: every check, with the rollout policies it knows
//! and the cluster's Services and ServiceEntries, at the severities `veer.yaml` configures
//! (`validation:`), as `veer validate --cluster` does.

use crate::source::LoadedRevision;
use crate::validate::{self, Report, Severities};

use super::Controller;

impl Controller {
    /// Validate at these severities; without it, each check's own.
    pub fn with_severities(mut self, severities: Severities) -> Self {
        self.severities = severities;
        self
    }

    /// The report of a revision: the policies directory's policies known besides the
    /// revision's, the cluster's Services and ServiceEntries when they can be listed (one
    /// LIST per kind; this runs only when a new revision is loaded), then the configured
    /// severities applied.
    pub(super) async fn validate(&self, loaded: &LoadedRevision) -> Report {
        let local = self
            .rollouts
            .as_ref()
            .map_or(&[][..], |d| d.local_policies());
        let cluster = self.cluster.services_for_validation().await;
        let context = validate::ValidationContext {
            policies: local,
            cluster: cluster.as_ref(),
        };
        self.severities
            .apply(validate::validate_with(&loaded.set, &context))
    }
}
