//! The driver's setup and its pass: building a [`RolloutDriver`], the policies in force, the
//! rollout work of a pass (computed once, for the planner and the driver; a tick's from the
//! revision's bindings, made once per commit), and one pass over it (which rollouts start,
//! which are driven (`schedule`), which leave with their VirtualService).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{error, info, warn};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::ports::Ports;
use super::schedule::Which;
use super::{
    Mailbox, NoRevert, PlannedRollouts, RevertPusher, RevisionBindings, RolloutDriver,
    RolloutDriverError, RolloutId, RolloutOptions, Tracked,
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
use crate::rollout::state::Phase;
use crate::rollout::work::{Bindings, RolloutWork, Skipped, bind, plan_bound_owned, plan_work};
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
            due: BTreeMap::new(),
            retry: None,
            queries: Arc::default(),
            changed: std::collections::BTreeSet::new(),
            bindings: None,
            built_workloads: Arc::default(),
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

    /// What the health gate built from the watch cache, for the pass's `ClusterPorts`.
    pub(crate) fn built_workloads(&self) -> Arc<super::health::BuiltWorkloads> {
        self.built_workloads.clone()
    }

    /// When the next tick should run, if a rollout is running: the earliest time a rollout
    /// wants to act, or a little later when others fall due just after it, so they are driven
    /// together (`schedule::coalesce`: each at most `schedule::COALESCE` late).
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.retry
            .or_else(|| super::schedule::coalesce(self.due.values().flatten().copied()))
    }

    /// The Prometheus queries sent so far, by kind (the bench reads them per interval).
    pub fn prometheus_queries(&self) -> super::QueriesSent {
        self.queries.snapshot()
    }

    /// The last hand edit of each rollout's route that veer undid, as text for people.
    pub fn interferences(&self) -> impl Iterator<Item = (&RolloutId, &String)> {
        self.interfered.iter()
    }

    /// The rollouts whose state was read, started, changed or forgotten since the last call.
    pub fn take_changed(&mut self) -> std::collections::BTreeSet<RolloutId> {
        std::mem::take(&mut self.changed)
    }

    /// The state of each rollout the driver knows.
    pub fn states(&self) -> impl Iterator<Item = (&RolloutId, &RolloutState)> {
        self.rollouts.iter().map(|(k, t)| (k, &*t.state))
    }

    /// The rollouts a tick is about, once the stored states have been read (`None` before:
    /// a tick must then look at every VirtualService, or it would forget the states it has
    /// not read yet).
    pub fn tracked(&self) -> Option<std::collections::BTreeSet<RolloutId>> {
        self.loaded.then(|| self.rollouts.keys().cloned().collect())
    }

    /// The rollouts a tick or an idle pass plans and drives, once the stored states have
    /// been read (`None` before, as [`RolloutDriver::tracked`]): the tracked ones but those
    /// finished (succeeded or failed: no wake asked), which only a command (`commanded`, the
    /// tracked among them) or a pass that plans moves again. A mesh with a thousand finished
    /// rollouts and one running plans one at each of its ticks.
    pub fn in_flight<'a>(
        &self,
        commanded: impl IntoIterator<Item = &'a RolloutId>,
    ) -> Option<std::collections::BTreeSet<RolloutId>> {
        let mut ids: std::collections::BTreeSet<RolloutId> = self.tracked()?;
        ids.retain(|id| !matches!(self.due.get(id), Some(None)));
        ids.extend(
            commanded
                .into_iter()
                .filter(|id| self.rollouts.contains_key(*id))
                .cloned(),
        );
        Some(ids)
    }

    /// The rollouts an idle poll drives, once the stored states have been read (`None`
    /// before): nothing changed in git or in the cluster since the last pass, so there is
    /// no new commit and no hand edit to see. Of the rollouts in flight: those with a command
    /// waiting (`commanded`), those due at `now`, and those whose decision reads the world at
    /// every look (waiting for the new version to be available, queued behind
    /// `maxConcurrentRollouts`, awaiting a confirm-promotion webhook's approval: a person's
    /// yes is heard at the next poll, not an interval later). The others wait for their
    /// wake, as between ticks.
    pub fn idle_poll(
        &self,
        commanded: &std::collections::BTreeSet<RolloutId>,
        now: DateTime<Utc>,
    ) -> Option<std::collections::BTreeSet<RolloutId>> {
        let looks = |t: &Tracked| {
            matches!(
                t.state.phase,
                Phase::WaitingForHealth | Phase::Queued | Phase::AwaitingPromotion
            )
        };
        let mut ids = self.in_flight(commanded)?;
        ids.retain(|id| {
            commanded.contains(id)
                || super::schedule::is_due(self.due.get(id), now)
                || self.rollouts.get(id).is_some_and(looks)
        });
        Some(ids)
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

    /// Each tracked rollout's state, as the rollout work is planned from.
    fn stored_states(&self) -> BTreeMap<RolloutId, &RolloutState> {
        self.rollouts
            .iter()
            .map(|(k, t)| (k.clone(), &*t.state))
            .collect()
    }

    /// The rollout work of a pass over `desired` (git's objects) and `live` (the watch
    /// cache), computed once for both sides of the pass: what the planner leaves out
    /// ([`PlannedRollouts::ignore`]) and what the driver does with it (`drive_planned`).
    pub fn plan(
        &self,
        loaded: &LoadedRevision,
        desired: &[DesiredObject],
        live: &(impl crate::diff::LiveLookup + ?Sized),
    ) -> PlannedRollouts {
        PlannedRollouts {
            work: plan_work(
                desired,
                live,
                &self.stored_states(),
                &self.policies(loaded),
                &loaded.revision.commit.0,
            ),
            states_read: self.loaded,
        }
    }

    /// The bound VirtualServices of `loaded` (decorated with `source_url`), made at the first
    /// tick over its commit and kept for the next ones: a new commit (new objects, new
    /// policies) binds again.
    pub(crate) fn bindings(&mut self, loaded: &LoadedRevision, source_url: &str) -> Arc<Bindings> {
        let commit = &loaded.revision.commit.0;
        if let Some(kept) = &self.bindings
            && kept.commit == *commit
            && kept.source_url == source_url
        {
            return Arc::clone(&kept.bindings);
        }
        let desired = crate::controller::desired_virtual_services(loaded, source_url);
        let bindings = Arc::new(bind(&desired, &self.policies(loaded)));
        self.bindings = Some(RevisionBindings {
            commit: commit.clone(),
            source_url: source_url.to_string(),
            bindings: Arc::clone(&bindings),
        });
        bindings
    }

    /// A rollout tick over the revision's `bindings`, for the VirtualServices `only` names
    /// (all when `None`: the stored states not read yet), `live` their objects in the watch
    /// cache: read the stored states (once), then drive those due (`every`: all of them).
    /// `commands`: the mailboxes already read for it (`None`: read them).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn drive_bound(
        &mut self,
        ports: &Ports<'_>,
        loaded: &LoadedRevision,
        bindings: &Bindings,
        only: Option<&std::collections::BTreeSet<RolloutId>>,
        live: BTreeMap<ObjectKey, Value>,
        every: bool,
        commands: Option<BTreeMap<RolloutId, Mailbox>>,
    ) {
        if let Err(e) = self.load(ports).await {
            error!(error = %e, "cannot read the rollout states; rollouts wait for the next pass");
            return;
        }
        let work = plan_bound_owned(
            bindings,
            only,
            live,
            &self.stored_states(),
            &loaded.revision.commit.0,
        );
        let which = if every { Which::All } else { Which::Due };
        self.drive_work(ports, &work, which, commands).await;
    }

    /// One pass over the rollout work `planned` was made with (every rollout, due or not:
    /// commands, new commits and hand edits are looked at); planned before the stored states
    /// were read, it is planned again with them (it would restart running rollouts).
    pub(crate) async fn drive_planned(
        &mut self,
        ports: &Ports<'_>,
        loaded: &LoadedRevision,
        planned: &Planned,
    ) {
        match &planned.rollouts {
            Some(r) if r.states_read => self.drive_work(ports, &r.work, Which::All, None).await,
            Some(_) | None => {
                let live = &planned.live.objects;
                self.drive_all(ports, loaded, &planned.desired, live).await;
            }
        }
    }

    /// A rollout tick over the bound VirtualServices of `desired`: read the stored states
    /// (once), then drive the rollouts that are due; the others wait for their time or the
    /// next pass. The controller's ticks plan from the revision's bindings instead
    /// (`drive_bound`); the tests drive given objects.
    #[cfg(test)]
    pub(crate) async fn drive(
        &mut self,
        ports: &Ports<'_>,
        loaded: &LoadedRevision,
        desired: &[DesiredObject],
        live: &BTreeMap<ObjectKey, Value>,
    ) {
        self.drive_with(ports, loaded, desired, live, Which::Due)
            .await;
    }

    /// One pass over every bound VirtualService of `desired`, every rollout driven.
    pub(crate) async fn drive_all(
        &mut self,
        ports: &Ports<'_>,
        loaded: &LoadedRevision,
        desired: &[DesiredObject],
        live: &BTreeMap<ObjectKey, Value>,
    ) {
        self.drive_with(ports, loaded, desired, live, Which::All)
            .await;
    }

    async fn drive_with(
        &mut self,
        ports: &Ports<'_>,
        loaded: &LoadedRevision,
        desired: &[DesiredObject],
        live: &BTreeMap<ObjectKey, Value>,
        which: Which,
    ) {
        if let Err(e) = self.load(ports).await {
            error!(error = %e, "cannot read the rollout states; rollouts wait for the next pass");
            return;
        }
        let planned = self.plan(loaded, desired, live);
        self.drive_work(ports, &planned.work, which, None).await;
    }

    /// One pass over the rollout `work` (planned with the stored states read): start new
    /// rollouts, drive `which` of them (start, advance, hold or roll back each), and forget
    /// those whose VirtualService left git or its policy. `commands`: as `run_pass`.
    async fn drive_work(
        &mut self,
        ports: &Ports<'_>,
        work: &RolloutWork,
        which: Which,
        commands: Option<BTreeMap<RolloutId, Mailbox>>,
    ) {
        self.retry = None;
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
        self.start_new(ports, work).await;
        self.run_pass(ports, work, which, commands).await;
        // A wake only for rollouts the work can drive: one whose VirtualService is not in the
        // revision, or cannot be read, would wake the loop for nothing, again and again. Back
        // in the work, it is due at once. One the work left out (a tick or an idle poll plans
        // only some, `in_flight`, `idle_poll`) keeps its wake, and a finished rollout asks
        // none: it stays finished.
        let driven: std::collections::BTreeSet<&RolloutId> =
            work.rollouts.iter().map(|w| &w.id).collect();
        let skipped: std::collections::BTreeSet<&RolloutId> =
            work.skipped.iter().map(|(id, _)| id).collect();
        self.due.retain(|id, wake| {
            wake.is_none()
                || driven.contains(id)
                || (work.bound.contains(id) && !skipped.contains(id))
        });
        // A VirtualService gone from git, or no longer bound to a policy, takes its rollout
        // with it (its weights are git's again).
        let gone: Vec<RolloutId> = self
            .rollouts
            .keys()
            .filter(|id| !work.bound.contains(*id))
            .cloned()
            .collect();
        // Several at once; async blocks pushed one by one (a stream of closures returning
        // futures makes the controller's future not `Send` for rustc).
        let limit = self.options.concurrency();
        let mut forgotten = Vec::new();
        let mut deleting = FuturesUnordered::new();
        let mut gone = gone.into_iter();
        loop {
            while deleting.len() < limit {
                let Some(id) = gone.next() else { break };
                deleting.push(async move {
                    let result = ports.store.forget(&id).await;
                    (id, result)
                });
            }
            match deleting.next().await {
                Some(done) => forgotten.push(done),
                None => break,
            }
        }
        for (id, result) in forgotten {
            match result {
                Ok(()) => self.forgotten(&id),
                Err(e) => {
                    warn!(rollout = %id, error = %e, "cannot delete the state of a rollout whose VirtualService left git")
                }
            }
        }
    }

    /// Rollouts of `work` the driver does not know yet start queued: their states are stored
    /// (several at once), and those stored are tracked.
    async fn start_new(&mut self, ports: &Ports<'_>, work: &RolloutWork) {
        let now = ports.clock.now();
        let mut new = Vec::new();
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
            new.push((w, state));
        }
        let limit = self.options.concurrency();
        let mut stored = Vec::new();
        let mut storing = FuturesUnordered::new();
        let mut new = new.into_iter();
        loop {
            while storing.len() < limit {
                let Some((w, state)) = new.next() else { break };
                storing.push(async move {
                    let result = ports
                        .store
                        .store(&w.id, w.policy.name(), &state, None)
                        .await;
                    (w, state, result)
                });
            }
            match storing.next().await {
                Some(done) => stored.push(done),
                None => break,
            }
        }
        for (w, state, result) in stored {
            match result {
                Ok(()) => {
                    self.changed.insert(w.id.clone());
                    self.rollouts.insert(
                        w.id.clone(),
                        Tracked {
                            state: Arc::new(state),
                            command: None,
                        },
                    );
                }
                Err(e) => {
                    error!(rollout = %w.id, error = %e, "cannot store the new rollout; it starts at the next pass")
                }
            }
        }
    }

    /// Come back at `at` instead of any earlier wake (a tick that could not run backs off
    /// rather than spinning on a wake already past).
    pub fn retry_at(&mut self, at: DateTime<Utc>) {
        self.retry = Some(at);
    }
}
