//! The order a plan applies and prunes in (Namespaces and CRDs first, VirtualServices last;
//! prunes in reverse), and the hash of desired content.

use std::collections::BTreeMap;

use serde_json::json;
use veer::diff::{desired_hash, order, plan};
use veer::manifest::ObjectKey;

use crate::helpers::{context_for, deployment, desired, destination_rule, key_of, virtual_service};

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
