//! Routes that move together: one commit shifting two routes of a VirtualService.

use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject};
use serde_json::Value;
use veer::exporter::Behaviour;
use veer::rollout::Phase;

use crate::fixtures::*;
use crate::harness::*;

/// The VirtualService with a testers' route (header match) ahead of the primary one, both at
/// `(v1, v2)`.
fn two_route_virtual_service(v1: u32, v2: u32) -> String {
    virtual_service(v1, v2).replace(
        "  http:\n",
        &format!(
            "  http:\n  - name: testers\n    match:\n    - headers: {{x-tester: {{exact: \"yes\"}}}}\n    route:\n    - destination: {{host: reviews, subset: v1}}\n      weight: {v1}\n    - destination: {{host: reviews, subset: v2}}\n      weight: {v2}\n"
        ),
    )
}

/// (testers, primary) weights of the live VirtualService, by route name.
async fn two_route_weights(client: &kube::Client) -> Option<((u32, u32), (u32, u32))> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), NS, &vs_resource());
    let vs = serde_json::to_value(api.get_opt("reviews").await.ok()??).ok()?;
    let routes = vs.pointer("/spec/http")?.as_array()?.clone();
    let by_name = |n: &str| {
        routes
            .iter()
            .find(|r| r.get("name").and_then(Value::as_str) == Some(n))
            .map(weights_of)
    };
    Some((by_name("testers")?, by_name("primary")?))
}

/// Poll the two routes until `done`, recording every distinct pair seen.
async fn record_two_routes(
    client: &kube::Client,
    done: impl Fn(&((u32, u32), (u32, u32))) -> bool,
) -> Vec<((u32, u32), (u32, u32))> {
    let start = Instant::now();
    let mut seen: Vec<((u32, u32), (u32, u32))> = Vec::new();
    loop {
        if let Some(now) = two_route_weights(client).await {
            if seen.last() != Some(&now) {
                seen.push(now);
            }
            if done(&now) {
                return seen;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the routes never got there: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_a_commit_shifts_move_step_by_step_together() {
    let s = Scenario::start(&policy("20s")).await;
    // First the testers' route appears beside the primary one, all on v1: nothing shifts.
    s.remote
        .write("reviews.yaml", &two_route_virtual_service(100, 0));
    s.remote.commit_and_push("a route for testers");
    record_two_routes(&s.client, |r| *r == ((100, 0), (100, 0))).await;
    // Then one commit moves both routes to v2.
    s.remote
        .write("reviews.yaml", &two_route_virtual_service(0, 100));
    s.remote.commit_and_push("reviews v2 for everyone");
    let seen = record_two_routes(&s.client, |r| *r == ((0, 100), (0, 100))).await;
    for (testers, primary) in &seen {
        assert_eq!(testers, primary, "the routes moved apart: {seen:?}");
    }
    let path: Vec<u32> = seen.iter().map(|(t, _)| t.1).collect();
    assert_eq!(path, [0, 25, 50, 75, 100], "step by step: {seen:?}");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    assert_eq!(state.companions.len(), 1, "{state:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_roll_back_together() {
    let s = Scenario::start(&policy("20s")).await;
    s.remote
        .write("reviews.yaml", &two_route_virtual_service(100, 0));
    s.remote.commit_and_push("a route for testers");
    record_two_routes(&s.client, |r| *r == ((100, 0), (100, 0))).await;
    s.set_v2(Behaviour {
        error_rate: 0.5,
        latency_ms: 20.0,
    });
    s.remote
        .write("reviews.yaml", &two_route_virtual_service(0, 100));
    s.remote.commit_and_push("reviews v2 for everyone");
    record_two_routes(&s.client, |r| *r == ((75, 25), (75, 25))).await;
    s.wait_rolled_back_by_two_failed_checks().await;
    let seen = record_two_routes(&s.client, |r| *r == ((100, 0), (100, 0))).await;
    assert!(
        seen.iter().all(|(t, p)| t == p),
        "the routes moved apart: {seen:?}"
    );
    s.stop().await;
}
