//! The rollout driver: the I/O edge around the pure rollout core (`crate::rollout`).
//!
//! Owns, for every VirtualService bound to a rollout policy: finding the route git shifts
//! (`detect`), keeping its rollout state in the cluster (one ConfigMap per rollout, so a
//! restarted veer resumes), gathering each [`Observation`] (Deployment availability of the
//! new subsets, Prometheus checks, webhook results, operator commands, the split read back
//! after each write), calling [`decide`], storing the next state *before* acting, and
//! performing the action. Traffic is written through the sync module (the only writer) as
//! the rendered VirtualService of the current phase; while a rollout runs, [`ignore_fields`]
//! tells the planner which fields it owns so the ordinary sync never fights it.
//!
//! One rollout per VirtualService: the first route git shifts; other routes a commit shifts
//! apply at once (validation warns of it, `rp-one-route-per-rollout`, and so does the log).
//! Moving several routes as one rollout would need a split per route in the stored state,
//! the render and the read-back. The pure parts
//! ([`ignore_fields`], [`targets`], [`to_notification`]) are table-tested below.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::analysis::{self, Builtin, MetricQuery, MetricsProvider, QueryTemplate, Vars};
use crate::cluster::Cluster;
use crate::diff::{self, DesiredObject, ObjectPlan, Plan};
use crate::fields::FieldPath;
use crate::gate::{GateContext, WebhookGate};
use crate::manifest::ObjectKey;
use crate::metrics::{Bound, CheckVerdict, Metrics};
use crate::notify::{self, Notifications};
use crate::rollout::policy::{self as rpolicy, Binding, BuiltinMetric, RolloutPolicy};
use crate::rollout::state::{CheckOutcome, Event as RolloutEvent};
use crate::rollout::{
    Action, AnalysisReport, Command, DestinationId, Observation, OperatorCommand, Phase,
    RevertReport, RolloutState, RouteRef, RouteShift, TargetUpdate, TrafficSplit, WriteReadBack,
    decide, detect, owned_fields, read_split,
};
use crate::source::{
    CommitId, FailedCheck, GitSource, LoadedRevision, RevertAuthor, RevertRequest, SourceSpec,
};
use crate::sync::{self, ObjectResult, SyncOptions};

/// Data keys and labels of a rollout's ConfigMap.
pub const STATE_KEY: &str = "state.json";
/// Where `veer rollout pause|resume|...` writes its command (`{"id": N, "command": "pause"}`).
pub const COMMAND_KEY: &str = "command";
pub const NAMESPACE_KEY: &str = "namespace";
pub const NAME_KEY: &str = "name";
pub const POLICY_KEY: &str = "policy";
/// Label on every rollout ConfigMap, so they can be listed.
pub const ROLLOUT_LABEL: &str = "veer.io/rollout";

/// Decisions one rollout may take in one pass before yielding (a chain such as write →
/// read back → settle takes three); the loop wakes again at the rollout's next action.
const MAX_ROUNDS: usize = 24;

/// What can go wrong keeping rollout state in the cluster.
#[derive(Debug, thiserror::Error)]
pub enum RolloutDriverError {
    #[error(
        "cannot {what}: {message}; check that veer may read and write ConfigMaps in the state namespace"
    )]
    Api { what: String, message: String },
    #[error(transparent)]
    State(#[from] crate::rollout::RolloutError),
    #[error("cannot set up rollouts: {message}")]
    Setup { message: String },
}

impl RolloutDriverError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            RolloutDriverError::Api { .. } => "rollout_state_api",
            RolloutDriverError::State(e) => e.metric_label(),
            RolloutDriverError::Setup { .. } => "rollout_setup",
        }
    }
}

/// A rollout's identity: its VirtualService.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RolloutId {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for RolloutId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl RolloutId {
    pub fn of(key: &ObjectKey) -> Self {
        RolloutId {
            namespace: key.namespace.clone().unwrap_or_else(|| "default".into()),
            name: key.name.clone(),
        }
    }

    /// `NS/NAME`.
    pub fn parse(text: &str) -> Option<Self> {
        let (ns, name) = text.split_once('/')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then(|| RolloutId {
            namespace: ns.to_string(),
            name: name.to_string(),
        })
    }

    /// Name of the ConfigMap holding this rollout's state.
    pub fn config_map(&self) -> String {
        let name = format!("veer-rollout-{}-{}", self.namespace, self.name);
        name.chars().take(253).collect()
    }
}

/// Pushes a revert commit of a rolled-back revision to the tracked branch (`revert: git`).
/// [`GitRevert`] is the real one; [`NoRevert`] reports that nothing is configured.
pub trait RevertPusher: Send + Sync {
    /// The commit the branch has now (the revert, or a tip that already undid the change), or
    /// why there is none.
    fn revert(&self, request: RevertRequest) -> BoxFuture<'_, Result<String, String>>;
}

/// No git revert available: every request fails with a message saying so.
pub struct NoRevert;

impl RevertPusher for NoRevert {
    fn revert(&self, _request: RevertRequest) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async {
            Err(
                "this veer has no git source to push a revert to; revert the commit by hand"
                    .to_string(),
            )
        })
    }
}

/// Reverts through `source::revert` with the source's own URL and credentials, from a cache
/// repository of its own (the poller's is busy on another thread).
pub struct GitRevert {
    spec: SourceSpec,
    cache_dir: PathBuf,
}

impl GitRevert {
    pub fn new(spec: SourceSpec, cache_dir: PathBuf) -> Self {
        GitRevert { spec, cache_dir }
    }
}

impl RevertPusher for GitRevert {
    fn revert(&self, request: RevertRequest) -> BoxFuture<'_, Result<String, String>> {
        let spec = self.spec.clone();
        let cache_dir = self.cache_dir.clone();
        Box::pin(async move {
            let pushed = tokio::task::spawn_blocking(move || {
                let source = GitSource::open(spec, &cache_dir).map_err(|e| e.to_string())?;
                crate::source::revert(&source, &request).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| format!("the git task failed: {e}"))??;
            Ok(pushed.commit().0.clone())
        })
    }
}

/// How the driver behaves.
#[derive(Clone)]
pub struct RolloutOptions {
    /// Namespace of the rollout ConfigMaps (veer's state namespace).
    pub state_namespace: String,
    /// `maxConcurrentRollouts`; 0: no limit.
    pub max_concurrent: usize,
    /// Policies from a local directory, after the repository's and before the shipped ones.
    pub policies: Vec<RolloutPolicy>,
}

/// One rollout as the driver tracks it.
#[derive(Debug, Clone)]
struct Tracked {
    state: RolloutState,
    /// The command last read from its ConfigMap (cleared once applied).
    command: Option<OperatorCommand>,
}

/// What the driver needs to know about one bound VirtualService in this pass.
struct Work<'a> {
    id: RolloutId,
    key: ObjectKey,
    desired: &'a Value,
    policy: RolloutPolicy,
    target: Option<TargetUpdate>,
    shift: Option<RouteShift>,
}

/// Drives every rollout; held by the controller.
pub struct RolloutDriver {
    options: RolloutOptions,
    provider: Option<Arc<dyn MetricsProvider>>,
    gate: WebhookGate,
    revert: Arc<dyn RevertPusher>,
    notifications: Option<Arc<Notifications>>,
    metrics: Arc<Metrics>,
    rollouts: BTreeMap<RolloutId, Tracked>,
    loaded: bool,
    wake: Option<DateTime<Utc>>,
}

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

    /// The earliest time a rollout wants to act again, if any is running.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.wake
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

    /// Read every stored rollout once (one LIST).
    pub async fn load(&mut self, cluster: &Cluster) -> Result<(), RolloutDriverError> {
        if self.loaded {
            return Ok(());
        }
        let api: Api<ConfigMap> =
            Api::namespaced(cluster.client().clone(), &self.options.state_namespace);
        let list = match api
            .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}=true")))
            .await
        {
            Ok(l) => l,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                self.loaded = true;
                return Ok(());
            }
            Err(e) => {
                return Err(RolloutDriverError::Api {
                    what: "list the rollout states".into(),
                    message: e.to_string(),
                });
            }
        };
        for cm in list.items {
            let Some((id, tracked)) = tracked_from(&cm)? else {
                continue;
            };
            info!(rollout = %id, phase = %tracked.state.phase, step = tracked.state.step, "rollout state read from the cluster");
            self.rollouts.insert(id, tracked);
        }
        self.loaded = true;
        Ok(())
    }

    /// The fields running rollouts own, for the planner. See [`ignore_fields`].
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
    pub async fn drive(
        &mut self,
        cluster: &Cluster,
        sync_options: &SyncOptions,
        loaded: &LoadedRevision,
        desired: &[DesiredObject],
        live: &BTreeMap<ObjectKey, Value>,
    ) {
        if let Err(e) = self.load(cluster).await {
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
            if let Ok(shifts) = detect(&d.value, live_vs)
                && let [first, rest @ ..] = shifts.as_slice()
                && !rest.is_empty()
            {
                let at_once: Vec<String> = rest.iter().map(|s| s.route.to_string()).collect();
                warn!(rollout = %id, rolled_out = %first.route, at_once = ?at_once, "several routes of the VirtualService change weights: one is rolled out, the others apply at once; give each such route a VirtualService of its own");
            }
            let state = self.rollouts.get(&id).map(|t| &t.state);
            let (shift, target) = match targets(&d.value, live_vs, state, &commit) {
                Ok(t) => t,
                Err(e) => {
                    warn!(rollout = %id, error = %e, "cannot read the route's weights; no rollout");
                    continue;
                }
            };
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
            });
        }
        // New rollouts start queued.
        let now = Utc::now();
        for w in &work {
            if self.rollouts.contains_key(&w.id) {
                continue;
            }
            let (Some(shift), Some(target)) = (&w.shift, &w.target) else {
                continue;
            };
            let state = RolloutState::new(
                target.revision.clone(),
                shift.route.clone(),
                &shift.start,
                &shift.target,
                &w.policy.spec,
                now,
            );
            info!(rollout = %w.id, policy = %w.policy.name(), from = ?state.from_split, target = ?state.target_split, steps = ?state.steps, "rollout started");
            self.notify(notify::Event::RolloutStarted {
                rollout: w.id.to_string(),
                commit: state.revision.clone(),
                weight: state.steps.first().copied().unwrap_or(0),
            });
            if let Err(e) = self.store(cluster, &w.id, &w.policy, &state, false).await {
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
            if let Err(e) = self.drive_one(cluster, sync_options, w).await {
                error!(rollout = %w.id, error = %e, "rollout step failed; retrying at the next pass");
                self.wake_at(Utc::now() + chrono::TimeDelta::seconds(5));
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
            if let Err(e) = self.forget(cluster, &id).await {
                warn!(rollout = %id, error = %e, "cannot delete the state of a rollout whose VirtualService left git");
            }
        }
    }

    /// Delete a rollout's state and its metric series.
    async fn forget(
        &mut self,
        cluster: &Cluster,
        id: &RolloutId,
    ) -> Result<(), RolloutDriverError> {
        let api: Api<ConfigMap> =
            Api::namespaced(cluster.client().clone(), &self.options.state_namespace);
        match api.delete(&id.config_map(), &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(RolloutDriverError::Api {
                    what: format!("delete the rollout state of {id}"),
                    message: e.to_string(),
                });
            }
        }
        info!(rollout = %id, "VirtualService left git: rollout state deleted");
        self.metrics.forget_rollout(&id.to_string());
        self.rollouts.remove(id);
        Ok(())
    }

    fn wake_at(&mut self, at: DateTime<Utc>) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    fn admitted(&self, id: &RolloutId) -> bool {
        let list: Vec<(RolloutId, &RolloutState)> = self
            .rollouts
            .iter()
            .map(|(k, t)| (k.clone(), &t.state))
            .collect();
        crate::rollout::queue::admit(&list, self.options.max_concurrent).contains(id)
    }

    async fn drive_one(
        &mut self,
        cluster: &Cluster,
        sync_options: &SyncOptions,
        w: &Work<'_>,
    ) -> Result<(), RolloutDriverError> {
        let command = self.read_command(cluster, &w.id).await?;
        if let Some(t) = self.rollouts.get_mut(&w.id) {
            t.command = command;
        }
        // Once per pass: the gate is re-read at the next pass, an interval later at most. A
        // finished rollout with nothing new to do is not looked at.
        let Some(tracked) = self.rollouts.get(&w.id) else {
            return Ok(());
        };
        let idle = tracked.state.phase.is_terminal()
            && tracked.command.is_none()
            && w.target
                .as_ref()
                .is_none_or(|t| t.revision == tracked.state.revision);
        let canary = match &w.target {
            // A new target may start a new rollout in this very decision: gate its canary.
            Some(t) if t.revision != tracked.state.revision => t.live.gaining_toward(&t.target),
            Some(_) | None => tracked.state.canary(),
        };
        let available = idle || available(cluster, &w.id.namespace, &canary).await;
        let mut answer = Observation::default();
        for _ in 0..MAX_ROUNDS {
            let Some(tracked) = self.rollouts.get(&w.id) else {
                return Ok(());
            };
            let state = tracked.state.clone();
            if answer == Observation::default()
                && let Some(action) = state.pending_action().cloned()
            {
                answer = self
                    .perform(cluster, sync_options, w, &state, &action)
                    .await;
            }
            let mut obs = answer;
            answer = Observation::default();
            obs.target = w.target.clone();
            obs.command = tracked.command;
            obs.admitted = self.admitted(&w.id);
            obs.available = Some(available);
            let now = Utc::now();
            let decision = decide(&state, &obs, &w.policy.spec, now);
            for event in &decision.events {
                self.on_event(&w.id, &state, &decision.next, event);
            }
            self.record_metrics(&w.id, &state, &decision.next, &w.policy);
            let consumed = obs
                .command
                .is_some_and(|c| c.id <= decision.next.last_command);
            if decision.next != state || consumed {
                self.store(cluster, &w.id, &w.policy, &decision.next, consumed)
                    .await?;
            }
            if let Some(t) = self.rollouts.get_mut(&w.id) {
                t.state = decision.next.clone();
                if consumed {
                    t.command = None;
                }
            }
            match decision.action {
                Action::Wait { until } => {
                    self.wake_at(until);
                    return Ok(());
                }
                Action::Done => {
                    if decision.next.phase.is_terminal() {
                        self.metrics
                            .set_rollout_phase(&w.id.to_string(), decision.next.phase.as_str());
                    }
                    return Ok(());
                }
                Action::Alert { event } => {
                    error!(rollout = %w.id, event = ?event, "rollout needs attention");
                    self.notify(notify::Event::SyncFailed {
                        commit: decision.next.revision.clone(),
                        message: format!("rollout {}: {}", w.id, describe(&event)),
                        objects: vec![w.key.to_string()],
                    });
                }
                Action::SetSplit { .. }
                | Action::RunWebhooks { .. }
                | Action::Analyse { .. }
                | Action::Rollback { .. }
                | Action::RevertInGit { .. } => {}
            }
        }
        // Still busy: come back soon rather than loop forever in one pass.
        self.wake_at(Utc::now());
        Ok(())
    }

    /// Perform an action that expects an answer; the answer as an observation.
    async fn perform(
        &self,
        cluster: &Cluster,
        sync_options: &SyncOptions,
        w: &Work<'_>,
        state: &RolloutState,
        action: &Action,
    ) -> Observation {
        let mut obs = Observation::default();
        match action {
            Action::SetSplit { id, split, overlay } => {
                info!(rollout = %w.id, phase = %state.phase, step = state.step, split = ?split, "shifting traffic");
                if let Some(read_back) = self
                    .write_split(cluster, sync_options, w, state, split, overlay.as_ref())
                    .await
                {
                    obs.write = Some(WriteReadBack { id: *id, read_back });
                }
            }
            Action::Rollback { id, to } => {
                warn!(rollout = %w.id, to = ?to, "rolling back");
                if let Some(read_back) = self
                    .write_split(cluster, sync_options, w, state, to, None)
                    .await
                {
                    obs.write = Some(WriteReadBack { id: *id, read_back });
                }
            }
            Action::Analyse {
                id,
                canary,
                baseline,
                metrics: names,
                ..
            } => {
                let versions = Versions { canary, baseline };
                let checks = self.analyse(&w.id, &w.policy, state, versions, names).await;
                obs.analysis = Some(AnalysisReport { id: *id, checks });
            }
            Action::RunWebhooks { id, kind } => {
                let context = GateContext {
                    name: &w.id.name,
                    namespace: &w.id.namespace,
                    phase: state.phase,
                    checks: None,
                };
                let report = self
                    .gate
                    .run(*id, *kind, &w.policy.spec.webhooks, &context)
                    .await;
                for r in report.results.iter().filter(|r| !r.passed) {
                    warn!(rollout = %w.id, webhook = %r.name, kind = kind.as_str(), reason = %r.message, "webhook did not pass");
                }
                obs.webhooks = Some(report);
            }
            Action::RevertInGit { id, revision } => {
                let outcome = match revert_request(&w.id, &w.policy, state, revision) {
                    Ok(request) => {
                        info!(rollout = %w.id, %revision, "pushing a revert commit");
                        self.revert.revert(request).await
                    }
                    Err(message) => Err(message),
                };
                if let Err(message) = &outcome {
                    error!(rollout = %w.id, error = %message, "no revert pushed");
                }
                obs.revert = Some(RevertReport { id: *id, outcome });
            }
            Action::Wait { .. } | Action::Alert { .. } | Action::Done => {}
        }
        obs
    }

    /// Apply the rendered VirtualService through sync, then read the route back from the
    /// API server (not the cache). `None` when it cannot be read back at all.
    async fn write_split(
        &self,
        cluster: &Cluster,
        sync_options: &SyncOptions,
        w: &Work<'_>,
        state: &RolloutState,
        split: &TrafficSplit,
        overlay: Option<&crate::rollout::Overlay>,
    ) -> Option<TrafficSplit> {
        match crate::rollout::render::render(
            w.desired,
            state.route.index,
            split,
            &state.target_split,
            overlay,
        ) {
            Ok(rendered) => {
                let plan = Plan {
                    objects: vec![ObjectPlan {
                        key: w.key.clone(),
                        action: diff::Action::Update {
                            cause: diff::Cause::GitChange,
                            changes: Vec::new(),
                        },
                        desired: Some(rendered),
                        live: None,
                    }],
                };
                // While the rollout runs veer owns these weights: a hand edit does not block it.
                let options = SyncOptions {
                    force_conflicts: true,
                    ..sync_options.clone()
                };
                let report = sync::execute(cluster, &plan, &BTreeMap::new(), &options).await;
                for o in &report.objects {
                    if let ObjectResult::Failed(f) = &o.result {
                        warn!(rollout = %w.id, error = %f.message, "traffic write failed");
                    }
                }
            }
            Err(e) => warn!(rollout = %w.id, error = %e, "cannot render the VirtualService"),
        }
        let api = match cluster.resolve(&w.key).await {
            Ok(r) => Api::<DynamicObject>::namespaced_with(
                cluster.client().clone(),
                &w.id.namespace,
                &r.resource,
            ),
            Err(e) => {
                warn!(rollout = %w.id, error = %e, "cannot read the VirtualService back");
                return None;
            }
        };
        let object = match api.get(&w.key.name).await {
            Ok(o) => serde_json::to_value(o).ok()?,
            Err(e) => {
                warn!(rollout = %w.id, error = %e, "cannot read the VirtualService back");
                return None;
            }
        };
        let index = live_route_index(&object, &state.route)?;
        read_split(&object, index).ok()
    }

    async fn analyse(
        &self,
        id: &RolloutId,
        policy: &RolloutPolicy,
        state: &RolloutState,
        versions: Versions<'_>,
        names: &[String],
    ) -> Vec<analysis::Check> {
        let spec = &policy.spec;
        let timings = spec.timings();
        let now = Utc::now();
        let (service, subset) = service_and_subset(versions.canary);
        let mut checks = Vec::new();
        for m in spec.metrics.iter().filter(|m| names.contains(&m.name)) {
            let query = match (&m.builtin, &m.query) {
                (Some(BuiltinMetric::RequestSuccessRate), _) => {
                    MetricQuery::Builtin(Builtin::RequestSuccessRate)
                }
                (Some(BuiltinMetric::RequestDuration), _) => {
                    MetricQuery::Builtin(Builtin::RequestDuration)
                }
                (Some(BuiltinMetric::CallerRequestSuccessRate), _) => {
                    MetricQuery::Builtin(Builtin::CallerRequestSuccessRate)
                }
                (Some(BuiltinMetric::CallerRequestDuration), _) => {
                    MetricQuery::Builtin(Builtin::CallerRequestDuration)
                }
                (None, Some(q)) => MetricQuery::Query(QueryTemplate::new(q.clone())),
                (None, None) => MetricQuery::Query(QueryTemplate::new("")),
            };
            let window = m.window(&timings);
            let metric = analysis::Metric {
                name: m.name.clone(),
                query,
                threshold: m.threshold_range,
                baseline: spec.baseline.as_ref().and_then(|b| {
                    comparison(b, m, &id.namespace, versions.baseline, window, state, now)
                }),
            };
            let vars = Vars::new(&id.namespace, &service, &subset, window);
            match &self.provider {
                Some(p) => checks.extend(
                    analysis::analyse(p.as_ref(), &[metric], &vars, spec.min_requests.unwrap_or(0))
                        .await,
                ),
                None => checks.push(analysis::Check {
                    metric: m.name.clone(),
                    query: String::new(),
                    value: None,
                    threshold: m.threshold_range,
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
            info!(rollout = %id, metric = %c.metric, value = ?c.value, threshold = %c.threshold, baseline = ?baseline, verdict = c.verdict.metric_label(), "check");
        }
        checks
    }

    /// The command waiting in the rollout's ConfigMap, if any.
    async fn read_command(
        &self,
        cluster: &Cluster,
        id: &RolloutId,
    ) -> Result<Option<OperatorCommand>, RolloutDriverError> {
        let api: Api<ConfigMap> =
            Api::namespaced(cluster.client().clone(), &self.options.state_namespace);
        let cm = api
            .get_opt(&id.config_map())
            .await
            .map_err(|e| RolloutDriverError::Api {
                what: format!("read the rollout state of {id}"),
                message: e.to_string(),
            })?;
        Ok(cm
            .and_then(|c| c.data)
            .and_then(|d| d.get(COMMAND_KEY).cloned())
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Store the state (server-side apply, field manager `veer`); `clear_command` removes the
    /// consumed command (merge patch: the CLI wrote it as another manager).
    async fn store(
        &self,
        cluster: &Cluster,
        id: &RolloutId,
        policy: &RolloutPolicy,
        state: &RolloutState,
        clear_command: bool,
    ) -> Result<(), RolloutDriverError> {
        let api: Api<ConfigMap> =
            Api::namespaced(cluster.client().clone(), &self.options.state_namespace);
        let name = id.config_map();
        let object = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": self.options.state_namespace,
                "labels": {
                    ROLLOUT_LABEL: "true",
                    sync::MANAGED_BY_LABEL: sync::MANAGER,
                },
            },
            "data": {
                NAMESPACE_KEY: id.namespace,
                NAME_KEY: id.name,
                POLICY_KEY: policy.name(),
                STATE_KEY: state.encode(),
            },
        });
        let params = PatchParams::apply(sync::MANAGER).force();
        api.patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| RolloutDriverError::Api {
                what: format!("store the rollout state of {id}"),
                message: e.to_string(),
            })?;
        if clear_command {
            let patch = json!({"data": {COMMAND_KEY: null}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| RolloutDriverError::Api {
                    what: format!("clear the command of {id}"),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    fn notify(&self, event: notify::Event) {
        if let Some(n) = &self.notifications {
            n.send(event);
        }
    }

    fn on_event(
        &self,
        id: &RolloutId,
        before: &RolloutState,
        after: &RolloutState,
        event: &RolloutEvent,
    ) {
        match event {
            RolloutEvent::Held { reason } => {
                warn!(rollout = %id, phase = %after.phase, reason = ?reason, "holding")
            }
            RolloutEvent::CheckFailed {
                failed_checks,
                threshold,
                checks,
            } => {
                warn!(rollout = %id, failed_checks, threshold, checks = ?checks, "check failed")
            }
            RolloutEvent::PhaseChanged { from, to } => {
                info!(rollout = %id, from = %from, to = %to, "rollout phase")
            }
            RolloutEvent::StepAdvanced { step, split } => {
                info!(rollout = %id, step, split = ?split, "step advanced")
            }
            RolloutEvent::CheckPassed { .. }
            | RolloutEvent::WebhookFailed { .. }
            | RolloutEvent::WriteNotReadBack { .. }
            | RolloutEvent::RollbackNotRestored { .. }
            | RolloutEvent::RollingBack { .. }
            | RolloutEvent::RolledBack { .. }
            | RolloutEvent::Promoted { .. }
            | RolloutEvent::Reverted { .. }
            | RolloutEvent::RevertFailed { .. }
            | RolloutEvent::Restarted { .. }
            | RolloutEvent::CommandApplied { .. }
            | RolloutEvent::CommandIgnored { .. } => {
                info!(rollout = %id, event = ?event, "rollout")
            }
        }
        if let Some(n) = to_notification(id, before, after, event) {
            self.notify(n);
        }
    }

    fn record_metrics(
        &self,
        id: &RolloutId,
        before: &RolloutState,
        after: &RolloutState,
        policy: &RolloutPolicy,
    ) {
        let name = id.to_string();
        if after.revision != before.revision {
            // A new rollout: the last one's values (maybe of metrics no longer judged) go.
            self.metrics.forget_analysis(&name);
        }
        self.metrics
            .set_rollout_weight(&name, f64::from(after.canary_weight()));
        self.metrics.set_rollout_phase(&name, after.phase.as_str());
        // Records added by this decision (the history is bounded: compare by count of new
        // tail entries).
        let new = after.history.len().saturating_sub(before.history.len());
        let added = if after.history.len() == before.history.len()
            && after.history.last() != before.history.last()
        {
            // The history was full and rotated: at least the last entry is new.
            1
        } else {
            new
        };
        for r in after.history.iter().rev().take(added) {
            let verdict = match r.outcome {
                CheckOutcome::Passed => CheckVerdict::Pass,
                CheckOutcome::Failed => CheckVerdict::Fail,
                CheckOutcome::Held => CheckVerdict::Inconclusive,
            };
            self.metrics.record_check(&r.check, verdict);
            if let Some(v) = r.value {
                self.metrics.set_metric_value(&name, &r.check, v);
            }
            // A check without a comparison (a threshold fail, no data) clears the last p-value,
            // so a stale one is not read as current.
            self.metrics.set_baseline_p_value(
                &name,
                &r.check,
                r.baseline.as_ref().and_then(|b| b.verdict.p_value()),
            );
            if let Some(m) = policy.spec.metrics.iter().find(|m| m.name == r.check) {
                self.metrics.set_metric_threshold(
                    &name,
                    &r.check,
                    Bound::Min,
                    m.threshold_range.min,
                );
                self.metrics.set_metric_threshold(
                    &name,
                    &r.check,
                    Bound::Max,
                    m.threshold_range.max,
                );
            }
        }
    }
}

/// What to revert and why, from the rollout's state and policy. Pure.
pub fn revert_request(
    id: &RolloutId,
    policy: &RolloutPolicy,
    state: &RolloutState,
    revision: &str,
) -> Result<RevertRequest, String> {
    let author = match &policy.spec.revert_author {
        Some(text) => RevertAuthor::parse(text).map_err(|e| e.to_string())?,
        None => RevertAuthor::default(),
    };
    let failed_check = state
        .history
        .iter()
        .rev()
        .find(|r| r.outcome == CheckOutcome::Failed)
        .map(|r| FailedCheck {
            metric: r.check.clone(),
            value: r
                .value
                .map_or_else(|| "no value".to_string(), |v| format!("{v:.2}")),
            // A value inside its range failed by the comparison: say so next to the range.
            threshold: match &r.baseline {
                Some(b) => format!("{}; {b}", r.threshold),
                None => r.threshold.clone(),
            },
        });
    Ok(RevertRequest {
        commit: CommitId(revision.to_string()),
        rollout: id.to_string(),
        reason: state
            .failure
            .as_ref()
            .map_or_else(|| "rolled back".to_string(), ToString::to_string),
        failed_check,
        author,
        now: Utc::now(),
    })
}

/// A rollout ConfigMap as `(id, tracked)`; `None` when it is not one.
fn tracked_from(cm: &ConfigMap) -> Result<Option<(RolloutId, Tracked)>, RolloutDriverError> {
    let Some(data) = &cm.data else {
        return Ok(None);
    };
    let (Some(ns), Some(name), Some(stored)) = (
        data.get(NAMESPACE_KEY),
        data.get(NAME_KEY),
        data.get(STATE_KEY),
    ) else {
        return Ok(None);
    };
    let id = RolloutId {
        namespace: ns.clone(),
        name: name.clone(),
    };
    let state = RolloutState::decode(&format!("VirtualService {id}"), stored)?;
    let command = data
        .get(COMMAND_KEY)
        .and_then(|t| serde_json::from_str(t).ok());
    Ok(Some((id, Tracked { state, command })))
}

/// Read one rollout's state and pending command from the cluster (for `veer rollout`).
pub async fn read_rollout(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
) -> Result<Option<(RolloutState, Option<OperatorCommand>, String)>, RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let cm = api
        .get_opt(&id.config_map())
        .await
        .map_err(|e| RolloutDriverError::Api {
            what: format!("read the rollout state of {id}"),
            message: e.to_string(),
        })?;
    let Some(cm) = cm else { return Ok(None) };
    let policy = cm
        .data
        .as_ref()
        .and_then(|d| d.get(POLICY_KEY).cloned())
        .unwrap_or_default();
    Ok(tracked_from(&cm)?.map(|(_, t)| (t.state, t.command, policy)))
}

/// Every stored rollout (for `veer rollout status`).
pub async fn list_rollouts(
    client: &kube::Client,
    state_namespace: &str,
) -> Result<Vec<(RolloutId, RolloutState, String)>, RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}=true")))
        .await
        .map_err(|e| RolloutDriverError::Api {
            what: "list the rollout states".into(),
            message: e.to_string(),
        })?;
    let mut out = Vec::new();
    for cm in &list.items {
        let policy = cm
            .data
            .as_ref()
            .and_then(|d| d.get(POLICY_KEY).cloned())
            .unwrap_or_default();
        if let Some((id, t)) = tracked_from(cm)? {
            out.push((id, t.state, policy));
        }
    }
    Ok(out)
}

/// Write an operator command into a rollout's ConfigMap (merge patch, field manager
/// `veer-cli`); the controller applies it once and clears it. The id is above every id the
/// rollout has seen, so it is never mistaken for an old one.
pub async fn send_command(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
    command: Command,
) -> Result<Option<OperatorCommand>, RolloutDriverError> {
    let Some((state, pending, _)) = read_rollout(client, state_namespace, id).await? else {
        return Ok(None);
    };
    let next = OperatorCommand {
        id: state.last_command.max(pending.map_or(0, |p| p.id)) + 1,
        command,
    };
    let text = serde_json::to_string(&next).unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let patch = json!({"data": {COMMAND_KEY: text}});
    let params = PatchParams {
        field_manager: Some("veer-cli".into()),
        ..PatchParams::default()
    };
    api.patch(&id.config_map(), &params, &Patch::Merge(&patch))
        .await
        .map_err(|e| RolloutDriverError::Api {
            what: format!("write the command for {id}"),
            message: e.to_string(),
        })?;
    Ok(Some(next))
}

fn is_virtual_service(key: &ObjectKey) -> bool {
    key.group == "networking.istio.io" && key.kind == "VirtualService"
}

fn find_live<'a>(live: &'a BTreeMap<ObjectKey, Value>, key: &ObjectKey) -> Option<&'a Value> {
    live.iter()
        .find(|(k, _)| k.same_object(key))
        .map(|(_, v)| v)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The policy a VirtualService (as in git) is bound to; unknown or ambiguous bindings are
/// logged and leave it unbound (validation reports them).
pub fn bound_policy<'p>(
    desired: &Value,
    policies: &'p [RolloutPolicy],
) -> Option<&'p RolloutPolicy> {
    let annotation = desired
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(rpolicy::POLICY_ANNOTATION))
        .and_then(Value::as_str);
    let labels = string_map(desired.pointer("/metadata/labels"));
    match rpolicy::bind(annotation, &labels, policies) {
        Binding::Annotation(p) | Binding::Selector(p) => Some(p),
        Binding::Unbound => None,
        Binding::UnknownPolicy(name) => {
            warn!(policy = %name, "VirtualService names an unknown rollout policy; its weights apply at once");
            None
        }
        Binding::Ambiguous(names) => {
            warn!(policies = ?names, "several rollout policies select one VirtualService; its weights apply at once");
            None
        }
    }
}

/// Position of `route` in a live VirtualService, paired as `detect` pairs routes: by name,
/// else by position among the routes veer did not insert.
pub fn live_route_index(live: &Value, route: &RouteRef) -> Option<usize> {
    let routes = live.pointer("/spec/http").and_then(Value::as_array)?;
    let name_of = |r: &Value| r.get("name").and_then(Value::as_str).map(str::to_string);
    let users: Vec<(usize, &Value)> = routes
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            !name_of(r).is_some_and(|n| n.starts_with(crate::rollout::render::MATCH_ROUTE_PREFIX))
        })
        .collect();
    if let Some(n) = &route.name
        && let Some((i, _)) = users
            .iter()
            .find(|(_, r)| name_of(r).as_deref() == Some(n.as_str()))
    {
        return Some(*i);
    }
    users.get(route.index).map(|(i, _)| *i)
}

/// The route git shifts (if any) and what the state machine should hear as the target. The
/// target keeps the state's revision while git's split is the one being rolled out, so an
/// unrelated commit does not restart a rollout; a different split carries `commit`. Pure.
pub fn targets(
    desired: &Value,
    live: Option<&Value>,
    state: Option<&RolloutState>,
    commit: &str,
) -> Result<(Option<RouteShift>, Option<TargetUpdate>), crate::rollout::RolloutError> {
    let shift = detect(desired, live)?.into_iter().next();
    let Some(live) = live else {
        return Ok((None, None));
    };
    let (git_split, live_split) = match (&shift, state) {
        (Some(s), _) => (s.target.clone(), s.start.clone()),
        (None, Some(st)) => {
            let Some(index) = live_route_index(live, &st.route) else {
                return Ok((None, None));
            };
            let live_split = read_split(live, index)?;
            let git_split = read_split(desired, st.route.index).unwrap_or(live_split.clone());
            (git_split, live_split)
        }
        (None, None) => return Ok((None, None)),
    };
    let revision = match state {
        Some(st) if st.target_split.same_traffic(&git_split) => st.revision.clone(),
        Some(_) | None => commit.to_string(),
    };
    Ok((
        shift,
        Some(TargetUpdate {
            revision,
            target: git_split,
            live: live_split,
        }),
    ))
}

/// The fields rollouts own, per VirtualService, for `PlanContext.ignore`: a route git shifts
/// belongs to its rollout unless that rollout succeeded toward this very split (then live
/// differing is drift, healed as usual); a running rollout owns its route even when live
/// happens to equal git. Pure.
pub fn ignore_fields(
    desired: &[DesiredObject],
    live: &BTreeMap<ObjectKey, Value>,
    states: &BTreeMap<RolloutId, &RolloutState>,
    policies: &[RolloutPolicy],
) -> BTreeMap<ObjectKey, Vec<FieldPath>> {
    let mut out = BTreeMap::new();
    for d in desired.iter().filter(|d| is_virtual_service(&d.key)) {
        let id = RolloutId::of(&d.key);
        let state = states.get(&id).copied();
        // Unbinding a VirtualService ends veer's ownership: its weights apply at once.
        if bound_policy(&d.value, policies).is_none() {
            continue;
        }
        let shift = detect(&d.value, find_live(live, &d.key))
            .ok()
            .and_then(|s| s.into_iter().next());
        let owned = match (state, shift) {
            (Some(s), shift) if !s.phase.is_terminal() => {
                let shift = shift.unwrap_or_else(|| RouteShift {
                    route: s.route.clone(),
                    live_index: s.route.index,
                    start: s.current_split.clone(),
                    target: s.target_split.clone(),
                    // Unknown here: own the whole list.
                    same_destinations: false,
                    destinations: 0,
                });
                owned_fields(&shift, s.current_overlay.as_ref())
            }
            (Some(s), Some(shift))
                if s.phase == Phase::Succeeded && s.target_split.same_traffic(&shift.target) =>
            {
                continue;
            }
            (_, Some(shift)) => owned_fields(&shift, None),
            (_, None) => continue,
        };
        out.insert(d.key.clone(), owned);
    }
    out
}

/// Is every Deployment of the new destinations available? Subsets are matched through the
/// DestinationRule of their host (subset labels ⊆ pod template labels); a destination without
/// a subset is matched by `app: <host>`. No matching Deployment counts as unavailable.
async fn available(cluster: &Cluster, namespace: &str, canary: &[DestinationId]) -> bool {
    if canary.is_empty() {
        return true;
    }
    let deployments: Api<Deployment> = Api::namespaced(cluster.client().clone(), namespace);
    let Ok(deployments) = deployments.list(&ListParams::default()).await else {
        return false;
    };
    let rules = destination_rules(cluster, namespace).await;
    for d in canary {
        let selector = subset_labels(&rules, d);
        let matching: Vec<&Deployment> = deployments
            .items
            .iter()
            .filter(|dep| {
                let labels = dep
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        if matching.is_empty() {
            warn!(destination = %d, labels = ?selector, "no Deployment matches the new destination; the health gate waits");
            return false;
        }
        if !matching.iter().all(|dep| deployment_available(dep)) {
            return false;
        }
    }
    true
}

fn deployment_available(dep: &Deployment) -> bool {
    dep.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

async fn destination_rules(cluster: &Cluster, namespace: &str) -> Vec<Value> {
    let key = ObjectKey {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        kind: "DestinationRule".into(),
        namespace: Some(namespace.into()),
        name: String::new(),
    };
    let Ok(r) = cluster.resolve(&key).await else {
        return Vec::new();
    };
    let api =
        Api::<DynamicObject>::namespaced_with(cluster.client().clone(), namespace, &r.resource);
    match api.list(&ListParams::default()).await {
        Ok(l) => l
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The new and the old version's destinations of an analysis.
#[derive(Clone, Copy)]
struct Versions<'a> {
    canary: &'a [DestinationId],
    baseline: &'a [DestinationId],
}

/// The service and subset the analysis queries name for a version (its first destination).
fn service_and_subset(destinations: &[DestinationId]) -> (String, String) {
    let first = destinations.first();
    (
        first
            .map(|d| short_host(&d.host).to_string())
            .unwrap_or_default(),
        first.and_then(|d| d.subset.clone()).unwrap_or_default(),
    )
}

/// How `metric` is compared with the old version (`baseline`, its destinations) under the
/// policy's `spec.baseline`, or `None` when it is not compared. The first sample is one query
/// `window` after the current phase began, so that every sample's range lies inside the
/// phase: before it the new version had other traffic (or none). Pure.
pub fn comparison(
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
            .and_then(|t| crate::validate::duration::parse(t).ok())
            .filter(|d| !d.is_zero())
    };
    let step = spec.step_for(window);
    let first_sample = chrono::TimeDelta::from_std(window)
        .ok()
        .and_then(|w| state.phase_started_at.checked_add_signed(w))
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
            Ok((Vars::new(namespace, &service, &subset, window), d.into()))
        }
    };
    Some(analysis::Comparison {
        alpha: spec.alpha(),
        allowance: spec.allowance_of(&metric.name),
        range,
        against,
    })
}

fn short_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

/// The pod labels of destination `d`. Pure.
pub fn subset_labels(rules: &[Value], d: &DestinationId) -> BTreeMap<String, String> {
    let Some(subset) = &d.subset else {
        return BTreeMap::from([("app".to_string(), short_host(&d.host).to_string())]);
    };
    for rule in rules {
        let host = rule
            .pointer("/spec/host")
            .and_then(Value::as_str)
            .unwrap_or("");
        if short_host(host) != short_host(&d.host) {
            continue;
        }
        let subsets = rule
            .pointer("/spec/subsets")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if let Some(s) = subsets
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(subset))
        {
            return string_map(s.get("labels"));
        }
    }
    // No DestinationRule says: Istio's convention is `version: <subset>`.
    BTreeMap::from([
        ("app".to_string(), short_host(&d.host).to_string()),
        ("version".to_string(), subset.clone()),
    ])
}

fn describe(event: &RolloutEvent) -> String {
    match event {
        RolloutEvent::WriteNotReadBack { expected, read } => {
            format!("wrote {expected} but read back {read}")
        }
        RolloutEvent::RollbackNotRestored { expected, read } => {
            format!("rollback did not restore {expected}: read back {read}")
        }
        RolloutEvent::RevertFailed { message } => format!("git revert failed: {message}"),
        RolloutEvent::PhaseChanged { .. }
        | RolloutEvent::StepAdvanced { .. }
        | RolloutEvent::CheckPassed { .. }
        | RolloutEvent::CheckFailed { .. }
        | RolloutEvent::Held { .. }
        | RolloutEvent::WebhookFailed { .. }
        | RolloutEvent::RollingBack { .. }
        | RolloutEvent::RolledBack { .. }
        | RolloutEvent::Promoted { .. }
        | RolloutEvent::Reverted { .. }
        | RolloutEvent::Restarted { .. }
        | RolloutEvent::CommandApplied { .. }
        | RolloutEvent::CommandIgnored { .. } => format!("{event:?}"),
    }
}

/// The notification for a rollout event, if people should hear about it. Pure.
pub fn to_notification(
    id: &RolloutId,
    before: &RolloutState,
    after: &RolloutState,
    event: &RolloutEvent,
) -> Option<notify::Event> {
    let rollout = id.to_string();
    let commit = after.revision.clone();
    let step = u32::try_from(after.step + 1).unwrap_or(u32::MAX);
    match event {
        RolloutEvent::StepAdvanced { step, split } => Some(notify::Event::StepAdvanced {
            rollout,
            commit,
            step: u32::try_from(step + 1).unwrap_or(u32::MAX),
            steps: u32::try_from(after.steps.len()).unwrap_or(u32::MAX),
            weight: split.weight_of(&after.canary()),
        }),
        RolloutEvent::PhaseChanged {
            to: Phase::Paused, ..
        } => Some(notify::Event::RolloutPaused {
            rollout,
            commit,
            step,
            reason: "paused by an operator".into(),
        }),
        RolloutEvent::Held {
            reason: crate::rollout::HoldReason::AwaitingConfirmation { .. },
        } if before.last_hold != after.last_hold || before.phase != after.phase => {
            Some(notify::Event::AwaitingApproval {
                rollout,
                commit,
                step,
                weight: after.canary_weight(),
            })
        }
        RolloutEvent::Promoted { .. } => Some(notify::Event::RolloutPromoted { rollout, commit }),
        RolloutEvent::RolledBack { .. } => {
            let failing = after
                .history
                .iter()
                .rev()
                .find(|r| r.outcome == CheckOutcome::Failed)
                .map(|r| notify::event::FailingMetric {
                    name: r.check.clone(),
                    query: r.query.clone(),
                    value: r.value,
                    threshold: r.threshold.clone(),
                    baseline: r.baseline.as_ref().map(ToString::to_string),
                });
            Some(notify::Event::RolledBack {
                rollout,
                commit,
                reason: after
                    .failure
                    .as_ref()
                    .map_or_else(|| "rolled back".to_string(), ToString::to_string),
                failing,
            })
        }
        RolloutEvent::Reverted { commit: revert } => Some(notify::Event::RevertPushed {
            rollout,
            commit,
            revert: revert.clone(),
        }),
        RolloutEvent::Restarted { .. } => Some(notify::Event::RolloutStarted {
            rollout,
            commit,
            weight: after.steps.first().copied().unwrap_or(0),
        }),
        RolloutEvent::PhaseChanged { .. }
        | RolloutEvent::CheckPassed { .. }
        | RolloutEvent::CheckFailed { .. }
        | RolloutEvent::Held { .. }
        | RolloutEvent::WebhookFailed { .. }
        | RolloutEvent::WriteNotReadBack { .. }
        | RolloutEvent::RollbackNotRestored { .. }
        | RolloutEvent::RollingBack { .. }
        | RolloutEvent::RevertFailed { .. }
        | RolloutEvent::CommandApplied { .. }
        | RolloutEvent::CommandIgnored { .. } => None,
    }
}

/// How many check records `veer rollout status` shows.
pub const STATUS_CHECKS: usize = 4;

/// `veer rollout status` for one rollout, as text: phase, step, a bar of the new version's
/// weight, the split, why it holds or failed, and the last checks with value vs threshold.
/// Pure (golden-tested).
pub fn render_status(id: &RolloutId, state: &RolloutState, policy: &str) -> String {
    let weight = state.canary_weight();
    let target = state.target_split.weight_of(&state.canary());
    let mut out = String::new();
    let step = match state.phase {
        Phase::Progressing => format!("  step {}/{}", state.step + 1, state.steps.len()),
        Phase::Queued
        | Phase::WaitingForHealth
        | Phase::PreRollout
        | Phase::Mirroring
        | Phase::Matching
        | Phase::FaultTesting
        | Phase::Paused
        | Phase::AwaitingPromotion
        | Phase::Promoting
        | Phase::Succeeded
        | Phase::RollingBack
        | Phase::Failed => String::new(),
    };
    out.push_str(&format!(
        "{id}  {}{step}  policy {policy}  revision {}\n",
        state.phase,
        state.revision.get(..12).unwrap_or(&state.revision)
    ));
    let canary: Vec<String> = state.canary().iter().map(ToString::to_string).collect();
    out.push_str(&format!(
        "  weight   [{}] {weight:>3}%  ({} toward {target}%)\n",
        crate::rollout::weight_bar(weight, 20, '#', '-'),
        if canary.is_empty() {
            "-".to_string()
        } else {
            canary.join(", ")
        },
    ));
    out.push_str(&format!("  split    {}\n", state.current_split));
    if state.failed_checks > 0 {
        out.push_str(&format!("  failed checks {}\n", state.failed_checks));
    }
    if let Some(h) = &state.last_hold {
        out.push_str(&format!("  holding  {}\n", describe_hold(h)));
    }
    if let Some(f) = &state.failure {
        out.push_str(&format!("  failure  {f}\n"));
    }
    if let Some(c) = &state.revert_commit {
        out.push_str(&format!("  reverted in git by {c}\n"));
    }
    let checks: Vec<_> = state.history.iter().rev().take(STATUS_CHECKS).collect();
    if !checks.is_empty() {
        out.push_str("  last checks:\n");
        for r in checks.into_iter().rev() {
            let value = r
                .value
                .map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
            let outcome = match r.outcome {
                CheckOutcome::Passed => "pass",
                CheckOutcome::Failed => "FAIL",
                CheckOutcome::Held => "held",
            };
            let mut line = format!(
                "    {}  {:<16} {:>10}  {:<10} {outcome}",
                r.at.format("%H:%M:%S"),
                r.check,
                value,
                r.threshold
            );
            if !r.message.is_empty() {
                line.push_str(&format!("  ({})", r.message));
            }
            if let Some(b) = &r.baseline {
                line.push_str(&format!("  {b}"));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

fn describe_hold(h: &crate::rollout::HoldReason) -> String {
    use crate::rollout::HoldReason;
    match h {
        HoldReason::NoData { metric } => format!("no data for {metric}"),
        HoldReason::TooFewRequests { metric, count, min } => {
            format!("{metric}: {count} requests, fewer than minRequests {min}")
        }
        HoldReason::MetricsError { metric, message } => {
            format!("cannot measure {metric}: {message}")
        }
        HoldReason::Inconclusive { metric } => {
            format!("{metric}: baseline comparison inconclusive")
        }
        HoldReason::Unavailable => "the new version's Deployments are not available".to_string(),
        HoldReason::AwaitingConfirmation { webhook } => {
            format!("waiting for webhook {webhook} to confirm promotion")
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::analysis::{BaselineComparison, BaselineVerdict};
    use crate::rollout::policy::RolloutPolicySpec;
    use crate::rollout::state::CheckRecord;
    use crate::rollout::{AnalysisVerdict, FailureReason, HoldReason, Overlay};

    fn t(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, second)
            .single()
            .unwrap_or_default()
    }

    fn policy(name: &str) -> RolloutPolicy {
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

    fn vs(v1: u32, v2: u32, policy: Option<&str>) -> Value {
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

    fn key() -> ObjectKey {
        ObjectKey {
            group: "networking.istio.io".into(),
            version: "v1".into(),
            kind: "VirtualService".into(),
            namespace: Some("shop".into()),
            name: "reviews".into(),
        }
    }

    fn id() -> RolloutId {
        RolloutId::of(&key())
    }

    fn split(v1: u32, v2: u32) -> TrafficSplit {
        [
            (DestinationId::new("reviews", Some("v1")), v1),
            (DestinationId::new("reviews", Some("v2")), v2),
        ]
        .into_iter()
        .collect()
    }

    fn state(revision: &str, phase: Phase, from: (u32, u32), to: (u32, u32)) -> RolloutState {
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

    #[test]
    fn rollout_ids() {
        assert_eq!(RolloutId::parse("shop/reviews"), Some(id()));
        assert_eq!(RolloutId::parse("reviews"), None);
        assert_eq!(RolloutId::parse("a/b/c"), None);
        assert_eq!(RolloutId::parse("/b"), None);
        assert_eq!(id().config_map(), "veer-rollout-shop-reviews");
    }

    #[test]
    fn targets_table() {
        let running = state("c1", Phase::Progressing, (100, 0), (0, 100));
        struct Case<'a> {
            name: &'a str,
            git: Value,
            live: Option<Value>,
            state: Option<&'a RolloutState>,
            shift: bool,
            /// (revision, git split, live split)
            target: Option<(&'a str, TrafficSplit, TrafficSplit)>,
        }
        let cases = [
            Case {
                name: "not live yet: created at once",
                git: vs(0, 100, None),
                live: None,
                state: None,
                shift: false,
                target: None,
            },
            Case {
                name: "live equals git, no rollout",
                git: vs(100, 0, None),
                live: Some(vs(100, 0, None)),
                state: None,
                shift: false,
                target: None,
            },
            Case {
                name: "weights change: a rollout of this commit",
                git: vs(0, 100, None),
                live: Some(vs(100, 0, None)),
                state: None,
                shift: true,
                target: Some(("c2", split(0, 100), split(100, 0))),
            },
            Case {
                name: "an unrelated commit keeps the rollout's revision",
                git: vs(0, 100, None),
                live: Some(vs(75, 25, None)),
                state: Some(&running),
                shift: true,
                target: Some(("c1", split(0, 100), split(75, 25))),
            },
            Case {
                name: "a new target is a new revision",
                git: vs(50, 50, None),
                live: Some(vs(75, 25, None)),
                state: Some(&running),
                shift: true,
                target: Some(("c2", split(50, 50), split(75, 25))),
            },
            Case {
                name: "live already at git mid-rollout: the route is read anyway",
                git: vs(0, 100, None),
                live: Some(vs(0, 100, None)),
                state: Some(&running),
                shift: false,
                target: Some(("c1", split(0, 100), split(0, 100))),
            },
        ];
        for case in cases {
            let (shift, target) =
                targets(&case.git, case.live.as_ref(), case.state, "c2").expect(case.name);
            assert_eq!(shift.is_some(), case.shift, "{}", case.name);
            let target = target.map(|t| (t.revision, t.target, t.live));
            let want = case
                .target
                .map(|(r, g, l)| (r.to_string(), g.extended(&l), l.extended(&g)));
            match (&target, &want) {
                (Some(got), Some(want)) => {
                    assert_eq!(got.0, want.0, "{}", case.name);
                    assert!(got.1.same_traffic(&want.1), "{}: {got:?}", case.name);
                    assert!(got.2.same_traffic(&want.2), "{}: {got:?}", case.name);
                }
                (None, None) => {}
                (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
            }
        }
    }

    #[test]
    fn ignore_fields_table() {
        let policies = vec![policy("p")];
        let weights = vec![
            ".spec.http[0].route[0].weight".to_string(),
            ".spec.http[0].route[1].weight".to_string(),
        ];
        let mut mirroring = state("c1", Phase::Mirroring, (100, 0), (0, 100));
        mirroring.current_overlay = Some(Overlay::Mirror {
            to: vec![DestinationId::new("reviews", Some("v2"))],
            percent: 10,
        });
        struct Case<'a> {
            name: &'a str,
            git: Value,
            live: Value,
            state: Option<RolloutState>,
            owned: Vec<String>,
        }
        let cases = [
            Case {
                name: "unbound: weights apply at once",
                git: vs(0, 100, None),
                live: vs(100, 0, None),
                state: None,
                owned: vec![],
            },
            Case {
                name: "bound, weights change, no rollout yet: owned from the first pass",
                git: vs(0, 100, Some("p")),
                live: vs(100, 0, None),
                state: None,
                owned: weights.clone(),
            },
            Case {
                name: "bound, nothing shifts",
                git: vs(100, 0, Some("p")),
                live: vs(100, 0, None),
                state: None,
                owned: vec![],
            },
            Case {
                name: "succeeded toward git, live edited by hand: drift, healed",
                git: vs(0, 100, Some("p")),
                live: vs(60, 40, None),
                state: Some(state("c1", Phase::Succeeded, (100, 0), (0, 100))),
                owned: vec![],
            },
            Case {
                name: "failed: live stays rolled back",
                git: vs(0, 100, Some("p")),
                live: vs(100, 0, None),
                state: Some(state("c1", Phase::Failed, (100, 0), (0, 100))),
                owned: weights.clone(),
            },
            Case {
                name: "running and live equals git: the whole route list",
                git: vs(0, 100, Some("p")),
                live: vs(0, 100, None),
                state: Some(state("c1", Phase::Promoting, (100, 0), (0, 100))),
                owned: vec![".spec.http[0].route".to_string()],
            },
            Case {
                name: "mirroring: the mirror fields too",
                git: vs(0, 100, Some("p")),
                live: vs(100, 0, None),
                state: Some(mirroring.clone()),
                owned: vec![
                    ".spec.http[0].mirror".to_string(),
                    ".spec.http[0].mirrorPercentage".to_string(),
                ]
                .into_iter()
                .chain(weights.clone())
                .collect(),
            },
        ];
        for case in cases {
            let desired = vec![DesiredObject {
                key: key(),
                value: case.git.clone(),
            }];
            let live = BTreeMap::from([(key(), case.live.clone())]);
            let states: BTreeMap<RolloutId, &RolloutState> =
                case.state.iter().map(|s| (id(), s)).collect();
            let got: Vec<String> = ignore_fields(&desired, &live, &states, &policies)
                .get(&key())
                .map(|p| p.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            assert_eq!(got, case.owned, "{}", case.name);
        }
    }

    #[test]
    fn subset_labels_come_from_the_destination_rule() {
        let rules = vec![
            json!({"spec": {"host": "ratings", "subsets": [{"name": "v2", "labels": {"version": "wrong"}}]}}),
            json!({"spec": {"host": "reviews.shop.svc.cluster.local", "subsets": [{"name": "v2", "labels": {"version": "v2", "track": "canary"}}]}}),
        ];
        let labels = |d: DestinationId| {
            subset_labels(&rules, &d)
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            labels(DestinationId::new("reviews", Some("v2"))),
            ["track=canary", "version=v2"]
        );
        assert_eq!(
            labels(DestinationId::new("reviews", Some("v3"))),
            ["app=reviews", "version=v3"]
        );
        assert_eq!(
            labels(DestinationId::new("reviews-v2", None)),
            ["app=reviews-v2"]
        );
    }

    fn record(second: u32, check: &str, value: Option<f64>, outcome: CheckOutcome) -> CheckRecord {
        CheckRecord {
            at: t(second),
            phase: Phase::Progressing,
            step: 1,
            check: check.into(),
            query: "q".into(),
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
    fn compared(second: u32, verdict: BaselineVerdict) -> CheckRecord {
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
                    assert_eq!(*worse, analysis::WorseWhen::Higher, "{name}");
                }
                (Err(reason), Err(part)) => assert!(reason.contains(part), "{name}: {reason}"),
                (got, want) => panic!("{name}: {got:?}, wanted {want:?}"),
            }
        }
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

    #[test]
    fn notifications_name_the_failing_metric_and_the_step() {
        let before = state("c1", Phase::RollingBack, (100, 0), (0, 100));
        let mut after = before.clone();
        after.phase = Phase::Failed;
        after.failure = Some(FailureReason::FailedChecks {
            failed: 2,
            threshold: 2,
        });
        after.record(record(1, "success-rate", Some(50.0), CheckOutcome::Failed));
        after.record(record(2, "p99", Some(20.0), CheckOutcome::Passed));
        let n = to_notification(
            &id(),
            &before,
            &after,
            &RolloutEvent::RolledBack {
                split: split(100, 0),
            },
        );
        match n {
            Some(notify::Event::RolledBack {
                rollout,
                reason,
                failing: Some(f),
                ..
            }) => {
                assert_eq!(rollout, "shop/reviews");
                assert_eq!(reason, "2 failed checks (threshold 2)");
                assert_eq!((f.name.as_str(), f.value), ("success-rate", Some(50.0)));
                assert_eq!(f.baseline, None);
            }
            other => panic!("{other:?}"),
        }
        // Failed by the comparison with the old version: the alert and the revert commit
        // carry its p-value.
        let mut by_baseline = after.clone();
        by_baseline.record(compared(3, BaselineVerdict::Fail { p_value: 0.0065 }));
        match to_notification(
            &id(),
            &before,
            &by_baseline,
            &RolloutEvent::RolledBack {
                split: split(100, 0),
            },
        ) {
            Some(notify::Event::RolledBack {
                failing: Some(f), ..
            }) => {
                assert_eq!((f.name.as_str(), f.value), ("p99-latency", Some(248.5)));
                assert_eq!(f.threshold, "<= 500");
                assert_eq!(
                    f.baseline.as_deref(),
                    Some("baseline fail p=0.0065 < 0.05 (median 248.50 vs 24.85, 6/9 samples)")
                );
            }
            other => panic!("{other:?}"),
        }
        let revert = revert_request(&id(), &policy("p"), &by_baseline, "c1").expect("a request");
        let check = revert.failed_check.expect("the failed check");
        assert_eq!(
            (check.metric.as_str(), check.value.as_str()),
            ("p99-latency", "248.50")
        );
        assert_eq!(
            check.threshold,
            "<= 500; baseline fail p=0.0065 < 0.05 (median 248.50 vs 24.85, 6/9 samples)"
        );
        let n = to_notification(
            &id(),
            &before,
            &after,
            &RolloutEvent::StepAdvanced {
                step: 1,
                split: split(50, 50),
            },
        );
        assert!(matches!(
            n,
            Some(notify::Event::StepAdvanced {
                step: 2,
                steps: 3,
                weight: 50,
                ..
            })
        ));
        assert_eq!(
            to_notification(
                &id(),
                &before,
                &after,
                &RolloutEvent::CheckPassed {
                    phase: Phase::Progressing,
                    step: 0
                }
            ),
            None
        );
    }

    #[test]
    fn status_rendering_matches_its_golden_file() {
        let mut progressing = state("0123456789abcdef", Phase::Progressing, (100, 0), (0, 100));
        progressing.step = 1;
        progressing.current_split = split(50, 50);
        progressing.failed_checks = 1;
        progressing.last_hold = Some(HoldReason::TooFewRequests {
            metric: "success-rate".into(),
            count: 3,
            min: 5,
        });
        progressing.record(record(1, "success-rate", Some(98.5), CheckOutcome::Failed));
        progressing.record(record(2, "success-rate", Some(99.9), CheckOutcome::Passed));
        progressing.record(record(3, "success-rate", None, CheckOutcome::Held));
        let mut failed = state("fedcba9876543210", Phase::Failed, (100, 0), (0, 100));
        failed.failure = Some(FailureReason::FailedChecks {
            failed: 2,
            threshold: 2,
        });
        failed.failed_checks = 2;
        let reason = "1 new and 9 baseline samples cannot show a difference at level 0.05 (the smallest possible p-value is 0.100); wait for more intervals";
        failed.record(compared(
            4,
            BaselineVerdict::Inconclusive {
                reason: reason.into(),
            },
        ));
        failed.record(compared(5, BaselineVerdict::Fail { p_value: 0.0065 }));
        failed.record(compared(6, BaselineVerdict::Fail { p_value: 0.0012 }));
        let mut passing = state("fedcba9876543210", Phase::Progressing, (100, 0), (0, 100));
        passing.record(compared(7, BaselineVerdict::Pass { p_value: 1.0 }));
        let text = render_status(&id(), &progressing, "default-canary")
            + "\n"
            + &render_status(&id(), &failed, "conservative")
            + "\n"
            + &render_status(&id(), &passing, "conservative");
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/rollout/status.golden");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
        assert_eq!(text, golden);
    }
}
