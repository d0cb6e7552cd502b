//! The `rollouts` bench's floor: the two requests a judged rollout makes (its VirtualService
//! applied with the new split and read back from the answer, its state ConfigMap applied,
//! the answer not parsed), sent alone through the same kube-rs client with the driver's
//! concurrency and no veer logic around them. The process's CPU for them is what a tick cannot
//! go under while each judged rollout makes them.

use std::path::Path;
use std::time::Duration;

use futures::{StreamExt, stream};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};

use veer::controller::Controller;
use veer::controller::rollouts::RolloutOptions;

use crate::figures::Figures;
use crate::processes::cpu_time;

/// A real API server's kubeconfig: the floor is measured against it too.
const REAL_KUBECONFIG_ENV: &str = "VEER_BENCH_REAL_KUBECONFIG";

/// Print the floor under the tick: its judged rollouts' requests sent alone, to the dev
/// cluster and, when one is named, to a real kube-apiserver.
pub async fn print(
    c: &Controller,
    client: &kube::Client,
    n: usize,
    tick_cpu: Duration,
    fig: &mut Figures,
    key: &dyn Fn(&str) -> String,
) {
    let Some(driver) = c.rollouts() else { return };
    let rollouts: Vec<FloorRollout> = driver
        .states()
        .map(|(id, state)| FloorRollout {
            namespace: id.namespace.clone(),
            name: id.name.clone(),
            split: (100 - state.canary_weight(), state.canary_weight()),
            state_json: state.encode(),
        })
        .collect();
    assert_eq!(rollouts.len(), n, "a state for every rollout");
    let concurrency = RolloutOptions::DEFAULT_CONCURRENCY;
    // The same requests to a real kube-apiserver too (TLS, Go's JSON and admission), when
    // one is named: `VEER_BENCH_REAL_KUBECONFIG=target/real-apiserver/kubeconfig` after
    // `scripts/real-apiserver.sh start`.
    let mut servers = vec![(
        format!("  floor: the {n} rollouts' two requests alone:"),
        "request floor CPU",
        client.clone(),
    )];
    if let Some(path) = std::env::var_os(REAL_KUBECONFIG_ENV) {
        let real = real_server(Path::new(&path), &rollouts, crate::STATE_NS, concurrency);
        servers.push((
            "    the same to a real kube-apiserver: ".into(),
            "request floor CPU, real server",
            real.await,
        ));
    }
    for (label, figure, client) in servers {
        let allocated = crate::allocations::count();
        let (vs, cm) = measure(&client, &rollouts, crate::STATE_NS, concurrency).await;
        let both = vs + cm;
        // With allocations counted: the requests' own share of a tick's.
        let allocations = match (allocated, crate::allocations::count()) {
            (Some(before), Some(after)) => {
                format!(
                    "; {:.0} allocations per rollout",
                    (after - before) as f64 / n as f64
                )
            }
            _ => String::new(),
        };
        println!(
            "{label} {:>5}{}   VirtualService applies {}, state ConfigMap applies {}; the median tick's CPU is {:.1}x it{allocations}",
            crate::ms(both),
            fig.ms(&key(figure), both),
            crate::ms(vs),
            crate::ms(cm),
            tick_cpu.as_secs_f64() / both.as_secs_f64().max(1e-9),
        );
    }
}

/// What one rollout's two requests carry.
pub struct FloorRollout {
    pub namespace: String,
    pub name: String,
    /// The weights written (v1, v2).
    pub split: (u32, u32),
    /// The state as veer stores it (its ConfigMap's one data entry).
    pub state_json: String,
}

/// Process CPU for the VirtualService applies, then for the ConfigMap applies.
pub async fn measure(
    client: &kube::Client,
    rollouts: &[FloorRollout],
    state_namespace: &str,
    concurrency: usize,
) -> (Duration, Duration) {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "virtualservices");
    // Its own field manager, forced: the bench has finished with the rollouts, and the
    // weights it writes need not be the driver's.
    let params = PatchParams::apply("veer-bench-floor").force();
    let cpu = cpu_time();
    run(rollouts, concurrency, |r| {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &r.namespace, &resource);
        let (v1, v2) = r.split;
        let body = serde_json::json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": r.name, "namespace": r.namespace},
            "spec": {"hosts": [r.name], "http": [{"name": "primary", "route": [
                {"destination": {"host": r.name, "subset": "v1"}, "weight": v1},
                {"destination": {"host": r.name, "subset": "v2"}, "weight": v2},
            ]}]},
        });
        let name = r.name.clone();
        let params = params.clone();
        async move {
            api.patch(&name, &params, &Patch::Apply(&body))
                .await
                .expect("the floor's VirtualService apply");
        }
    })
    .await;
    let virtual_services = cpu_time() - cpu;
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), state_namespace);
    let cpu = cpu_time();
    run(rollouts, concurrency, |r| {
        let name = format!("veer-bench-floor-{}.{}", r.namespace, r.name);
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": state_namespace},
            "data": {"state": r.state_json},
        });
        // As veer stores a state: the answer is not parsed.
        let request = kube::core::Request::new(api.resource_url())
            .patch(&name, &params, &Patch::Apply(&body))
            .expect("the floor's ConfigMap apply request");
        async move {
            client
                .request_text(request)
                .await
                .expect("the floor's ConfigMap apply");
        }
    })
    .await;
    (virtual_services, cpu_time() - cpu)
}

async fn run<'a, F, Fut>(rollouts: &'a [FloorRollout], concurrency: usize, request: F)
where
    F: Fn(&'a FloorRollout) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    stream::iter(rollouts.iter().map(request))
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
}

/// A client of the API server of `kubeconfig` (a real kube-apiserver, over TLS, as veer
/// meets one in a cluster), made ready for [`measure`]: Istio's networking CRDs and the
/// rollouts' namespaces made there, and the requests sent once (creating the objects, so the
/// measured round updates them as a tick does).
pub async fn real_server(
    kubeconfig: &Path,
    rollouts: &[FloorRollout],
    state_namespace: &str,
    concurrency: usize,
) -> kube::Client {
    use kube::config::{KubeConfigOptions, Kubeconfig};

    veer::http_client::install_crypto_provider();
    let file = Kubeconfig::read_from(kubeconfig).expect("the real server's kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig makes a client config");
    let client = kube::Client::try_from(config).expect("a kube client");
    let params = PatchParams::apply("veer-bench-floor").force();
    let crd = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    let crds: Api<DynamicObject> = Api::all_with(client.clone(), &crd);
    let fixture = include_str!("../../tests/fixtures/crds/istio-networking.yaml");
    for doc in serde_saphyr::from_multiple::<serde_json::Value>(fixture).expect("the CRDs parse") {
        let name = doc["metadata"]["name"].as_str().expect("a CRD's name");
        crds.patch(name, &params, &Patch::Apply(&doc))
            .await
            .expect("the Istio CRDs install on the real server");
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut names: Vec<&str> = rollouts.iter().map(|r| r.namespace.as_str()).collect();
    names.push(state_namespace);
    names.sort_unstable();
    names.dedup();
    for ns in names {
        let body =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        namespaces
            .patch(ns, &params, &Patch::Apply(&body))
            .await
            .expect("a namespace on the real server");
    }
    // The CRDs take a moment to be served: the first round retries until they are.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let vs = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1", "VirtualService"),
        "virtualservices",
    );
    let probe: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &rollouts[0].namespace, &vs);
    while probe.list(&Default::default()).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "VirtualServices not served by the real server within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    measure(&client, rollouts, state_namespace, concurrency).await;
    client
}
