//! The driver's setup and its pass: building a [`RolloutDriver`], the policies in force, the
//! rollout work of a pass (computed once, for the planner and the driver), and one pass over
//! it (which rollouts start, which are driven, which leave with their VirtualService).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{error, info, warn};

use super::ports::Ports;
use super::{
    NoRevert, PlannedRollouts, RevertPusher, RolloutDriver, RolloutDriverError, RolloutId,
    RolloutOptions, Tracked,
};
use crate::analysis::MetricsProvider;
use crate::controller::Planned;
use crate::diff::DesiredObject;
use crate::gate::WebhookGate;
use crate::manifest::ObjectKey;
use crate::manifest::rollout_policy::{self as rpolicy, RolloutPolicy};
use crate::metrics::Metrics;
use crate::notify::Notifications;
use crate::rollout::RolloutState;
use crate::rollout::work::{RolloutWork, Skipped, plan_work};
use crate::source::LoadedRevision;

impl RolloutDriver {
    pub fn new(options: RolloutOptions, metrics: Arc<Metrics>) -> Result<Self, RolloutDriverError> {
        let gate = WebhookGate::new().map_err(|e| RolloutDriverError::Setup {
            message: e.to_string(),
        })?;
        Ok(RolloutDriver {
            options,
            provider: None,
            gate: Arc::new(gate),
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

    /// The rollouts a tick is about, once the stored states have been read (`None` before:
    /// a tick must then look at every VirtualService, or it would forget the states it has
    /// not read yet).
    pub fn tracked(&self) -> Option<std::collections::BTreeSet<RolloutId>> {
        self.loaded.then(|| self.rollouts.keys().cloned().collect())
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

    /// The rollout work of a pass over `desired` (git's objects) and `live` (the watch
    /// cache), computed once for both sides of the pass: what the planner leaves out
    /// ([`PlannedRollouts::ignore`]) and what the driver does with it (`drive_planned`).
    pub fn plan(
        &self,
        loaded: &LoadedRevision,
        desired: &[DesiredObject],
        live: &BTreeMap<ObjectKey, Value>,
    ) -> PlannedRollouts {
        let states: BTreeMap<RolloutId, &RolloutState> = self
            .rollouts
            .iter()
            .map(|(k, t)| (k.clone(), &t.state))
            .collect();
        PlannedRollouts {
            work: plan_work(
                desired,
                live,
                &states,
                &self.policies(loaded),
                &loaded.revision.commit.0,
            ),
            states_read: self.loaded,
        }
    }

    /// One pass over the rollout work `planned` was made with; planned before the stored
    /// states were read, it is planned again with them (it would restart running rollouts).
    pub(crate) async fn drive_planned(
        &mut self,
        ports: &Ports<'_>,
        loaded: &LoadedRevision,
        planned: &Planned,
    ) {
        match &planned.rollouts {
            Some(r) if r.states_read => self.drive_work(ports, &r.work).await,
            Some(_) | None => {
                let live = &planned.live.objects;
                self.drive(ports, loaded, &planned.desired, live).await;
            }
        }
    }

    /// One pass over every bound VirtualService of `desired`: read the stored states (once),
    /// then [`RolloutDriver::drive_work`] (a rollout tick, which plans nothing else).
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
        let planned = self.plan(loaded, desired, live);
        self.drive_work(ports, &planned.work).await;
    }

    /// One pass over the rollout `work` (planned with the stored states read): start,
    /// advance, hold or roll back each rollout, and forget those whose VirtualService left git
    /// or its policy.
    async fn drive_work(&mut self, ports: &Ports<'_>, work: &RolloutWork) {
        self.wake = None;
        for (id, why) in &work.skipped {
            match why {
                Skipped::UnknownPolicy(name) => {
                    warn!(rollout = %id, policy = %name, "VirtualService names an unknown rollout policy; its weights apply at once")
                }
                Skipped::AmbiguousPolicies(names) => {
                    warn!(rollout = %id, policies = ?names, "several rollout policies select one VirtualService; its weights apply at once")
                }
                Skipped::UnreadableWeights(e) => {
                    warn!(rollout = %id, error = %e, "cannot read the route's weights; no rollout")
                }
            }
        }
        // New rollouts start queued.
        let now = ports.clock.now();
        for w in &work.rollouts {
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
            // People hear "started" when traffic moves (`rollout::notice`).
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
        for w in &work.rollouts {
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
            .filter(|id| !work.bound.contains(*id))
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
