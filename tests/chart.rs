//! The Helm chart, through the real `helm` (3.17, fetched by `scripts/install-deps.sh`):
//! `helm lint --strict`, then `helm install --dry-run=server` against the embedded API server
//! with the default values and with `ci/full-values.yaml`; every document is checked (valid
//! YAML, apiVersion/kind/name, RBAC without wildcards, a non-root read-only pod, probes,
//! secrets mounted where veer.yaml points, veer.yaml accepted by `veer::config::resolve`) and
//! applied to the embedded API server with server-side apply. The manifests are golden files:
//! `UPDATE_GOLDEN=1 cargo test --test chart`.

#[path = "support/devcluster.rs"]
mod devcluster;
#[path = "support/helm.rs"]
mod helm;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};
use serde_json::{Value, json};
use veer::devcluster::RunningCluster;

const RELEASE: &str = "veer";
const NAMESPACE: &str = "veer-system";
const URL: &str = "https://git.example.com/org/mesh.git";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("charts/veer")
}

fn full_values() -> Value {
    let path = root().join("charts/veer/ci/full-values.yaml");
    helm::yaml(&std::fs::read_to_string(&path).expect("ci/full-values.yaml"))
}

/// The defaults plus the one value without a default (the repository).
fn default_values() -> Value {
    json!({"config": {"source": {"url": URL}}})
}

/// An embedded API server for helm to talk to, with its kubeconfig.
struct Fixture {
    cluster: RunningCluster,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn fixture() -> Fixture {
    let cluster = devcluster::start().await;
    let (dir, kubeconfig) = devcluster::kubeconfig(&cluster);
    Fixture {
        cluster,
        _dir: dir,
        kubeconfig,
    }
}

/// A render: the objects, in Helm's install order, Helm's manifest text and the notes.
struct Render {
    objects: Vec<Value>,
    text: String,
    notes: String,
}

impl Fixture {
    async fn render(&self, overrides: &[Value]) -> Result<Render, String> {
        let kubeconfig = self.kubeconfig.clone();
        let overrides = overrides.to_vec();
        // helm blocks; the API server it talks to must keep serving meanwhile.
        let rendered = tokio::task::spawn_blocking(move || {
            helm::dry_run_install(&kubeconfig, &chart_dir(), RELEASE, NAMESPACE, &overrides)
        })
        .await
        .expect("the helm task")?;
        let mut objects = Vec::new();
        for doc in helm::documents(&rendered.manifest) {
            let object: Value = serde_saphyr::from_str(&doc)
                .map_err(|e| format!("a document is not valid YAML: {e}\n{doc}"))?;
            objects.push(object);
        }
        Ok(Render {
            objects,
            text: rendered.manifest,
            notes: rendered.notes,
        })
    }

    async fn render_ok(&self, overrides: &[Value]) -> Render {
        self.render(overrides)
            .await
            .unwrap_or_else(|e| panic!("the chart renders: {e}"))
    }

    /// Register the ServiceMonitor CRD, as on a cluster with the Prometheus operator.
    async fn with_service_monitor_crd(self) -> Self {
        let client = devcluster::client(&self.cluster);
        apply(&client, &helm::yaml(SERVICE_MONITOR_CRD))
            .await
            .expect("the ServiceMonitor CRD");
        self
    }

    async fn stop(self) {
        self.cluster
            .shutdown()
            .await
            .expect("the dev cluster stops");
    }
}

fn kind_names(r: &Render) -> Vec<String> {
    r.objects
        .iter()
        .map(|o| {
            format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn find<'a>(r: &'a Render, kind: &str) -> Vec<&'a Value> {
    r.objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(r: &'a Render, kind: &str) -> &'a Value {
    let found = find(r, kind);
    assert_eq!(found.len(), 1, "one {kind}: {:?}", kind_names(r));
    found[0]
}

fn golden(name: &str, actual: &str) {
    let path: PathBuf = root().join("tests/fixtures/chart").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `UPDATE_GOLDEN=1 cargo test --test chart` and read the result",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the render; if the change is intended, run `UPDATE_GOLDEN=1 cargo \
         test --test chart` and review the diff.\n{}",
        path.display(),
        similar::TextDiff::from_lines(&expected, actual)
            .unified_diff()
            .header("golden", "render")
    );
}

/// Checks every render must pass.
fn check_objects(r: &Render) {
    let mut seen = BTreeSet::new();
    for o in &r.objects {
        for field in ["apiVersion", "kind"] {
            assert!(
                o[field].as_str().is_some_and(|s| !s.is_empty()),
                "no {field}: {o}"
            );
        }
        let name = o["metadata"]["name"].as_str().unwrap_or("");
        assert!(
            !name.is_empty()
                && name.len() <= 63
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "metadata.name {name:?} is not a DNS label: {o}"
        );
        let key = (
            o["kind"].to_string(),
            o["metadata"]["namespace"].to_string(),
            name.to_string(),
        );
        assert!(seen.insert(key.clone()), "{key:?} is rendered twice");
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm",
            "{o}"
        );
    }
}

/// No rule grants `*` (API group, resource or verb).
fn check_no_wildcards(r: &Render) {
    let mut rules = 0;
    for o in find(r, "ClusterRole").into_iter().chain(find(r, "Role")) {
        for rule in o["rules"].as_array().expect("rules") {
            rules += 1;
            for field in ["apiGroups", "resources", "verbs"] {
                let items = rule[field].as_array().expect("a list");
                assert!(!items.is_empty(), "{field} is empty in {rule}");
                assert!(
                    items
                        .iter()
                        .all(|i| i.as_str().is_some_and(|s| !s.contains('*'))),
                    "a wildcard in {field} of {rule} ({})",
                    o["metadata"]["name"]
                );
            }
        }
    }
    assert!(rules > 0, "no RBAC rules rendered");
}

/// Non-root, read-only root filesystem with writable emptyDirs for the cache and /tmp,
/// resources, probes on the server port.
fn check_pod(r: &Render) -> (Value, String) {
    let deployment = one(r, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{pod}");
    assert!(
        pod["securityContext"]["runAsUser"]
            .as_u64()
            .is_some_and(|u| u > 0),
        "{pod}"
    );
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{sc}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
    assert_eq!(sc["runAsNonRoot"], true, "{sc}");
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{sc}");
    for r in ["requests", "limits"] {
        assert!(
            c["resources"][r]["memory"].is_string(),
            "resources.{r}.memory: {c}"
        );
    }
    let port = c["ports"][0]["containerPort"].as_u64().expect("a port");
    assert_eq!(c["ports"][0]["name"], "http");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let env = |name: &str| {
        c["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        env("VEER_LISTEN"),
        Some(json!(format!("0.0.0.0:{port}"))),
        "the server listens on the probed port"
    );
    // Every writable path is an emptyDir.
    let volumes = pod["volumes"].as_array().expect("volumes");
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("volume {name}"))
    };
    for m in c["volumeMounts"].as_array().expect("volumeMounts") {
        if m["readOnly"] != true {
            assert!(
                volume(m["name"].as_str().expect("a name"))["emptyDir"].is_object(),
                "{m} is writable but not an emptyDir"
            );
        }
    }
    assert_eq!(c["args"][0], "run");
    (c.clone(), veer_yaml(r))
}

fn veer_yaml(r: &Render) -> String {
    one(r, "ConfigMap")["data"]["veer.yaml"]
        .as_str()
        .expect("veer.yaml in the ConfigMap")
        .to_string()
}

/// veer.yaml passes veer's own configuration check, and every `{file: ...}` it names is in a
/// mounted Secret (by the key the values chose).
fn check_config(r: &Render, container: &Value) -> veer::config::Config {
    let text = veer_yaml(r);
    let config = resolve(&text);
    let deployment = one(r, "Deployment");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes");
    let mounts = container["volumeMounts"].as_array().expect("volumeMounts");
    let mounted_secret = |path: &str| -> Option<String> {
        let m = mounts.iter().find(|m| {
            m["mountPath"]
                .as_str()
                .is_some_and(|p| path.starts_with(&format!("{p}/")))
        })?;
        let v = volumes.iter().find(|v| v["name"] == m["name"])?;
        v["secret"]["secretName"].as_str().map(str::to_string)
    };
    let parsed: Value = serde_saphyr::from_str(&text).expect("veer.yaml is YAML");
    let mut files = Vec::new();
    collect_files(&parsed, &mut files);
    for file in &files {
        assert!(
            mounted_secret(file).is_some(),
            "veer.yaml reads {file}, which no mounted Secret provides"
        );
    }
    let cache = config.cache_dir.to_string_lossy().into_owned();
    assert!(
        mounts.iter().any(|m| m["mountPath"] == cache.as_str()
            && volumes
                .iter()
                .any(|v| v["name"] == m["name"] && v["emptyDir"].is_object())),
        "cacheDir {cache} is an emptyDir mount"
    );
    config
}

/// `veer::config::resolve` on the rendered veer.yaml: the chart's config must be one veer
/// accepts.
fn resolve(text: &str) -> veer::config::Config {
    veer::config::resolve(Some(("veer.yaml", text)), &Default::default())
        .unwrap_or_else(|e| panic!("the rendered veer.yaml is refused: {e}\n{text}"))
}

fn collect_files(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let (1, Some(Value::String(f))) = (m.len(), m.get("file")) {
                out.push(f.clone());
            }
            for (k, x) in m {
                // ssh keys are plain paths.
                if (k == "privateKey" || k == "knownHosts")
                    && let Value::String(f) = x
                {
                    out.push(f.clone());
                }
                collect_files(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_files(x, out)),
        _ => {}
    }
}

fn env_names(container: &Value) -> Vec<String> {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn helm_lint_strict_passes_with_the_default_and_every_option() {
    for values in [vec![default_values()], vec![full_values()]] {
        let report = helm::lint(&chart_dir(), &values)
            .unwrap_or_else(|report| panic!("helm lint --strict fails:\n{report}"));
        assert!(
            report.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{report}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_values_render_a_least_privilege_non_root_install() {
    let k = fixture().await;
    let r = k.render_ok(&[default_values()]).await;
    check_objects(&r);
    assert_eq!(
        kind_names(&r),
        [
            "ServiceAccount veer-system/veer",
            "ConfigMap veer-system/veer",
            "ClusterRole /veer",
            "ClusterRoleBinding /veer",
            "Service veer-system/veer",
            "Deployment veer-system/veer",
        ]
    );
    check_no_wildcards(&r);
    let (container, _) = check_pod(&r);
    let config = check_config(&r, &container);
    assert_eq!(config.cluster.state_namespace, "veer-system");
    assert_eq!(
        config.source.as_ref().map(|s| s.spec.url.to_string()),
        Some(URL.to_string())
    );
    assert!(
        !env_names(&container).contains(&"VEER_LEADER_ELECTION".to_string()),
        "one replica: no leader election"
    );
    assert_eq!(one(&r, "Deployment")["spec"]["replicas"], 1);
    assert!(r.notes.contains("kubectl veer status"), "{}", r.notes);
    assert!(r.notes.contains("Push webhooks are off"), "{}", r.notes);
    golden("default.yaml", &r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_option_renders_namespaced_rbac_monitoring_two_replicas_and_secrets() {
    let k = fixture().await.with_service_monitor_crd().await;
    let r = k.render_ok(&[full_values()]).await;
    check_objects(&r);
    check_no_wildcards(&r);
    let names = kind_names(&r);
    for expected in [
        "Role veer-system/veer-prod",
        "RoleBinding veer-system/veer-prod",
        "Role bookinfo/veer-prod",
        "RoleBinding bookinfo/veer-prod",
        "Role shop/veer-prod",
        "RoleBinding shop/veer-prod",
        "Role veer-system/veer-prod-leader-election",
        "RoleBinding veer-system/veer-prod-leader-election",
        "ServiceMonitor veer-system/veer-prod",
        "ServiceAccount veer-system/veer-controller",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} in {names:?}"
        );
    }
    assert!(
        find(&r, "ClusterRole").is_empty() && find(&r, "ClusterRoleBinding").is_empty(),
        "namespaced mode grants nothing cluster-wide: {names:?}"
    );
    // The leader-election Role touches only Leases.
    let lease_role = find(&r, "Role")
        .into_iter()
        .find(|o| o["metadata"]["name"] == "veer-prod-leader-election")
        .expect("the leader election Role");
    assert_eq!(
        lease_role["rules"],
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                "verbs": ["get", "create", "update", "patch"]}])
    );
    let (container, text) = check_pod(&r);
    let config = check_config(&r, &container);
    assert_eq!(one(&r, "Deployment")["spec"]["replicas"], 2);
    let env = env_names(&container);
    for name in [
        "VEER_LEADER_ELECTION",
        "VEER_LEADER_ELECTION_NAMESPACE",
        "VEER_LEADER_ELECTION_LEASE",
        "VEER_LEADER_ELECTION_LEASE_DURATION",
        "VEER_LEADER_ELECTION_RENEW_PERIOD",
        "VEER_POD_NAME",
        "RUST_BACKTRACE",
    ] {
        assert!(env.contains(&name.to_string()), "{name} in {env:?}");
    }
    // Secrets: each mounted from its Secret and referenced as a file.
    for (secret, file) in [
        ("veer-git", "/etc/veer/secrets/git/password"),
        ("veer-slack", "/etc/veer/secrets/slack/url"),
        ("veer-webhook", "/etc/veer/secrets/webhook/hmac"),
    ] {
        assert!(text.contains(file), "{file} in veer.yaml:\n{text}");
        assert!(
            one(&r, "Deployment")["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .expect("volumes")
                .iter()
                .any(|v| v["secret"]["secretName"] == secret),
            "Secret {secret} is mounted"
        );
    }
    assert!(!config.sync.prune && config.sync.force_conflicts);
    assert_eq!(config.cluster.state_name, "veer-prod-state");
    let monitor = one(&r, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(one(&r, "Service")["spec"]["ports"][0]["targetPort"], "http");
    assert!(
        r.notes.contains("Leader election is on (2 replicas)"),
        "{}",
        r.notes
    );
    assert!(r.notes.contains("bookinfo, shop"), "{}", r.notes);
    golden("full-values.yaml", &r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_that_cannot_work_are_refused_and_leader_election_follows_replicas() {
    let k = fixture().await;
    let err = k
        .render(&[])
        .await
        .err()
        .expect("no repository is an error");
    assert!(err.contains("config.source.url is required"), "{err}");

    let err = k
        .render(&[
            default_values(),
            json!({"replicaCount": 2, "leaderElection": {"enabled": false}}),
        ])
        .await
        .err()
        .expect("two writers are refused");
    assert!(err.contains("every replica would write"), "{err}");

    let err = k
        .render(&[
            default_values(),
            json!({"secrets": {"git": {"existingSecret": "g", "type": "basic"}}}),
        ])
        .await
        .err()
        .expect("basic auth needs a user name");
    assert!(err.contains("secrets.git.username is required"), "{err}");

    type Case = (Value, bool);
    let cases: [Case; 4] = [
        (json!({}), false),
        (json!({"replicaCount": 3}), true),
        (json!({"leaderElection": {"enabled": true}}), true),
        (
            json!({"replicaCount": 2, "leaderElection": {"enabled": true}}),
            true,
        ),
    ];
    for (values, elected) in cases {
        let r = k.render_ok(&[default_values(), values.clone()]).await;
        let (container, _) = check_pod(&r);
        assert_eq!(
            env_names(&container).contains(&"VEER_LEADER_ELECTION".to_string()),
            elected,
            "{values}"
        );
        assert_eq!(
            kind_names(&r).contains(&"Role veer-system/veer-leader-election".to_string()),
            elected,
            "{values}"
        );
    }

    // The ssh and token forms of git credentials resolve too.
    for (url, git) in [
        (URL, json!({"existingSecret": "g", "type": "token"})),
        (
            "ssh://git@git.example.com/org/mesh.git",
            json!({"existingSecret": "g", "type": "ssh", "sshPassphraseKey": "passphrase"}),
        ),
    ] {
        let r = k
            .render_ok(&[
                json!({"config": {"source": {"url": url}}}),
                json!({"secrets": {"git": git}}),
            ])
            .await;
        let (container, _) = check_pod(&r);
        check_config(&r, &container);
    }
}

/// A change to veer.yaml changes the pod template, so the pods restart and read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_rolls_the_pods() {
    let k = fixture().await;
    let checksum = |r: &Render| {
        one(r, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            .clone()
    };
    let a = k.render_ok(&[default_values()]).await;
    let b = k
        .render_ok(&[
            default_values(),
            json!({"config": {"sync": {"prune": false}}}),
        ])
        .await;
    assert!(checksum(&a).as_str().is_some_and(|s| s.len() == 64));
    assert_ne!(checksum(&a), checksum(&b));
}

const SERVICE_MONITOR_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

async fn apply(client: &kube::Client, object: &Value) -> kube::Result<DynamicObject> {
    let (group, version) = match object["apiVersion"].as_str().expect("apiVersion") {
        v if v.contains('/') => v.split_once('/').expect("group/version"),
        v => ("", v),
    };
    let gvk = GroupVersionKind::gvk(group, version, object["kind"].as_str().expect("kind"));
    let (resource, caps) = discovery::pinned_kind(client, &gvk).await?;
    let name = object["metadata"]["name"].as_str().expect("name");
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            object["metadata"]["namespace"]
                .as_str()
                .expect("namespaced objects name their namespace"),
            &resource,
        ),
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    api.patch(name, &PatchParams::apply("helm"), &Patch::Apply(object))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_api_server_accepts_every_rendered_object() {
    let k = fixture().await;
    let client = devcluster::client(&k.cluster);
    let namespace =
        |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    for ns in ["veer-system", "bookinfo", "shop"] {
        apply(&client, &namespace(ns)).await.expect("a namespace");
    }
    // Without its CRD the ServiceMonitor kind does not exist (a cluster without the
    // Prometheus operator): helm refuses the install and says why.
    let err = k
        .render(&[full_values()])
        .await
        .err()
        .expect("no ServiceMonitor CRD yet");
    assert!(err.contains("ensure CRDs are installed first"), "{err}");
    apply(&client, &helm::yaml(SERVICE_MONITOR_CRD))
        .await
        .expect("the ServiceMonitor CRD");
    for values in [default_values(), full_values()] {
        let r = k.render_ok(&[values]).await;
        for object in &r.objects {
            let stored = apply(&client, object).await.unwrap_or_else(|e| {
                panic!(
                    "the server refuses {} {}: {e}",
                    object["kind"], object["metadata"]["name"]
                )
            });
            // What was applied is what is stored (no field dropped on the way).
            let stored = serde_json::to_value(&stored).expect("JSON");
            for field in ["spec", "data", "rules", "roleRef", "subjects"] {
                if !object[field].is_null() {
                    let mut applied = object[field].clone();
                    let mut live = stored[field].clone();
                    // The server fills in defaults: compare only what the chart set.
                    retain_applied(&mut live, &mut applied);
                    assert_eq!(live, applied, "{} {field}", object["kind"]);
                }
            }
        }
    }
    k.stop().await;
}

/// Drop from `live` the map keys `applied` does not set (server defaults).
fn retain_applied(live: &mut Value, applied: &mut Value) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            l.retain(|k, _| a.contains_key(k));
            for (k, v) in l.iter_mut() {
                if let Some(av) = a.get_mut(k) {
                    retain_applied(v, av);
                }
            }
        }
        (Value::Array(l), Value::Array(a)) if l.len() == a.len() => {
            for (lv, av) in l.iter_mut().zip(a.iter_mut()) {
                retain_applied(lv, av);
            }
        }
        _ => {}
    }
}
