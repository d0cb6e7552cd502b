//! Fields a real API server refuses to change once an object exists, with the 422 field errors
//! it answers (recorded from kube-apiserver v1.20.2; the rules and texts are the same in
//! current releases unless noted):
//! - apps/v1 Deployment, ReplicaSet, DaemonSet: `spec.selector`
//!   (`Invalid value: v1.LabelSelector{…}: field is immutable`, the new selector as Go's `%#v`
//!   prints it). StatefulSet: everything in `spec` but `replicas`, `template` and
//!   `updateStrategy` (one `spec: Forbidden` error; v1.20's text).
//! - core/v1 Service: the primary cluster IP once allocated (`spec.clusterIPs[0]`), except
//!   for ExternalName services and a headless one staying headless.
//! - core/v1 ConfigMap and Secret with `immutable: true`: `immutable` itself, `data`,
//!   `binaryData` (a Secret's `stringData` counts as the `data` it is folded into); a Secret's
//!   `type` always.
//!
//! Values compare as Kubernetes' semantic equality does: an absent, `null`, empty list and
//! empty map are the same. Pure functions; `store` calls them on every update and patch,
//! dry run included, before anything is stored. Kinds this server does not serve (Job,
//! ReplicaSet, ...) cannot reach them; the apps rules are here so that serving such a kind
//! needs no new rule.
//!
//! How Go prints the values those errors quote is in `go`.

use base64::Engine as _;
use serde_json::{Map, Value};

mod go;

use go::{go_label_selector, go_quote, go_strings};

/// The field error of a ConfigMap or Secret write while `immutable` is set.
const IMMUTABLE_WHEN_SET: &str = "Forbidden: field is immutable when `immutable` is set";

/// v1.20's text; current releases list more fields (`minReadySeconds`, `ordinals`, ...).
const STATEFUL_SET_SPEC: &str = "Forbidden: updates to statefulset spec for fields other than 'replicas', 'template', and 'updateStrategy' are forbidden";

/// The field errors (`(field path, message)`, in the real server's order) an update from `old`
/// to `new` of a kind of `group` meets; empty when the update may go ahead. `new` is the
/// object as it would be stored (defaults filled in).
pub fn immutable_violations(
    group: &str,
    kind: &str,
    old: &Value,
    new: &Value,
) -> Vec<(&'static str, String)> {
    match (group, kind) {
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => selector(old, new),
        ("apps", "StatefulSet") => stateful_set(old, new),
        ("", "Service") => service(old, new),
        ("", "ConfigMap") => frozen(
            old,
            new,
            &[("data", "/data"), ("binaryData", "/binaryData")],
        ),
        ("", "Secret") => {
            let mut out = Vec::new();
            let (old_type, new_type) = (text(old, "/type"), text(new, "/type"));
            if old_type != new_type {
                out.push((
                    "type",
                    format!("Invalid value: {}: field is immutable", go_quote(new_type)),
                ));
            }
            let (was, is) = (as_stored(old), as_stored(new));
            out.extend(frozen(&was, &is, &[("data", "/data")]));
            out
        }
        _ => Vec::new(),
    }
}

/// What the server allocated and an update may leave out (a Service's cluster IPs): kept from
/// `old`, as current servers do, rather than allocated anew. v1.20 refuses such an update
/// (`spec.clusterIPs[0]: Invalid value: []string(nil): primary clusterIP can not be unset`).
pub fn keep_allocated(group: &str, kind: &str, old: &Value, new: &mut Value) {
    if (group, kind) != ("", "Service") || external_name(old) || external_name(new) {
        return;
    }
    let old_spec = match old.get("spec") {
        Some(Value::Object(s)) => s,
        _ => return,
    };
    let Some(root) = new.as_object_mut() else {
        return;
    };
    let spec = root
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    for field in ["clusterIP", "clusterIPs"] {
        let missing = match spec.get(field) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if missing && let Some(v) = old_spec.get(field) {
            spec.insert(field.to_string(), v.clone());
        }
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A value as Kubernetes' semantic equality sees it: `null`, `[]` and `{}` are absent.
fn semantic(value: Option<&Value>) -> Option<Value> {
    match value? {
        Value::Null => None,
        Value::Object(m) => {
            let kept: Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| semantic(Some(v)).map(|v| (k.clone(), v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(a) if a.is_empty() => None,
        Value::Array(a) => Some(Value::Array(
            a.iter()
                .map(|v| semantic(Some(v)).unwrap_or(Value::Null))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

fn same(old: Option<&Value>, new: Option<&Value>) -> bool {
    semantic(old) == semantic(new)
}

fn selector(old: &Value, new: &Value) -> Vec<(&'static str, String)> {
    let (was, is) = (old.pointer("/spec/selector"), new.pointer("/spec/selector"));
    if same(was, is) {
        return Vec::new();
    }
    vec![(
        "spec.selector",
        format!(
            "Invalid value: {}: field is immutable",
            go_label_selector(is)
        ),
    )]
}

fn stateful_set(old: &Value, new: &Value) -> Vec<(&'static str, String)> {
    let rest = |o: &Value| {
        let mut spec = o.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(m) = spec.as_object_mut() {
            for mutable in ["replicas", "template", "updateStrategy"] {
                m.remove(mutable);
            }
        }
        spec
    };
    if same(Some(&rest(old)), Some(&rest(new))) {
        Vec::new()
    } else {
        vec![("spec", STATEFUL_SET_SPEC.to_string())]
    }
}

fn external_name(service: &Value) -> bool {
    text(service, "/spec/type") == "ExternalName"
}

/// A Service's cluster IPs, as the server sees them before validating an update: `clusterIPs`,
/// or the one `clusterIP` when the list is empty or was left as it was while `clusterIP`
/// changed (a single-stack client that only knows `clusterIP`).
fn cluster_ips(service: &Value, old: Option<&Value>) -> Vec<String> {
    let ip = text(service, "/spec/clusterIP");
    let ips: Vec<String> = service
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect();
    let stale = old.is_some_and(|o| {
        text(o, "/spec/clusterIP") != ip
            && o.pointer("/spec/clusterIPs") == service.pointer("/spec/clusterIPs")
    });
    if !ip.is_empty() && (ips.is_empty() || stale) {
        vec![ip.to_string()]
    } else {
        ips
    }
}

fn service(old: &Value, new: &Value) -> Vec<(&'static str, String)> {
    if external_name(old) || external_name(new) {
        return Vec::new();
    }
    let headless = |s: &Value| text(s, "/spec/clusterIP") == "None";
    if headless(old) && headless(new) {
        return Vec::new();
    }
    let was = cluster_ips(old, None);
    let Some(primary) = was.first() else {
        return Vec::new();
    };
    let is = cluster_ips(new, Some(old));
    match is.first() {
        None => vec![(
            "spec.clusterIPs[0]",
            format!(
                "Invalid value: {}: primary clusterIP can not be unset",
                go_strings(None)
            ),
        )],
        Some(p) if p != primary => vec![(
            "spec.clusterIPs[0]",
            format!(
                "Invalid value: {}: may not change once set",
                go_strings(Some(&is))
            ),
        )],
        Some(_) => Vec::new(),
    }
}

/// A ConfigMap's or Secret's rule: while `old` says `immutable: true`, `immutable` stays
/// true and `fields` (name, JSON pointer) stay as they are.
fn frozen(
    old: &Value,
    new: &Value,
    fields: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        out.push(("immutable", IMMUTABLE_WHEN_SET.to_string()));
    }
    for (field, pointer) in fields {
        if !same(old.pointer(pointer), new.pointer(pointer)) {
            out.push((*field, IMMUTABLE_WHEN_SET.to_string()));
        }
    }
    out
}

/// A Secret's `immutable` and `data` as a real server stores them: `stringData` folded into
/// `data` (base64), winning.
fn as_stored(secret: &Value) -> Value {
    let mut data = match secret.get("data") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if let Some(Value::Object(strings)) = secret.get("stringData") {
        for (k, v) in strings {
            let plain = v.as_str().unwrap_or("");
            let encoded = base64::engine::general_purpose::STANDARD.encode(plain);
            data.insert(k.clone(), Value::String(encoded));
        }
    }
    let mut stored = Map::new();
    if let Some(i) = secret.get("immutable") {
        stored.insert("immutable".into(), i.clone());
    }
    stored.insert("data".into(), Value::Object(data));
    Value::Object(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FROZEN: &str = "Forbidden: field is immutable when `immutable` is set";

    fn deployment(selector: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"replicas": 1, "selector": selector,
                        "template": {"metadata": {"labels": {"app": "web"}}}}})
    }

    fn service(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": spec})
    }

    #[test]
    fn violations_as_the_real_server_words_them() {
        let web = deployment(json!({"matchLabels": {"app": "web"}}));
        let frozen_cm = json!({"kind": "ConfigMap", "immutable": true, "data": {"mode": "a"}});
        let frozen_secret =
            json!({"kind": "Secret", "type": "Opaque", "immutable": true, "data": {"k": "YQ=="}});
        let ip =
            |ip: &str| service(json!({"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip]}));
        #[allow(clippy::type_complexity)]
        let table: Vec<(&str, &str, &str, Value, Value, Vec<(&str, &str)>)> = vec![
            (
                "selector changed (message recorded from v1.20.2)",
                "apps",
                "Deployment",
                web.clone(),
                deployment(json!({"matchLabels": {"app": "web2"}})),
                vec![(
                    "spec.selector",
                    r#"Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#,
                )],
            ),
            (
                "selector with expressions, labels sorted and quoted as Go does",
                "apps",
                "DaemonSet",
                web.clone(),
                deployment(json!({
                    "matchLabels": {"b": "x\"y", "app": "web", "a": "1"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                         {"key": "z", "operator": "Exists"}]})),
                vec![(
                    "spec.selector",
                    r#"Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"a":"1", "app":"web", "b":"x\"y"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"In", Values:[]string{"a", "b"}}, v1.LabelSelectorRequirement{Key:"z", Operator:"Exists", Values:[]string(nil)}}}: field is immutable"#,
                )],
            ),
            (
                "expressions only",
                "apps",
                "ReplicaSet",
                web.clone(),
                deployment(
                    json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}),
                ),
                vec![(
                    "spec.selector",
                    r#"Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"app", Operator:"In", Values:[]string{"web"}}}}: field is immutable"#,
                )],
            ),
            (
                "an empty matchExpressions is the same selector",
                "apps",
                "Deployment",
                web.clone(),
                deployment(json!({"matchLabels": {"app": "web"}, "matchExpressions": []})),
                vec![],
            ),
            (
                "the rest of the spec may change",
                "apps",
                "Deployment",
                web.clone(),
                {
                    let mut d = web.clone();
                    d["spec"]["replicas"] = json!(3);
                    d["spec"]["template"]["metadata"]["labels"]["v"] = json!("2");
                    d
                },
                vec![],
            ),
            (
                "a StatefulSet's selector is part of its frozen spec (v1.20's text)",
                "apps",
                "StatefulSet",
                web.clone(),
                deployment(json!({"matchLabels": {"app": "web2"}})),
                vec![("spec", STATEFUL_SET_SPEC)],
            ),
            (
                "a StatefulSet's replicas may change",
                "apps",
                "StatefulSet",
                web.clone(),
                {
                    let mut d = web.clone();
                    d["spec"]["replicas"] = json!(5);
                    d
                },
                vec![],
            ),
            (
                "immutable ConfigMap: data",
                "",
                "ConfigMap",
                frozen_cm.clone(),
                json!({"kind": "ConfigMap", "immutable": true, "data": {"mode": "b"}}),
                vec![("data", FROZEN)],
            ),
            (
                "immutable ConfigMap: everything, in the real server's order",
                "",
                "ConfigMap",
                frozen_cm.clone(),
                json!({"kind": "ConfigMap", "immutable": false, "data": {"mode": "b"},
                       "binaryData": {"x": "aGk="}}),
                vec![
                    ("immutable", FROZEN),
                    ("data", FROZEN),
                    ("binaryData", FROZEN),
                ],
            ),
            (
                "immutable ConfigMap: immutable left out",
                "",
                "ConfigMap",
                frozen_cm.clone(),
                json!({"kind": "ConfigMap", "data": {"mode": "a"}}),
                vec![("immutable", FROZEN)],
            ),
            (
                "immutable ConfigMap: metadata may change, empty data is no data",
                "",
                "ConfigMap",
                json!({"kind": "ConfigMap", "immutable": true}),
                json!({"kind": "ConfigMap", "immutable": true, "data": {},
                       "metadata": {"labels": {"x": "y"}}}),
                vec![],
            ),
            (
                "a mutable ConfigMap changes freely and may become immutable",
                "",
                "ConfigMap",
                json!({"kind": "ConfigMap", "data": {"mode": "a"}}),
                json!({"kind": "ConfigMap", "immutable": true, "data": {"mode": "b"}}),
                vec![],
            ),
            (
                "immutable Secret: data",
                "",
                "Secret",
                frozen_secret.clone(),
                json!({"kind": "Secret", "type": "Opaque", "immutable": true, "data": {"k": "Yg=="}}),
                vec![("data", FROZEN)],
            ),
            (
                "immutable Secret: stringData is folded into data",
                "",
                "Secret",
                frozen_secret.clone(),
                json!({"kind": "Secret", "type": "Opaque", "immutable": true,
                       "data": {"k": "YQ=="}, "stringData": {"k": "b"}}),
                vec![("data", FROZEN)],
            ),
            (
                "immutable Secret: stringData that folds into the same data",
                "",
                "Secret",
                frozen_secret.clone(),
                json!({"kind": "Secret", "type": "Opaque", "immutable": true, "stringData": {"k": "a"}}),
                vec![],
            ),
            (
                "Secret type, then immutable, then data",
                "",
                "Secret",
                frozen_secret.clone(),
                json!({"kind": "Secret", "type": "kubernetes.io/basic-auth", "immutable": false,
                       "data": {"k": "Yg=="}}),
                vec![
                    (
                        "type",
                        r#"Invalid value: "kubernetes.io/basic-auth": field is immutable"#,
                    ),
                    ("immutable", FROZEN),
                    ("data", FROZEN),
                ],
            ),
            (
                "a mutable Secret's type is still immutable",
                "",
                "Secret",
                json!({"kind": "Secret", "type": "Opaque", "data": {"k": "YQ=="}}),
                json!({"kind": "Secret", "type": "kubernetes.io/basic-auth", "data": {"username": "YQ=="}}),
                vec![(
                    "type",
                    r#"Invalid value: "kubernetes.io/basic-auth": field is immutable"#,
                )],
            ),
            (
                "clusterIP changed alone (as an apply or merge patch leaves clusterIPs)",
                "",
                "Service",
                ip("10.96.0.5"),
                service(
                    json!({"type": "ClusterIP", "clusterIP": "10.0.0.77", "clusterIPs": ["10.96.0.5"]}),
                ),
                vec![(
                    "spec.clusterIPs[0]",
                    r#"Invalid value: []string{"10.0.0.77"}: may not change once set"#,
                )],
            ),
            (
                "clusterIPs changed",
                "",
                "Service",
                ip("10.96.0.5"),
                ip("10.0.0.79"),
                vec![(
                    "spec.clusterIPs[0]",
                    r#"Invalid value: []string{"10.0.0.79"}: may not change once set"#,
                )],
            ),
            (
                "cluster IPs unset (v1.20's answer; the store keeps them first)",
                "",
                "Service",
                ip("10.96.0.5"),
                service(json!({"type": "ClusterIP"})),
                vec![(
                    "spec.clusterIPs[0]",
                    "Invalid value: []string(nil): primary clusterIP can not be unset",
                )],
            ),
            (
                "same cluster IP",
                "",
                "Service",
                ip("10.96.0.5"),
                ip("10.96.0.5"),
                vec![],
            ),
            (
                "headless stays headless",
                "",
                "Service",
                ip("None"),
                ip("None"),
                vec![],
            ),
            (
                "to ExternalName",
                "",
                "Service",
                ip("10.96.0.5"),
                service(json!({"type": "ExternalName", "externalName": "x.example.com"})),
                vec![],
            ),
            (
                "kinds without rules",
                "networking.istio.io",
                "VirtualService",
                json!({"spec": {"hosts": ["a"]}}),
                json!({"spec": {"hosts": ["b"]}}),
                vec![],
            ),
        ];
        for (case, group, kind, old, new, want) in table {
            let got = immutable_violations(group, kind, &old, &new);
            let got: Vec<(&str, &str)> = got.iter().map(|(f, m)| (*f, m.as_str())).collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn a_service_update_keeps_the_allocated_cluster_ips() {
        let old = service(json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"]}));
        let mut new = service(json!({"clusterIP": "", "ports": []}));
        keep_allocated("", "Service", &old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.5");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.5"]));
        assert!(immutable_violations("", "Service", &old, &new).is_empty());
        let mut moved = service(json!({"clusterIP": "10.0.0.1"}));
        keep_allocated("", "Service", &old, &mut moved);
        assert_eq!(
            moved["spec"]["clusterIP"], "10.0.0.1",
            "a stated IP is kept"
        );
        let mut external = service(json!({"type": "ExternalName"}));
        keep_allocated("", "Service", &old, &mut external);
        assert!(external["spec"].get("clusterIP").is_none());
        let mut cm = json!({"data": {}});
        keep_allocated("", "ConfigMap", &old, &mut cm);
        assert_eq!(cm, json!({"data": {}}));
    }
}
