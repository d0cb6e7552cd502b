//! Rollout detection against JSON VirtualServices, and the hand-off to the diff: while a
//! rollout runs, the fields it owns are neither drift nor a change to apply.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use veer::diff::{self, DesiredObject, ObjectAction, PlanContext, desired_hash};
use veer::fields::{apply, update};
use veer::manifest::ObjectKey;
use veer::rollout::{DestinationId, RolloutError, TrafficSplit, detect, read_split, write_split};

fn d(subset: &str) -> DestinationId {
    DestinationId::new("reviews", Some(subset))
}

fn split(pairs: &[(&str, u32)]) -> TrafficSplit {
    pairs.iter().map(|(s, w)| (d(s), *w)).collect()
}

fn vs(routes: Value) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"hosts": ["reviews"], "http": routes}
    })
}

fn route(dests: &[(&str, Option<i64>)]) -> Value {
    json!({"route": dests.iter().map(|(s, w)| {
        let mut item = json!({"destination": {"host": "reviews", "subset": s}});
        if let Some(w) = w { item["weight"] = json!(w); }
        item
    }).collect::<Vec<_>>()})
}

fn key() -> ObjectKey {
    ObjectKey {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        kind: "VirtualService".into(),
        namespace: Some("shop".into()),
        name: "reviews".into(),
    }
}

#[test]
fn full_and_partial_shifts_and_added_destinations() {
    // v1:100 → v2:100, the list itself changes: the rollout owns the whole route list.
    let live = vs(json!([route(&[("v1", None)])]));
    let git = vs(json!([route(&[("v2", None)])]));
    let shifts = detect(&git, Some(&live)).unwrap();
    assert_eq!(shifts.len(), 1);
    let s = &shifts[0];
    assert_eq!(s.start, split(&[("v1", 100), ("v2", 0)]));
    assert_eq!(s.target, split(&[("v1", 0), ("v2", 100)]));
    assert!(!s.same_destinations);
    assert_eq!(
        s.owned_fields()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [".spec.http[0].route"]
    );

    // v1:100/v2:0 → v1:50/v2:50, same list: it owns the weights only.
    let live = vs(json!([route(&[("v1", Some(100)), ("v2", Some(0))])]));
    let git = vs(json!([route(&[("v1", Some(50)), ("v2", Some(50))])]));
    let s = &detect(&git, Some(&live)).unwrap()[0];
    assert!(s.same_destinations);
    assert_eq!(
        s.owned_fields()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            ".spec.http[0].route[0].weight",
            ".spec.http[0].route[1].weight"
        ]
    );

    // A third destination joins at 0.
    let git = vs(json!([route(&[
        ("v1", Some(50)),
        ("v2", Some(25)),
        ("v3", Some(25))
    ])]));
    let s = &detect(&git, Some(&live)).unwrap()[0];
    assert_eq!(s.start, split(&[("v1", 100), ("v2", 0), ("v3", 0)]));
    assert!(!s.same_destinations);
}

#[test]
fn unchanged_routes_new_objects_and_routes_without_weights_do_not_shift() {
    let live = vs(json!([route(&[("v1", None)]), {"redirect": {"uri": "/x"}}]));
    assert!(detect(&live, Some(&live)).unwrap().is_empty());
    assert!(detect(&live, None).unwrap().is_empty());
    // Zero-weight destinations are not traffic.
    let with_zero =
        vs(json!([route(&[("v1", Some(100)), ("v2", Some(0))]), {"redirect": {"uri": "/x"}}]));
    assert!(detect(&with_zero, Some(&live)).unwrap().is_empty());
}

#[test]
fn named_routes_pair_by_name() {
    let mut header = route(&[("v1", None)]);
    header["name"] = json!("testers");
    let mut main_live = route(&[("v1", None)]);
    main_live["name"] = json!("main");
    let mut main_git = route(&[("v1", Some(50)), ("v2", Some(50))]);
    main_git["name"] = json!("main");
    let live = vs(json!([main_live]));
    let git = vs(json!([header, main_git]));
    let shifts = detect(&git, Some(&live)).unwrap();
    assert_eq!(shifts.len(), 1);
    assert_eq!(shifts[0].route.index, 1);
    assert_eq!(shifts[0].route.name.as_deref(), Some("main"));
    assert_eq!(shifts[0].live_index, 0);
}

#[test]
fn weights_that_do_not_sum_to_100_are_an_error_naming_the_object() {
    let live = vs(json!([route(&[("v1", Some(60)), ("v2", Some(30))])]));
    let git = vs(json!([route(&[("v2", None)])]));
    let err = detect(&git, Some(&live)).unwrap_err();
    assert_eq!(err.metric_label(), "weights_do_not_sum");
    assert!(matches!(&err, RolloutError::WeightsDoNotSum { sum: 90, side, .. } if side == "live"));
    assert!(
        err.to_string().contains("VirtualService shop/reviews"),
        "{err}"
    );
}

#[test]
fn written_splits_read_back_and_new_destinations_are_appended() {
    let mut live = vs(json!([route(&[("v1", None)])]));
    write_split(&mut live, 0, &split(&[("v1", 90), ("v2", 10)])).unwrap();
    assert_eq!(
        read_split(&live, 0).unwrap(),
        split(&[("v1", 90), ("v2", 10)])
    );
    assert_eq!(
        live["spec"]["http"][0]["route"][1]["destination"],
        json!({"host": "reviews", "subset": "v2"})
    );
    assert!(write_split(&mut live, 3, &split(&[("v1", 100)])).is_err());
}

/// The hand-off to the diff: in-flight weights are neither drift nor a change.
#[test]
fn the_diff_ignores_what_a_running_rollout_owns() {
    let t = |m| Utc.with_ymd_and_hms(2026, 11, 25, 12, m, 0).unwrap();
    for (live_routes, git_routes) in [
        (route(&[("v1", None)]), route(&[("v2", None)])),
        (
            route(&[("v1", Some(100)), ("v2", Some(0))]),
            route(&[("v1", Some(0)), ("v2", Some(100))]),
        ),
    ] {
        let before = vs(json!([live_routes]));
        let git = vs(json!([git_routes]));
        let live = apply(None, &before, "veer", false, t(0)).unwrap();
        let shift = detect(&git, Some(&live)).unwrap().remove(0);
        // The rollout moved 10 % to v2.
        let mut shifted = live.clone();
        write_split(
            &mut shifted,
            shift.live_index,
            &veer::rollout::split::split_at(&shift.start, &shift.target, 10),
        )
        .unwrap();
        let shifted = update(Some(&live), &shifted, "veer-rollout", t(1));
        assert_eq!(read_split(&shifted, 0).unwrap().weight(&d("v2")), 10);

        let mut ctx = PlanContext::new("veer");
        ctx.inventory.insert(key());
        ctx.applied_hashes.insert(key(), desired_hash(&before));
        ctx.ignore.insert(key(), shift.owned_fields());
        let desired = [DesiredObject::new(key(), git.clone())];
        let live_map: BTreeMap<ObjectKey, Value> = [(key(), shifted.clone())].into();
        let p = diff::plan(&desired, &live_map, &ctx);
        assert_eq!(
            p.objects[0].action,
            ObjectAction::Unchanged,
            "{:?}",
            p.objects[0]
        );

        ctx.ignore.clear();
        let p = diff::plan(&desired, &live_map, &ctx);
        assert!(matches!(p.objects[0].action, ObjectAction::Update { .. }));
    }
}

/// What the controller applies during each phase differs from git only in the fields the
/// rollout owns for that phase; and detection still finds the route under an A/B route.
#[test]
fn rendered_phases_differ_from_git_only_in_owned_fields() {
    use veer::rollout::{Overlay, owned_fields, render::render};
    let t = |m| Utc.with_ymd_and_hms(2026, 11, 25, 12, m, 0).unwrap();
    let before = vs(json!([route(&[("v1", None)])]));
    let git = vs(json!([route(&[("v2", None)])]));
    let live0 = apply(None, &before, "veer", false, t(0)).unwrap();
    let shift = detect(&git, Some(&live0)).unwrap().remove(0);
    let at10 = veer::rollout::split::split_at(&shift.start, &shift.target, 10);
    let overlays = [
        None,
        Some(Overlay::Mirror {
            to: vec![d("v2")],
            percent: 50,
        }),
        Some(Overlay::Fault {
            on: vec![d("v2")],
            delay: None,
            abort: Some(503),
            percent: 5.0,
        }),
        Some(Overlay::Match {
            to: vec![d("v2")],
            headers: Default::default(),
            cookie: Some("canary=always".into()),
        }),
    ];
    for overlay in overlays {
        let rendered = render(
            &git,
            shift.route.index,
            &at10,
            &shift.target,
            overlay.as_ref(),
        )
        .unwrap();
        let live = apply(Some(&live0), &rendered, "veer", false, t(1)).unwrap();
        let mut ctx = PlanContext::new("veer");
        ctx.inventory.insert(key());
        ctx.applied_hashes.insert(key(), desired_hash(&git));
        ctx.ignore
            .insert(key(), owned_fields(&shift, overlay.as_ref()));
        let desired = [DesiredObject::new(key(), git.clone())];
        let live_map: BTreeMap<ObjectKey, Value> = [(key(), live.clone())].into();
        let p = diff::plan(&desired, &live_map, &ctx);
        assert_eq!(
            p.objects[0].action,
            ObjectAction::Unchanged,
            "{overlay:?}: {:?}",
            p.objects[0]
        );

        // Mid-rollout, detection sees the live split of the user's route.
        let again = detect(&git, Some(&live)).unwrap();
        assert_eq!(again.len(), 1, "{overlay:?}");
        assert!(
            again[0].start.same_traffic(&at10),
            "{overlay:?}: {}",
            again[0].start
        );
        assert_eq!(read_split(&live, again[0].live_index).unwrap(), at10);
    }
}

#[test]
fn git_and_live_routes_pair_one_way() {
    use veer::rollout::RouteRef;
    use veer::rollout::detect::pair_live_route;
    let live = serde_json::json!({"spec": {"http": [
        {"name": "veer-ab-0", "route": []},
        {"name": "canary-route", "route": []},
        {"route": []},
        {"name": "primary", "route": []},
    ]}});
    let route = |index: usize, name: Option<&str>| RouteRef {
        index,
        name: name.map(str::to_string),
    };
    // (git's route, the live position it pairs with)
    let cases = [
        (route(0, Some("primary")), Some(3)),
        (route(1, Some("renamed")), Some(2)),
        (route(0, Some("renamed")), None),
        (route(1, None), Some(2)),
        (route(0, None), Some(1)),
        (route(5, None), None),
    ];
    for (git, want) in cases {
        assert_eq!(pair_live_route(&live, &git), want, "{git:?}");
    }
    assert_eq!(
        pair_live_route(&serde_json::json!({}), &route(0, None)),
        None
    );
}
