//! What a plan says for an object git keeps: created, unchanged despite server fields and
//! others' additions, updated by git or by drift (only the fields that differ), and
//! rollout-owned weights left out.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use veer::diff::{Cause, ObjectAction, PlanContext, plan};
use veer::fields::{FieldPath, PathElement, apply, update};
use veer_testkit::at;

use crate::helpers::{
    action_of, applied, config_map, context_for, deployment, desired, destination_rule, key_of,
    live_map, virtual_service,
};

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
