//! What every test of the target shares: the manifests of the `shop` namespace, a revision
//! builder, controller options with fast retries, and the passes and lookups the tests drive.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use veer::cluster::Cluster;
use veer::controller::{Controller, ControllerOptions, Pass};
use veer::devcluster::RunningCluster;
use veer::manifest::{self, ManifestSet, ReadOptions};
use veer::source::{CommitId, LoadedRevision, PollOutcome, Revision};
use veer::sync::state::StateLocation;
use veer::sync::{ObjectResult, RetryPolicy, SyncOptions, SyncReport};

use crate::support::devcluster as dev;

pub(crate) const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";

pub(crate) fn config_map(name: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: shop\ndata:\n  {data}\n"
    )
}

pub(crate) const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-v1
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: reviews, version: v1}
  template:
    metadata:
      labels: {app: reviews, version: v1}
    spec:
      containers:
      - name: reviews
        image: example/reviews:1
";

pub(crate) const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
  selector: {app: reviews}
  ports:
  - port: 9080
";

pub(crate) fn traffic(v2_weight: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {{version: v1}}
  - name: v2
    labels: {{version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews, subset: v1}}
      weight: {}
    - destination: {{host: reviews, subset: v2}}
      weight: {v2_weight}
",
        100 - v2_weight
    )
}

pub(crate) const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

pub(crate) const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata:
  name: gear
  namespace: shop
spec:
  teeth: 12
";

pub(crate) fn revision(n: u32, files: &[(&str, &str)]) -> Arc<LoadedRevision> {
    let mut set = ManifestSet::default();
    for (name, text) in files {
        set.extend(&manifest::parse_file(
            name,
            text.as_bytes(),
            &ReadOptions::default(),
        ));
    }
    Arc::new(LoadedRevision {
        revision: Revision {
            commit: CommitId(format!("{n:040x}")),
            summary: format!("revision {n}"),
            author: "Ada <ada@example.com>".into(),
            time: Utc::now(),
        },
        set,
        changed_files: Vec::new(),
        parsed_files: 0,
    })
}

pub(crate) fn location() -> StateLocation {
    StateLocation {
        namespace: "veer".into(),
        name: "veer-state".into(),
    }
}

pub(crate) fn options(tweak: impl FnOnce(&mut SyncOptions)) -> ControllerOptions {
    let mut sync = SyncOptions {
        retry: RetryPolicy {
            attempts: 4,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            timeout: Duration::from_secs(10),
        },
        ..SyncOptions::default()
    };
    tweak(&mut sync);
    ControllerOptions {
        source_url: "git://example/mesh.git".into(),
        prune: true,
        sync,
    }
}

pub(crate) async fn controller_with(
    client: kube::Client,
    options: ControllerOptions,
) -> Controller {
    Controller::start(Cluster::new(client), location(), options)
        .await
        .expect("the controller starts")
}

pub(crate) async fn controller(cluster: &RunningCluster) -> Controller {
    controller_with(dev::client(cluster), options(|_| {})).await
}

pub(crate) async fn pass(c: &mut Controller, loaded: &Arc<LoadedRevision>) -> Pass {
    c.handle(PollOutcome::Updated(loaded.clone()), Utc::now())
        .await
}

pub(crate) async fn idle(c: &mut Controller, loaded: &Arc<LoadedRevision>) -> Pass {
    c.handle(
        PollOutcome::Unchanged {
            commit: loaded.revision.commit.clone(),
        },
        Utc::now(),
    )
    .await
}

pub(crate) fn synced(pass: &Pass) -> &SyncReport {
    match pass {
        Pass::Synced { report, .. } => report,
        other => panic!("expected a sync, got {other:?}"),
    }
}

pub(crate) fn result_of<'r>(report: &'r SyncReport, kind: &str, name: &str) -> &'r ObjectResult {
    &report
        .objects
        .iter()
        .find(|o| o.key.kind == kind && o.key.name == name)
        .unwrap_or_else(|| panic!("{kind} {name} not in {report:#?}"))
        .result
}

pub(crate) fn config_maps(cluster: &RunningCluster) -> Api<ConfigMap> {
    Api::namespaced(dev::client(cluster), "shop")
}

pub(crate) async fn data_of(cluster: &RunningCluster, name: &str) -> Option<serde_json::Value> {
    config_maps(cluster)
        .get_opt(name)
        .await
        .expect("get")
        .map(|cm| serde_json::to_value(cm.data).expect("json"))
}
