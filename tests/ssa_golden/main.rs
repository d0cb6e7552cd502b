//! Golden answers of a real kube-apiserver to server-side apply, and the check that veer's
//! model of it agrees: the pure `veer::fields` engine and the embedded API server (which runs
//! that engine) replay each case and must produce what the real server recorded.
//!
//! Owns `tests/fixtures/ssa/<case>.json`: per case, the real server's version and, per step,
//! the object it returned (or the error status), normalised (see [`normalise`]).
//!
//! - Recording: `UPDATE_GOLDEN=1 VEER_TEST_KUBECONFIG=… cargo test --test ssa_golden` runs
//!   each case on the real server (namespace `ssa-<case>`) and rewrites its golden file.
//! - Checking (default): needs no server but the embedded one; the goldens are checked in.
//!
//! Deployments and Services are compared on their managedFields (whole) and on the fields
//! some manager owned in the case (see [`Compare::Owned`]): a real server fills defaults
//! (`imagePullPolicy`, `terminationMessagePath`, `sessionAffinity`, …) that the pure engine
//! never fills and the embedded server need not. Istio kinds have no defaults: compared whole.
//!
//! Differences found are either fixed in veer or listed as a KNOWN DIFFERENCE (see [`known`]).

#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod cases;
mod compare;
mod known;
mod normalise;
mod run;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::backend::{Backend, TestCluster};

use cases::case;
use compare::compare;
use helpers::text;
use run::{run_engine, run_on};

fn golden_path(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/ssa/{case}.json"))
}

async fn check(name: &'static str) {
    let case = case(name);
    let path = golden_path(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| !v.is_empty()) {
        let real = TestCluster::start(Backend::Real).await;
        let server = real.server_version().await;
        let answers = run_on(&real, &case).await;
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("fixtures dir");
        let steps: Vec<Value> = (case.steps.iter().zip(&answers))
            .map(|((what, _), a)| match a {
                Ok(o) => json!({"step": what, "object": o}),
                Err(s) => json!({"step": what, "error": s}),
            })
            .collect();
        let golden = json!({"case": name, "server": server, "steps": steps});
        std::fs::write(&path, text(&golden)).expect("golden written");
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it with `UPDATE_GOLDEN=1 VEER_TEST_KUBECONFIG=… cargo test --test \
             ssa_golden` against a real kube-apiserver",
            path.display()
        )
    }))
    .expect("the golden is JSON");
    let mut findings = compare(&case, "engine", &golden, &run_engine(&case));
    let embedded = TestCluster::start(Backend::Embedded).await;
    findings.extend(compare(
        &case,
        "embedded",
        &golden,
        &run_on(&embedded, &case).await,
    ));
    assert!(
        findings.is_empty(),
        "{name}: veer disagrees with the real server ({}) in {} place(s):\n\n{}",
        golden["server"].as_str().unwrap_or("?"),
        findings.len(),
        findings.join("\n")
    );
}

/// One test per case, named after it.
macro_rules! cases {
    ($($test:ident => $name:literal),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            check($name).await;
        }
    )*};
}

cases!(
    deployment_apply => "deployment-apply",
    deployment_edit => "deployment-edit",
    deployment_drop => "deployment-drop",
    service_ports => "service-ports",
    serviceentry_ports => "serviceentry-ports",
    virtualservice_numbers => "virtualservice-numbers",
    apply_conflict => "apply-conflict",
);
