//! Immutable fields: refusals veer's offline validation cannot foresee and a server makes (what
//! a server-side dry run of a revision must catch). Both servers refuse a changed Deployment
//! `spec.selector` and any change to an `immutable: true` ConfigMap's data with the same 422,
//! word for word, with and without `dryRun=All`, and store nothing.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::Status;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::support::backend::TestCluster;

const MANAGER: &str = "veer-tests";

fn deployment(ns: &str, app: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    })
}

fn config_map(ns: &str, immutable: bool, mode: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "frozen", "namespace": ns},
        "immutable": immutable,
        "data": {"mode": mode}
    })
}

fn params(dry_run: bool) -> PatchParams {
    PatchParams {
        dry_run,
        ..PatchParams::apply(MANAGER)
    }
}

/// The refusal of a write that must fail with 422 Invalid.
fn refused<K: std::fmt::Debug>(
    cluster: &TestCluster,
    what: &str,
    answer: Result<K, kube::Error>,
) -> Status {
    match answer {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (422, "Invalid"),
                "[{}] {what}: {status:?}",
                cluster.backend.name()
            );
            *status
        }
        other => panic!(
            "[{}] {what}: expected 422 Invalid, got {other:?}",
            cluster.backend.name()
        ),
    }
}

/// `(field, reason, message)` of each cause.
fn causes(status: &Status) -> Vec<(String, String, String)> {
    status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .map(|c| (c.field.clone(), c.reason.clone(), c.message.clone()))
        .collect()
}

/// The stored object, to compare before and after a refused write.
async fn stored<K>(api: &Api<K>, name: &str) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.get(name).await.expect("the object reads back")
}

fn version<K: Resource>(object: &K) -> Option<String> {
    object.meta().resource_version.clone()
}

pub async fn immutable_fields_are_refused_alike(cluster: &TestCluster) {
    let backend = cluster.backend.name();
    let ns = cluster.namespace("immutable");
    cluster.delete_namespace(&ns).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("a Namespace"),
        )
        .await
        .expect("create the namespace");

    // A Deployment's selector.
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), &ns);
    deployments
        .patch("web", &params(false), &Patch::Apply(deployment(&ns, "web")))
        .await
        .expect("the Deployment is applied");
    let before = stored(&deployments, "web").await;
    let selector = r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#;
    for dry_run in [false, true] {
        let what = format!("selector changed (dryRun: {dry_run})");
        let status = refused(
            cluster,
            &what,
            deployments
                .patch(
                    "web",
                    &params(dry_run),
                    &Patch::Apply(deployment(&ns, "web2")),
                )
                .await,
        );
        assert_eq!(
            status.message,
            format!(
                "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: {selector}: field is immutable"
            ),
            "[{backend}] {what}"
        );
        let details = status.details.as_ref().expect("details");
        assert_eq!(
            (
                details.name.as_str(),
                details.group.as_str(),
                details.kind.as_str()
            ),
            ("web", "apps", "Deployment"),
            "[{backend}] {what}"
        );
        assert_eq!(
            causes(&status),
            [(
                "spec.selector".to_string(),
                "FieldValueInvalid".to_string(),
                format!("Invalid value: {selector}: field is immutable")
            )],
            "[{backend}] {what}"
        );
        let after = stored(&deployments, "web").await;
        assert_eq!(
            version(&after),
            version(&before),
            "[{backend}] {what}: nothing stored"
        );
        assert_eq!(
            after.spec.map(|s| s.selector),
            before.spec.clone().map(|s| s.selector),
            "[{backend}] {what}"
        );
    }
    // The rest of the spec still changes.
    let mut scaled = deployment(&ns, "web");
    scaled["spec"]["replicas"] = json!(2);
    let scaled = deployments
        .patch("web", &params(false), &Patch::Apply(scaled))
        .await
        .expect("replicas may change");
    assert_ne!(version(&scaled), version(&before), "[{backend}]");

    // An immutable ConfigMap's data, and `immutable` itself.
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    maps.patch(
        "frozen",
        &params(false),
        &Patch::Apply(config_map(&ns, true, "a")),
    )
    .await
    .expect("the ConfigMap is applied");
    let before = stored(&maps, "frozen").await;
    let frozen = "Forbidden: field is immutable when `immutable` is set";
    let forbidden = |field: &str| {
        (
            field.to_string(),
            "FieldValueForbidden".to_string(),
            frozen.to_string(),
        )
    };
    for dry_run in [false, true] {
        let what = format!("data changed (dryRun: {dry_run})");
        let status = refused(
            cluster,
            &what,
            maps.patch(
                "frozen",
                &params(dry_run),
                &Patch::Apply(config_map(&ns, true, "b")),
            )
            .await,
        );
        assert_eq!(
            status.message,
            format!("ConfigMap \"frozen\" is invalid: data: {frozen}"),
            "[{backend}] {what}"
        );
        let details = status.details.as_ref().expect("details");
        assert_eq!(
            (
                details.name.as_str(),
                details.group.as_str(),
                details.kind.as_str()
            ),
            ("frozen", "", "ConfigMap"),
            "[{backend}] {what}"
        );
        assert_eq!(causes(&status), [forbidden("data")], "[{backend}] {what}");

        let what = format!("immutable: false with new data (dryRun: {dry_run})");
        let status = refused(
            cluster,
            &what,
            maps.patch(
                "frozen",
                &params(dry_run),
                &Patch::Apply(config_map(&ns, false, "b")),
            )
            .await,
        );
        assert_eq!(
            status.message,
            format!("ConfigMap \"frozen\" is invalid: [immutable: {frozen}, data: {frozen}]"),
            "[{backend}] {what}"
        );
        assert_eq!(
            causes(&status),
            [forbidden("immutable"), forbidden("data")],
            "[{backend}] {what}"
        );

        // An update (a merge patch, as `kubectl edit` sends) meets the same rule.
        let what = format!("data merge-patched (dryRun: {dry_run})");
        let merge = PatchParams {
            dry_run,
            ..PatchParams::default()
        };
        let status = refused(
            cluster,
            &what,
            maps.patch(
                "frozen",
                &merge,
                &Patch::Merge(json!({"data": {"mode": "c"}})),
            )
            .await,
        );
        assert_eq!(causes(&status), [forbidden("data")], "[{backend}] {what}");

        let after = stored(&maps, "frozen").await;
        assert_eq!(
            version(&after),
            version(&before),
            "[{backend}] dryRun: {dry_run}: nothing stored"
        );
        assert_eq!(after.data, before.data, "[{backend}] dryRun: {dry_run}");
        assert_eq!(after.immutable, Some(true), "[{backend}] dryRun: {dry_run}");
    }
    // Its metadata still changes.
    let labelled = maps
        .patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "payments"}}})),
        )
        .await
        .expect("labels may change");
    assert_ne!(version(&labelled), version(&before), "[{backend}]");
    cluster.delete_namespace(&ns).await;
}
