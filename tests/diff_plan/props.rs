//! Properties against the server-side-apply engine over generated Deployment-like objects:
//! after a sync the plan is empty, "unchanged" means apply is a no-op, and self-heal decides
//! whether drift is a write.

use proptest::prelude::*;
use serde_json::{Value, json};
use veer::diff::{Cause, ObjectAction, plan};
use veer::fields::{apply, update};
use veer_testkit::at;

use crate::helpers::{applied, context_for, desired, live_map, server_touches};

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
