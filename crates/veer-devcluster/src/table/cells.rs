//! The cells of the built-in kinds' rows, computed as kube-apiserver's printers compute them
//! (Service addresses and ports, pod readiness and status, event sources, binding subjects…).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::age::{human_duration, parse_time, since};
use super::fields::{
    container_cells, entries, format_label_selector, format_labels, int, items, or_none, text,
};
use super::printer::Builtin;

pub(super) fn builtin_cells(b: Builtin, o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = json!(text(o, "/metadata/name"));
    let age = json!(since(o, "/metadata/creationTimestamp", now));
    match b {
        Builtin::Namespace => vec![name, json!(text(o, "/status/phase")), age],
        Builtin::Service => {
            let cluster_ip = items(o, "/spec/clusterIPs")
                .first()
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            let ports: Vec<String> = items(o, "/spec/ports")
                .iter()
                .map(|p| {
                    let (port, protocol) = (int(p, "/port"), text(p, "/protocol"));
                    match int(p, "/nodePort") {
                        n if n > 0 => format!("{port}:{n}/{protocol}"),
                        _ => format!("{port}/{protocol}"),
                    }
                })
                .collect();
            vec![
                name,
                json!(text(o, "/spec/type")),
                json!(cluster_ip),
                json!(service_external_ip(o)),
                json!(or_none(ports.join(","))),
                age,
                json!(format_labels(o.pointer("/spec/selector"))),
            ]
        }
        Builtin::ConfigMap => {
            let data = entries(o, "/data") + entries(o, "/binaryData");
            vec![name, json!(data), age]
        }
        Builtin::Secret => {
            // A real server folds stringData into data when it stores a Secret; this one keeps
            // what was written, so count the keys of both.
            let mut keys: Vec<&String> = ["/data", "/stringData"]
                .iter()
                .filter_map(|p| o.pointer(p).and_then(Value::as_object))
                .flat_map(Map::keys)
                .collect();
            keys.sort_unstable();
            keys.dedup();
            vec![name, json!(text(o, "/type")), json!(keys.len()), age]
        }
        Builtin::Event => event_cells(o, now),
        Builtin::ServiceAccount => vec![name, json!(items(o, "/secrets").len()), age],
        Builtin::Pod => pod_cells(o, now),
        Builtin::Deployment => {
            let desired = o
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let (containers, images) = container_cells(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!("{}/{desired}", int(o, "/status/readyReplicas"))),
                json!(int(o, "/status/updatedReplicas")),
                json!(int(o, "/status/availableReplicas")),
                age,
                json!(containers),
                json!(images),
                json!(format_label_selector(o.pointer("/spec/selector"))),
            ]
        }
        Builtin::Lease => vec![name, json!(text(o, "/spec/holderIdentity")), age],
        Builtin::RoleBinding | Builtin::ClusterRoleBinding => {
            let role = format!("{}/{}", text(o, "/roleRef/kind"), text(o, "/roleRef/name"));
            let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
            for s in items(o, "/subjects") {
                match text(s, "/kind") {
                    "User" => users.push(text(s, "/name").to_string()),
                    "Group" => groups.push(text(s, "/name").to_string()),
                    "ServiceAccount" => {
                        accounts.push(format!("{}/{}", text(s, "/namespace"), text(s, "/name")))
                    }
                    _ => {}
                }
            }
            vec![
                name,
                json!(role),
                age,
                json!(users.join(", ")),
                json!(groups.join(", ")),
                json!(accounts.join(", ")),
            ]
        }
        Builtin::CreatedAt => {
            // The registry default prints the timestamp itself, not an age.
            let created = o
                .pointer("/metadata/creationTimestamp")
                .and_then(parse_time)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
            vec![name, json!(created)]
        }
    }
}

fn service_external_ip(o: &Value) -> String {
    let external: Vec<&str> = items(o, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match text(o, "/spec/type") {
        "ClusterIP" | "NodePort" => or_none(external.join(",")),
        "LoadBalancer" => {
            let mut balancers: Vec<&str> = items(o, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match text(i, "/ip") {
                    "" => text(i, "/hostname"),
                    ip => ip,
                })
                .filter(|s| !s.is_empty())
                .collect();
            balancers.sort_unstable();
            balancers.dedup();
            balancers.extend(external);
            match balancers.join(",") {
                s if s.is_empty() => "<pending>".into(),
                s => s,
            }
        }
        "ExternalName" => text(o, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

/// kube-apiserver's pod printer, without the init-container states (no kubelet here runs
/// any): READY counts ready running containers, STATUS is the reason or phase, overridden by
/// a waiting or terminated container's reason.
fn pod_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let total = items(o, "/spec/containers").len()
        + items(o, "/spec/initContainers")
            .iter()
            .filter(|c| text(c, "/restartPolicy") == "Always")
            .count();
    let phase = text(o, "/status/phase");
    let mut reason = match text(o, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let (mut ready, mut restarts) = (0, 0);
    let mut last_restart: Option<DateTime<Utc>> = None;
    for c in items(o, "/status/containerStatuses").iter().rev() {
        restarts += int(c, "/restartCount");
        if let Some(t) = c
            .pointer("/lastState/terminated/finishedAt")
            .and_then(parse_time)
        {
            last_restart = last_restart.max(Some(t));
        }
        let terminated = c.pointer("/state/terminated");
        if !text(c, "/state/waiting/reason").is_empty() {
            reason = text(c, "/state/waiting/reason").to_string();
        } else if let Some(t) = terminated {
            reason = match (text(t, "/reason"), int(t, "/signal")) {
                ("", 0) => format!("ExitCode:{}", int(t, "/exitCode")),
                ("", signal) => format!("Signal:{signal}"),
                (r, _) => r.to_string(),
            };
        } else if c.get("ready").and_then(Value::as_bool) == Some(true)
            && c.pointer("/state/running").is_some()
        {
            ready += 1;
        }
    }
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        if text(o, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if !matches!(phase, "Succeeded" | "Failed") {
            reason = "Terminating".into();
        }
    }
    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };
    let ip = items(o, "/status/podIPs")
        .first()
        .map(|p| text(p, "/ip"))
        .unwrap_or("");
    let gates = items(o, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = items(o, "/status/conditions");
        let met = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == text(g, "/conditionType"))
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        json!(text(o, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(since(o, "/metadata/creationTimestamp", now)),
        json!(or_none(ip.to_string())),
        json!(or_none(text(o, "/spec/nodeName").to_string())),
        json!(or_none(text(o, "/status/nominatedNodeName").to_string())),
        json!(gates),
    ]
}

fn event_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first = match o.pointer("/firstTimestamp").and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => since(o, "/eventTime", now),
    };
    let mut last = match o.pointer("/lastTimestamp").and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => first.clone(),
    };
    let mut count = int(o, "/count");
    if o.get("series").is_some_and(|s| !s.is_null()) {
        last = since(o, "/series/lastObservedTime", now);
        count = int(o, "/series/count");
    } else if count == 0 {
        // Singleton events of the events.k8s.io API carry no count.
        count = 1;
    }
    let kind = text(o, "/involvedObject/kind").to_lowercase();
    let target = match text(o, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let first_non_empty = |a: &str, b: &str| {
        let a = text(o, a);
        if a.is_empty() { text(o, b) } else { a }
    };
    let component = first_non_empty("/source/component", "/reportingComponent");
    let instance = first_non_empty("/source/host", "/reportingInstance");
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(text(o, "/type")),
        json!(text(o, "/reason")),
        json!(target),
        json!(text(o, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(o, "/message").trim()),
        json!(first),
        json!(count),
        json!(text(o, "/metadata/name")),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{cells, created, now};
    use super::super::{IncludeObject, Printer, TableOptions, TableVersion, table};
    use serde_json::{Value, json};

    fn deployment(ready: i64, replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "reviews", "namespace": "shop", "creationTimestamp": created(312),
                         "labels": {"app": "reviews"}},
            "spec": {
                "replicas": replicas,
                "selector": {
                    "matchLabels": {"version": "v1", "app": "reviews"},
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["web", "api"]},
                        {"key": "canary", "operator": "DoesNotExist"}
                    ]
                },
                "template": {"spec": {"containers": [
                    {"name": "app", "image": "reviews:1"},
                    {"name": "proxy", "image": "envoy:1.30"}
                ]}}
            },
            "status": {"readyReplicas": ready, "updatedReplicas": ready, "availableReplicas": ready}
        })
    }

    #[test]
    fn builtin_printers_fill_every_column() {
        let svc = json!({
            "metadata": {"name": "reviews", "creationTimestamp": created(45)},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                     "ports": [{"port": 9080, "protocol": "TCP"}, {"port": 443, "protocol": "TCP", "nodePort": 30443}],
                     "selector": {"app": "reviews", "tier": "web"}}
        });
        let lb = json!({
            "metadata": {"name": "edge", "creationTimestamp": created(45)},
            "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.13"], "ports": []},
            "status": {"loadBalancer": {"ingress": [{"hostname": "lb.example"}, {"ip": "1.2.3.4"}]}}
        });
        let pending = json!({"metadata": {"name": "new"}, "spec": {"type": "LoadBalancer"}});
        let cm = json!({"metadata": {"name": "settings", "creationTimestamp": created(3600 * 50)},
                        "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        let secret = json!({"metadata": {"name": "token", "creationTimestamp": created(10)},
                            "type": "Opaque", "data": {"a": "MQ=="}, "stringData": {"a": "1", "b": "2"}});
        let ns = json!({"metadata": {"name": "shop", "creationTimestamp": created(130)},
                        "status": {"phase": "Active"}});
        let lease = json!({"metadata": {"name": "veer-leader", "creationTimestamp": created(5)},
                           "spec": {"holderIdentity": "veer-0"}});
        let sa = json!({"metadata": {"name": "veer", "creationTimestamp": created(5)},
                        "secrets": [{"name": "a"}]});
        let rb = json!({"metadata": {"name": "veer", "creationTimestamp": created(5)},
                        "roleRef": {"kind": "ClusterRole", "name": "edit"},
                        "subjects": [{"kind": "ServiceAccount", "namespace": "veer", "name": "veer"},
                                     {"kind": "User", "name": "ann"}, {"kind": "User", "name": "bob"},
                                     {"kind": "Group", "name": "ops"}]});
        let role =
            json!({"metadata": {"name": "reader", "creationTimestamp": "2026-02-28T10:00:00Z"}});
        // kind, object, cells
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, Value, Value)> = vec![
            ("apps", "Deployment", deployment(1, 1), json!(["reviews", "1/1", 1, 1, "5m12s",
                "app,proxy", "reviews:1,envoy:1.30", "app=reviews,!canary,tier in (api,web),version=v1"])),
            ("apps", "Deployment", deployment(0, 3), json!(["reviews", "0/3", 0, 0, "5m12s",
                "app,proxy", "reviews:1,envoy:1.30", "app=reviews,!canary,tier in (api,web),version=v1"])),
            ("", "Service", svc, json!(["reviews", "ClusterIP", "10.96.0.12", "<none>",
                "9080/TCP,443:30443/TCP", "45s", "app=reviews,tier=web"])),
            ("", "Service", lb, json!(["edge", "LoadBalancer", "10.96.0.13", "1.2.3.4,lb.example",
                "<none>", "45s", "<none>"])),
            ("", "Service", pending, json!(["new", "LoadBalancer", "<none>", "<pending>", "<none>",
                "<unknown>", "<none>"])),
            ("", "ConfigMap", cm, json!(["settings", 3, "2d2h"])),
            ("", "Secret", secret, json!(["token", "Opaque", 2, "10s"])),
            ("", "Namespace", ns, json!(["shop", "Active", "2m10s"])),
            ("coordination.k8s.io", "Lease", lease, json!(["veer-leader", "veer-0", "5s"])),
            ("", "ServiceAccount", sa, json!(["veer", 1, "5s"])),
            ("rbac.authorization.k8s.io", "RoleBinding", rb, json!(["veer", "ClusterRole/edit", "5s",
                "ann, bob", "ops", "veer/veer"])),
            ("rbac.authorization.k8s.io", "Role", role.clone(), json!(["reader", "2026-02-28T10:00:00Z"])),
            ("apiextensions.k8s.io", "CustomResourceDefinition", role,
                json!(["reader", "2026-02-28T10:00:00Z"])),
        ];
        for (group, kind, object, want) in cases {
            let p = Printer::for_kind(group, kind);
            let cells = p.cells(&object, now());
            assert_eq!(cells.len(), p.column_definitions().len(), "{kind}");
            assert_eq!(Value::Array(cells), want, "{kind}");
        }
    }

    #[test]
    fn pods_show_readiness_status_and_restarts() {
        let running = json!({
            "metadata": {"name": "reviews-1", "creationTimestamp": created(60)},
            "spec": {"containers": [{"name": "app"}, {"name": "proxy"}], "nodeName": "node-1"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}], "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"finishedAt": created(30)}}},
                {"name": "proxy", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        let p = Printer::for_kind("", "Pod");
        assert_eq!(
            cells(&p, &running),
            json!([
                "reviews-1",
                "1/2",
                "CrashLoopBackOff",
                "2 (30s ago)",
                "60s",
                "10.0.0.7",
                "node-1",
                "<none>",
                "<none>"
            ])
        );
        let done = json!({"metadata": {"name": "job"}, "spec": {"containers": [{"name": "a"}]},
                          "status": {"phase": "Succeeded", "containerStatuses": [
                              {"name": "a", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}});
        let cells = p.cells(&done, now());
        assert_eq!((&cells[1], &cells[2]), (&json!("0/1"), &json!("Completed")));
        let opts = TableOptions {
            version: TableVersion::V1,
            include: IncludeObject::None,
            headers: true,
        };
        let t = table(&p, &[done], "7", &opts, now());
        assert_eq!(t["rows"][0]["conditions"][0]["type"], "Completed");
        assert!(t["rows"][0].get("object").is_none());
        let deleting = json!({"metadata": {"name": "x", "deletionTimestamp": created(1)},
                              "spec": {"containers": []}, "status": {"phase": "Running"}});
        assert_eq!(p.cells(&deleting, now())[2], json!("Terminating"));
    }

    #[test]
    fn events_name_their_object_and_source() {
        let ev = json!({
            "metadata": {"name": "reviews.17f", "creationTimestamp": created(100)},
            "involvedObject": {"kind": "Deployment", "name": "reviews", "fieldPath": ""},
            "reason": "RolloutStep", "type": "Normal", "message": " weight 20 \n",
            "source": {"component": "veer"}, "firstTimestamp": created(100), "lastTimestamp": created(4),
            "count": 3
        });
        assert_eq!(
            cells(&Printer::for_kind("", "Event"), &ev),
            json!([
                "4s",
                "Normal",
                "RolloutStep",
                "deployment/reviews",
                "",
                "veer",
                "weight 20",
                "100s",
                3,
                "reviews.17f"
            ])
        );
    }
}
