//! The cases: short sequences of writes to one object (applies by one or two managers, a merge
//! patch as `kubectl edit` sends), built from the manifests git would hold.

use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::helpers::namespace;

/// One write to the case's object.
pub(crate) enum Action {
    /// Server-side apply of the whole configuration by a manager, with force or not.
    Apply(&'static str, bool, Value),
    /// A JSON merge patch (an `Update` in managedFields), as `kubectl edit` sends one.
    Merge(&'static str, Value),
}

/// A short sequence of writes to one object, each described for the golden and the diffs.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) steps: Vec<(&'static str, Action)>,
}

impl Case {
    /// The resource and name of the case's object, from its first step (an apply).
    pub(crate) fn target(&self) -> (ApiResource, &str) {
        let Some((_, Action::Apply(_, _, body))) = self.steps.first() else {
            panic!("{}: a case starts with an apply", self.name)
        };
        let name = body["metadata"]["name"].as_str().expect("a name");
        (api_resource(body), name)
    }

    fn apply(mut self, what: &'static str, manager: &'static str, body: Value) -> Self {
        self.steps.push((what, Action::Apply(manager, false, body)));
        self
    }

    fn force(mut self, what: &'static str, manager: &'static str, body: Value) -> Self {
        self.steps.push((what, Action::Apply(manager, true, body)));
        self
    }

    fn merge(mut self, what: &'static str, manager: &'static str, patch: Value) -> Self {
        self.steps.push((what, Action::Merge(manager, patch)));
        self
    }
}

fn api_resource(body: &Value) -> ApiResource {
    let kind = body["kind"].as_str().expect("a kind");
    let (group, version) = match body["apiVersion"].as_str().expect("an apiVersion") {
        v if v.contains('/') => v.split_once('/').expect("group/version"),
        v => ("", v),
    };
    let plural = format!("{}s", kind.to_lowercase()).replace("entrys", "entries");
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural)
}

/// The Deployment git holds: two containers, env and ports (one port leaves `protocol` to the
/// server's default, as most manifests do).
fn deployment(ns: &str, replicas: u32, min_ready: bool, env: &[(&str, &str)]) -> Value {
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {
                        "name": "app",
                        "image": "nginx:1.19",
                        "env": env.iter().map(|(n, v)| json!({"name": n, "value": v}))
                            .collect::<Vec<_>>(),
                        "ports": [
                            {"name": "http", "containerPort": 8080},
                            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
                        ]
                    },
                    {"name": "sidecar", "image": "busybox:1.32", "args": ["sleep", "3600"]}
                ]}
            }
        }
    });
    if min_ready {
        d["spec"]["minReadySeconds"] = json!(5);
    }
    d
}

const ENV: &[(&str, &str)] = &[("MODE", "prod"), ("LOG", "debug")];

fn service(ns: &str, protocols: &[&str]) -> Value {
    let ports: Vec<Value> = protocols
        .iter()
        .map(|p| {
            json!({"name": format!("dns-{}", p.to_lowercase()), "port": 53, "protocol": p,
                   "targetPort": 5353})
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "dns", "namespace": ns},
        "spec": {"selector": {"app": "dns"}, "ports": ports}
    })
}

fn service_entry(ns: &str, ports: &[(&str, u32, &str)]) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, number, protocol)| json!({"name": name, "number": number, "protocol": protocol}))
        .collect();
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {"ports": ports, "hosts": ["db.example.com"], "location": "MESH_EXTERNAL",
                 "resolution": "DNS"}
    })
}

fn virtual_service(ns: &str, percentage: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "shop", "namespace": ns},
        "spec": {"hosts": ["shop"], "http": [{
            "route": [{"destination": {"host": "shop"}, "weight": 100}],
            "mirror": {"host": "shop-shadow"},
            "mirrorPercentage": {"value": percentage}
        }]}
    })
}

pub(crate) fn case(name: &'static str) -> Case {
    let ns = namespace(name);
    let ns = ns.as_str();
    let d = |replicas| deployment(ns, replicas, true, ENV);
    let c = Case {
        name,
        steps: Vec::new(),
    };
    let edit = "kubectl-edit sets replicas with a merge patch";
    let replicas = json!({"spec": {"replicas": 3}});
    match name {
        "deployment-apply" => c.apply("apply by veer", "veer", d(2)),
        "deployment-edit" => {
            c.apply("apply by veer", "veer", d(2))
                .merge(edit, "kubectl-edit", replicas)
        }
        "deployment-drop" => c
            .apply("apply by veer", "veer", d(2))
            .apply(
                "git dropped minReadySeconds",
                "veer",
                deployment(ns, 2, false, ENV),
            )
            .apply(
                "git dropped env LOG",
                "veer",
                deployment(ns, 2, false, &ENV[..1]),
            ),
        "service-ports" => c
            .apply(
                "apply port 53 over TCP and UDP",
                "veer",
                service(ns, &["TCP", "UDP"]),
            )
            .apply("git dropped the TCP port", "veer", service(ns, &["UDP"])),
        "serviceentry-ports" => {
            let one = service_entry(ns, &[("http", 80, "HTTP")]);
            // The other manager applies its port alone (no hosts, location, resolution).
            let mut other = service_entry(ns, &[("mysql", 3306, "TCP")]);
            other["spec"] = json!({"ports": other["spec"]["ports"].take()});
            let two = service_entry(ns, &[("http", 80, "HTTP"), ("grpc", 9090, "GRPC")]);
            c.apply("apply two ports", "veer", two)
                .apply("git dropped the grpc port", "veer", one.clone())
                .apply("another manager applies a third port", "other", other)
                .apply("veer re-applies its one port", "veer", one)
        }
        "virtualservice-numbers" => c
            .apply(
                "apply mirrorPercentage 25.0",
                "veer",
                virtual_service(ns, json!(25.0)),
            )
            .apply(
                "apply mirrorPercentage 25",
                "veer",
                virtual_service(ns, json!(25)),
            ),
        "apply-conflict" => c
            .apply("apply by veer", "veer", d(2))
            .merge(edit, "kubectl-edit", replicas)
            .apply("veer applies replicas 5: conflict", "veer", d(5))
            .force("veer applies replicas 5 with force", "veer", d(5)),
        other => panic!("no case {other}"),
    }
}
