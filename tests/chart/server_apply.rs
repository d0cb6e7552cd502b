//! Every rendered object, applied with server-side apply to the embedded API server, is
//! accepted and stored as applied.

use serde_json::{Value, json};

use crate::common::{SERVICE_MONITOR_CRD, apply, default_values, fixture, full_values};
use crate::{devcluster, helm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_api_server_accepts_every_rendered_object() {
    let k = fixture().await;
    let client = devcluster::client(&k.cluster);
    let namespace =
        |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    for ns in ["veer-system", "bookinfo", "shop"] {
        apply(&client, &namespace(ns)).await.expect("a namespace");
    }
    // Without its CRD the ServiceMonitor kind does not exist (a cluster without the
    // Prometheus operator): helm refuses the install and says why.
    let err = k
        .render(&[full_values()])
        .await
        .err()
        .expect("no ServiceMonitor CRD yet");
    assert!(err.contains("ensure CRDs are installed first"), "{err}");
    apply(&client, &helm::yaml(SERVICE_MONITOR_CRD))
        .await
        .expect("the ServiceMonitor CRD");
    for values in [default_values(), full_values()] {
        let r = k.render_ok(&[values]).await;
        for object in &r.objects {
            let stored = apply(&client, object).await.unwrap_or_else(|e| {
                panic!(
                    "the server refuses {} {}: {e}",
                    object["kind"], object["metadata"]["name"]
                )
            });
            // What was applied is what is stored (no field dropped on the way).
            let stored = serde_json::to_value(&stored).expect("JSON");
            for field in ["spec", "data", "rules", "roleRef", "subjects"] {
                if !object[field].is_null() {
                    let mut applied = object[field].clone();
                    let mut live = stored[field].clone();
                    // The server fills in defaults: compare only what the chart set.
                    retain_applied(&mut live, &mut applied);
                    assert_eq!(live, applied, "{} {field}", object["kind"]);
                }
            }
        }
    }
    k.stop().await;
}

/// Drop from `live` the map keys `applied` does not set (server defaults).
fn retain_applied(live: &mut Value, applied: &mut Value) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            l.retain(|k, _| a.contains_key(k));
            for (k, v) in l.iter_mut() {
                if let Some(av) = a.get_mut(k) {
                    retain_applied(v, av);
                }
            }
        }
        (Value::Array(l), Value::Array(a)) if l.len() == a.len() => {
            for (lv, av) in l.iter_mut().zip(a.iter_mut()) {
                retain_applied(lv, av);
            }
        }
        _ => {}
    }
}
