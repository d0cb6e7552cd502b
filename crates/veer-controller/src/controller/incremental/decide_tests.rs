//! Which objects a pass plans ([`decide`]): every one, and why, or only what changed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::cluster::WatchKey;
use crate::controller::tests::loaded;
use crate::diff;
use crate::manifest::{ReadOptions, parse_file};
use crate::source::LoadedRevision;
use crate::sync::state::{ObjectRecord, SyncState};
use veer_testkit::at;

fn file(name: &str, text: &str) -> Vec<Arc<Manifest>> {
    let parsed = parse_file(name, text.as_bytes(), &ReadOptions::default());
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    parsed.manifests
}

fn config_map(name: &str, namespace: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  v: \"{value}\"\n"
    )
}

const POLICY: &str = "apiVersion: veer.io/v1alpha1\nkind: RolloutPolicy\nmetadata:\n  name: canary\nspec:\n  interval: 10s\n  stepWeights: [10, 50]\n";
const CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: []\n";
const ROUTE: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: shop\nspec:\n  hosts: [reviews]\n";

fn revision(commit: &str, files: &[&[Arc<Manifest>]]) -> LoadedRevision {
    let mut r = loaded(commit);
    for f in files {
        r.set.manifests.extend(f.iter().cloned());
    }
    r
}

/// The baseline a full pass over `rev` at `at` leaves, with nothing unsettled.
fn baseline(rev: &LoadedRevision, full_at: DateTime<Utc>) -> Baseline {
    Baseline {
        commit: rev.revision.commit.0.clone(),
        manifests: rev.set.manifests.clone(),
        position: 0,
        full_at,
        again: BTreeSet::new(),
        rollouts_again: BTreeSet::new(),
    }
}

/// A state whose inventory holds `rev`'s objects (and `extra`).
fn applied(rev: &LoadedRevision, extra: &[ObjectKey]) -> SyncState {
    let keys = (rev.set.manifests.iter().map(|m| m.key.clone())).chain(extra.iter().cloned());
    SyncState {
        objects: keys
            .map(|k| ObjectRecord::new(&k, Some("h".into()), "created"))
            .collect(),
        ..SyncState::default()
    }
}

fn facts<'a>(loaded: &'a LoadedRevision, state: &'a SyncState) -> Facts<'a> {
    Facts {
        loaded,
        state,
        now: at(25, 10),
        resync: Duration::from_secs(600),
        dry_run: false,
        tracked: None,
    }
}

fn names(keys: &[ObjectKey]) -> Vec<&str> {
    keys.iter().map(|k| k.name.as_str()).collect()
}

fn untouched(_: &ObjectKey) -> bool {
    false
}

#[test]
fn a_full_plan_when_there_is_nothing_to_build_on_or_the_resync_is_due() {
    let a = file("a.yaml", &config_map("a", "shop", "1"));
    let rev = revision("a", &[&a]);
    let state = applied(&rev, &[]);
    let none = Changes::default();
    let f = facts(&rev, &state);
    assert_eq!(decide(None, &f, &none, &untouched), Err(FullReason::First));
    let dry = Facts {
        dry_run: true,
        ..facts(&rev, &state)
    };
    let b = baseline(&rev, at(25, 9));
    assert_eq!(
        decide(Some(&b), &dry, &none, &untouched),
        Err(FullReason::DryRun)
    );
    // Ten minutes after the last full plan: resync; a minute before: nothing to plan.
    let b = baseline(&rev, at(25, 0));
    assert_eq!(
        decide(Some(&b), &f, &none, &untouched),
        Err(FullReason::Resync)
    );
    let b = baseline(&rev, at(25, 1));
    assert_eq!(decide(Some(&b), &f, &none, &untouched), Ok(Vec::new()));
}

#[test]
fn an_idle_pass_plans_nothing_and_what_the_last_left_unsettled_is_planned_again() {
    let a = file("a.yaml", &config_map("a", "shop", "1"));
    let b_file = file("b.yaml", &config_map("b", "shop", "1"));
    let rev = revision("a", &[&a, &b_file]);
    let state = applied(&rev, &[]);
    let f = facts(&rev, &state);
    let mut b = baseline(&rev, at(25, 5));
    assert_eq!(
        decide(Some(&b), &f, &Changes::default(), &untouched),
        Ok(Vec::new())
    );
    b.again.insert(a[0].key.clone());
    let keys = decide(Some(&b), &f, &Changes::default(), &untouched).expect("some");
    assert_eq!(names(&keys), ["a"]);
}

#[test]
fn a_new_revision_plans_the_objects_that_changed_and_those_that_left() {
    let a = file("a.yaml", &config_map("a", "shop", "1"));
    let b1 = file("b.yaml", &config_map("b", "shop", "1"));
    let c = file("c.yaml", &config_map("c", "shop", "1"));
    let first = revision("a", &[&a, &b1, &c]);
    let state = applied(&first, &[]);
    let base = baseline(&first, at(25, 5));
    // b.yaml changed, c.yaml removed; a.yaml is the parse cache's same manifest.
    let b2 = file("b.yaml", &config_map("b", "shop", "2"));
    let second = revision("b", &[&a, &b2]);
    let keys = decide(
        Some(&base),
        &facts(&second, &state),
        &Changes::default(),
        &untouched,
    )
    .expect("some");
    assert_eq!(names(&keys), ["b", "c"]);
    // Parsed again, unchanged: told apart by content, nothing to plan.
    let again = revision(
        "b",
        &[
            &file("a.yaml", &config_map("a", "shop", "1")),
            &file("b.yaml", &config_map("b", "shop", "1")),
            &file("c.yaml", &config_map("c", "shop", "1")),
        ],
    );
    assert_eq!(
        decide(
            Some(&base),
            &facts(&again, &state),
            &Changes::default(),
            &untouched
        ),
        Ok(Vec::new())
    );
    // The same object moved to another file: its source annotation changes.
    let moved = revision(
        "b",
        &[&a, &b1, &file("d.yaml", &config_map("c", "shop", "1"))],
    );
    let keys = decide(
        Some(&base),
        &facts(&moved, &state),
        &Changes::default(),
        &untouched,
    )
    .expect("some");
    assert_eq!(names(&keys), ["c"]);
}

#[test]
fn objects_the_watches_saw_change_are_planned_git_and_inventory_alike() {
    let a = file("a.yaml", &config_map("a", "shop", "1"));
    let b_file = file("b.yaml", &config_map("b", "shop", "1"));
    let rev = revision("a", &[&a, &b_file]);
    // `gone` left git earlier but is still in the inventory (its prune was skipped).
    let gone = veer_testkit::key("ConfigMap", "shop", "gone");
    let state = applied(&rev, std::slice::from_ref(&gone));
    let base = baseline(&rev, at(25, 5));
    let watch = WatchKey {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("shop".into()),
    };
    for name in ["b", "gone"] {
        let changes = Changes::of_object(watch.clone(), name);
        let touched = |k: &ObjectKey| k.name == name;
        let keys = decide(Some(&base), &facts(&rev, &state), &changes, &touched).expect("some");
        assert_eq!(names(&keys), [name]);
    }
    // A change to an object veer does not manage: nothing to plan.
    let changes = Changes::of_object(watch, "theirs");
    let touched = |k: &ObjectKey| k.name == "theirs";
    assert_eq!(
        decide(Some(&base), &facts(&rev, &state), &changes, &touched),
        Ok(Vec::new())
    );
}

#[test]
fn changes_that_reach_beyond_single_objects_plan_everything() {
    let a = file("a.yaml", &config_map("a", "shop", "1"));
    let policy = file("policy.yaml", POLICY);
    let first = revision("a", &[&a, &policy]);
    let state = applied(&revision("a", &[&a]), &[]);
    let base = baseline(&first, at(25, 5));
    let none = Changes::default();
    let without_policy = revision("b", &[&a]);
    assert_eq!(
        decide(
            Some(&base),
            &facts(&without_policy, &state),
            &none,
            &untouched
        ),
        Err(FullReason::Policies)
    );
    let with_crd = revision("b", &[&a, &policy, &file("crd.yaml", CRD)]);
    assert_eq!(
        decide(Some(&base), &facts(&with_crd, &state), &none, &untouched),
        Err(FullReason::CustomResourceDefinition)
    );
    // A Namespace left git (it may be pruned, unless something stays in it): a change in
    // it, or of it, plans everything; elsewhere, not.
    let old = ObjectKey {
        group: String::new(),
        version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: "old".into(),
    };
    let state = applied(&revision("a", &[&a]), std::slice::from_ref(&old));
    let mut b = baseline(&revision("a", &[&a]), at(25, 5));
    let rev = revision("a", &[&a]);
    b.again.insert(veer_testkit::key("ConfigMap", "old", "x"));
    assert_eq!(
        decide(Some(&b), &facts(&rev, &state), &none, &untouched),
        Err(FullReason::NamespacePrune)
    );
    b.again = BTreeSet::from([old]);
    assert_eq!(
        decide(Some(&b), &facts(&rev, &state), &none, &untouched),
        Err(FullReason::NamespacePrune)
    );
    b.again = BTreeSet::from([veer_testkit::key("ConfigMap", "shop", "a")]);
    let keys = decide(Some(&b), &facts(&rev, &state), &none, &untouched).expect("some");
    assert_eq!(names(&keys), ["a"]);
}

#[test]
fn tracked_rollouts_are_planned_whenever_anything_is() {
    let a = file("a.yaml", &config_map("a", "shop", "1"));
    let route = file("route.yaml", ROUTE);
    let rev = revision("a", &[&a, &route]);
    let state = applied(&rev, &[]);
    let id = RolloutId::of(&route[0].key);
    let tracked = Facts {
        tracked: Some(BTreeSet::from([id.clone()])),
        ..facts(&rev, &state)
    };
    let mut b = baseline(&rev, at(25, 5));
    let none = Changes::default();
    // Idle: the rollout is driven as a tick drives it, nothing planned.
    assert_eq!(
        decide(Some(&b), &tracked, &none, &untouched),
        Ok(Vec::new())
    );
    b.again.insert(a[0].key.clone());
    let keys = decide(Some(&b), &tracked, &none, &untouched).expect("some");
    assert_eq!(names(&keys), ["a", "reviews"]);
    // A rollout whose state changed: its VirtualService alone.
    b.again.clear();
    b.rollouts_again.insert(id);
    let keys = decide(Some(&b), &facts(&rev, &state), &none, &untouched).expect("some");
    assert_eq!(names(&keys), ["reviews"]);
}

#[test]
fn what_needs_another_look() {
    let failed = crate::controller::tests::failed(500);
    let skipped = |reason| ObjectResult::PruneSkipped { reason };
    let by = veer_testkit::key("ConfigMap", "shop", "a");
    let cases = [
        (ObjectResult::Created, true),
        (
            ObjectResult::Updated {
                cause: diff::Cause::Drift,
            },
            true,
        ),
        (ObjectResult::DriftReported, true),
        (failed, true),
        (
            skipped(PruneSkipReason::NamespaceNotEmpty {
                by: by.clone(),
                more: 0,
            }),
            true,
        ),
        (ObjectResult::Unchanged, false),
        (ObjectResult::Pruned, false),
        (skipped(PruneSkipReason::Disabled), false),
        (
            skipped(PruneSkipReason::NamespaceInUse { by, more: 0 }),
            false,
        ),
    ];
    for (result, again) in cases {
        assert_eq!(unsettled(&result), again, "{result:?}");
    }
}
