//! All or nothing: a revision with one object the API server refuses writes nothing, on both
//! servers. veer's offline validation cannot see these refusals (an immutable field, a
//! namespace that does not exist); the server's dry run before the first write does. The
//! cluster is compared object by object, resourceVersions included, before and after.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, ObjectList};
use kube::core::Resource;

use crate::scenarios::{config_map_yaml, namespace_yaml};
use crate::support::backend::TestCluster;
use crate::support::repo::Repo;

fn deployment_yaml(ns: &str, app: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  selector:\n    matchLabels: {{app: {app}}}\n  template:\n    metadata:\n      labels: {{app: {app}}}\n    spec:\n      containers:\n      - {{name: web, image: \"nginx:1.27\"}}\n"
    )
}

/// A few lines of YAML in which each level merges the previous one twice: 2^20 merges if
/// expanded.
fn merge_key_bomb() -> String {
    let mut text = String::from("l0: &l0 {a: 1}\n");
    for i in 1..=20 {
        text.push_str(&format!("l{i}: &l{i}\n  <<: [*l{p}, *l{p}]\n", p = i - 1));
    }
    text
}

fn versions<K: Resource + Clone>(kind: &str, list: ObjectList<K>) -> Vec<(String, String)> {
    list.items
        .iter()
        .map(|o| {
            let meta = o.meta();
            (
                format!("{kind} {}", meta.name.clone().unwrap_or_default()),
                meta.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// Every object of the kinds these scenarios write, in `ns` (and the namespaces): name →
/// resourceVersion.
async fn snapshot(cluster: &TestCluster, ns: &str) -> BTreeMap<String, String> {
    let lp = ListParams::default();
    let mut out = BTreeMap::new();
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), ns);
    out.extend(versions("ConfigMap", cms.list(&lp).await.expect("list")));
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), ns);
    out.extend(versions(
        "Deployment",
        deployments.list(&lp).await.expect("list"),
    ));
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    out.extend(
        versions("Namespace", namespaces.list(&lp).await.expect("list"))
            .into_iter()
            .filter(|(name, _)| name.contains(ns)),
    );
    out
}

pub async fn a_revision_the_server_refuses_writes_nothing(cluster: &TestCluster) {
    let server = cluster.backend.name();
    let ns = cluster.namespace("all-or-nothing");
    let state = cluster.namespace("all-or-nothing-state");
    let nowhere = cluster.namespace("nowhere");
    for n in [&ns, &state, &nowhere] {
        cluster.delete_namespace(n).await;
    }
    let repo = Repo::new(&state);
    repo.write("ns.yaml", &namespace_yaml(&ns));
    repo.write("web.yaml", &deployment_yaml(&ns, "web"));
    repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "a", ""));
    repo.commit("a");
    repo.expect(cluster, &["sync"], 0).await;
    let before = snapshot(cluster, &ns).await;
    assert!(
        before.contains_key("ConfigMap settings") && before.contains_key("Deployment web"),
        "[{server}] {before:?}"
    );

    // Hostile or malformed input caught offline: exit 1 before veer talks to the cluster.
    let long = format!("reviews-{}", "x".repeat(292));
    let offline: [(&str, String, &str); 5] = [
        (
            "a 300-character name",
            config_map_yaml(&ns, &long, "x", ""),
            "error[invalid-name] bad.yaml:4:3",
        ),
        (
            "a name with capitals and punctuation",
            config_map_yaml(&ns, "Reviews_V2!@", "x", ""),
            "error[invalid-name] bad.yaml:4:3",
        ),
        (
            "a kind in the wrong case",
            config_map_yaml(&ns, "bad", "x", "").replace("kind: ConfigMap", "kind: configmap"),
            "error[kind-case] bad.yaml:2:1",
        ),
        (
            "a label value with a space",
            config_map_yaml(&ns, "bad", "x", "")
                .replace("  namespace:", "  labels: {team: \"a b\"}\n  namespace:"),
            "error[invalid-label] bad.yaml:",
        ),
        ("a merge-key bomb", merge_key_bomb(), "merge-key bombs"),
    ];
    for (case, text, expected) in offline {
        repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "b", ""));
        repo.write("bad.yaml", &text);
        repo.commit(case);
        let out = repo.expect(cluster, &["sync"], 1).await;
        assert!(out.contains(expected), "[{server}] {case}:\n{out}");
        assert!(out.contains("is INVALID"), "[{server}] {case}:\n{out}");
        assert_eq!(
            snapshot(cluster, &ns).await,
            before,
            "[{server}] {case}: the cluster changed"
        );
        repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "a", ""));
        repo.remove("bad.yaml");
        repo.commit(&format!("undo {case}"));
        repo.expect(cluster, &["sync"], 0).await;
    }

    // Refused by the server's dry run: exit 1, nothing written.
    let cases: [(&str, &str, String, String); 2] = [
        (
            "a changed selector: immutable",
            "web.yaml",
            deployment_yaml(&ns, "web2"),
            format!(
                "error[server-invalid] web.yaml:4:3: Deployment {ns}/web: the API server refused to apply it in a dry run (422): Deployment.apps \"web\" is invalid: spec.selector"
            ),
        ),
        (
            "a namespace that does not exist",
            "lost.yaml",
            config_map_yaml(&nowhere, "lost", "x", ""),
            format!(
                "error[server-not-found] lost.yaml:4:3: ConfigMap {nowhere}/lost: the API server refused to apply it in a dry run (404)"
            ),
        ),
    ];
    for (case, file, text, expected) in cases {
        // A good change beside the refused one: it must not be applied either.
        repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "b", ""));
        let original = std::fs::read_to_string(repo.remote.work.join(file)).ok();
        repo.write(file, &text);
        repo.commit(case);
        let out = repo.expect(cluster, &["sync"], 1).await;
        assert!(
            out.contains(&expected),
            "[{server}] {case}: the refusal names the file, line, object and the server's message:\n{out}"
        );
        assert!(
            out.contains(
                "REFUSED by the API server's dry run (1 object): nothing from it was written"
            ),
            "[{server}] {case}:\n{out}"
        );
        assert_eq!(
            snapshot(cluster, &ns).await,
            before,
            "[{server}] {case}: the cluster changed"
        );
        let status = repo.expect(cluster, &["status"], 0).await;
        assert!(
            status.contains(&format!("({case}): 1 errors")),
            "[{server}] {status}"
        );
        // Back to the revision in force.
        repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "a", ""));
        match original {
            Some(text) => repo.write(file, &text),
            None => repo.remove(file),
        }
        repo.commit(&format!("undo {case}"));
        repo.expect(cluster, &["sync"], 0).await;
    }
    // A good change alone goes through.
    repo.write("cm.yaml", &config_map_yaml(&ns, "settings", "c", ""));
    repo.commit("c");
    repo.expect(cluster, &["sync"], 0).await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    let mode = cms
        .get("settings")
        .await
        .expect("get")
        .data
        .unwrap_or_default();
    assert_eq!(
        mode.get("mode").map(String::as_str),
        Some("c"),
        "[{server}]"
    );
    for n in [&ns, &state] {
        cluster.delete_namespace(n).await;
    }
}

pub async fn a_refused_revision_is_asked_again_at_each_pass(cluster: &TestCluster) {
    let server = cluster.backend.name();
    let later = cluster.namespace("later");
    let state = cluster.namespace("later-state");
    for n in [&later, &state] {
        cluster.delete_namespace(n).await;
    }
    let repo = Repo::new(&state);
    repo.write("cm.yaml", &config_map_yaml(&later, "settings", "a", ""));
    repo.commit("a ConfigMap in a namespace someone else creates");
    let out = repo.expect(cluster, &["sync"], 1).await;
    assert!(
        out.contains("error[server-not-found] cm.yaml:4:3"),
        "[{server}] {out}"
    );
    // The namespace appears (another team's tool makes it): the same commit now goes through.
    cluster.create_namespace(&later).await;
    let out = repo.expect(cluster, &["sync"], 0).await;
    assert!(
        out.contains(&format!("ConfigMap {later}/settings: created")),
        "[{server}] {out}"
    );
    let status = repo.expect(cluster, &["status"], 0).await;
    assert!(!status.contains("rejected"), "[{server}] {status}");
    for n in [&later, &state] {
        cluster.delete_namespace(n).await;
    }
}
