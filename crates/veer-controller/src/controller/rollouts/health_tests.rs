//! The health gate's reads and verdicts: subsets found through DestinationRules, Deployments
//! by their pod labels, as listed and as the watch cache keeps them.

use serde_json::json;

use super::*;

fn rule(spec: Value) -> RuleItem {
    RuleItem {
        metadata: ItemMeta::default(),
        spec,
    }
}

fn deployment(name: &str, labels: Value, available: bool) -> DeploymentItem {
    let status = if available { "True" } else { "False" };
    serde_json::from_value(json!({
        "metadata": {"name": name, "managedFields": [{"manager": "x"}]},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": labels}}},
        "status": {"conditions": [{"type": "Available", "status": status}]},
    }))
    .unwrap()
}

#[test]
fn subset_labels_come_from_the_destination_rule() {
    let w = Workloads::new(
        Vec::new(),
        vec![
            rule(
                json!({"host": "ratings", "subsets": [{"name": "v2", "labels": {"version": "wrong"}}]}),
            ),
            rule(
                json!({"host": "reviews.shop.svc.cluster.local", "subsets": [{"name": "v2", "labels": {"version": "v2", "track": "canary"}}]}),
            ),
            rule(
                json!({"host": "reviews", "subsets": [{"name": "v2", "labels": {"version": "later"}}]}),
            ),
        ],
    );
    let labels = |d: DestinationId| {
        w.subset_labels(&d)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        labels(DestinationId::new("reviews", Some("v2"))),
        ["track=canary", "version=v2"],
        "the first rule of the host that names the subset"
    );
    assert_eq!(
        labels(DestinationId::new("reviews", Some("v3"))),
        ["app=reviews", "version=v3"]
    );
    assert_eq!(
        labels(DestinationId::new("reviews-v2", None)),
        ["app=reviews-v2"]
    );
    // From the watch cache, in its own order: the first rule by name, as a LIST gives.
    let text = |name: &str, spec: Value| -> Arc<str> {
        Arc::from(json!({"metadata": {"name": name}, "spec": spec}).to_string())
    };
    let rules = [
        text(
            "c-later",
            json!({"host": "reviews", "subsets": [{"name": "v2", "labels": {"version": "later"}}]}),
        ),
        text(
            "b-first",
            json!({"host": "reviews", "subsets": [{"name": "v2", "labels": {"version": "v2"}}]}),
        ),
        text(
            "a-other",
            json!({"host": "ratings", "subsets": [{"name": "v2", "labels": {"version": "wrong"}}]}),
        ),
    ];
    let cached = Workloads::from_cached(&[], &rules);
    assert_eq!(
        cached.subset_labels(&DestinationId::new("reviews", Some("v2"))),
        BTreeMap::from([("version".to_string(), "v2".to_string())])
    );
}

/// Destinations, and what the gate says of them among `availability_table`'s Deployments.
fn availability_cases() -> Vec<(&'static str, Vec<DestinationId>, Health)> {
    let unavailable = |why: &str| Health::Unavailable(why.to_string());
    #[rustfmt::skip]
    let cases = vec![
        ("nothing new", vec![], Health::Available),
        ("a subset's Deployment", vec![DestinationId::new("reviews", Some("v2"))], Health::Available),
        ("by app alone", vec![DestinationId::new("details.shop.svc.cluster.local", None)], Health::Available),
        ("one of two not available", vec![DestinationId::new("ratings", Some("v2"))],
            unavailable("Deployment shop/ratings-v2 of ratings/v2 is not available yet")),
        ("none has the labels", vec![DestinationId::new("reviews", Some("v3"))],
            unavailable("no Deployment in shop has the pod labels app=reviews,version=v3 of reviews/v3")),
    ];
    cases
}

/// Which Deployments a destination's labels find, and what the gate says of them, as
/// listed and as the watch cache keeps them.
#[test]
fn availability_table() {
    // Name, pod labels, available: in a LIST's order (by name, as the server gives it)...
    #[rustfmt::skip]
    let table = [
        ("bare", json!(null), true),
        ("details", json!({"app": "details"}), true),
        ("ratings-v2", json!({"app": "ratings", "version": "v2"}), false),
        ("ratings-v2b", json!({"app": "ratings", "version": "v2"}), true),
        ("reviews-v1", json!({"app": "reviews", "version": "v1"}), true),
        ("reviews-v2", json!({"app": "reviews", "version": "v2", "extra": "x"}), true),
    ];
    let deployments = (table.iter())
        .map(|(name, labels, ok)| deployment(name, labels.clone(), *ok))
        .collect();
    let read: Namespace = Ok(Workloads::new(deployments, Vec::new()));
    let gate = |canary: &[DestinationId]| available(&read, "shop", canary);
    for (name, canary, want) in availability_cases() {
        assert_eq!(gate(&canary), want, "{name}");
    }
    // ...and as the watch cache keeps them (the projection's text: the `Available` condition
    // alone of their status), in the cache's own order.
    let projected = |name: &str, labels: &Value, available: bool| -> Arc<str> {
        let status = if available { "True" } else { "False" };
        Arc::from(
            json!({
                "metadata": {"name": name, "namespace": "shop", "resourceVersion": "7"},
                "spec": {"replicas": 1, "template": {"metadata": {"labels": labels}}},
                "status": {"conditions": [{"type": "Available", "status": status}]},
            })
            .to_string(),
        )
    };
    let order = [3, 1, 5, 2, 0, 4];
    let texts: Vec<Arc<str>> = (order.iter())
        .map(|&i| projected(table[i].0, &table[i].1, table[i].2))
        .collect();
    let built = BuiltWorkloads::default();
    let cached = built.get_or_build("shop", texts.to_vec(), Vec::new());
    for (name, canary, want) in availability_cases() {
        assert_eq!(
            available_in(&cached, "shop", &canary),
            want,
            "cached: {name}"
        );
    }
    // The next wake, nothing changed: the same workloads, not built again.
    let again = built.get_or_build("shop", texts.to_vec(), Vec::new());
    assert!(Arc::ptr_eq(&cached, &again));
    // ratings-v2 became available: the cache holds a new text for it.
    let mut changed = texts.to_vec();
    changed[3] = projected(table[2].0, &table[2].1, true);
    let rebuilt = built.get_or_build("shop", changed, Vec::new());
    assert!(!Arc::ptr_eq(&cached, &rebuilt));
    let ratings = [DestinationId::new("ratings", Some("v2"))];
    assert_eq!(available_in(&rebuilt, "shop", &ratings), Health::Available);
    let unavailable = |why: &str| Health::Unavailable(why.to_string());
    let failed: Namespace = Err(unavailable("cannot list"));
    assert_eq!(
        available(
            &failed,
            "shop",
            &[DestinationId::new("reviews", Some("v2"))]
        ),
        unavailable("cannot list")
    );
}
