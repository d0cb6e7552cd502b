//! One fixture, two API servers: the embedded one (`veer dev-cluster`) and a real
//! kube-apiserver, named by `VEER_TEST_KUBECONFIG` (which `make test` sets after starting one
//! with `scripts/real-apiserver.sh`). The conformance tests run each scenario on both with the
//! same assertions; where they disagree, the real server is right.
//!
//! The real server is shared by every test of a run, so a scenario keeps to namespaces and
//! state ConfigMaps of its own (see [`TestCluster::namespace`]). Without `VEER_TEST_KUBECONFIG`
//! a real-server test fails saying how to get one: never a silent skip.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use veer::devcluster::{DevCluster, DevClusterOptions, RunningCluster};

/// Which server a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Real,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Real => "real",
        }
    }
}

/// Our own minimal Istio networking CRDs (a real server serves no Istio kinds by itself).
pub const ISTIO_CRDS: &str = include_str!("../fixtures/crds/istio-networking.yaml");

pub struct TestCluster {
    pub backend: Backend,
    embedded: Option<RunningCluster>,
    kubeconfig: PathBuf,
    _dir: Option<tempfile::TempDir>,
    client: kube::Client,
}

/// How to get a real server, for the failure message.
const HOW_TO_GET_ONE: &str = "VEER_TEST_KUBECONFIG is not set, so there is no real \
    kube-apiserver to test against. `make test` builds (once per machine, ~2-10 minutes) and \
    starts one for the run: scripts/real-apiserver.sh run cargo test ... does the same for any \
    command; or set VEER_TEST_KUBECONFIG to the kubeconfig of a real cluster (cluster-admin; \
    the tests create and delete namespaces of their own).";

impl TestCluster {
    pub async fn start(backend: Backend) -> Self {
        match backend {
            Backend::Embedded => Self::embedded().await,
            Backend::Real => Self::real().await,
        }
    }

    /// The embedded server on an ephemeral port, with a kubeconfig for CLI runs.
    pub async fn embedded() -> Self {
        let cluster = DevCluster::start(DevClusterOptions::default())
            .await
            .expect("the dev cluster starts on an ephemeral port");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kubeconfig = dir.path().join("kubeconfig");
        cluster
            .write_kubeconfig(&kubeconfig)
            .expect("the kubeconfig is written");
        let client = connect(&kubeconfig).await;
        TestCluster {
            backend: Backend::Embedded,
            embedded: Some(cluster),
            kubeconfig,
            _dir: Some(dir),
            client,
        }
    }

    /// The real server of `VEER_TEST_KUBECONFIG`, with Istio's networking CRDs installed.
    pub async fn real() -> Self {
        let path = std::env::var_os("VEER_TEST_KUBECONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{HOW_TO_GET_ONE}"));
        assert!(
            path.is_file(),
            "VEER_TEST_KUBECONFIG={} is not a file. {HOW_TO_GET_ONE}",
            path.display()
        );
        let client = connect(&path).await;
        let cluster = TestCluster {
            backend: Backend::Real,
            embedded: None,
            kubeconfig: path,
            _dir: None,
            client,
        };
        cluster.install_istio_crds().await;
        cluster
    }

    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn is_real(&self) -> bool {
        self.backend == Backend::Real
    }

    /// The embedded server, for what only it can do (fault injection, restarts).
    pub fn embedded_server(&self) -> Option<&RunningCluster> {
        self.embedded.as_ref()
    }

    /// A namespace name of this scenario's own, e.g. `conf-drift-real`.
    pub fn namespace(&self, scenario: &str) -> String {
        format!("conf-{scenario}-{}", self.backend.name())
    }

    /// The server's `gitVersion` (`v1.20.2`).
    pub async fn server_version(&self) -> String {
        self.client
            .apiserver_version()
            .await
            .expect("the server answers /version")
            .git_version
    }

    /// Server-side apply of CRDs, then wait until each is Established.
    async fn install_istio_crds(&self) {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        );
        let api: Api<DynamicObject> = Api::all_with(self.client(), &ar);
        let mut names = Vec::new();
        for doc in serde_saphyr::from_multiple::<Value>(ISTIO_CRDS).expect("the CRD fixture parses")
        {
            let name = doc["metadata"]["name"]
                .as_str()
                .expect("a CRD has a name")
                .to_string();
            api.patch(
                &name,
                &PatchParams::apply("veer-tests").force(),
                &Patch::Apply(&doc),
            )
            .await
            .unwrap_or_else(|e| panic!("installing CRD {name} on the real server: {e}"));
            names.push(name);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in names {
            loop {
                let crd = api.get(&name).await.expect("the CRD reads back");
                let established = crd.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Established" && c["status"] == "True");
                if established {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "CRD {name} not Established within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Create a namespace (as another team's tool would: not veer).
    pub async fn create_namespace(&self, name: &str) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client());
        let mut namespace = k8s_openapi::api::core::v1::Namespace::default();
        namespace.metadata.name = Some(name.to_string());
        api.create(&kube::api::PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    }

    /// Delete a namespace and wait until it is gone (its contents go with it on both servers).
    pub async fn delete_namespace(&self, name: &str) {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client());
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return,
            Err(e) => panic!("deleting namespace {name}: {e}"),
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while api.get_opt(name).await.expect("namespace get").is_some() {
            assert!(
                Instant::now() < deadline,
                "namespace {name} still there 60 s after its deletion"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn connect(kubeconfig: &Path) -> kube::Client {
    veer::http_client::install_crypto_provider();
    veer::cluster::connect(Some(kubeconfig), None)
        .await
        .unwrap_or_else(|e| panic!("a kube client for {}: {e}", kubeconfig.display()))
}
