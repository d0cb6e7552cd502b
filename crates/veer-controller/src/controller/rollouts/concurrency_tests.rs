//! Rollouts driven concurrently, each on its own schedule, against the fakes of
//! `driver_tests` and tokio's paused clock: a slow Prometheus answer for one rollout delays no
//! other's steps, and the analyses of rollouts due together go out as one grouped query for
//! all their built-in metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::super::fixtures::{policy, vs};
use super::super::ports::{Clock, Ports};
use super::{DesiredObject, Metrics, ObjectKey, RolloutDriver, RolloutPolicy, TrafficSplit, World};
use crate::analysis::{
    LabelledSample, MetricsProvider, QueryOutcome, RangeOutcome, SampleRange, SeriesOutcome,
};
use crate::manifest::rollout_policy::{BuiltinMetric, MetricCheck, ThresholdRange};
use crate::rollout::state::{Phase, Stage};

/// A policy stepping every 10 s through 25/50/75 %, judged by the built-in success rate and
/// p99 (and `minRequests`, so the request count is asked too).
fn judged() -> RolloutPolicy {
    let mut p = policy("p");
    p.spec.interval = "10s".into();
    p.spec.min_requests = Some(10);
    p.spec.metrics = vec![
        MetricCheck {
            name: "success-rate".into(),
            builtin: Some(BuiltinMetric::RequestSuccessRate),
            query: None,
            threshold_range: ThresholdRange {
                min: Some(99.0),
                max: None,
            },
            interval: None,
        },
        MetricCheck {
            name: "latency".into(),
            builtin: Some(BuiltinMetric::RequestDuration),
            query: None,
            threshold_range: ThresholdRange {
                min: None,
                max: Some(500.0),
            },
            interval: None,
        },
    ];
    p
}

/// The VirtualService `shop/<name>` (host `name`, subsets v1 and v2) at `(v1, v2)`.
fn named(name: &str, v1: u32, v2: u32) -> (ObjectKey, Value) {
    let mut v = vs(v1, v2, Some("p"));
    v["metadata"]["name"] = json!(name);
    v["spec"]["hosts"] = json!([name]);
    for d in v["spec"]["http"][0]["route"].as_array_mut().unwrap() {
        d["destination"]["host"] = json!(name);
    }
    let key = ObjectKey {
        name: name.into(),
        ..super::key()
    };
    (key, v)
}

/// One pass (`all`) or tick over the VirtualServices `names`, git at v2:100 and the cache at
/// v1:100 as veer wrote it.
async fn drive(w: &mut World, names: &[&str], all: bool) {
    let (desired, live) = objects(names);
    drive_objects(w, &desired, &live, all).await;
}

/// Git's and the cache's VirtualServices `names` (see [`drive`]).
fn objects(names: &[&str]) -> (Vec<DesiredObject>, BTreeMap<ObjectKey, Value>) {
    let mut desired = Vec::new();
    let mut live = BTreeMap::new();
    for name in names {
        let (key, git) = named(name, 0, 100);
        let (_, mut cached) = named(name, 100, 0);
        cached["metadata"]["managedFields"] = json!([{"manager": "veer", "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:http": {}}}}]);
        desired.push(DesiredObject::new(key.clone(), git));
        live.insert(key, cached);
    }
    (desired, live)
}

async fn drive_objects(
    w: &mut World,
    desired: &[DesiredObject],
    live: &BTreeMap<ObjectKey, Value>,
    all: bool,
) {
    let ports = Ports {
        store: &w.store,
        probe: &w.probe,
        traffic: &w.route,
        clock: &w.clock,
    };
    if all {
        w.driver.drive_all(&ports, &w.loaded, desired, live).await;
    } else {
        w.driver.drive(&ports, &w.loaded, desired, live).await;
    }
}

/// Healthy answers (success 100 %, p99 25 ms, 100 requests); one rollout's own queries, and
/// grouped queries when `series`, every service's series (of each part, tagged, when the
/// query joins several). A query about `slow` answers after 30 s.
struct Healthy {
    slow: Option<&'static str>,
    series: bool,
    services: Vec<String>,
}

/// p99 25 ms; the success rate (100 %) and the request count (100) are both 100.
fn value_of(promql: &str) -> f64 {
    if promql.contains("histogram_quantile") {
        25.0
    } else {
        100.0
    }
}

impl MetricsProvider for Healthy {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
        let slow = self
            .slow
            .is_some_and(|s| promql.contains(&format!("destination_service_name=\"{s}\"")));
        Box::pin(async move {
            if slow {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            QueryOutcome::Value(value_of(promql))
        })
    }

    fn query_range<'a>(&'a self, _: &'a str, _: &'a SampleRange) -> BoxFuture<'a, RangeOutcome> {
        Box::pin(async { RangeOutcome::NoData })
    }

    fn answers_series(&self) -> bool {
        self.series
    }

    fn query_series<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, SeriesOutcome> {
        // A combined query's parts, in order (`analysis::batch::Query::Grouped`).
        let parts: Vec<&str> = promql.split(" or label_replace(").collect();
        let tagged = parts.len() > 1;
        let mut samples = Vec::new();
        for (n, part) in parts.iter().enumerate() {
            for s in &self.services {
                let mut labels: BTreeMap<String, String> = [
                    ("destination_workload_namespace", "shop"),
                    ("destination_service_name", s.as_str()),
                    ("destination_version", "v2"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                if tagged {
                    labels.insert(
                        crate::analysis::batch::PART_LABEL.to_string(),
                        n.to_string(),
                    );
                }
                samples.push(LabelledSample {
                    labels,
                    value: QueryOutcome::Value(value_of(part)),
                });
            }
        }
        Box::pin(async move { SeriesOutcome::Samples(samples) })
    }
}

/// The new version's weight in each split written to `name`, with the second it was written
/// at (since `start`).
fn writes(w: &World, name: &str, start: tokio::time::Instant) -> Vec<(u64, u32)> {
    w.route
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n, _)| n == name)
        .map(|(at, _, s)| ((*at - start).as_secs(), v2(s)))
        .collect()
}

fn v2(split: &TrafficSplit) -> u32 {
    split
        .iter()
        .find(|(d, _)| d.subset.as_deref() == Some("v2"))
        .map_or(0, |(_, w)| w)
}

#[tokio::test(start_paused = true)]
async fn a_slow_analysis_delays_no_other_rollouts_steps() {
    let mut w = World::with_policy(judged());
    w.driver.provider = Some(Arc::new(Healthy {
        slow: Some("ratings"),
        series: false,
        services: Vec::new(),
    }));
    let start = tokio::time::Instant::now();
    drive(&mut w, &["reviews", "ratings"], true).await;
    assert_eq!(writes(&w, "reviews", start).len(), 1, "the first step");
    assert_eq!(writes(&w, "ratings", start).len(), 1, "the first step");

    // Both are due 10 s later; ratings' analysis answers only 30 s after that.
    let wake = w.driver.next_wake().expect("a wake");
    assert_eq!(wake, w.clock.now() + chrono::TimeDelta::seconds(10));
    tokio::time::advance(Duration::from_secs(10)).await;
    drive(&mut w, &["reviews", "ratings"], false).await;

    // Each step judged on time, 10 s apart, while ratings waited: 50 %, 75 %, promoted.
    assert_eq!(
        writes(&w, "reviews", start),
        [(0, 25), (10, 50), (20, 75), (30, 100)],
        "reviews steps on its own schedule"
    );
    assert_eq!(
        writes(&w, "ratings", start),
        [(0, 25), (40, 50)],
        "ratings steps once its answer came"
    );
    let phase = |name: &str| {
        w.store
            .states
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| id.name == name)
            .map(|(_, s)| s.phase)
    };
    assert_eq!(phase("reviews"), Some(Phase::Succeeded));
    assert_eq!(phase("ratings"), Some(Phase::Progressing));
}

#[tokio::test(start_paused = true)]
async fn a_slow_write_delays_no_other_rollouts_steps() {
    let mut w = World::with_policy(judged());
    w.driver.provider = Some(Arc::new(Healthy {
        slow: None,
        series: false,
        services: Vec::new(),
    }));
    *w.route.slow.lock().unwrap() = Some("ratings");
    let start = tokio::time::Instant::now();
    // The pass lasts while ratings' first write does (35 s); reviews steps meanwhile.
    drive(&mut w, &["reviews", "ratings"], true).await;
    assert_eq!(
        writes(&w, "reviews", start),
        [(0, 25), (10, 50), (20, 75), (30, 100)],
        "reviews steps on its own schedule"
    );
    assert_eq!(writes(&w, "ratings", start), [(35, 25)]);
}

#[tokio::test(start_paused = true)]
async fn rollouts_due_together_share_one_grouped_query() {
    let names = ["reviews", "ratings", "details"];
    let mut w = World::with_policy(judged());
    w.driver.provider = Some(Arc::new(Healthy {
        slow: None,
        series: true,
        services: names.iter().map(|n| n.to_string()).collect(),
    }));
    // A concurrency of one: rollouts still gather into one batch (waiting is not working).
    w.driver.options.concurrency = 1;
    let start = tokio::time::Instant::now();
    drive(&mut w, &names, true).await;
    assert_eq!(w.driver.prometheus_queries().total(), 0, "no analysis yet");
    tokio::time::advance(Duration::from_secs(10)).await;
    drive(&mut w, &names, false).await;
    let sent = w.driver.prometheus_queries();
    // Success rate, p99 and the request count over one window: one grouped query, for all
    // three rollouts.
    assert_eq!(
        (sent.grouped, sent.instant, sent.range),
        (1, 0, 0),
        "{sent:?}"
    );
    for name in names {
        assert_eq!(writes(&w, name, start), [(0, 25), (10, 50)], "{name}");
    }
    let metrics = w.driver.metrics.encode();
    assert!(
        metrics.contains("veer_prometheus_queries_total{kind=\"grouped\"} 1"),
        "{metrics}"
    );
}

/// Rollouts started apart (three passes over 7 s, as a slow pass writes its first steps)
/// are judged together from the second interval on: their checks fall due on the interval's
/// grid (`rollout::cadence`), none is judged before it is due nor later than 1 s after, and
/// no interval sends more than one query (success rate, p99 and request count together).
#[tokio::test(start_paused = true)]
async fn rollouts_started_apart_are_judged_together_on_the_grid() {
    let names = ["reviews", "ratings", "details"];
    let mut w = World::with_policy(judged());
    w.driver.provider = Some(Arc::new(Healthy {
        slow: None,
        series: true,
        services: names.iter().map(|n| n.to_string()).collect(),
    }));
    let start = tokio::time::Instant::now();
    drive(&mut w, &names[..1], true).await;
    tokio::time::advance(Duration::from_secs(3)).await;
    drive(&mut w, &names[..2], true).await;
    tokio::time::advance(Duration::from_secs(4)).await;
    drive(&mut w, &names, true).await;
    let mut sent = Vec::new();
    while let Some(wake) = w.driver.next_wake() {
        let dues: Vec<_> = w.driver.due.values().flatten().copied().collect();
        if let Ok(d) = (wake - w.clock.now()).to_std() {
            tokio::time::advance(d).await;
        }
        let now = w.clock.now();
        let judged: Vec<_> = dues.iter().filter(|d| **d <= now).collect();
        assert!(
            judged
                .iter()
                .all(|d| now - **d <= chrono::TimeDelta::seconds(1)),
            "driven at {now}, due at {judged:?}"
        );
        let before = w.driver.prometheus_queries().total();
        drive(&mut w, &names, false).await;
        let at = (tokio::time::Instant::now() - start).as_secs();
        sent.push((at, w.driver.prometheus_queries().total() - before));
    }
    assert_eq!(
        writes(&w, "reviews", start),
        [(0, 25), (10, 50), (20, 75), (30, 100)]
    );
    // A longer first settle, to the grid; then the cadence.
    assert_eq!(
        writes(&w, "ratings", start),
        [(3, 25), (20, 50), (30, 75), (40, 100)]
    );
    assert_eq!(
        writes(&w, "details", start),
        [(7, 25), (20, 50), (30, 75), (40, 100)]
    );
    assert_eq!(
        sent,
        [(10, 1), (20, 1), (30, 1), (40, 1)],
        "queries per tick"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tick_drives_only_the_rollouts_due() {
    let mut w = World::with_policy(judged());
    w.driver.provider = Some(Arc::new(Healthy {
        slow: None,
        series: false,
        services: Vec::new(),
    }));
    drive(&mut w, &["reviews"], true).await;
    let reads = *w.store.writes.lock().unwrap();
    // Not due for another 10 s: a tick now leaves it alone (no read, no store, no query).
    tokio::time::advance(Duration::from_secs(1)).await;
    drive(&mut w, &["reviews"], false).await;
    assert_eq!(*w.store.writes.lock().unwrap(), reads);
    assert_eq!(w.driver.prometheus_queries().total(), 0);
}

/// A step ahead on a passing check is stored once, after its split is read back
/// (`tick::step_ahead`); a veer restarted between that write and that store finds the step
/// before, settled with its check due: it judges it again and writes the same split again,
/// then carries on. No step is skipped or taken backwards.
#[tokio::test(start_paused = true)]
async fn a_restart_between_a_steps_write_and_its_store_judges_the_step_again() {
    let mut w = World::with_policy(judged());
    let healthy = || {
        Arc::new(Healthy {
            slow: None,
            series: false,
            services: Vec::new(),
        })
    };
    w.driver.provider = Some(healthy());
    let start = tokio::time::Instant::now();
    drive(&mut w, &["reviews"], true).await;
    let settled = w.state();
    assert_eq!((settled.phase, settled.step), (Phase::Progressing, 0));
    assert!(matches!(settled.stage, Stage::Settling { .. }));

    tokio::time::advance(Duration::from_secs(10)).await;
    let stores = *w.store.writes.lock().unwrap();
    drive(&mut w, &["reviews"], false).await;
    assert_eq!(writes(&w, "reviews", start), [(0, 25), (10, 50)]);
    assert_eq!(
        *w.store.writes.lock().unwrap() - stores,
        1,
        "one store for the step: after its read-back"
    );
    let stepped = w.state();
    assert_eq!(stepped.step, 1);
    assert!(matches!(stepped.stage, Stage::Settling { .. }));

    // veer dies after writing 50 % and before storing it: the store still holds step 0.
    let id = w
        .store
        .states
        .lock()
        .unwrap()
        .keys()
        .next()
        .cloned()
        .unwrap();
    w.store.states.lock().unwrap().insert(id, settled);
    let options = w.driver.options.clone();
    w.driver = RolloutDriver::new(options, Arc::new(Metrics::new())).unwrap();
    w.driver.provider = Some(healthy());
    for _ in 0..10 {
        drive(&mut w, &["reviews"], false).await;
        let Some(wake) = w.driver.next_wake() else {
            break;
        };
        if let Ok(d) = (wake - w.clock.now()).to_std() {
            tokio::time::advance(d).await;
        }
    }
    assert_eq!(
        writes(&w, "reviews", start),
        [(0, 25), (10, 50), (10, 50), (20, 75), (30, 100)],
        "step 0 judged again, its step ahead written again, then on"
    );
    assert_eq!(w.state().phase, Phase::Succeeded);
}

/// Figures for 1,000 rollouts of one policy started by one commit (a debug build, fakes for
/// the cluster: the driver's own cost): per tick, the rollouts stepped, the Prometheus queries
/// sent, how late the analyses came after the rollouts were due, and the wall time (one
/// thread: its CPU). `cargo test -p veer-controller --lib many_rollouts -- --ignored
/// --nocapture`.
#[tokio::test(start_paused = true)]
#[ignore = "prints figures; run by hand"]
async fn many_rollouts_figures() {
    let names: Vec<String> = (0..1000).map(|i| format!("svc-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut w = World::with_policy(judged());
    w.driver.provider = Some(Arc::new(Healthy {
        slow: None,
        series: true,
        services: names.clone(),
    }));
    let (desired, live) = objects(&refs);
    let start = tokio::time::Instant::now();
    let cpu = std::time::Instant::now();
    drive_objects(&mut w, &desired, &live, true).await;
    println!(
        "pass starting 1000 rollouts: {:?} wall, {} writes",
        cpu.elapsed(),
        w.route.log.lock().unwrap().len()
    );
    for _ in 0..4 {
        let Some(wake) = w.driver.next_wake() else {
            break;
        };
        let due = w.driver.due.values().flatten().min().copied();
        let now = w.clock.now();
        if let Ok(d) = (wake - now).to_std() {
            tokio::time::advance(d).await;
        }
        let before = w.driver.prometheus_queries();
        let writes_before = w.route.log.lock().unwrap().len();
        let cpu = std::time::Instant::now();
        let tick_at = tokio::time::Instant::now();
        let planned = w.driver.plan(&w.loaded, &desired, &live);
        let planning = cpu.elapsed();
        drop(planned);
        drive_objects(&mut w, &desired, &live, false).await;
        let wall = cpu.elapsed() - planning;
        let after = w.driver.prometheus_queries();
        let log = w.route.log.lock().unwrap();
        let stepped = log.len() - writes_before;
        let last = log.iter().map(|(at, _, _)| *at).max().unwrap_or(tick_at);
        println!(
            "tick at {:?} (earliest due {:?}): {stepped} rollouts stepped, last write {:?} after the tick, queries grouped {} instant {} range {}, {:?} wall ({planning:?} of it planning the work)",
            tick_at - start,
            due.map(|d| d - chrono::TimeDelta::zero()),
            last - tick_at,
            after.grouped - before.grouped,
            after.instant - before.instant,
            after.range - before.range,
            wall
        );
    }
}
