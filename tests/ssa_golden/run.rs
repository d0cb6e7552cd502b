//! Running a case's steps: on a server (the real one or the embedded one) with the kube client,
//! and through the pure `veer::fields` engine.

use chrono::{DateTime, Utc};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use veer::fields::{self, KeyField, ListRule, ListSemantics, ListType};

use crate::cases::{Action, Case};
use crate::helpers::{Answer, namespace};
use crate::normalise::{error_status, normalise};
use crate::support::backend::TestCluster;

pub(crate) async fn run_on(cluster: &TestCluster, case: &Case) -> Vec<Answer> {
    let ns = namespace(case.name);
    cluster.delete_namespace(&ns).await;
    let nss: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client());
    let body = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("a namespace");
    nss.create(&PostParams::default(), &body)
        .await
        .expect("the case's namespace is created");
    let (ar, name) = case.target();
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), &ns, &ar);
    let mut answers = Vec::new();
    for (_, action) in &case.steps {
        let result = match action {
            Action::Apply(manager, force, body) => {
                let mut pp = PatchParams::apply(manager);
                pp.force = *force;
                api.patch(name, &pp, &Patch::Apply(body)).await
            }
            Action::Merge(manager, patch) => {
                let pp = PatchParams {
                    field_manager: Some(manager.to_string()),
                    ..Default::default()
                };
                api.patch(name, &pp, &Patch::Merge(patch)).await
            }
        };
        answers.push(match result {
            Ok(o) => Ok(normalise(&serde_json::to_value(o).expect("an object"))),
            Err(kube::Error::Api(s)) => {
                Err(error_status(&serde_json::to_value(&*s).expect("JSON")))
            }
            Err(e) => panic!("{} on {}: {e}", case.name, cluster.backend.name()),
        });
    }
    if cluster.is_real() {
        cluster.delete_namespace(&ns).await;
    }
    answers
}

/// List rules the real server takes from its CRDs: ServiceEntry ports keyed by name (see
/// tests/fixtures/crds/istio-networking.yaml). The rest is Kubernetes' built-in table.
fn semantics() -> ListSemantics {
    ListSemantics::kubernetes().with_rule(ListRule::for_kind(
        "networking.istio.io",
        "ServiceEntry",
        "spec.ports",
        ListType::Map(vec![KeyField::new("name")].into()),
    ))
}

/// The same steps through `veer::fields` alone, on JSON, at a fixed time.
pub(crate) fn run_engine(case: &Case) -> Vec<Answer> {
    let now: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().expect("a time");
    let semantics = semantics();
    let mut live: Option<Value> = None;
    let mut answers = Vec::new();
    for (_, action) in &case.steps {
        let answer = match action {
            Action::Apply(manager, force, body) => {
                fields::apply_with(live.as_ref(), body, manager, *force, now, &semantics)
                    .map_err(|e| engine_error(&e))
            }
            Action::Merge(manager, patch) => {
                let old = live.clone().expect("a merge patch follows an apply");
                let mut new = old.clone();
                json_patch::merge(&mut new, patch);
                Ok(fields::update_with(
                    Some(&old),
                    &new,
                    manager,
                    now,
                    &semantics,
                ))
            }
        };
        if let Ok(o) = &answer {
            live = Some(o.clone());
        }
        answers.push(answer.map(|o| normalise(&o)));
    }
    answers
}

/// The status a server would build from the engine's refusal, in the real server's shape.
fn engine_error(e: &fields::ApplyError) -> Value {
    let fields::ApplyError::Conflicts(c) = e else {
        panic!("the engine refused the apply: {e}")
    };
    let causes: Vec<Value> = c
        .conflicts
        .iter()
        .flat_map(|c| {
            c.paths.iter().map(move |p| {
                json!({"reason": "FieldManagerConflict", "field": p.to_string(),
                       "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version)})
            })
        })
        .collect();
    // The engine knows the conflicts, not the request: the envelope is the server's.
    error_status(&json!({
        "code": 409, "reason": "Conflict", "message": e.to_string(),
        "details": {"causes": causes},
    }))
}
