//! The Grafana dashboard (`charts/veer/dashboards/veer.json`) is valid JSON of a dashboard's
//! shape, queries only metrics `veer::metrics` really exports, and shows every one of them.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use veer::analysis::Judgement;
use veer::metrics::{Bound, Metrics};
use veer::pass::PassOutcome;

fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/veer/dashboards/veer.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard file");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every PromQL expression: panel targets and query variables.
fn expressions(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(
                t["expr"]
                    .as_str()
                    .expect("a target has an expr")
                    .to_string(),
            );
        }
    }
    for v in d["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"]["query"].as_str() {
            out.push(q.to_string());
        }
    }
    out
}

/// The sample names `/metrics` serves once every family has a series.
fn exported() -> (BTreeSet<String>, BTreeSet<String>) {
    let m = Metrics::new();
    m.observe_reconcile(Duration::from_millis(120));
    m.record_sync(PassOutcome::Synced);
    m.set_drift_objects(2);
    m.observe_git_fetch(Duration::from_millis(40));
    m.record_git_fetch_error(Duration::from_millis(40), "timeout");
    m.set_rollout_weight("shop/reviews", 20.0);
    m.set_rollout_phase("shop/reviews", "progressing");
    m.record_check("error-rate", Judgement::Pass);
    m.set_metric_value("shop/reviews", "error-rate", 0.01);
    m.set_metric_threshold("shop/reviews", "error-rate", Bound::Max, Some(0.05));
    m.set_baseline_p_value("shop/reviews", "error-rate", Some(0.4));
    m.register_notifier("slack");
    m.record_notification_sent("slack");
    m.record_notification_failed("slack");
    m.record_notification_dropped("slack");
    m.record_notification_duplicate();
    m.record_prometheus_query("grouped");
    let text = m.encode();
    let mut samples = BTreeSet::new();
    let mut families = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split(' ').next().expect("a name").to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().expect("a name");
            samples.insert(name.to_string());
        }
    }
    (samples, families)
}

#[test]
fn every_queried_metric_exists_and_every_metric_is_shown() {
    let d = dashboard();
    let (samples, families) = exported();
    let name = regex::Regex::new(r"\bveer_[a-z0-9_]+").expect("a regex");
    let mut queried = BTreeSet::new();
    for expr in expressions(&d) {
        for m in name.find_iter(&expr) {
            assert!(
                samples.contains(m.as_str()),
                "the dashboard queries {}, which veer does not export (exported: {samples:?})\n{expr}",
                m.as_str()
            );
            queried.insert(m.as_str().to_string());
        }
    }
    for family in &families {
        assert!(
            queried
                .iter()
                .any(|q| q == family || q.starts_with(&format!("{family}_"))),
            "veer exports {family} but the dashboard does not show it"
        );
    }
}

#[test]
fn the_dashboard_has_a_grafana_dashboards_shape() {
    let d = dashboard();
    assert_eq!(d["uid"], "veer-overview");
    assert!(d["title"].is_string() && d["schemaVersion"].as_u64().is_some());
    let variables: Vec<&str> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| v["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(variables, ["datasource", "job", "rollout"]);
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        let id = p["id"].as_u64().expect("a panel id");
        assert!(ids.insert(id), "panel id {id} twice");
        for k in ["x", "y", "w", "h"] {
            assert!(
                p["gridPos"][k].as_u64().is_some(),
                "gridPos.{k} of {}",
                p["title"]
            );
        }
        assert!(p["gridPos"]["x"].as_u64().unwrap() + p["gridPos"]["w"].as_u64().unwrap() <= 24);
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            assert!(
                expr.contains("job=~\"$job\""),
                "{} ignores $job: {expr}",
                p["title"]
            );
            assert_eq!(
                expr.matches('(').count(),
                expr.matches(')').count(),
                "unbalanced parentheses: {expr}"
            );
        }
    }
}
