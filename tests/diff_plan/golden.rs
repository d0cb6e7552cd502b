//! Golden renderings of one plan with every action, under `tests/fixtures/diff/`
//! (`UPDATE_GOLDEN=1` rewrites them), and its summary line.

use serde_json::{Value, json};
use veer::diff::{self, Plan, plan};
use veer::fields::update;
use veer_testkit::at;

use crate::helpers::{
    applied, config_map, context_for, deployment, desired, destination_rule, live_map,
    virtual_service,
};

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
