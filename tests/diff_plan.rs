//! The pure plan (`veer::diff`): table tests of each action and cause, properties against
//! the server-side-apply engine, and golden renderings under `tests/fixtures/diff/`
//! (`UPDATE_GOLDEN=1` rewrites them).

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use veer::diff::{
    self, Cause, DesiredObject, ObjectAction, Plan, PlanContext, PruneSkipReason, desired_hash,
    order, plan,
};
use veer::fields::{FieldPath, PathElement, apply, update};
use veer::manifest::ObjectKey;
use veer_testkit::at;

fn key_of(value: &Value) -> ObjectKey {
    let api_version = value["apiVersion"].as_str().expect("apiVersion");
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.to_string()),
    };
    ObjectKey {
        group,
        version,
        kind: value["kind"].as_str().expect("kind").to_string(),
        namespace: value["metadata"]["namespace"].as_str().map(str::to_string),
        name: value["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string(),
    }
}

fn desired(values: &[Value]) -> Vec<DesiredObject> {
    values
        .iter()
        .map(|v| DesiredObject::new(key_of(v), v.clone()))
        .collect()
}

/// What a real API server adds on create: identity, timestamps, status, defaults.
fn server_touches(mut v: Value) -> Value {
    v["metadata"]["uid"] = json!("6b1c1f0e-0000-4000-8000-000000000001");
    v["metadata"]["resourceVersion"] = json!("42");
    v["metadata"]["generation"] = json!(1);
    v["metadata"]["creationTimestamp"] = json!("2026-11-01T10:00:00Z");
    if v["kind"] == "Deployment" {
        v["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
        v["spec"]["progressDeadlineSeconds"] = json!(600);
        if let Some(containers) = v["spec"]["template"]["spec"]["containers"].as_array_mut() {
            for c in containers {
                c["imagePullPolicy"] = json!("IfNotPresent");
                c["terminationMessagePath"] = json!("/dev/termination-log");
            }
        }
        v["status"] = json!({"replicas": 2, "availableReplicas": 2});
    }
    v
}

/// Apply `value` as veer would, then let the server touch it.
fn applied(value: &Value) -> Value {
    let live = apply(None, value, "veer", false, at(1, 0)).expect("applies");
    server_touches(live)
}

/// Context where every given object was applied by veer at its current content.
fn context_for(values: &[Value]) -> PlanContext {
    let mut ctx = PlanContext::new("veer");
    for v in values {
        ctx.inventory.insert(key_of(v));
        ctx.applied_hashes.insert(key_of(v), desired_hash(v));
    }
    ctx
}

fn live_map(values: &[Value]) -> BTreeMap<ObjectKey, Value> {
    values.iter().map(|v| (key_of(v), v.clone())).collect()
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "reviews-v2", "namespace": "shop", "labels": {"app": "reviews", "tier": "backend"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "reviews"}},
            "template": {
                "metadata": {"labels": {"app": "reviews"}},
                "spec": {"containers": [{"name": "app", "image": "reviews:2", "ports": [{"containerPort": 9080}]}]}
            }
        }
    })
}

fn virtual_service(v1: i64, v2: i64) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [
            {"destination": {"host": "reviews", "subset": "v1"}, "weight": v1},
            {"destination": {"host": "reviews", "subset": "v2"}, "weight": v2}
        ]}]}
    })
}

fn destination_rule() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"host": "reviews", "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}}
        ]}
    })
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "shop"}, "data": {"a": "1"}})
}

fn action_of<'p>(plan: &'p Plan, value: &Value) -> &'p ObjectAction {
    &plan.get(&key_of(value)).expect("object in plan").action
}

#[test]
fn a_new_object_is_created() {
    let p = plan(
        &desired(&[deployment()]),
        &BTreeMap::new(),
        &PlanContext::new("veer"),
    );
    assert_eq!(action_of(&p, &deployment()), &ObjectAction::Create);
    assert!(p.has_changes());
}

#[test]
fn server_fields_and_defaults_never_show() {
    let live = applied(&deployment());
    let p = plan(
        &desired(&[deployment()]),
        &live_map(&[live]),
        &context_for(&[deployment()]),
    );
    assert_eq!(action_of(&p, &deployment()), &ObjectAction::Unchanged);
    assert!(!p.has_changes());
}

#[test]
fn a_git_change_is_an_update_caused_by_git() {
    let live = applied(&virtual_service(100, 0));
    let ctx = context_for(&[virtual_service(100, 0)]);
    let p = plan(
        &desired(&[virtual_service(90, 10)]),
        &live_map(&[live]),
        &ctx,
    );
    let ObjectAction::Update { changes, cause } = action_of(&p, &virtual_service(90, 10)) else {
        panic!("not an update: {p:?}");
    };
    assert_eq!(*cause, Cause::GitChange);
    let paths: Vec<(&str, Option<&Value>, Option<&Value>)> = changes
        .iter()
        .map(|c| (c.path.as_str(), c.from.as_ref(), c.to.as_ref()))
        .collect();
    assert_eq!(
        paths,
        vec![
            (
                "spec.http[0].route[0].weight",
                Some(&json!(100)),
                Some(&json!(90))
            ),
            (
                "spec.http[0].route[1].weight",
                Some(&json!(0)),
                Some(&json!(10))
            ),
        ]
    );
}

#[test]
fn a_hand_edit_of_a_managed_field_is_drift() {
    let live = applied(&deployment());
    let mut edited = live.clone();
    edited["spec"]["replicas"] = json!(5);
    let edited = update(Some(&live), &edited, "kubectl-edit", at(1, 3));
    let p = plan(
        &desired(&[deployment()]),
        &live_map(&[edited]),
        &context_for(&[deployment()]),
    );
    let ObjectAction::Update { changes, cause } = action_of(&p, &deployment()) else {
        panic!("not an update: {p:?}");
    };
    assert_eq!(*cause, Cause::Drift);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].path, "spec.replicas");
    assert_eq!(changes[0].from, Some(json!(5)));
    assert_eq!(changes[0].to, Some(json!(2)));
    assert_eq!(p.summary().drift, 1);
}

#[test]
fn a_field_git_dropped_shows_as_removal_only_when_veer_alone_owned_it() {
    let live = applied(&deployment());
    let mut without = deployment();
    without["metadata"]["labels"]
        .as_object_mut()
        .expect("map")
        .remove("tier");
    let p = plan(
        &desired(std::slice::from_ref(&without)),
        &live_map(std::slice::from_ref(&live)),
        &context_for(&[deployment()]),
    );
    let ObjectAction::Update { changes, cause } = action_of(&p, &without) else {
        panic!("not an update: {p:?}");
    };
    assert_eq!(*cause, Cause::GitChange);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path, "metadata.labels.tier");
    assert_eq!(changes[0].from, Some(json!("backend")));
    assert_eq!(changes[0].to, None);

    // Another applier also sets the label: apply keeps it, so the plan shows nothing.
    let team = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "reviews-v2", "namespace": "shop", "labels": {"tier": "backend"}}});
    let co_owned = apply(Some(&live), &team, "team", false, at(1, 1)).expect("same value");
    let p = plan(
        &desired(std::slice::from_ref(&without)),
        &live_map(&[co_owned]),
        &context_for(&[deployment()]),
    );
    assert_eq!(action_of(&p, &without), &ObjectAction::Unchanged);
}

#[test]
fn a_label_someone_else_added_is_not_noise() {
    let live = applied(&deployment());
    let mut edited = live.clone();
    edited["metadata"]["labels"]["owner"] = json!("ops");
    let edited = update(Some(&live), &edited, "kubectl-label", at(1, 2));
    let p = plan(
        &desired(&[deployment()]),
        &live_map(&[edited]),
        &context_for(&[deployment()]),
    );
    assert_eq!(action_of(&p, &deployment()), &ObjectAction::Unchanged);
}

#[test]
fn an_empty_map_in_git_does_not_show_what_others_put_in_it() {
    let mut with_empty = config_map("c");
    with_empty["metadata"]["annotations"] = json!({});
    let live = applied(&with_empty);
    let mut annotated = live.clone();
    annotated["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = json!("now");
    let annotated = update(Some(&live), &annotated, "kubectl-rollout", at(1, 1));
    let p = plan(
        &desired(std::slice::from_ref(&with_empty)),
        &live_map(&[annotated]),
        &context_for(std::slice::from_ref(&with_empty)),
    );
    assert_eq!(action_of(&p, &with_empty), &ObjectAction::Unchanged);
}

#[test]
fn objects_gone_from_git_are_pruned_only_when_veer_applied_them() {
    let gone = applied(&config_map("old"));
    let foreign = server_touches(update(None, &config_map("foreign"), "helm", at(1, 0)));
    let mut ctx = context_for(&[config_map("old")]);
    ctx.inventory.insert(key_of(&config_map("old")));
    let p = plan(&[], &live_map(&[gone.clone(), foreign]), &ctx);
    assert_eq!(action_of(&p, &config_map("old")), &ObjectAction::Prune);
    assert!(
        p.get(&key_of(&config_map("foreign"))).is_none(),
        "never-applied objects are not even mentioned"
    );

    let mut keep = gone.clone();
    keep["metadata"]["annotations"] = json!({"veer.io/prune": "false"});
    let p = plan(&[], &live_map(&[keep]), &ctx);
    assert_eq!(
        action_of(&p, &config_map("old")),
        &ObjectAction::PruneSkipped {
            reason: PruneSkipReason::Annotation
        }
    );
    assert!(!p.has_changes());

    let mut off = ctx.clone();
    off.prune = false;
    let p = plan(&[], &live_map(std::slice::from_ref(&gone)), &off);
    assert_eq!(
        action_of(&p, &config_map("old")),
        &ObjectAction::PruneSkipped {
            reason: PruneSkipReason::Disabled
        }
    );

    // In the inventory, but recreated by someone else: not veer's to delete.
    let recreated = server_touches(update(None, &config_map("old"), "helm", at(1, 5)));
    let p = plan(&[], &live_map(&[recreated]), &ctx);
    assert_eq!(
        action_of(&p, &config_map("old")),
        &ObjectAction::PruneSkipped {
            reason: PruneSkipReason::NotManagedByVeer
        }
    );

    // Already gone from the cluster: nothing to do.
    let p = plan(&[], &BTreeMap::new(), &ctx);
    assert!(p.objects.is_empty());
}

/// A Namespace as veer applies it (with a label: a name alone leaves no managed field).
fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"team": name}}})
}

fn config_map_in(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns}, "data": {"a": "1"}})
}

#[test]
fn a_namespace_is_never_pruned_while_anything_that_stays_lives_in_it() {
    let shop = namespace("shop");
    let in_use = |by: &Value, more: usize| ObjectAction::PruneSkipped {
        reason: PruneSkipReason::NamespaceInUse {
            by: key_of(by),
            more,
        },
    };
    let mut kept = applied(&config_map_in("shop", "kept"));
    kept["metadata"]["annotations"] = json!({"veer.io/prune": "false"});
    let mut shop_kept = applied(&shop);
    shop_kept["metadata"]["annotations"] = json!({"veer.io/prune": "false"});
    let settings = config_map_in("shop", "settings");
    let other = config_map_in("shop", "other");
    let elsewhere = config_map_in("team", "settings");
    struct Case {
        name: &'static str,
        /// In git now (the Namespace never is).
        git: Vec<Value>,
        /// Applied by veer before (the Namespace always was).
        inventory: Vec<Value>,
        /// Live besides the applied inventory.
        live: Vec<Value>,
        unreadable: Vec<Value>,
        prune: bool,
        namespace: ObjectAction,
    }
    let cases = vec![
        Case {
            name: "a git object stays in it",
            git: vec![settings.clone()],
            inventory: vec![settings.clone()],
            live: vec![],
            unreadable: vec![],
            prune: true,
            namespace: in_use(&settings, 0),
        },
        Case {
            name: "several stay: the first in key order is named",
            git: vec![settings.clone(), other.clone()],
            inventory: vec![],
            live: vec![],
            unreadable: vec![],
            prune: true,
            namespace: in_use(&other, 1),
        },
        Case {
            name: "everything in it leaves git too",
            git: vec![elsewhere.clone()],
            inventory: vec![settings.clone(), other.clone()],
            live: vec![],
            unreadable: vec![],
            prune: true,
            namespace: ObjectAction::Prune,
        },
        Case {
            name: "an object veer keeps by annotation stays in it",
            git: vec![],
            inventory: vec![],
            live: vec![kept.clone()],
            unreadable: vec![],
            prune: true,
            namespace: in_use(&config_map_in("shop", "kept"), 0),
        },
        Case {
            name: "an object veer may not read stays in it",
            git: vec![settings.clone()],
            inventory: vec![],
            live: vec![],
            unreadable: vec![settings.clone()],
            prune: true,
            namespace: in_use(&settings, 0),
        },
        Case {
            name: "the namespace's own annotation comes first",
            git: vec![settings.clone()],
            inventory: vec![],
            live: vec![shop_kept.clone()],
            unreadable: vec![],
            prune: true,
            namespace: ObjectAction::PruneSkipped {
                reason: PruneSkipReason::Annotation,
            },
        },
        Case {
            name: "prune off comes first",
            git: vec![settings.clone()],
            inventory: vec![],
            live: vec![],
            unreadable: vec![],
            prune: false,
            namespace: ObjectAction::PruneSkipped {
                reason: PruneSkipReason::Disabled,
            },
        },
    ];
    for case in cases {
        let mut inventory = case.inventory.clone();
        inventory.push(shop.clone());
        inventory.extend(case.live.iter().cloned());
        let mut ctx = context_for(&inventory);
        ctx.prune = case.prune;
        ctx.unreadable = case.unreadable.iter().map(key_of).collect();
        let mut live: Vec<Value> = case.inventory.iter().map(applied).collect();
        live.extend(case.git.iter().map(applied));
        if !case.live.iter().any(|v| key_of(v) == key_of(&shop)) {
            live.push(applied(&shop));
        }
        live.extend(case.live.clone());
        let p = plan(&desired(&case.git), &live_map(&live), &ctx);
        assert_eq!(action_of(&p, &shop), &case.namespace, "{}", case.name);
        for u in &case.unreadable {
            assert!(
                p.get(&key_of(u)).is_none(),
                "{}: nothing planned for what veer cannot read",
                case.name
            );
        }
        // What is pruned with it goes first: the Namespace is the last prune.
        if case.namespace == ObjectAction::Prune {
            assert_eq!(
                p.objects.last().map(|o| &o.key),
                Some(&key_of(&shop)),
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn a_kept_namespace_renders_for_people_and_machines() {
    let settings = config_map_in("shop", "settings");
    let shop = namespace("shop");
    let ctx = context_for(&[
        shop.clone(),
        settings.clone(),
        config_map_in("shop", "other"),
    ]);
    let p = plan(
        &desired(&[settings.clone(), config_map_in("shop", "other")]),
        &live_map(&[
            applied(&shop),
            applied(&settings),
            applied(&config_map_in("shop", "other")),
        ]),
        &ctx,
    );
    let human = diff::render::human(&p, false).expect("renders");
    assert!(
        human.contains("# Namespace shop: prune skipped (ConfigMap shop/other and 1 more stay in it; pruning it would delete them)"),
        "{human}"
    );
    let doc: Value = serde_json::from_str(&diff::render::json(&p).expect("renders")).expect("json");
    let ns = doc["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["object"] == "Namespace shop")
        .expect("the namespace")
        .clone();
    assert_eq!(ns["action"], "pruneSkipped");
    assert_eq!(ns["reason"], "namespaceInUse");
    assert_eq!(ns["by"], "ConfigMap shop/other");
    assert_eq!(ns["more"], 1);
}

#[test]
fn rollout_owned_weights_are_neither_drift_nor_change() {
    let live = applied(&virtual_service(100, 0));
    // The rollout shifted to 80/20 (an update by veer's rollout, or an apply: either way).
    let mut shifted = live.clone();
    shifted["spec"]["http"][0]["route"][0]["weight"] = json!(80);
    shifted["spec"]["http"][0]["route"][1]["weight"] = json!(20);
    let shifted = update(Some(&live), &shifted, "veer-rollout", at(1, 4));
    // Git now says 0/100, where the rollout must end up.
    let mut ctx = context_for(&[virtual_service(100, 0)]);
    let weight = |i: usize| {
        FieldPath(vec![
            PathElement::field("spec"),
            PathElement::field("http"),
            PathElement::Index(0),
            PathElement::field("route"),
            PathElement::Index(i),
            PathElement::field("weight"),
        ])
    };
    ctx.ignore
        .insert(key_of(&virtual_service(0, 100)), vec![weight(0), weight(1)]);
    let p = plan(
        &desired(&[virtual_service(0, 100)]),
        &live_map(std::slice::from_ref(&shifted)),
        &ctx,
    );
    assert_eq!(
        action_of(&p, &virtual_service(0, 100)),
        &ObjectAction::Unchanged
    );

    // Without the hook the same state is a change.
    ctx.ignore.clear();
    let p = plan(
        &desired(&[virtual_service(0, 100)]),
        &live_map(&[shifted]),
        &ctx,
    );
    assert!(matches!(
        action_of(&p, &virtual_service(0, 100)),
        ObjectAction::Update { .. }
    ));
}

#[test]
fn an_image_change_inside_a_defaulted_container_shows_only_the_image() {
    let live = applied(&deployment());
    let mut next = deployment();
    next["spec"]["template"]["spec"]["containers"][0]["image"] = json!("reviews:3");
    let p = plan(
        &desired(std::slice::from_ref(&next)),
        &live_map(&[live]),
        &context_for(&[deployment()]),
    );
    let ObjectAction::Update { changes, .. } = action_of(&p, &next) else {
        panic!("not an update: {p:?}");
    };
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path, "spec.template.spec.containers[0].image");
}

#[test]
fn a_live_object_at_another_api_version_is_the_same_object() {
    let mut old_version = applied(&destination_rule());
    old_version["apiVersion"] = json!("networking.istio.io/v1beta1");
    let p = plan(
        &desired(&[destination_rule()]),
        &live_map(&[old_version]),
        &context_for(&[destination_rule()]),
    );
    assert_eq!(action_of(&p, &destination_rule()), &ObjectAction::Unchanged);
}

#[test]
fn apply_order_puts_namespaces_and_crds_first_and_virtual_services_last() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"}});
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "reviews", "namespace": "shop"}});
    let all = [
        virtual_service(100, 0),
        svc.clone(),
        destination_rule(),
        deployment(),
        crd.clone(),
        ns.clone(),
    ];
    let keys: Vec<ObjectKey> = all.iter().map(key_of).collect();
    let kinds = |keys: Vec<ObjectKey>| keys.into_iter().map(|k| k.kind).collect::<Vec<_>>();
    assert_eq!(
        kinds(order::apply_order(&keys)),
        vec![
            "Namespace",
            "CustomResourceDefinition",
            "Service",
            "Deployment",
            "DestinationRule",
            "VirtualService"
        ]
    );
    assert_eq!(
        kinds(order::prune_order(&keys)),
        vec![
            "VirtualService",
            "DestinationRule",
            "Deployment",
            "Service",
            "CustomResourceDefinition",
            "Namespace"
        ]
    );
    // The plan follows it: applies first in apply order, prunes after in reverse.
    let ctx = context_for(&all);
    let p = plan(
        &desired(&[virtual_service(100, 0), ns]),
        &BTreeMap::new(),
        &{
            let mut c = ctx.clone();
            c.inventory.clear();
            c
        },
    );
    assert_eq!(p.objects[0].key.kind, "Namespace");
    assert_eq!(p.objects[1].key.kind, "VirtualService");
}

#[test]
fn desired_hash_is_stable_across_key_order() {
    let a = json!({"a": 1, "b": {"c": 2, "d": 3}});
    let b = json!({"b": {"d": 3, "c": 2}, "a": 1});
    assert_eq!(desired_hash(&a), desired_hash(&b));
    assert_ne!(desired_hash(&a), desired_hash(&json!({"a": 2})));
    assert_eq!(desired_hash(&a).len(), 64);
}

// ---------------------------------------------------------------------------------------------
// Golden renderings

/// Compare `actual` with `tests/fixtures/diff/<name>` (`UPDATE_GOLDEN=1` rewrites it).
fn golden(name: &str, actual: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diff");
    veer_testkit::golden(&dir.join(name), actual);
}

/// One plan with every action: create, git change with a removal, drift, prune, prune
/// skipped, unchanged.
fn mixed_plan() -> Plan {
    let mut dr_live = applied(&destination_rule());
    dr_live["metadata"]["uid"] = json!("dr");
    let vs_live = applied(&virtual_service(100, 0));
    let dep_live = applied(&deployment());
    let mut dep_edited = dep_live.clone();
    dep_edited["spec"]["replicas"] = json!(5);
    let dep_edited = update(Some(&dep_live), &dep_edited, "kubectl-edit", at(1, 3));
    let old = applied(&config_map("old"));
    let mut kept = applied(&config_map("kept"));
    kept["metadata"]["annotations"] = json!({"veer.io/prune": "false"});

    let mut vs_next = virtual_service(90, 10);
    vs_next["metadata"]["labels"] = json!({"team": "shop"});
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    let ctx = context_for(&[
        destination_rule(),
        virtual_service(100, 0),
        deployment(),
        config_map("old"),
        config_map("kept"),
    ]);
    plan(
        &desired(&[vs_next, deployment(), destination_rule(), ns]),
        &live_map(&[dr_live, vs_live, dep_edited, old, kept]),
        &ctx,
    )
}

#[test]
fn human_rendering_matches_golden() {
    let p = mixed_plan();
    golden(
        "mixed.human.golden",
        &diff::render::human(&p, false).expect("renders"),
    );
    let colored = diff::render::human(&p, true).expect("renders");
    assert!(colored.contains("\x1b[32m+"), "additions are green");
    assert!(colored.contains("\x1b[31m-"), "removals are red");
    assert!(
        !diff::render::human(&p, false)
            .expect("renders")
            .contains('\x1b')
    );
}

#[test]
fn json_rendering_matches_golden() {
    let p = mixed_plan();
    let text = diff::render::json(&p).expect("renders");
    golden("mixed.json.golden", &text);
    let doc: Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(doc["summary"]["create"], 1);
    assert_eq!(doc["hasChanges"], true);
}

#[test]
fn summary_line_reads_like_the_issue() {
    let p = mixed_plan();
    assert_eq!(
        diff::render::summary_line(&p.summary()),
        "1 to create, 2 to update (1 drift), 1 to prune (1 skipped)"
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..4).prop_map(Value::from),
        "[a-c]{1,2}".prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ]
}

fn deployment_like() -> impl Strategy<Value = Value> {
    let labels = proptest::collection::btree_map("[a-c]", scalar(), 0..3);
    let containers = proptest::collection::btree_map(
        "[x-z]",
        (
            proptest::option::of("[a-c]"),
            proptest::collection::btree_set(1i64..4, 0..3),
        ),
        0..3,
    );
    let weights = proptest::collection::vec(0i64..100, 0..3);
    (labels, containers, weights, proptest::option::of(0i64..5)).prop_map(
        |(labels, containers, weights, replicas)| {
            let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "ns"}});
            if !labels.is_empty() {
                obj["metadata"]["labels"] = Value::Object(labels.into_iter().collect());
            }
            if let Some(r) = replicas {
                obj["spec"]["replicas"] = json!(r);
            }
            if !weights.is_empty() {
                obj["spec"]["weights"] = json!(weights);
            }
            let containers: Vec<Value> = containers
                .into_iter()
                .map(|(name, (image, ports))| {
                    let mut c = json!({"name": name});
                    if let Some(i) = image {
                        c["image"] = json!(i);
                    }
                    if !ports.is_empty() {
                        c["ports"] = Value::Array(
                            ports
                                .into_iter()
                                .map(|p| json!({"containerPort": p}))
                                .collect(),
                        );
                    }
                    c
                })
                .collect();
            if !containers.is_empty() {
                obj["spec"]["template"]["spec"]["containers"] = Value::Array(containers);
            }
            obj
        },
    )
}

proptest! {
    /// After veer applies git, the next plan is empty, whatever was there before.
    #[test]
    fn plan_after_apply_is_empty(before in deployment_like(), after in deployment_like()) {
        let live = applied(&before);
        let synced = apply(Some(&live), &after, "veer", true, at(1, 1)).expect("forced apply");
        let ctx = context_for(std::slice::from_ref(&after));
        let p = plan(&desired(std::slice::from_ref(&after)), &live_map(&[server_touches(synced)]), &ctx);
        prop_assert_eq!(&p.objects[0].action, &ObjectAction::Unchanged, "{:?}", p);
    }

    /// Someone else edits in between (a drifted field and a label of their own); after a
    /// forced sync the plan is empty and their label is not noise.
    #[test]
    fn plan_after_forced_apply_over_an_edit_is_empty(
        before in deployment_like(),
        after in deployment_like(),
        replicas in 0i64..9,
    ) {
        let live = applied(&before);
        let mut edited = live.clone();
        edited["spec"]["replicas"] = json!(replicas);
        edited["metadata"]["labels"]["edited-by"] = json!("ops");
        let edited = update(Some(&live), &edited, "kubectl-edit", at(1, 1));
        let synced = apply(Some(&edited), &after, "veer", true, at(1, 2)).expect("forced apply");
        let ctx = context_for(std::slice::from_ref(&after));
        let p = plan(&desired(std::slice::from_ref(&after)), &live_map(&[synced]), &ctx);
        prop_assert_eq!(&p.objects[0].action, &ObjectAction::Unchanged, "{:?}", p);
    }

    /// Whenever the plan says "unchanged", applying changes nothing veer can see.
    #[test]
    fn unchanged_means_apply_is_a_no_op(before in deployment_like(), after in deployment_like()) {
        let live = applied(&before);
        let ctx = context_for(std::slice::from_ref(&before));
        let p = plan(&desired(std::slice::from_ref(&after)), &live_map(std::slice::from_ref(&live)), &ctx);
        let synced = apply(Some(&live), &after, "veer", true, at(1, 1)).expect("forced apply");
        let strip = |v: &Value| {
            let mut v = v.clone();
            v["metadata"].as_object_mut().expect("map").remove("managedFields");
            v
        };
        if p.objects[0].action == ObjectAction::Unchanged {
            prop_assert_eq!(strip(&live), strip(&synced));
        } else {
            prop_assert_ne!(strip(&live), strip(&synced));
        }
    }

    /// Drift is decided once, in the plan: with self-heal off a hand edit is reported and is
    /// no write (and a git change still is); with it on, whatever differs is written.
    #[test]
    fn self_heal_decides_whether_drift_is_a_write(
        before in deployment_like(),
        after in deployment_like(),
        replicas in 0i64..9,
        git_changed: bool,
        self_heal: bool,
    ) {
        let live = applied(&before);
        let mut edited = live.clone();
        edited["spec"]["replicas"] = json!(replicas);
        let edited = update(Some(&live), &edited, "kubectl-edit", at(1, 1));
        let wanted = if git_changed { after } else { before.clone() };
        let mut ctx = context_for(std::slice::from_ref(&before));
        ctx.self_heal = self_heal;
        let p = plan(&desired(std::slice::from_ref(&wanted)), &live_map(&[edited]), &ctx);
        let o = &p.objects[0];
        let drift = matches!(o.action, ObjectAction::Update { cause: Cause::Drift, .. });
        prop_assert_eq!(p.leave_drift, !self_heal);
        prop_assert_eq!(p.writes(o), p.has_changes() && (self_heal || !drift), "{:?}", p);
        prop_assert_eq!(p.writes_anything(), p.writes(o));
    }
}
