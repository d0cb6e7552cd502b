//! What the chart tests share: the embedded API server fixture that renders the chart with helm,
//! lookups into a render, the checks every render must pass, the golden-file comparison and
//! server-side apply of one object.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};
use serde_json::{Value, json};
use veer::devcluster::RunningCluster;

use crate::{devcluster, helm};

const RELEASE: &str = "veer";
const NAMESPACE: &str = "veer-system";
pub const URL: &str = "https://git.example.com/org/mesh.git";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart_dir() -> PathBuf {
    root().join("charts/veer")
}

pub fn full_values() -> Value {
    let path = root().join("charts/veer/ci/full-values.yaml");
    helm::yaml(&std::fs::read_to_string(&path).expect("ci/full-values.yaml"))
}

/// The defaults plus the one value without a default (the repository).
pub fn default_values() -> Value {
    json!({"config": {"source": {"url": URL}}})
}

/// An embedded API server for helm to talk to, with its kubeconfig.
pub struct Fixture {
    pub cluster: RunningCluster,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

pub async fn fixture() -> Fixture {
    let cluster = devcluster::start().await;
    let (dir, kubeconfig) = devcluster::kubeconfig(&cluster);
    Fixture {
        cluster,
        _dir: dir,
        kubeconfig,
    }
}

/// A render: the objects, in Helm's install order, Helm's manifest text and the notes.
pub struct Render {
    pub objects: Vec<Value>,
    pub text: String,
    pub notes: String,
}

impl Fixture {
    pub async fn render(&self, overrides: &[Value]) -> Result<Render, String> {
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

    pub async fn render_ok(&self, overrides: &[Value]) -> Render {
        self.render(overrides)
            .await
            .unwrap_or_else(|e| panic!("the chart renders: {e}"))
    }

    /// Register the ServiceMonitor CRD, as on a cluster with the Prometheus operator.
    pub async fn with_service_monitor_crd(self) -> Self {
        let client = devcluster::client(&self.cluster);
        apply(&client, &helm::yaml(SERVICE_MONITOR_CRD))
            .await
            .expect("the ServiceMonitor CRD");
        self
    }

    pub async fn stop(self) {
        self.cluster
            .shutdown()
            .await
            .expect("the dev cluster stops");
    }
}

pub fn kind_names(r: &Render) -> Vec<String> {
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

pub fn find<'a>(r: &'a Render, kind: &str) -> Vec<&'a Value> {
    r.objects.iter().filter(|o| o["kind"] == kind).collect()
}

pub fn one<'a>(r: &'a Render, kind: &str) -> &'a Value {
    let found = find(r, kind);
    assert_eq!(found.len(), 1, "one {kind}: {:?}", kind_names(r));
    found[0]
}

pub fn golden(name: &str, actual: &str) {
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
pub fn check_objects(r: &Render) {
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
pub fn check_no_wildcards(r: &Render) {
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
pub fn check_pod(r: &Render) -> (Value, String) {
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
pub fn check_config(r: &Render, container: &Value) -> veer::config::Config {
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

pub fn env_names(container: &Value) -> Vec<String> {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect()
}

pub const SERVICE_MONITOR_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
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

pub async fn apply(client: &kube::Client, object: &Value) -> kube::Result<DynamicObject> {
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
