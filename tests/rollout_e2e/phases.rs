//! The phases before the weights move: mirroring, an A/B match route, an injected fault.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};
use veer::analysis::{Prometheus, PrometheusConfig};
use veer::exporter::{Behaviour, ServiceKey};
use veer::rollout::{FailureReason, Phase, RolloutState};

use crate::fixtures::*;
use crate::harness::*;

// -- mirror, A/B match and fault phases --------------------------------------------------
//
// Self-contained: a policy of their own (the checks and steps above plus the phase), and a
// recorder of the whole live VirtualService (the A/B phase inserts a route ahead of
// `primary`, so `spec.http[0]` is not the route being rolled out).

/// The e2e policy with a phase (`spec` lines, indented two spaces) and more metrics (items,
/// indented four).
fn phase_policy(phase: &str, metrics: &str) -> String {
    policy_with("20s", "").trim_end().to_string() + "\n" + metrics + phase
}

/// The service's p99 as its callers' sidecars report it (`caller-request-duration`), failing
/// above `max` ms: the view in which an injected fault shows.
fn caller_p99(max: u32) -> String {
    format!(
        "    - name: caller-p99\n      builtin: caller-request-duration\n      thresholdRange: {{max: {max}}}\n      interval: 4s\n"
    )
}

/// What the live VirtualService said at one moment, as far as the phases go.
#[derive(Debug, Clone, PartialEq)]
struct LiveRoutes {
    /// (v1, v2) of the user's route.
    primary: (u32, u32),
    /// The primary route's `mirror` and `mirrorPercentage`, if any.
    mirror: Option<Value>,
    /// The primary route's `fault`, if any.
    fault: Option<Value>,
    /// (v1, v2) and `match` of the A/B route veer inserted, while there is one.
    ab: Option<((u32, u32), Value)>,
    /// Names of the HTTP routes, in order.
    order: Vec<String>,
}

async fn live_routes(client: &kube::Client) -> Option<LiveRoutes> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), NS, &vs_resource());
    let vs = serde_json::to_value(api.get_opt("reviews").await.ok()??).ok()?;
    let routes = vs.pointer("/spec/http")?.as_array()?.clone();
    let name = |r: &Value| {
        r.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let primary = routes.iter().find(|r| name(r) == "primary")?;
    let ab = routes.iter().find(|r| name(r).starts_with("veer-ab-"));
    Some(LiveRoutes {
        primary: weights_of(primary),
        mirror: primary
            .get("mirror")
            .map(|m| json!({"mirror": m, "mirrorPercentage": primary.get("mirrorPercentage")})),
        fault: primary.get("fault").cloned(),
        ab: ab.map(|r| {
            (
                weights_of(r),
                r.get("match").cloned().unwrap_or(Value::Null),
            )
        }),
        order: routes.iter().map(name).collect(),
    })
}

/// Every distinct state of the live VirtualService, with when it was first seen.
struct RouteRecorder {
    seen: Arc<Mutex<Vec<(Instant, LiveRoutes)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RouteRecorder {
    fn start(client: &kube::Client) -> Self {
        let seen: Arc<Mutex<Vec<(Instant, LiveRoutes)>>> = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let seen = seen.clone();
            let client = client.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(now) = live_routes(&client).await {
                        let mut s = seen.lock().unwrap();
                        if s.last().map(|(_, r)| r) != Some(&now) {
                            s.push((Instant::now(), now));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        RouteRecorder { seen, task }
    }

    /// Everything seen, once the recorder has caught up with `last` (it polls every 50 ms).
    async fn seen_until(&self, last: impl Fn(&LiveRoutes) -> bool) -> Vec<(Instant, LiveRoutes)> {
        let start = Instant::now();
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if seen.last().is_some_and(|(_, r)| last(r)) || start.elapsed() > Duration::from_secs(2)
            {
                self.task.abort();
                return seen;
            }
            drop(seen);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Back at git's first revision: all on v1, no overlay, no inserted route.
fn restored(r: &LiveRoutes) -> bool {
    r.primary == (100, 0) && r.mirror.is_none() && r.fault.is_none() && r.ab.is_none()
}

fn promoted(r: &LiveRoutes) -> bool {
    r.primary == (0, 100) && r.mirror.is_none() && r.fault.is_none() && r.ab.is_none()
}

/// How long states matching `during` lasted: from the first such state to the first state
/// after it that does not match.
fn lasted(seen: &[(Instant, LiveRoutes)], during: impl Fn(&LiveRoutes) -> bool) -> Duration {
    let Some(start) = seen.iter().position(|(_, r)| during(r)) else {
        return Duration::ZERO;
    };
    let end = seen[start..]
        .iter()
        .find(|(_, r)| !during(r))
        .map_or_else(Instant::now, |(at, _)| *at);
    end - seen[start].0
}

/// Passing checks of `metric` in `phase`, with their values.
fn passed_in(state: &RolloutState, phase: Phase, metric: &str) -> Vec<Option<f64>> {
    state
        .history
        .iter()
        .filter(|r| {
            r.phase == phase
                && r.check == metric
                && r.outcome == veer::rollout::state::CheckOutcome::Passed
        })
        .map(|r| r.value)
        .collect()
}

fn failed_checks(state: &RolloutState) -> Vec<(Phase, String)> {
    failed_records(state)
        .into_iter()
        .map(|r| (r.phase, r.check.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_phase_mirrors_for_its_iterations_then_shifts_and_promotes() {
    let s = Scenario::start(&phase_policy("  mirror: {weight: 50, iterations: 2}\n", "")).await;
    let recorder = RouteRecorder::start(&s.client);
    let commit = s.push_split(0, 100, "reviews v2, mirrored first");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    assert_eq!(state.revision, commit);
    let seen = recorder.seen_until(promoted).await;
    let states: Vec<&LiveRoutes> = seen.iter().map(|(_, r)| r).collect();

    // The mirror came first, on the unchanged split, and went before any weight moved.
    let mirrored: Vec<&&LiveRoutes> = states.iter().filter(|r| r.mirror.is_some()).collect();
    assert!(!mirrored.is_empty(), "no mirror seen: {states:#?}");
    assert!(
        mirrored.iter().all(|r| r.primary == (100, 0)),
        "weights moved while mirroring: {states:#?}"
    );
    assert_eq!(
        mirrored[0].mirror,
        Some(json!({"mirror": {"host": "reviews", "subset": "v2"},
                    "mirrorPercentage": {"value": 50}}))
    );
    let first_mirror = states.iter().position(|r| r.mirror.is_some()).unwrap();
    let first_shift = states.iter().position(|r| r.primary.1 > 0).unwrap();
    assert!(first_mirror < first_shift, "{states:#?}");
    // For its two iterations: at least two intervals.
    let mirroring = lasted(&seen, |r| r.mirror.is_some());
    assert!(
        mirroring >= Duration::from_millis(1900),
        "mirrored for {mirroring:?} only"
    );
    // Then the steps, without a mirror, to git's split.
    let v2: Vec<u32> = v2_path(
        &states[first_shift..]
            .iter()
            .map(|r| r.primary)
            .collect::<Vec<_>>(),
    );
    assert_eq!(v2, vec![25, 50, 75, 100], "{states:#?}");
    assert!(states[first_shift..].iter().all(|r| r.mirror.is_none()));

    // The analysis of v2 while it had no weight measured the mirrored copies: v2's only
    // traffic then, reported by its own sidecar.
    let seen_by_analysis = passed_in(&state, Phase::Mirroring, "success-rate");
    assert!(
        seen_by_analysis.len() >= 2 && seen_by_analysis.iter().all(|v| *v == Some(100.0)),
        "{:#?}",
        state.history
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_while_mirrored_rolls_back_without_live_weight() {
    let s = Scenario::start(&phase_policy("  mirror: {weight: 50, iterations: 3}\n", "")).await;
    let recorder = RouteRecorder::start(&s.client);
    s.set_v2(Behaviour {
        error_rate: 0.5,
        latency_ms: 20.0,
    });
    s.push_split(0, 100, "reviews v2 (failing), mirrored first");
    let state = s.wait_rolled_back_by_two_failed_checks().await;
    let failed = failed_checks(&state);
    assert!(
        !failed.is_empty()
            && failed
                .iter()
                .all(|(phase, check)| *phase == Phase::Mirroring && check == "success-rate"),
        "{failed:?}"
    );
    let seen = recorder.seen_until(restored).await;
    assert!(
        seen.iter().any(|(_, r)| r.mirror.is_some()),
        "mirrored: {seen:#?}"
    );
    assert!(
        seen.iter().all(|(_, r)| r.primary == (100, 0)),
        "v2 never received live weight: {seen:#?}"
    );
    assert!(
        restored(&seen.last().expect("a state").1),
        "the mirror is gone: {seen:#?}"
    );
    s.stop().await;
}

/// Share of the requests reaching reviews that v2's sidecar reports, over the last 2 s.
async fn v2_share(prometheus: &Prometheus) -> Option<f64> {
    use veer::analysis::{MetricsProvider, QueryOutcome};
    let q = r#"sum(rate(istio_requests_total{reporter="destination",destination_service_name="reviews",destination_version="v2"}[2s])) / sum(rate(istio_requests_total{reporter="destination",destination_service_name="reviews"}[2s]))"#;
    match prometheus.query(q).await {
        QueryOutcome::Value(v) => Some(v),
        _ => None,
    }
}

const AB_PHASE: &str = "  match:\n    headers: {x-canary: {exact: always}}\n    iterations: 5\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_phase_sends_only_matched_requests_to_the_new_version_then_promotes() {
    let s = Scenario::start(&phase_policy(AB_PHASE, "")).await;
    let recorder = RouteRecorder::start(&s.client);
    let prometheus =
        Prometheus::new(PrometheusConfig::new(&s.prometheus.url())).expect("a Prometheus client");
    s.push_split(0, 100, "reviews v2, testers first");
    s.wait_phase("matching", Phase::Matching).await;
    // While the A/B route is live, v2 receives the exporter's matched share (10 %) of the
    // requests and nothing else; the rest still goes to v1.
    let key = ServiceKey::new(NS, "reviews");
    let start = Instant::now();
    let share = loop {
        let routes = s.exporter.routes(&key).expect("reviews has routes");
        let share = v2_share(&prometheus).await;
        if let (Some(matched), Some(share)) = (&routes.matched, share)
            && matched.weights.get("v2") == Some(&100)
            && (0.07..=0.13).contains(&share)
        {
            let plain = routes.plain.expect("a route for plain requests").weights;
            assert_eq!(
                (plain.get("v1"), plain.get("v2").copied().unwrap_or(0)),
                (Some(&100), 0),
                "plain requests all go to v1"
            );
            break share;
        }
        let phase = s.state().await.map(|st| st.phase);
        assert!(
            phase == Some(Phase::Matching) && start.elapsed() < DEADLINE,
            "v2's share never settled at the matched share while matching: last {share:?}, routes {routes:?}, phase {phase:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("v2's share of the requests while matching: {share:.3}");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    let seen = recorder.seen_until(promoted).await;
    let states: Vec<&LiveRoutes> = seen.iter().map(|(_, r)| r).collect();
    let ab: Vec<&&LiveRoutes> = states.iter().filter(|r| r.ab.is_some()).collect();
    assert!(!ab.is_empty(), "no A/B route seen: {states:#?}");
    for r in &ab {
        assert_eq!(r.order, vec!["veer-ab-0", "primary"], "ahead of the route");
        assert_eq!(
            r.ab,
            Some((
                (0, 100),
                json!([{"headers": {"x-canary": {"exact": "always"}}}])
            ))
        );
        assert_eq!(r.primary, (100, 0), "no weight moved while matching");
    }
    let first_ab = states.iter().position(|r| r.ab.is_some()).unwrap();
    let first_shift = states.iter().position(|r| r.primary.1 > 0).unwrap();
    assert!(first_ab < first_shift, "{states:#?}");
    assert!(states[first_shift..].iter().all(|r| r.ab.is_none()));
    assert_eq!(
        v2_path(
            &states[first_shift..]
                .iter()
                .map(|r| r.primary)
                .collect::<Vec<_>>()
        ),
        vec![25, 50, 75, 100]
    );
    let checks = passed_in(&state, Phase::Matching, "success-rate");
    assert!(
        checks.len() >= 5 && checks.iter().all(|v| *v == Some(100.0)),
        "{:#?}",
        state.history
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_ab_phase_rolls_back_and_removes_the_match_route() {
    let s = Scenario::start(&phase_policy(AB_PHASE, "")).await;
    let recorder = RouteRecorder::start(&s.client);
    s.set_v2(Behaviour {
        error_rate: 0.5,
        latency_ms: 20.0,
    });
    s.push_split(0, 100, "reviews v2 (failing), testers first");
    let state = s.wait_phase("rolled back", Phase::Failed).await;
    let failed = failed_checks(&state);
    assert!(
        !failed.is_empty()
            && failed
                .iter()
                .all(|(phase, check)| *phase == Phase::Matching && check == "success-rate"),
        "{failed:?}"
    );
    let seen = recorder.seen_until(restored).await;
    assert!(seen.iter().any(|(_, r)| r.ab.is_some()), "{seen:#?}");
    assert!(
        seen.iter().all(|(_, r)| r.primary == (100, 0)),
        "v2 never received live weight: {seen:#?}"
    );
    let last = &seen.last().expect("a state").1;
    assert!(restored(last) && last.order == vec!["primary"], "{seen:#?}");
    s.stop().await;
}

const FAULT_PHASE: &str = "  fault: {delay: 700ms, percent: 50, iterations: 2}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_delay_beyond_the_callers_latency_threshold_rolls_back() {
    let s = Scenario::start(&phase_policy(FAULT_PHASE, &caller_p99(500))).await;
    let recorder = RouteRecorder::start(&s.client);
    s.push_split(0, 100, "reviews v2, under a fault");
    let state = s.wait_phase("rolled back", Phase::Failed).await;
    assert!(
        matches!(state.failure, Some(FailureReason::FailedChecks { .. })),
        "{:?}",
        state.failure
    );
    let failed = failed_checks(&state);
    assert!(
        !failed.is_empty()
            && failed
                .iter()
                .all(|(phase, check)| *phase == Phase::FaultTesting && check == "caller-p99"),
        "{failed:?}"
    );
    let caller_p99: Vec<f64> = state
        .history
        .iter()
        .filter(|r| r.check == "caller-p99" && r.phase == Phase::FaultTesting)
        .filter_map(|r| r.value)
        .collect();
    assert!(
        !caller_p99.is_empty() && caller_p99.iter().all(|v| *v > 700.0),
        "the callers waited the delay: {caller_p99:?}"
    );
    // The destination's sidecar never sees a delay its caller injected: the built-in p99
    // passed all along.
    let destination_p99 = passed_in(&state, Phase::FaultTesting, "p99-latency");
    assert!(
        !destination_p99.is_empty() && destination_p99.iter().all(|v| v.is_some_and(|v| v < 100.0)),
        "{:#?}",
        state.history
    );
    let seen = recorder.seen_until(restored).await;
    let faulted: Vec<&LiveRoutes> = seen
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r.fault.is_some())
        .collect();
    assert!(!faulted.is_empty(), "{seen:#?}");
    for r in &faulted {
        assert_eq!(
            r.fault,
            Some(json!({"delay": {"fixedDelay": "700ms", "percentage": {"value": 50}}}))
        );
        assert_eq!(
            r.primary,
            (75, 25),
            "the fault runs at the first step's weight"
        );
    }
    assert!(
        seen.iter().all(|(_, r)| r.primary.1 <= 25),
        "never past the first step: {seen:#?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_delay_within_the_threshold_passes_and_promotes() {
    let s = Scenario::start(&phase_policy(FAULT_PHASE, &caller_p99(1500))).await;
    let recorder = RouteRecorder::start(&s.client);
    s.push_split(0, 100, "reviews v2, under a fault");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    assert_eq!(state.failed_checks, 0, "{:#?}", state.history);
    let under_fault = passed_in(&state, Phase::FaultTesting, "caller-p99");
    assert!(
        under_fault.len() >= 2
            && under_fault
                .iter()
                .all(|v| v.is_some_and(|v| (700.0..1500.0).contains(&v))),
        "the delay showed and was within the threshold: {under_fault:?}"
    );
    let seen = recorder.seen_until(promoted).await;
    let states: Vec<&LiveRoutes> = seen.iter().map(|(_, r)| r).collect();
    let first_fault = states
        .iter()
        .position(|r| r.fault.is_some())
        .expect("a fault was live");
    let faulting = lasted(&seen, |r| r.fault.is_some());
    assert!(
        faulting >= Duration::from_millis(1900),
        "faulted for {faulting:?} only"
    );
    assert!(states[..first_fault].iter().all(|r| r.primary == (100, 0)));
    assert!(
        states[first_fault + 1..]
            .iter()
            .all(|r| r.fault.is_none() || r.primary == (75, 25)),
        "{states:#?}"
    );
    assert_eq!(
        v2_path(&states.iter().map(|r| r.primary).collect::<Vec<_>>()),
        vec![0, 25, 50, 75, 100]
    );
    s.stop().await;
}
