//! Live state: the kube client, discovery (kind → resource), and a watch-based cache of the
//! objects veer looks at.
//!
//! Owns everything that reads from the cluster. Only the kinds (and, for namespaced kinds, the
//! namespaces) the repository and the inventory use are watched, each by a kube-runtime
//! watcher started the first time it is needed, which keeps only what veer reads of each
//! object, as compact text (`projection`, `store`). After that a reconcile reads memory: a
//! steady-state plan makes no LIST and an idle poll no API call at all. A watch that drops
//! is re-established by the watcher with backoff; every error is logged. Every event is
//! also written to a change journal (`journal`), so a pass plans only what changed. Writing is
//! [`crate::sync`]'s job; this module only lets it wait until the cache has seen its writes.
//! Validation's view of the cluster's Services and ServiceEntries is listed, not watched,
//! once per new revision (`services`).

mod cache;
pub mod contact;
mod discovery;
mod journal;
mod live;
mod projection;
pub mod schema;
mod services;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use crate::fields::ListSemantics;
use crate::manifest::ObjectKey;

pub use cache::{Observed, WatchKey};
pub use contact::{Contact, SharedContact};
pub use discovery::Resolved;
pub use journal::Changes;
pub use live::{LiveTexts, LiveView};
pub use services::{LIST_TIMEOUT, ListedServices, SERVICES_PERMISSION};

/// [`OWN_STATE_LABEL`]'s text, for the constants built from it.
macro_rules! own_state_label {
    () => {
        "veer.io/controller-state"
    };
}

/// Label on each ConfigMap veer keeps its own state in (the sync state, its shards, each
/// rollout's): the watches leave them out, so a repository with ConfigMaps does not bring
/// veer's own writes (every rollout step, shards of up to a MiB) into the live view.
pub const OWN_STATE_LABEL: &str = own_state_label!();
/// The label selector of every watch: everything but veer's own state.
pub const NOT_OWN_STATE: &str = concat!("!", own_state_label!());

/// How long a new watch may take to list its objects before a reconcile gives up.
pub const WATCH_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What can go wrong reading the cluster. Messages name the object or kind and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "cannot load the kubeconfig{}: {reason}; check --kubeconfig/KUBECONFIG and --context",
        path.as_deref().map(|p| format!(" {p}")).unwrap_or_default()
    )]
    Kubeconfig {
        path: Option<String>,
        reason: String,
    },
    #[error("cannot build a Kubernetes client: {reason}")]
    Client { reason: String },
    #[error(
        "the cluster does not serve {api_version} {kind}; apply its CustomResourceDefinition first, or check apiVersion"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("discovery of {api_version} failed: {reason}; check that the API server is reachable")]
    Discovery { api_version: String, reason: String },
    #[error(
        "the watch of {what} did not list its objects within {after:?}; check that the API server is up and reachable, then veer's RBAC (list and watch)"
    )]
    WatchNotReady { what: String, after: Duration },
    #[error("{what}: {reason}")]
    Api {
        what: String,
        code: Option<u16>,
        reason: String,
    },
}

/// veer may not list (or watch) a kind, in a namespace or cluster-wide: nothing is known
/// about its objects, so they fail instead of being created, updated or pruned on a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRefusal {
    /// RBAC's name for it: the plural, with the API group when there is one
    /// (`secrets`, `virtualservices.networking.istio.io`).
    pub resource: String,
    /// `None`: cluster-wide.
    pub namespace: Option<String>,
    /// The server's message.
    pub reason: String,
}

impl ListRefusal {
    fn of(resolved: &Resolved, namespace: Option<&str>, reason: &str) -> Self {
        let r = &resolved.resource;
        ListRefusal {
            resource: if r.group.is_empty() {
                r.plural.clone()
            } else {
                format!("{}.{}", r.plural, r.group)
            },
            namespace: namespace.map(str::to_string),
            reason: reason.to_string(),
        }
    }

    fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "cluster-wide".to_string(),
        }
    }

    /// What to grant, and where.
    pub fn fix(&self) -> String {
        let binding = match self.namespace {
            Some(_) => "a Role and RoleBinding",
            None => "a ClusterRole and ClusterRoleBinding",
        };
        format!(
            "grant veer's service account list and watch on {} {} ({binding}), or remove these objects from git",
            self.resource,
            self.scope()
        )
    }
}

impl std::fmt::Display for ListRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "veer's service account cannot list {} {}: grant list and watch on {}",
            self.resource,
            self.scope(),
            self.resource
        )
    }
}

impl ClusterError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ClusterError::Kubeconfig { .. } => "kubeconfig",
            ClusterError::Client { .. } => "client",
            ClusterError::UnknownKind { .. } => "unknown_kind",
            ClusterError::Discovery { .. } => "discovery",
            ClusterError::WatchNotReady { .. } => "watch_not_ready",
            ClusterError::Api { .. } => "api",
        }
    }

    /// An API error about `what`.
    pub fn api(what: impl Into<String>, error: &kube::Error) -> Self {
        let (code, reason) = match error {
            kube::Error::Api(status) => (Some(status.code), status.message.clone()),
            other => (None, other.to_string()),
        };
        ClusterError::Api {
            what: what.into(),
            code,
            reason,
        }
    }
}

/// A kube client from a kubeconfig file (with an optional context), or inferred:
/// `KUBECONFIG`, `~/.kube/config`, then the in-cluster service account.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, ClusterError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let config =
        match (kubeconfig, context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
                    path: Some(path.display().to_string()),
                    reason: e.to_string(),
                })?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| ClusterError::Kubeconfig {
                        path: Some(path.display().to_string()),
                        reason: e.to_string(),
                    })?
            }
            (None, Some(_)) => kube::Config::from_kubeconfig(&options).await.map_err(|e| {
                ClusterError::Kubeconfig {
                    path: None,
                    reason: e.to_string(),
                }
            })?,
            (None, None) => kube::Config::infer()
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: None,
                    reason: e.to_string(),
                })?,
        };
    kube::Client::try_from(config).map_err(|e| ClusterError::Client {
        reason: e.to_string(),
    })
}

/// The live objects veer looked at, as the API server returns them less what veer never
/// reads (`status`, server bookkeeping, the parts of other managers' `managedFields` no plan
/// can use: see module `projection`), with `apiVersion` and `kind` filled in, keyed as git
/// names them. Each is read from the cache's text for this call: they are the caller's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveState {
    pub objects: BTreeMap<ObjectKey, Value>,
    /// Keys whose kind the cluster does not serve (yet): nothing is known about them.
    pub unknown: BTreeSet<ObjectKey>,
    /// Keys whose kind veer may not list (403) where they live: nothing is known about them
    /// either, so they are neither absent (to create) nor gone (to forget): they fail.
    pub forbidden: BTreeMap<ObjectKey, ListRefusal>,
}

/// The cluster as veer sees it: a client, discovery, the watch cache and how its lists merge.
pub struct Cluster {
    client: kube::Client,
    discovery: discovery::Discovery,
    cache: cache::Cache,
    schemas: schema::Schemas,
    /// The Services could not be listed for validation once already (logged at info then).
    services_unlisted: std::sync::atomic::AtomicBool,
}

impl Cluster {
    pub fn new(client: kube::Client) -> Self {
        Cluster {
            discovery: discovery::Discovery::default(),
            cache: cache::Cache::default(),
            schemas: schema::Schemas::default(),
            services_unlisted: std::sync::atomic::AtomicBool::default(),
            client,
        }
    }

    /// How this server merges lists: its CRDs' `x-kubernetes-list-type` markers, then
    /// Kubernetes' built-in table. Listed once and cached (see [`schema`]); the built-in
    /// table alone when veer may not list CRDs.
    pub async fn list_semantics(&self) -> ListSemantics {
        self.schemas.get(&self.client).await
    }

    /// List the CRDs again at the next [`Cluster::list_semantics`] (e.g. after applying one).
    pub async fn refresh_list_semantics(&self) {
        self.schemas.refresh().await;
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The resource serving `key`'s kind; discovery is asked again when the kind is not
    /// known yet (e.g. a CRD was just applied).
    pub async fn resolve(&self, key: &ObjectKey) -> Result<Resolved, ClusterError> {
        self.discovery.resolve(&self.client, key).await
    }

    /// Forget what discovery said about `key`'s kind (after a 404 that may mean it moved).
    pub fn forget(&self, key: &ObjectKey) {
        self.discovery.forget(key);
    }

    /// The live objects among `keys`, from the watch cache, each read into a value
    /// ([`Cluster::live_view`] reads them as texts, for a plan to read one at a time).
    pub async fn live(&self, keys: &[ObjectKey]) -> Result<LiveState, ClusterError> {
        Ok(self.live_view(keys).await?.into_state())
    }

    /// What the watch cache holds of `group`'s `kind` in `namespace` (the projections' texts,
    /// module `projection`), without a request: `None` when no watch of it has listed there
    /// (the kind is not in git there, or not watched yet).
    pub fn cached_in(&self, group: &str, kind: &str, namespace: &str) -> Option<Vec<Arc<str>>> {
        self.cache.listed_in(group, kind, namespace)
    }

    /// Wait (reading memory only) until the cache has seen each write: the object at
    /// `resourceVersion` (or newer), or gone. Returns the keys still not seen at the
    /// deadline; a reconcile after that would plan from stale data, so callers log them.
    pub async fn await_observed(&self, writes: &[Observed], within: Duration) -> Vec<ObjectKey> {
        self.cache
            .await_observed(&self.discovery, writes, within)
            .await
    }

    /// Whether the API answers, as the watches see it (for `/readyz`).
    pub fn contact(&self) -> SharedContact {
        self.cache.contact()
    }

    /// Watches running now (for tests and benchmarks).
    pub fn watch_count(&self) -> usize {
        self.cache.len()
    }
}
