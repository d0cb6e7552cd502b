//! What the scenarios put in git (the policy, Deployments, the VirtualService) and how they
//! read the live VirtualService back.

use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::Value;

pub(crate) const NS: &str = "shop";
pub(crate) const STATE_NS: &str = "veer";
/// Longest any scenario's wait may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(45);

/// The default test policy: 1 s interval, two failed checks roll back, steps 25/50/75.
pub(crate) fn policy(deadline: &str) -> String {
    policy_with(deadline, "")
}

/// The test policy with more `spec` lines (indented two spaces).
pub(crate) fn policy_with(deadline: &str, extra: &str) -> String {
    format!(
        "apiVersion: veer.io/v1alpha1
kind: RolloutPolicy
metadata:
  name: e2e
spec:
  interval: 1s
  threshold: 2
  stepWeights: [25, 50, 75]
  progressDeadline: {deadline}
  minRequests: 5
  onNoData: hold
  onMetricsError: hold
  metrics:
    - name: success-rate
      builtin: request-success-rate
      thresholdRange: {{min: 99}}
      interval: 4s
    - name: p99-latency
      builtin: request-duration
      thresholdRange: {{max: 500}}
      interval: 4s
{extra}"
    )
}

pub(crate) fn deployment(version: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-{version}
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {{app: reviews, version: {version}}}
  template:
    metadata:
      labels: {{app: reviews, version: {version}}}
    spec:
      containers:
      - name: reviews
        image: example/reviews:{version}
"
    )
}

pub(crate) const BASE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
  selector: {app: reviews}
  ports:
  - name: http
    port: 9080
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
";

pub(crate) fn virtual_service(v1: u32, v2: u32) -> String {
    named_virtual_service("reviews", v1, v2)
}

pub(crate) fn named_virtual_service(name: &str, v1: u32, v2: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: shop
  annotations:
    veer.io/rollout-policy: e2e
spec:
  hosts: [{name}]
  http:
  - name: primary
    route:
    - destination: {{host: {name}, subset: v1}}
      weight: {v1}
    - destination: {{host: {name}, subset: v2}}
      weight: {v2}
"
    )
}

pub(crate) fn vs_resource() -> ApiResource {
    ApiResource {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        api_version: "networking.istio.io/v1".into(),
        kind: "VirtualService".into(),
        plural: "virtualservices".into(),
    }
}

/// (v1, v2) weights of the live route; a missing destination weighs 0.
pub(crate) async fn live_split(client: &kube::Client) -> Option<(u32, u32)> {
    live_split_of(client, "reviews").await
}

pub(crate) async fn live_split_of(client: &kube::Client, name: &str) -> Option<(u32, u32)> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), NS, &vs_resource());
    let vs = serde_json::to_value(api.get_opt(name).await.ok()??).ok()?;
    let routes = vs.pointer("/spec/http/0/route")?.as_array()?.clone();
    let mut out = (0, 0);
    for r in &routes {
        let w = r.get("weight").and_then(Value::as_u64).unwrap_or(100) as u32;
        match r.pointer("/destination/subset").and_then(Value::as_str) {
            Some("v1") => out.0 += w,
            Some("v2") => out.1 += w,
            _ => {}
        }
    }
    Some(out)
}

pub(crate) fn weights_of(route: &Value) -> (u32, u32) {
    let mut out = (0, 0);
    for r in route
        .get("route")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let w = r.get("weight").and_then(Value::as_u64).unwrap_or(100) as u32;
        match r.pointer("/destination/subset").and_then(Value::as_str) {
            Some("v1") => out.0 += w,
            Some("v2") => out.1 += w,
            _ => {}
        }
    }
    out
}
