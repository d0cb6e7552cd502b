//! The driver's setup and its pass: building a [`RolloutDriver`], the policies in force, the
//! fields running rollouts own, and one pass over every bound VirtualService (which rollouts
//! start, which are driven, which leave with their VirtualService).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{error, info, warn};

use super::ports::Ports;
use super::routes::{bound_policy, find_live, ignore_fields, is_virtual_service, targets};
use super::{
    NoRevert, RevertPusher, RolloutDriver, RolloutDriverError, RolloutId, RolloutOptions, Tracked,
    Work,
};
use crate::analysis::MetricsProvider;
use crate::diff::DesiredObject;
use crate::fields::FieldPath;
use crate::gate::WebhookGate;
use crate::manifest::ObjectKey;
use crate::manifest::rollout_policy::{self as rpolicy, RolloutPolicy};
use crate::metrics::Metrics;
use crate::notify::Notifications;
use crate::rollout::{CompanionRoute, RolloutState};
use crate::source::LoadedRevision;

impl RolloutDriver {
    pub fn new(options: RolloutOptions, metrics: Arc<Metrics>) -> Result<Self, RolloutDriverError> {
        let gate = WebhookGate::new().map_err(|e| RolloutDriverError::Setup {
            message: e.to_string(),
        })?;
        Ok(RolloutDriver {
            options,
            provider: None,
            gate,
            revert: Arc::new(NoRevert),
            notifications: None,
            metrics,
            rollouts: BTreeMap::new(),
            interfered: BTreeMap::new(),
            loaded: false,
            wake: None,
        })
    }

    /// Analysis through this provider (Prometheus); without one every check is a metrics
    /// error (held or failed as `onMetricsError` says).
    pub fn with_provider(mut self, provider: Arc<dyn MetricsProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    pub fn with_revert(mut self, pusher: Arc<dyn RevertPusher>) -> Self {
        self.revert = pusher;
        self
    }

    pub fn with_notifications(mut self, notifications: Arc<Notifications>) -> Self {
        self.notifications = Some(notifications);
        self
    }

    /// Namespace of the rollout ConfigMaps.
    pub fn state_namespace(&self) -> &str {
        &self.options.state_namespace
    }

    /// The earliest time a rollout wants to act again, if any is running.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.wake
    }

    /// The last hand edit of each rollout's route that veer undid, as text for people.
    pub fn interferences(&self) -> impl Iterator<Item = (&RolloutId, &String)> {
        self.interfered.iter()
    }

    /// The state of each rollout the driver knows.
    pub fn states(&self) -> impl Iterator<Item = (&RolloutId, &RolloutState)> {
        self.rollouts.iter().map(|(k, t)| (k, &t.state))
    }

    /// The policies of the policies directory (`RolloutOptions::policies`).
    pub fn local_policies(&self) -> &[RolloutPolicy] {
        &self.options.policies
    }

    /// The policies in force for `loaded`: the repository's, the local ones, the shipped.
    pub fn policies(&self, loaded: &LoadedRevision) -> Vec<RolloutPolicy> {
        let mut mine: Vec<RolloutPolicy> = loaded
            .set
            .manifests
            .iter()
            .filter_map(|m| crate::manifest::policy::rollout_policy(m).cloned())
            .collect();
        for p in &self.options.policies {
            if !mine.iter().any(|m| m.name() == p.name()) {
                mine.push(p.clone());
            }
        }
        rpolicy::effective(&mine)
    }

    /// The fields running rollouts own, for the planner. See `routes::ignore_fields`.
    pub fn ignore(
        &self,
        desired: &[DesiredObject],
        live: &BTreeMap<ObjectKey, Value>,
        policies: &[RolloutPolicy],
    ) -> BTreeMap<ObjectKey, Vec<FieldPath>> {
        let states: BTreeMap<RolloutId, &RolloutState> = self
            .rollouts
            .iter()
            .map(|(k, t)| (k.clone(), &t.state))
            .collect();
        ignore_fields(desired, live, &states, policies)
    }

    /// One pass over every bound VirtualService: start, advance, hold or roll back.
    pub(crate) async fn drive(
        &mut self,
        ports: &Ports<'_>,
        loaded: &LoadedRevision,
        desired: &[DesiredObject],
        live: &BTreeMap<ObjectKey, Value>,
    ) {
        if let Err(e) = self.load(ports).await {
            error!(error = %e, "cannot read the rollout states; rollouts wait for the next pass");
            return;
        }
        self.wake = None;
        let policies = self.policies(loaded);
        let commit = loaded.revision.commit.0.clone();
        let mut work = Vec::new();
        let mut bound = std::collections::BTreeSet::new();
        for d in desired.iter().filter(|d| is_virtual_service(&d.key)) {
            let Some(policy) = bound_policy(&d.value, &policies) else {
                continue;
            };
            let id = RolloutId::of(&d.key);
            bound.insert(id.clone());
            let live_vs = find_live(live, &d.key);
            let state = self.rollouts.get(&id).map(|t| &t.state);
            let (shifts, target) = match targets(&d.value, live_vs, state, &commit) {
                Ok(t) => t,
                Err(e) => {
                    warn!(rollout = %id, error = %e, "cannot read the route's weights; no rollout");
                    continue;
                }
            };
            let mut shifts = shifts.into_iter();
            let shift = shifts.next();
            let companions: Vec<CompanionRoute> =
                shifts.map(|s| CompanionRoute::from(&s)).collect();
            if state.is_none() && shift.is_none() {
                continue;
            }
            work.push(Work {
                id,
                key: d.key.clone(),
                desired: &d.value,
                policy: policy.clone(),
                target,
                shift,
                companions,
                live: live_vs,
            });
        }
        // New rollouts start queued.
        let now = ports.clock.now();
        for w in &work {
            if self.rollouts.contains_key(&w.id) {
                continue;
            }
            let (Some(shift), Some(target)) = (&w.shift, &w.target) else {
                continue;
            };
            let mut state = RolloutState::new(
                target.revision.clone(),
                shift.route.clone(),
                &shift.start,
                &shift.target,
                &w.policy.spec,
                now,
            );
            state.companions = w.companions.clone();
            if !state.companions.is_empty() {
                let routes: Vec<String> = state
                    .companions
                    .iter()
                    .map(|c| c.route.to_string())
                    .collect();
                info!(rollout = %w.id, route = %state.route, with = ?routes, "several routes change weights: they move together, step by step");
            }
            // People hear "started" when traffic moves (`events::to_notification`).
            info!(rollout = %w.id, policy = %w.policy.name(), from = %state.from_split, target = %state.target_split, steps = ?state.steps, "rollout queued");
            if let Err(e) = self.store(ports, &w.id, &w.policy, &state, None).await {
                error!(rollout = %w.id, error = %e, "cannot store the new rollout; it starts at the next pass");
                continue;
            }
            self.rollouts.insert(
                w.id.clone(),
                Tracked {
                    state,
                    command: None,
                },
            );
        }
        for w in &work {
            if let Err(e) = self.drive_one(ports, w).await {
                error!(rollout = %w.id, error = %e, "rollout step failed; retrying at the next pass");
                self.wake_at(ports.clock.now() + chrono::TimeDelta::seconds(5));
            }
        }
        // A VirtualService gone from git, or no longer bound to a policy, takes its rollout
        // with it (its weights are git's again).
        let gone: Vec<RolloutId> = self
            .rollouts
            .keys()
            .filter(|id| !bound.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            if let Err(e) = self.forget(ports, &id).await {
                warn!(rollout = %id, error = %e, "cannot delete the state of a rollout whose VirtualService left git");
            }
        }
    }

    pub(super) fn wake_at(&mut self, at: DateTime<Utc>) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    /// Come back at `at` instead of any earlier wake (a tick that could not run backs off
    /// rather than spinning on a wake already past).
    pub fn retry_at(&mut self, at: DateTime<Utc>) {
        self.wake = Some(at);
    }

    pub(super) fn admitted(&self, id: &RolloutId) -> bool {
        let list: Vec<(RolloutId, &RolloutState)> = self
            .rollouts
            .iter()
            .map(|(k, t)| (k.clone(), &t.state))
            .collect();
        crate::rollout::queue::admit(&list, self.options.max_concurrent).contains(id)
    }
}
