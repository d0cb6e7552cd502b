//! `make bench`: figures for 100 and 1,000 progressive rollouts running at once. Prints
//! numbers and ratios to the last run; asserts nothing about them (only that the setup
//! worked: the objects were created, the rollouts started).
//!
//! Everything but veer runs in its own process, so the CPU and RSS printed are veer's own:
//! the embedded API server (`veer dev-cluster`), the synthetic Istio exporter (`veer
//! synthetic-exporter --all-namespaces`, its traffic following the live VirtualServices'
//! weights) and a real Prometheus scraping it every [`SCRAPE`]. Each size runs in a fresh
//! child process of this bench, so one size's peak does not hide the other's.
//!
//! Per rollout: a VirtualService bound to one policy (10 s interval, built-in success rate
//! and p99, nine steps), its DestinationRule, Service and two Deployments. The first revision
//! has every VirtualService at v1:100 (synced, no rollout); the second moves every one to
//! v2:100 in one commit. The bench times the pass that starts every rollout, then drives the
//! controller as `veer run` does between polls (a rollout tick at each wake the driver asks
//! for, on tokio's real clock) for [`INTERVALS`] intervals from the first check due (checks
//! fall due on the interval's grid: the first one to two intervals after a rollout starts),
//! and prints the tick CPU (process CPU time around each tick), the Prometheus queries per
//! interval (the driver's counters), how late each step was judged after it was due, and the
//! process's RSS and CPU. No git poll runs during the ticks (a poll's pass would drive every
//! rollout once more). Then the floor under a tick: each rollout's two requests sent alone
//! (`support/request_floor.rs`), and to a real kube-apiserver as well when
//! `VEER_BENCH_REAL_KUBECONFIG` names one. Last, the CPU of an idle poll with every rollout
//! in flight, then with every rollout finished (`support/finished.rs`).
//!
//! `VEER_BENCH_ROLLOUTS=10 cargo test --bench rollouts` runs other sizes (a debug smoke run
//! of the bench itself; its figures are stored apart from release ones).

#[path = "support/allocations.rs"]
mod allocations;
#[path = "support/figures.rs"]
mod figures;
#[path = "support/finished.rs"]
mod finished;
#[path = "support/processes.rs"]
mod processes;
#[path = "support/request_floor.rs"]
mod request_floor;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use veer::analysis::{Prometheus, PrometheusConfig};
use veer::cluster::Cluster;
use veer::controller::rollouts::{QueriesSent, RolloutDriver, RolloutOptions};
use veer::controller::{Controller, ControllerOptions, Pass};
use veer::manifest::{self, ManifestSet, ReadOptions};
use veer::metrics::Metrics;
use veer::rollout::state::{CheckOutcome, Stage};
use veer::source::{CommitId, LoadedRevision, PollOutcome, Revision};
use veer::sync::SyncOptions;
use veer::sync::state::StateLocation;

use figures::Figures;
use processes::{
    cpu_time, dev_cluster, exporter, kernel_time_and_faults, peak_rss_mib, prometheus, rss_mib,
};

// The allocator `veer` runs on, so the figures are the binary's (counting its allocations
// only when `VEER_BENCH_COUNT_ALLOCATIONS=1`).
#[global_allocator]
static ALLOCATOR: allocations::Counting = allocations::Counting;

/// The child-process protocol: the size to run.
const SIZE_ENV: &str = "VEER_BENCH_ROLLOUTS_SIZE";
const SOURCE_URL: &str = "git://bench.example/mesh.git";
const STATE_NS: &str = "veer";
/// Rollouts are spread over this many namespaces (`shop-0` …).
const NAMESPACES: usize = 10;
/// The policy's interval: a step is judged this long after its split was written.
const INTERVAL: Duration = Duration::from_secs(10);
/// Intervals measured after the pass that starts the rollouts.
const INTERVALS: u32 = 3;
/// Prometheus' scrape interval: five samples in each 10 s window, at a load (about 90
/// series per service) a 2-core machine carries beside veer at 1,000 services.
const SCRAPE: &str = "2s";
/// Requests per second the exporter sends each service (10 % of it is 10 requests per
/// window at the first step, over the policy's `minRequests`).
const RPS: &str = "10";
/// A step judged this late after it was due still counts as on time.
const ON_TIME: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

const POLICY: &str = "apiVersion: veer.io/v1alpha1
kind: RolloutPolicy
metadata:
  name: bench
spec:
  interval: 10s
  threshold: 3
  stepWeights: [10, 20, 30, 40, 50, 60, 70, 80, 90]
  progressDeadline: 10m
  minRequests: 5
  onNoData: hold
  onMetricsError: hold
  metrics:
    - name: success-rate
      builtin: request-success-rate
      thresholdRange: {min: 99}
    - name: p99-latency
      builtin: request-duration
      thresholdRange: {max: 500}
";

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------------------
// The repository.

fn namespace(i: usize) -> String {
    format!("shop-{}", i % NAMESPACES)
}

/// Rollout `i`'s objects, its VirtualService at `(v1, v2)`.
fn rollout_text(i: usize, v1: u32, v2: u32) -> String {
    let ns = namespace(i);
    let name = format!("svc-{i}");
    let deployment = |version: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}-{version}\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}, version: {version}}}\n  template:\n    metadata:\n      labels: {{app: {name}, version: {version}}}\n    spec:\n      containers:\n      - name: app\n        image: example/{name}:{version}\n"
        )
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  selector: {{app: {name}}}\n  ports:\n  - name: http\n    port: 80\n\
         ---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  host: {name}\n  subsets:\n  - name: v1\n    labels: {{version: v1}}\n  - name: v2\n    labels: {{version: v2}}\n\
         ---\n{}---\n{}---\n\
         apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n  namespace: {ns}\n  annotations:\n    veer.io/rollout-policy: bench\nspec:\n  hosts: [{name}]\n  http:\n  - name: primary\n    route:\n    - destination: {{host: {name}, subset: v1}}\n      weight: {v1}\n    - destination: {{host: {name}, subset: v2}}\n      weight: {v2}\n",
        deployment("v1"),
        deployment("v2"),
    )
}

/// Revision `number`: the policy and `n` rollouts' objects, every VirtualService at
/// `(v1, v2)`.
fn revision(n: usize, number: u64, v1: u32, v2: u32) -> Arc<LoadedRevision> {
    let options = ReadOptions::default();
    let mut set = ManifestSet::default();
    set.extend(&manifest::parse_file(
        "policy.yaml",
        POLICY.as_bytes(),
        &options,
    ));
    let mut files = vec!["policy.yaml".to_string()];
    for i in 0..n {
        let path = format!("{}/svc-{i}.yaml", namespace(i));
        let text = rollout_text(i, v1, v2);
        set.extend(&manifest::parse_file(&path, text.as_bytes(), &options));
        files.push(path);
    }
    assert_eq!(set.manifests.len(), 1 + 5 * n, "every manifest parses");
    Arc::new(LoadedRevision {
        revision: Revision {
            commit: CommitId(format!("{number:040x}")),
            summary: format!("bench revision {number}"),
            author: "Bench <bench@example.com>".into(),
            time: Utc::now(),
        },
        set,
        parsed_files: files.len(),
        changed_files: files,
    })
}

// ---------------------------------------------------------------------------------------
// Watching the rollouts.

/// What the bench needs of one rollout before a tick: when its next check is due, and its
/// last check so far.
#[derive(Clone, Copy)]
struct Before {
    due: Option<DateTime<Utc>>,
    last_check: Option<DateTime<Utc>>,
}

fn before_tick(c: &Controller) -> BTreeMap<String, Before> {
    let Some(driver) = c.rollouts() else {
        return BTreeMap::new();
    };
    driver
        .states()
        .map(|(id, s)| {
            let due = match s.stage {
                Stage::Settling { until } => Some(until),
                _ => None,
            };
            let last_check = s.history.last().map(|r| r.at);
            (id.to_string(), Before { due, last_check })
        })
        .collect()
}

/// What the ticks did to the rollouts' checks.
#[derive(Default)]
struct Judged {
    /// How late each timed judgement came after it was due.
    late: Vec<chrono::TimeDelta>,
    /// Judgements whose due time the bench did not see (not settling before the tick).
    untimed: usize,
    outcomes: BTreeMap<&'static str, usize>,
}

impl Judged {
    /// Add the checks each rollout got since `before`.
    fn add(&mut self, c: &Controller, before: &BTreeMap<String, Before>) {
        let Some(driver) = c.rollouts() else { return };
        for (id, s) in driver.states() {
            let b = before.get(&id.to_string()).copied().unwrap_or(Before {
                due: None,
                last_check: None,
            });
            let new: Vec<_> = s
                .history
                .iter()
                .filter(|r| b.last_check.is_none_or(|last| r.at > last))
                .collect();
            let Some(first) = new.iter().map(|r| r.at).min() else {
                continue;
            };
            match b.due {
                Some(due) => self.late.push(first - due),
                None => self.untimed += 1,
            }
            for r in new {
                let outcome = match r.outcome {
                    CheckOutcome::Passed => "passed",
                    CheckOutcome::Failed => "failed",
                    CheckOutcome::Held => "held",
                };
                *self.outcomes.entry(outcome).or_default() += 1;
            }
        }
    }
}

/// The rollouts by phase and canary weight, e.g. `Progressing at 10 %: 1000`.
fn phases(c: &Controller) -> String {
    let mut by: BTreeMap<(String, u32), usize> = BTreeMap::new();
    if let Some(driver) = c.rollouts() {
        for (_, s) in driver.states() {
            *by.entry((s.phase.as_str().to_string(), s.canary_weight()))
                .or_default() += 1;
        }
    }
    by.iter()
        .map(|((phase, w), n)| format!("{phase} at {w} %: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn queries(c: &Controller) -> QueriesSent {
    c.rollouts()
        .map(RolloutDriver::prometheus_queries)
        .expect("the controller drives rollouts")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

// ---------------------------------------------------------------------------------------
// One size.

async fn run(n: usize) {
    allocations::start_if_asked();
    let mut fig = Figures::load("rollouts");
    let key = |what: &str| format!("{n} rollouts/{what}");
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let (server, kubeconfig) = dev_cluster(dir);
    let file = Kubeconfig::read_from(&kubeconfig).expect("the dev cluster's kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig makes a client config");
    let client = kube::Client::try_from(config).expect("a kube client");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut names: Vec<String> = (0..n.min(NAMESPACES)).map(namespace).collect();
    names.push(STATE_NS.into());
    for ns in &names {
        let object = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))
            .expect("a Namespace");
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .expect("namespace created");
    }
    let (exporter, target) = exporter(dir, &kubeconfig, RPS);
    let (prometheus, url) = prometheus(dir, &target, SCRAPE);
    println!(
        "\n== {n} rollouts (policy: 10 s interval, 2 built-in metrics, 9 steps) over {} namespaces; {} objects ==",
        n.min(NAMESPACES),
        5 * n
    );

    let metrics = Arc::new(Metrics::new());
    let provider = Prometheus::new(PrometheusConfig::new(&url)).expect("a Prometheus client");
    let driver = RolloutDriver::new(
        RolloutOptions {
            state_namespace: STATE_NS.into(),
            max_concurrent: 0,
            concurrency: RolloutOptions::DEFAULT_CONCURRENCY,
            policies: Vec::new(),
        },
        metrics,
    )
    .expect("a rollout driver")
    .with_provider(Arc::new(provider));
    let location = StateLocation {
        namespace: STATE_NS.into(),
        name: "veer-state".into(),
    };
    let options = ControllerOptions {
        source_url: SOURCE_URL.into(),
        prune: true,
        sync: SyncOptions::default(),
    };
    let mut c = Controller::start(Cluster::new(client.clone()), location, options)
        .await
        .expect("the controller reads its state")
        .with_rollouts(driver);

    // Setup: every VirtualService at v1:100 (no rollout: nothing shifts), written and read
    // back.
    let first = revision(n, 1, 100, 0);
    let t = Instant::now();
    let pass = c
        .handle(PollOutcome::Updated(first.clone()), Utc::now())
        .await;
    match &pass {
        Pass::Synced { report, .. } => {
            let s = report.summary();
            assert!(
                s.failed == 0 && s.created == 5 * n,
                "the initial sync: {}",
                report.human()
            );
        }
        other => panic!("the initial sync did not sync: {other:?}"),
    }
    let unchanged = |r: &LoadedRevision| PollOutcome::Unchanged {
        commit: r.revision.commit.clone(),
    };
    c.handle(unchanged(&first), Utc::now()).await;
    println!(
        "  setup: initial sync of {} objects     {:>10}   RSS {:.0} MiB",
        5 * n,
        ms(t.elapsed()),
        rss_mib()
    );

    // One commit moves every VirtualService to v2: the pass that starts every rollout.
    let second = revision(n, 2, 0, 100);
    let q0 = queries(&c);
    let cpu = cpu_time();
    let t = Instant::now();
    c.handle(PollOutcome::Updated(second.clone()), Utc::now())
        .await;
    let start_wall = t.elapsed();
    // The ticks run until half an interval after the last of INTERVALS judgements of the
    // rollouts started first (their first check falls due on the interval's grid, one to
    // two intervals after their first split).
    let first_due = before_tick(&c).values().filter_map(|b| b.due).min();
    let first_due = first_due.map_or(t + INTERVAL, |due| {
        Instant::now() + (due - Utc::now()).to_std().unwrap_or_default()
    });
    let window_end =
        (t + INTERVAL * INTERVALS).max(first_due + INTERVAL * (INTERVALS - 1)) + INTERVAL / 2;
    let start_cpu = cpu_time() - cpu;
    // A pass that outlasts an interval judges the rollouts it started first itself.
    let mut judged = Judged::default();
    judged.add(&c, &BTreeMap::new());
    let started = c.rollouts().map_or(0, |d| {
        d.states().filter(|(_, s)| s.canary_weight() > 0).count()
    });
    let flag = if started == n {
        ""
    } else {
        "   <-- UNEXPECTED"
    };
    println!(
        "  pass starting every rollout:        {:>10}{}   CPU {}{}; {started} of {n} moved traffic{flag}",
        ms(start_wall),
        fig.ms(&key("start pass"), start_wall),
        ms(start_cpu),
        fig.ms(&key("start pass CPU"), start_cpu),
    );
    println!("    rollouts after it: {}", phases(&c));
    let q_start = queries(&c);
    if q_start.total() > q0.total() {
        println!(
            "    (it sent {} Prometheus queries itself: rollouts judged before the pass ended)",
            q_start.total() - q0.total()
        );
    }

    // Ticks, as `veer run` makes them between polls, for INTERVALS intervals.
    let window_start = Instant::now();
    let cpu_start = cpu_time();
    let mut tick_cpu = Vec::new();
    let mut tick_wall = Vec::new();
    let mut tick_kernel = Vec::new();
    let mut tick_faults = Vec::new();
    let mut tick_allocations = Vec::new();
    while let Some(wake) = c.next_wake() {
        // The loop's floor, so a rollout due again at once cannot spin it.
        let delay = (wake - Utc::now())
            .to_std()
            .unwrap_or_default()
            .max(Duration::from_millis(50));
        if Instant::now() + delay > window_end {
            break;
        }
        tokio::time::sleep(delay).await;
        let before = before_tick(&c);
        let cpu = cpu_time();
        let (kernel, faults) = kernel_time_and_faults();
        let allocated = allocations::count();
        let t = Instant::now();
        c.rollout_tick().await;
        tick_wall.push(t.elapsed());
        tick_cpu.push(cpu_time() - cpu);
        if let (Some(before), Some(after)) = (allocated, allocations::count()) {
            tick_allocations.push(after - before);
        }
        let (kernel_after, faults_after) = kernel_time_and_faults();
        tick_kernel.push(kernel_after - kernel);
        tick_faults.push(faults_after - faults);
        judged.add(&c, &before);
    }
    let elapsed = window_start.elapsed();
    let window_cpu = cpu_time() - cpu_start;
    let q_end = queries(&c);
    tick_cpu.sort();
    tick_wall.sort();
    tick_kernel.sort();
    tick_faults.sort();
    let median_cpu = percentile(&tick_cpu, 0.5);
    let max_cpu = percentile(&tick_cpu, 1.0);
    println!(
        "  ticks for {:.1} s after the pass:    {:>4} ticks   wall median {}, max {}; {:.0} rollouts judged per tick",
        elapsed.as_secs_f64(),
        tick_cpu.len(),
        ms(percentile(&tick_wall, 0.5)),
        ms(percentile(&tick_wall, 1.0)),
        (judged.late.len() + judged.untimed) as f64 / tick_cpu.len().max(1) as f64,
    );
    println!(
        "  tick CPU:                           {:>10}{}   median; max {}{}",
        ms(median_cpu),
        fig.ms(&key("tick CPU median"), median_cpu),
        ms(max_cpu),
        fig.ms(&key("tick CPU max"), max_cpu),
    );
    println!(
        "    of it in the kernel:              {:>10}   median, as the scheduler's tick samples it (rough); {} minor page faults (median, exact)",
        ms(percentile(&tick_kernel, 0.5)),
        tick_faults.get(tick_faults.len() / 2).copied().unwrap_or(0),
    );
    if !tick_allocations.is_empty() {
        tick_allocations.sort_unstable();
        let median = tick_allocations[tick_allocations.len() / 2];
        println!(
            "    allocations:                      {median:>10}{}   median per tick, {:.0} per judged rollout ({})",
            fig.ratio(&key("tick allocations"), median as f64),
            median as f64 / n as f64,
            allocations::ENV,
        );
    }
    // Every rollout is judged INTERVALS times in the window when it keeps its interval;
    // the queries of the starting pass count too (none, unless it outlasted an interval).
    let per_interval = |a: u64, b: u64| (a - b) as f64 / f64::from(INTERVALS);
    let grouped = per_interval(q_end.grouped, q0.grouped);
    let instant = per_interval(q_end.instant, q0.instant);
    let range = per_interval(q_end.range, q0.range);
    let total = grouped + instant + range;
    let steps = judged.late.len() + judged.untimed;
    println!(
        "  Prometheus queries per interval:    {:>10.1}{}   grouped {grouped:.1}, single {instant:.1}, range {range:.1}; {:.1} per tick; {:.2} judgements per rollout in the window ({INTERVALS} on schedule)",
        total,
        fig.ratio(&key("Prometheus queries per interval"), total),
        (q_end.total() - q_start.total()) as f64 / tick_cpu.len().max(1) as f64,
        steps as f64 / n as f64,
    );
    let steps = judged.late.len();
    let on_time = judged.late.iter().filter(|l| **l <= ON_TIME).count();
    let share = 100.0 * on_time as f64 / steps.max(1) as f64;
    let mut late: Vec<Duration> = judged
        .late
        .iter()
        .map(|l| l.to_std().unwrap_or_default())
        .collect();
    late.sort();
    let outcomes: Vec<String> = judged
        .outcomes
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let flag = if judged.outcomes.contains_key("passed") {
        ""
    } else {
        "   <-- UNEXPECTED (no check passed)"
    };
    println!(
        "  steps judged within 1 s of due:     {share:>8.1} %{}   {on_time} of {steps}; lateness median {}, p99 {}, max {}; {} judged untimed; checks: {}{flag}",
        fig.ratio(&key("judged on time %"), share),
        ms(percentile(&late, 0.5)),
        ms(percentile(&late, 0.99)),
        ms(percentile(&late, 1.0)),
        judged.untimed,
        outcomes.join(", "),
    );
    let cpu_per_interval = window_cpu / INTERVALS;
    println!(
        "  process CPU per interval:           {:>10}{}   {:.1} % of a core over the ticks' window",
        ms(cpu_per_interval),
        fig.ms(&key("CPU per interval"), cpu_per_interval),
        100.0 * window_cpu.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
    );
    let (steady, peak) = (rss_mib(), peak_rss_mib());
    println!(
        "  RSS steady / peak:                  {:>6.0} MiB{}   peak {peak:.0} MiB{}",
        steady,
        fig.ratio(&key("steady RSS MiB"), steady.round()),
        fig.ratio(&key("peak RSS MiB"), peak.round()),
    );
    println!("    rollouts at the end: {}", phases(&c));
    request_floor::print(&c, &client, n, median_cpu, &mut fig, &key).await;
    finished::idle_polls_in_flight_and_finished(&mut c, &client, STATE_NS, &second, n, &mut fig)
        .await;
    // The other processes share the machine's cores with veer: their load is part of why a
    // step may be judged late.
    let (s_cpu, s_rss) = server.usage();
    let (e_cpu, e_rss) = exporter.usage();
    let (p_cpu, p_rss) = prometheus.usage();
    println!(
        "  (not counted above, whole run: API server {s_cpu:.1} CPU-s, peak RSS {s_rss} MiB; exporter {e_cpu:.1} CPU-s, {e_rss} MiB; Prometheus {p_cpu:.1} CPU-s, {p_rss} MiB)"
    );
    fig.save();
}

fn main() {
    veer::controller::memory::configure();
    if let Ok(size) = std::env::var(SIZE_ENV) {
        let n: usize = size.parse().expect("a size");
        processes::veer_runtime().block_on(run(n));
        return;
    }
    println!(
        "veer concurrent rollouts benchmark (figures, not pass/fail; API server, exporter and Prometheus in their own processes)"
    );
    for n in processes::sizes("VEER_BENCH_ROLLOUTS", &[100, 1_000]) {
        // A fresh process per size, so each peak RSS is that size's alone.
        let status = std::process::Command::new(std::env::current_exe().expect("this bench"))
            .env(SIZE_ENV, n.to_string())
            .status()
            .expect("the bench re-runs itself");
        assert!(status.success(), "the {n}-rollout run failed ({status})");
    }
}
