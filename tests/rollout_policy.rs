//! The shipped policies (`policies/*.yaml`) are valid and embedded, and VirtualServices bind
//! to policies by annotation or selector, with the known policy names as input.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use veer::manifest::rollout_policy::{self as policy, Binding, RolloutPolicy};
use veer::manifest::{self, ManifestSet, ReadOptions};
use veer::validate::{self, Index, rollout_policy};

fn read(path: &str, text: &str) -> ManifestSet {
    let mut set = ManifestSet::default();
    set.extend(&manifest::parse_file(
        path,
        text.as_bytes(),
        &ReadOptions::default(),
    ));
    set
}

#[test]
fn every_shipped_policy_is_embedded_and_validates_without_any_diagnostic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut on_disk: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("policies/{n}"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = policy::SHIPPED_FILES
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "embed every policies/*.yaml in SHIPPED_FILES"
    );
    for (path, text) in policy::SHIPPED_FILES {
        let report = validate::validate(&read(path, text));
        assert!(
            report.diagnostics.is_empty(),
            "{path}:\n{}",
            report.render_human()
        );
    }
    let names: Vec<&str> = policy::shipped().iter().map(RolloutPolicy::name).collect();
    assert_eq!(
        names,
        [
            "default-canary",
            "conservative",
            "ab-testing",
            "mirror-then-shift"
        ]
    );
    let default = &policy::shipped()[0].spec;
    assert_eq!(default.step_values(), [10, 20, 30, 40, 50]);
    let conservative = &policy::shipped()[1].spec;
    assert_eq!(conservative.max_weight(), 50);
    // It compares both its metrics with the old version, each the way it gets worse.
    let baseline = conservative
        .baseline
        .as_ref()
        .expect("conservative compares");
    let directions: Vec<_> = conservative
        .metrics
        .iter()
        .map(|m| (m.name.as_str(), baseline.direction_of(m)))
        .collect();
    assert_eq!(
        directions,
        [
            ("success-rate", Some(Ok(policy::Direction::Decrease))),
            ("p99-latency", Some(Ok(policy::Direction::Increase)))
        ]
    );
    assert_eq!(baseline.alpha(), 0.05);
    let parsed = read(policy::SHIPPED_FILES[0].0, policy::SHIPPED_FILES[0].1);
    assert!(manifest::policy::is_veer_config(&parsed.manifests[0]));
    assert_eq!(
        parsed.manifests[0].key.namespace, None,
        "policies are not namespaced"
    );
}

const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  annotations:\n    veer.io/rollout-policy: team-canary\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews}\n";

#[test]
fn an_annotation_may_name_a_policy_from_a_policies_directory() {
    let set = read("vs.yaml", VS);
    let index = Index::new(&set.manifests);
    let mut out = Vec::new();
    rollout_policy::check_references(&index, policy::shipped(), &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].code, "rp-unknown-policy");
    assert_eq!(out[0].line, 6);

    let team = read(
        "policies/team.yaml",
        "apiVersion: veer.io/v1alpha1\nkind: RolloutPolicy\nmetadata:\n  name: team-canary\nspec:\n  interval: 1m\n  stepWeights: [50]\n",
    );
    let known: Vec<RolloutPolicy> = team
        .manifests
        .iter()
        .filter_map(|m| manifest::policy::rollout_policy(m).cloned())
        .collect();
    assert_eq!(known.len(), 1);
    let mut out = Vec::new();
    rollout_policy::check_references(&index, &known, &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn binding_prefers_the_annotation_then_exactly_one_selector() {
    let policies = policy::effective(&[]);
    let labels: BTreeMap<String, String> = [("app".to_string(), "reviews".to_string())].into();
    assert!(matches!(
        policy::bind(Some("conservative"), &labels, &policies),
        Binding::Annotation(p) if p.name() == "conservative"
    ));
    assert_eq!(
        policy::bind(Some("nope"), &labels, &policies),
        Binding::UnknownPolicy("nope".into())
    );
    // Shipped policies have no selector: an unannotated VirtualService is not bound.
    assert_eq!(policy::bind(None, &labels, &policies), Binding::Unbound);

    let mut mine = policies[0].clone();
    mine.metadata = serde_json::json!({"name": "by-app"});
    mine.spec.selector = Some(policy::Selector {
        match_labels: labels.clone(),
    });
    let with_selector = policy::effective(&[mine.clone()]);
    assert!(matches!(
        policy::bind(None, &labels, &with_selector),
        Binding::Selector(p) if p.name() == "by-app"
    ));
    let mut twin = mine.clone();
    twin.metadata = serde_json::json!({"name": "by-app-2"});
    let both = policy::effective(&[mine, twin]);
    assert_eq!(
        policy::bind(None, &labels, &both),
        Binding::Ambiguous(vec!["by-app".into(), "by-app-2".into()])
    );
    // A repository policy of a shipped name replaces the shipped one.
    let mut own_default = policies[0].clone();
    own_default.spec.interval = "5s".into();
    let merged = policy::effective(&[own_default]);
    assert_eq!(merged.len(), 4);
    assert_eq!(merged[0].spec.interval, "5s");
}
