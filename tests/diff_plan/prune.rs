//! What a plan says for objects gone from git: pruned only when veer applied them, skipped by
//! annotation, with prune off or when someone else recreated them; a Namespace kept while
//! anything that stays lives in it, and how that renders.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use veer::diff::{self, ObjectAction, PruneSkipReason, plan};
use veer::fields::update;
use veer_testkit::at;

use crate::helpers::{
    action_of, applied, config_map, context_for, desired, key_of, live_map, server_touches,
};

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
