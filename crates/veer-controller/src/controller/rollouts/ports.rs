//! The rollout driver's ports: everything it reads from or writes to the world, each a small
//! trait with one real adapter and fakes in the driver's tests. Those of one pass, over the
//! cluster ([`ClusterPorts`]), gathered in [`Ports`]:
//! - [`RolloutStore`]: the rollout ConfigMaps and the CLI's command mailboxes;
//! - [`Probe`]: whether the new version is available, or why not;
//! - [`TrafficWriter`]: the one writer of a rollout's traffic, with its read-back;
//! - [`Clock`]: the time every decision is made at.
//!
//! Those the driver holds for its lifetime (each pools its connections): [`Gate`] (the
//! rollout webhooks, [`WebhookGate`]), the metrics provider (Prometheus,
//! `crate::analysis::MetricsProvider`) and the revert pusher (git, `super::RevertPusher`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use tracing::warn;

use super::health::{
    BuiltWorkloads, Health, Namespace, Workloads, available, available_in, read_cached,
    read_namespace,
};
use super::traffic::{live_split, stored_split};
use super::{Mailbox, RolloutDriverError, RolloutId, Tracked};
use crate::cluster::{Cluster, Observed};
use crate::diff::{self, ObjectPlan, Plan};
use crate::gate::{GateContext, WebhookGate};
use crate::manifest::ObjectKey;
use crate::manifest::rollout_policy::Webhook;
use crate::rollout::{
    DestinationId, RolloutState, RouteRef, TrafficSplit, WebhookKind, WebhookReport,
};
use crate::sync::{self, ObjectResult, SyncOptions};

/// The rollout ConfigMaps and the command mailbox in them.
pub(crate) trait RolloutStore: Send + Sync {
    /// Every stored rollout.
    fn load(&self) -> BoxFuture<'_, Result<Vec<(RolloutId, Tracked)>, RolloutDriverError>>;
    /// The commands waiting, by rollout: those the CLI labelled pending, or with `every`,
    /// whatever any rollout's mailbox holds (one read for the whole pass).
    fn read_commands(
        &self,
        every: bool,
    ) -> BoxFuture<'_, Result<BTreeMap<RolloutId, Mailbox>, RolloutDriverError>>;
    /// Store `state`, then clear the mailbox if it still holds `clear_command`.
    fn store<'a>(
        &'a self,
        id: &'a RolloutId,
        policy: &'a str,
        state: &'a RolloutState,
        clear_command: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), RolloutDriverError>>;
    /// Delete `id`'s state.
    fn forget<'a>(&'a self, id: &'a RolloutId) -> BoxFuture<'a, Result<(), RolloutDriverError>>;
}

/// Whether the new destinations' Deployments are available, or why not.
pub(crate) trait Probe: Send + Sync {
    fn health<'a>(
        &'a self,
        namespace: &'a str,
        canary: &'a [DestinationId],
    ) -> BoxFuture<'a, Health>;
}

/// Writes a rollout's traffic: the VirtualService rendered for a split, then `route` read
/// back as the API server stored it (`None` when it cannot be read back at all).
pub(crate) trait TrafficWriter: Send + Sync {
    fn write<'a>(
        &'a self,
        id: &'a RolloutId,
        key: &'a ObjectKey,
        rendered: Value,
        route: &'a RouteRef,
    ) -> BoxFuture<'a, Option<TrafficSplit>>;
}

/// The time decisions are made at.
pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Calls the webhooks of `kind` among a policy's `webhooks` about one rollout, and reports
/// each answer under `id` (what a webhook that did not pass means is the state machine's
/// business).
pub(crate) trait Gate: Send + Sync {
    fn run<'a>(
        &'a self,
        id: u64,
        kind: WebhookKind,
        webhooks: &'a [Webhook],
        context: &'a GateContext<'a>,
    ) -> BoxFuture<'a, WebhookReport>;
}

impl Gate for WebhookGate {
    fn run<'a>(
        &'a self,
        id: u64,
        kind: WebhookKind,
        webhooks: &'a [Webhook],
        context: &'a GateContext<'a>,
    ) -> BoxFuture<'a, WebhookReport> {
        Box::pin(WebhookGate::run(self, id, kind, webhooks, context))
    }
}

/// The ports of one driver pass.
#[derive(Clone, Copy)]
pub(crate) struct Ports<'a> {
    pub store: &'a dyn RolloutStore,
    pub probe: &'a dyn Probe,
    pub traffic: &'a dyn TrafficWriter,
    pub clock: &'a dyn Clock,
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The real adapters: the cluster, through veer's sync (the one writer) for traffic.
pub struct ClusterPorts<'a> {
    pub cluster: &'a Cluster,
    pub sync: &'a SyncOptions,
    /// Namespace of the rollout ConfigMaps.
    pub state_namespace: &'a str,
    /// What the health gate read of each namespace, and when: the rollouts of one namespace
    /// driven together share one read (two LISTs) instead of two LISTs each.
    namespaces: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Read>>>>>,
    /// What the watch cache held of each namespace for the gate, and when (`None`: not
    /// cached there); built once for the rollouts of a wake, as `namespaces`.
    cached: Mutex<HashMap<String, Cached>>,
    /// The namespaces built from the watch cache by earlier wakes (the driver's).
    built: Arc<BuiltWorkloads>,
    /// The traffic writes of the pass, for [`ClusterPorts::await_written`].
    written: Mutex<Vec<Observed>>,
}

/// A namespace as read for the health gate, and when.
type Read = (tokio::time::Instant, Arc<Namespace>);

/// A namespace as the watch cache held it for the health gate, and when.
type Cached = (tokio::time::Instant, Option<Arc<Workloads>>);

/// How long a namespace's read answers the health gate: the rollouts of one wake (a
/// thousand rollouts due together take a few seconds to write their steps, and a namespace
/// read again meanwhile would hold up the analyses of all of its rollouts), not a rollout
/// driven again an interval later in a long pass.
const READ_FOR: Duration = Duration::from_secs(5);

impl<'a> ClusterPorts<'a> {
    pub fn new(cluster: &'a Cluster, sync: &'a SyncOptions, state_namespace: &'a str) -> Self {
        ClusterPorts {
            cluster,
            sync,
            state_namespace,
            namespaces: Mutex::new(HashMap::new()),
            cached: Mutex::new(HashMap::new()),
            built: Arc::default(),
            written: Mutex::new(Vec::new()),
        }
    }

    /// With what the health gate built from the watch cache in earlier passes (the driver's,
    /// [`super::RolloutDriver::built_workloads`]), kept for the next.
    pub(crate) fn keeping(self, built: Arc<BuiltWorkloads>) -> Self {
        ClusterPorts { built, ..self }
    }

    /// `namespace` as the watch cache held it within the last [`READ_FOR`], or read from it
    /// now (no request); `None` when its Deployments or DestinationRules are not cached.
    fn cached(&self, namespace: &str) -> Option<Arc<Workloads>> {
        let mut all = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, workloads)) = all.get(namespace)
            && at.elapsed() <= READ_FOR
        {
            return workloads.clone();
        }
        let workloads = read_cached(self.cluster, namespace, &self.built);
        all.insert(
            namespace.to_string(),
            (tokio::time::Instant::now(), workloads.clone()),
        );
        workloads
    }

    /// Wait (up to the sync options' `observe_within`) until the watch cache has seen every
    /// traffic write of the pass, so the next pass plans from them: once, when the pass is
    /// over, not in each write (which would hold its rollout's concurrency slot meanwhile).
    pub async fn await_written(&self) {
        let written = std::mem::take(&mut *self.written.lock().unwrap_or_else(|p| p.into_inner()));
        if written.is_empty() || self.sync.mode != sync::WriteMode::Apply {
            return;
        }
        let unseen = self
            .cluster
            .await_observed(&written, self.sync.observe_within)
            .await;
        if !unseen.is_empty() {
            warn!(
                count = unseen.len(),
                "the watch cache has not seen every traffic write yet; the next pass may plan from older copies"
            );
        }
    }

    /// `namespace` as read for the health gate within the last [`READ_FOR`], or read now (one
    /// reader per namespace at a time; the others wait for its read).
    async fn namespace(&self, namespace: &str) -> Arc<Namespace> {
        let entry = {
            let mut all = match self.namespaces.lock() {
                Ok(all) => all,
                Err(poisoned) => poisoned.into_inner(),
            };
            all.entry(namespace.to_string()).or_default().clone()
        };
        let mut read = entry.lock().await;
        if let Some((at, lists)) = read.as_ref()
            && at.elapsed() <= READ_FOR
        {
            return lists.clone();
        }
        let lists = Arc::new(read_namespace(self.cluster, namespace).await);
        *read = Some((tokio::time::Instant::now(), lists.clone()));
        lists
    }

    pub(crate) fn ports(&'a self) -> Ports<'a> {
        Ports {
            store: self,
            probe: self,
            traffic: self,
            clock: &SystemClock,
        }
    }
}

impl RolloutStore for ClusterPorts<'_> {
    fn load(&self) -> BoxFuture<'_, Result<Vec<(RolloutId, Tracked)>, RolloutDriverError>> {
        Box::pin(super::store::load_all(
            self.cluster.client(),
            self.state_namespace,
        ))
    }

    fn read_commands(
        &self,
        every: bool,
    ) -> BoxFuture<'_, Result<BTreeMap<RolloutId, Mailbox>, RolloutDriverError>> {
        Box::pin(super::commands::read_commands(
            self.cluster.client(),
            self.state_namespace,
            every,
        ))
    }

    fn store<'a>(
        &'a self,
        id: &'a RolloutId,
        policy: &'a str,
        state: &'a RolloutState,
        clear_command: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), RolloutDriverError>> {
        Box::pin(super::store::store(
            self.cluster.client(),
            self.state_namespace,
            id,
            policy,
            state,
            clear_command,
        ))
    }

    fn forget<'a>(&'a self, id: &'a RolloutId) -> BoxFuture<'a, Result<(), RolloutDriverError>> {
        Box::pin(super::store::delete(
            self.cluster.client(),
            self.state_namespace,
            id,
        ))
    }
}

impl Probe for ClusterPorts<'_> {
    fn health<'a>(
        &'a self,
        namespace: &'a str,
        canary: &'a [DestinationId],
    ) -> BoxFuture<'a, Health> {
        Box::pin(async move {
            if canary.is_empty() {
                return Health::Available;
            }
            // The watch cache answers without a request while the new version is available;
            // before saying it is not, the namespace is listed (the cache may not have seen a
            // Deployment created a moment ago, or one that became available since).
            if let Some(cached) = self.cached(namespace)
                && available_in(&cached, namespace, canary) == Health::Available
            {
                return Health::Available;
            }
            let read = self.namespace(namespace).await;
            available(&read, namespace, canary)
        })
    }
}

impl TrafficWriter for ClusterPorts<'_> {
    fn write<'a>(
        &'a self,
        id: &'a RolloutId,
        key: &'a ObjectKey,
        rendered: Value,
        route: &'a RouteRef,
    ) -> BoxFuture<'a, Option<TrafficSplit>> {
        Box::pin(async move {
            // A write of its own cause: the rollout's, not a git change.
            let plan = Plan {
                objects: vec![ObjectPlan {
                    key: key.clone(),
                    action: diff::ObjectAction::Update {
                        cause: diff::Cause::Rollout,
                        changes: Vec::new(),
                    },
                    desired: Some(rendered.into()),
                    live: None,
                }],
                ..Plan::default()
            };
            // While the rollout runs veer owns these weights: a hand edit does not block it.
            // Not waited for in the watch cache here (the wait would hold the rollout's
            // concurrency slot for the watch's delay): the read-back is the apply's answer,
            // and nothing of this pass reads the cache's copy again (the hand-edit check
            // looks at it once, before the pass's first write). The pass's writes are
            // waited for together when it ends (`await_written`).
            let options = SyncOptions {
                force_conflicts: true,
                observe_within: std::time::Duration::ZERO,
                ..self.sync.clone()
            };
            // A real apply answers with the object as stored: the read-back, without asking
            // again. A server dry run stores nothing, so its answer is no read-back: what the
            // server has is read as it is (the state machine hears the write did not land).
            let real = options.mode == sync::WriteMode::Apply;
            let (report, applied) =
                sync::execute_keeping(self.cluster, &plan, &BTreeMap::new(), &options, real).await;
            for o in &report.objects {
                if let ObjectResult::Failed(f) = &o.result {
                    warn!(rollout = %id, error = %f.message, "traffic write failed");
                }
            }
            if let Some((_, answer)) = applied.iter().find(|(k, _)| k == key) {
                let (split, resource_version) = stored_split(answer, route);
                self.written
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Observed {
                        key: key.clone(),
                        resource_version,
                    });
                return split;
            }
            // The write failed (or was a dry run): read what the server has now.
            match live_split(self.cluster, key, route).await {
                Ok(split) => split,
                Err(e) => {
                    warn!(rollout = %id, error = %e, "cannot read the VirtualService back");
                    None
                }
            }
        })
    }
}
