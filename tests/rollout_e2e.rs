//! Progressive rollouts end to end: git (a real bare remote) → veer's reconcile loop → the
//! embedded API server → the synthetic Istio exporter (its traffic follows the live
//! VirtualService weights) → a real Prometheus (1 s scrapes) → veer's analysis.
//!
//! Every scenario has its own dev cluster, exporter, Prometheus and git remote, so they run in
//! parallel. Policies use a 1 s interval; each wait polls with a bounded deadline and fails
//! with what it last saw. A recorder polls the live VirtualService every 50 ms, so the order
//! of the weights veer set is asserted, not only where they ended.

#[path = "support/faults.rs"]
mod faults;
#[path = "support/prometheus.rs"]
mod prometheus_support;
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use prometheus_support::PrometheusServer;
use serde_json::{Value, json};
use support::Remote;
use support::devcluster as dev;
use veer::analysis::{Prometheus, PrometheusConfig};
use veer::cluster::Cluster;
use veer::controller::rollouts::{self, GitRevert, RolloutDriver, RolloutOptions};
use veer::controller::{self, Controller, ControllerOptions};
use veer::devcluster::RunningCluster;
use veer::exporter::{Behaviour, Exporter, ExporterConfig, ServiceKey, WatchConfig};
use veer::ids::RolloutId;
use veer::metrics::Metrics;
use veer::notify::{EventKind, Filter, Notifications, NotifyConfig, Severity, WebhookConfig};
use veer::rollout::{Command, FailureReason, HoldReason, Phase, RolloutState};
use veer::source::{GitRef, GitSource, Poller, Schedule, SourceSpec};
use veer::sync::SyncOptions;
use veer::sync::state::StateLocation;

const NS: &str = "shop";
const STATE_NS: &str = "veer";
/// Longest any scenario's wait may take.
const DEADLINE: Duration = Duration::from_secs(45);

/// The default test policy: 1 s interval, two failed checks roll back, steps 25/50/75.
fn policy(deadline: &str) -> String {
    policy_with(deadline, "")
}

/// The test policy with more `spec` lines (indented two spaces).
fn policy_with(deadline: &str, extra: &str) -> String {
    format!(
        "apiVersion: veer.io/v1alpha1
kind: RolloutPolicy
metadata:
  name: e2e
spec:
  interval: 1s
  threshold: 2
  stepWeights: [25, 50, 75]
  progressDeadline: {deadline}
  minRequests: 5
  onNoData: hold
  onMetricsError: hold
  metrics:
    - name: success-rate
      builtin: request-success-rate
      thresholdRange: {{min: 99}}
      interval: 4s
    - name: p99-latency
      builtin: request-duration
      thresholdRange: {{max: 500}}
      interval: 4s
{extra}"
    )
}

fn deployment(version: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews-{version}
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {{app: reviews, version: {version}}}
  template:
    metadata:
      labels: {{app: reviews, version: {version}}}
    spec:
      containers:
      - name: reviews
        image: example/reviews:{version}
"
    )
}

const BASE: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
  selector: {app: reviews}
  ports:
  - name: http
    port: 9080
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
";

fn virtual_service(v1: u32, v2: u32) -> String {
    named_virtual_service("reviews", v1, v2)
}

fn named_virtual_service(name: &str, v1: u32, v2: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: shop
  annotations:
    veer.io/rollout-policy: e2e
spec:
  hosts: [{name}]
  http:
  - name: primary
    route:
    - destination: {{host: {name}, subset: v1}}
      weight: {v1}
    - destination: {{host: {name}, subset: v2}}
      weight: {v2}
"
    )
}

fn vs_resource() -> ApiResource {
    ApiResource {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        api_version: "networking.istio.io/v1".into(),
        kind: "VirtualService".into(),
        plural: "virtualservices".into(),
    }
}

/// (v1, v2) weights of the live route; a missing destination weighs 0.
async fn live_split(client: &kube::Client) -> Option<(u32, u32)> {
    live_split_of(client, "reviews").await
}

async fn live_split_of(client: &kube::Client, name: &str) -> Option<(u32, u32)> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), NS, &vs_resource());
    let vs = serde_json::to_value(api.get_opt(name).await.ok()??).ok()?;
    let routes = vs.pointer("/spec/http/0/route")?.as_array()?.clone();
    let mut out = (0, 0);
    for r in &routes {
        let w = r.get("weight").and_then(Value::as_u64).unwrap_or(100) as u32;
        match r.pointer("/destination/subset").and_then(Value::as_str) {
            Some("v1") => out.0 += w,
            Some("v2") => out.1 += w,
            _ => {}
        }
    }
    Some(out)
}

/// One veer process: the reconcile loop on a task (aborting it is a kill).
struct Veer {
    task: tokio::task::JoinHandle<()>,
}

struct Scenario {
    _tmp: tempfile::TempDir,
    cluster: RunningCluster,
    client: kube::Client,
    remote: Remote,
    exporter: Exporter,
    prometheus: PrometheusServer,
    veer: Option<Veer>,
    max_concurrent: usize,
    metrics: Arc<Metrics>,
    /// Faults in front of veer's client (not the test's).
    faults: faults::Faults,
    /// Bodies of the notifications veer delivered to its webhook notifier.
    notified: Arc<Mutex<Vec<Value>>>,
    notify_url: String,
    recorded: Arc<Mutex<Vec<(u32, u32)>>>,
    recorder: tokio::task::JoinHandle<()>,
}

impl Scenario {
    /// Cluster, exporter, Prometheus, a remote at `v1: 100` with `policy`, and veer running.
    async fn start(policy: &str) -> Scenario {
        Self::start_with(policy, &[], 0).await
    }

    async fn start_with(policy: &str, extra: &[(&str, String)], max_concurrent: usize) -> Scenario {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let cluster = dev::start().await;
        let client = dev::client(&cluster);
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": STATE_NS}})).unwrap(),
            )
            .await
            .expect("create the state namespace");
        let mut exporter_config = ExporterConfig::local(50.0);
        exporter_config.watch = Some(WatchConfig {
            client: client.clone(),
            namespace: Some(NS.into()),
            api_version: "v1".into(),
        });
        let exporter = Exporter::start(exporter_config)
            .await
            .expect("the exporter starts");
        let prometheus = PrometheusServer::start(&[exporter.target()]);
        let remote = Remote::new(tmp.path(), "mesh");
        remote.write("base.yaml", BASE);
        remote.write(
            "deployments.yaml",
            &(deployment("v1") + "---\n" + &deployment("v2")),
        );
        remote.write("policy.yaml", policy);
        remote.write("reviews.yaml", &virtual_service(100, 0));
        for (path, text) in extra {
            remote.write(path, text);
        }
        remote.commit_and_push("reviews v1");

        let notified = Arc::new(Mutex::new(Vec::new()));
        let notify_url = notification_receiver(notified.clone()).await;
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let recorder = {
            let recorded = recorded.clone();
            let client = client.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(split) = live_split(&client).await {
                        let mut r = recorded.lock().unwrap();
                        if r.last() != Some(&split) {
                            r.push(split);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let mut s = Scenario {
            _tmp: tmp,
            cluster,
            client,
            remote,
            exporter,
            prometheus,
            veer: None,
            max_concurrent,
            metrics: Arc::new(Metrics::new()),
            faults: faults::Faults::default(),
            notified,
            notify_url,
            recorded,
            recorder,
        };
        s.start_veer().await;
        s.wait_split("the first revision applied", (100, 0)).await;
        s
    }

    /// Everything [`Scenario::start`] sets up, but veer runs as the `veer run` binary (its
    /// stderr in `veer.log` of the scenario's directory), as a user runs it.
    async fn start_binary(policy: &str) -> (Scenario, std::process::Child) {
        let mut s = Self::start_with(policy, &[], 0).await;
        s.kill_veer().await;
        let dir = s._tmp.path();
        let kubeconfig = dir.join("kubeconfig");
        s.cluster
            .write_kubeconfig(&kubeconfig)
            .expect("write a kubeconfig");
        let config = dir.join("veer.yaml");
        std::fs::write(
            &config,
            format!(
                "source:\n  url: {}\n  ref: main\n  interval: 1s\ncluster:\n  stateNamespace: {STATE_NS}\nanalysis:\n  prometheus:\n    url: {}\n    timeout: 2s\n",
                s.remote.bare.display(),
                s.prometheus.url()
            ),
        )
        .expect("write veer.yaml");
        let log = std::fs::File::create(dir.join("veer.log")).expect("a log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_veer"))
            .current_dir(dir)
            .env("XDG_CACHE_HOME", dir.join("xdg"))
            .arg("--config")
            .arg(&config)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--color", "never", "run"])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("veer run starts");
        (s, child)
    }

    fn binary_log(&self) -> String {
        std::fs::read_to_string(self._tmp.path().join("veer.log")).unwrap_or_default()
    }

    async fn start_veer(&mut self) {
        let spec = SourceSpec::new(
            self.remote.bare.to_str().unwrap(),
            GitRef::Branch("main".into()),
        )
        .expect("a source spec");
        let cache = self._tmp.path().join(format!("cache-{}", rand_suffix()));
        let git = GitSource::open(spec.clone(), &cache).expect("open the git source");
        let mut poller = Poller::new(
            git,
            Schedule::parse("1s").expect("a schedule"),
            Duration::from_secs(10),
        );
        let options = ControllerOptions {
            source_url: "file://mesh".into(),
            prune: true,
            sync: SyncOptions::default(),
        };
        let location = StateLocation {
            namespace: STATE_NS.into(),
            name: "veer-state".into(),
        };
        let mut config = PrometheusConfig::new(&self.prometheus.url());
        config.timeout = Duration::from_secs(2);
        let provider = Prometheus::new(config).expect("a Prometheus client");
        let revert = GitRevert::new(
            spec.clone(),
            self._tmp
                .path()
                .join(format!("revert-cache-{}", rand_suffix())),
        );
        let notify = NotifyConfig {
            webhooks: vec![WebhookConfig {
                url: self.notify_url.parse().expect("a receiver URL"),
                secret: None,
                filter: Filter {
                    events: EventKind::ALL.into_iter().collect(),
                    min_severity: Severity::Info,
                },
            }],
            ..NotifyConfig::default()
        };
        let notifications =
            Notifications::start(&notify, self.metrics.clone()).expect("notifications start");
        let driver = RolloutDriver::new(
            RolloutOptions {
                state_namespace: STATE_NS.into(),
                max_concurrent: self.max_concurrent,
                concurrency: RolloutOptions::DEFAULT_CONCURRENCY,
                policies: Vec::new(),
            },
            self.metrics.clone(),
        )
        .expect("the rollout driver")
        .with_provider(Arc::new(provider))
        .with_revert(Arc::new(revert))
        .with_notifications(Arc::new(notifications));
        let client = faults::client(&self.cluster, &self.faults);
        let task = tokio::spawn(async move {
            let mut c = Controller::start(Cluster::new(client), location, options)
                .await
                .expect("the controller starts")
                .with_rollouts(driver);
            controller::run_loop(
                &mut c,
                &mut poller,
                &controller::observers::Observers::default(),
                None,
                std::future::pending(),
            )
            .await;
        });
        self.veer = Some(Veer { task });
    }

    /// Kill veer mid-whatever: its task is dropped at its next await.
    async fn kill_veer(&mut self) {
        if let Some(v) = self.veer.take() {
            v.task.abort();
            let _ = v.task.await;
        }
    }

    fn push_split(&self, v1: u32, v2: u32, message: &str) -> String {
        self.remote.write("reviews.yaml", &virtual_service(v1, v2));
        self.remote.commit_and_push(message)
    }

    async fn state(&self) -> Option<RolloutState> {
        self.state_of("reviews").await
    }

    /// Wait for the rollout to fail, rolled back by the test policy's two failed checks.
    async fn wait_rolled_back_by_two_failed_checks(&self) -> RolloutState {
        let state = self.wait_phase("rolled back", Phase::Failed).await;
        assert_eq!(
            state.failure,
            Some(FailureReason::FailedChecks {
                failed: 2,
                threshold: 2
            })
        );
        state
    }

    async fn state_of(&self, name: &str) -> Option<RolloutState> {
        let id = RolloutId {
            namespace: NS.into(),
            name: name.into(),
        };
        rollouts::read_rollout(&self.client, STATE_NS, &id)
            .await
            .expect("read the rollout state")
            .map(|(s, _, _)| s)
    }

    /// Poll until `done` holds for the stored state and the live split.
    async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(Option<&RolloutState>, Option<(u32, u32)>) -> bool,
    ) -> (Option<RolloutState>, Option<(u32, u32)>) {
        let start = Instant::now();
        loop {
            let state = self.state().await;
            let split = live_split(&self.client).await;
            if done(state.as_ref(), split) {
                eprintln!("{what}: after {:?}", start.elapsed());
                return (state, split);
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{what}: not within {DEADLINE:?}; live split {split:?}, weights seen {:?}, state {state:#?}",
                self.recorded()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_split(&self, what: &str, want: (u32, u32)) {
        self.wait_until(what, |_, split| split == Some(want)).await;
    }

    async fn wait_phase(&self, what: &str, phase: Phase) -> RolloutState {
        self.wait_until(what, |s, _| s.is_some_and(|s| s.phase == phase))
            .await
            .0
            .expect("a state")
    }

    /// Run the `veer` binary against this cluster; (exit code, stdout + stderr).
    async fn veer_cli(&self, args: &[&str]) -> (i32, String) {
        let kubeconfig = self._tmp.path().join("kubeconfig");
        self.cluster
            .write_kubeconfig(&kubeconfig)
            .expect("write a kubeconfig");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_veer"));
        cmd.current_dir(self._tmp.path())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--state-namespace", STATE_NS])
            .args(args);
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("veer runs"))
            .await
            .expect("the veer thread finishes");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// The v2 weights the recorder saw, once it has seen `last` (it polls every 50 ms, so it
    /// may be a moment behind a wait that just saw it).
    async fn v2_path_to(&self, last: (u32, u32)) -> Vec<u32> {
        let start = Instant::now();
        while self.recorded().last() != Some(&last) && start.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        v2_path(&self.recorded())
    }

    fn recorded(&self) -> Vec<(u32, u32)> {
        self.recorded.lock().unwrap().clone()
    }

    fn set_v2(&self, behaviour: Behaviour) {
        self.exporter
            .set_behaviour(&ServiceKey::new(NS, "reviews"), "v2", behaviour)
            .expect("a valid behaviour");
    }

    async fn stop(mut self) {
        self.kill_veer().await;
        self.recorder.abort();
        self.prometheus.stop();
        // Idle keep-alive connections of the clients would hold a graceful shutdown open;
        // the runtime's end drops whatever is left.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.cluster.shutdown()).await;
    }
}

/// A webhook notification receiver on loopback; every JSON body is kept.
async fn notification_receiver(bodies: Arc<Mutex<Vec<Value>>>) -> String {
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: axum::Json<Value>| {
            let bodies = bodies.clone();
            async move {
                bodies.lock().unwrap().push(body.0);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the notification receiver");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/events")
}

impl Scenario {
    /// The notifications received so far, as JSON text each.
    fn notifications(&self) -> Vec<String> {
        self.notified
            .lock()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect()
    }

    /// Wait until a notification containing every one of `parts` arrived.
    async fn wait_notification(&self, parts: &[&str]) -> String {
        let start = Instant::now();
        loop {
            if let Some(n) = self
                .notifications()
                .into_iter()
                .find(|n| parts.iter().all(|p| n.contains(p)))
            {
                return n;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no notification with {parts:?}; got {:#?}",
                self.notifications()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// The weights v2 went through, in order, without repeats.
fn v2_path(recorded: &[(u32, u32)]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for (_, v2) in recorded {
        if out.last() != Some(v2) {
            out.push(*v2);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_canary_is_promoted_through_every_step() {
    let s = Scenario::start(&policy("20s")).await;
    let commit = s.push_split(0, 100, "reviews v2");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    assert_eq!(state.revision, commit);
    s.wait_split("live equals git", (0, 100)).await;
    assert_eq!(
        s.v2_path_to((0, 100)).await,
        vec![0, 25, 50, 75, 100],
        "the weights went through each step in order"
    );
    // Every step was analysed and passed before the next.
    for step in 0..3 {
        assert!(
            state.history.iter().any(|r| r.step == step
                && r.check == "success-rate"
                && r.outcome == veer::rollout::state::CheckOutcome::Passed),
            "step {step} has a passing check: {:#?}",
            state.history
        );
    }
    assert_eq!(state.failed_checks, 0);
    // People were told: started, each step, promoted.
    s.wait_notification(&["\"kind\":\"rollout-started\"", "shop/reviews"])
        .await;
    for weight in [50, 75] {
        s.wait_notification(&[
            "\"kind\":\"step-advanced\"",
            &format!("\"weight\":{weight}"),
        ])
        .await;
    }
    s.wait_notification(&["\"kind\":\"rollout-promoted\"", &commit])
        .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_spike_is_rolled_back_within_threshold_intervals() {
    let s = Scenario::start(&policy("20s")).await;
    s.set_v2(Behaviour {
        error_rate: 0.5,
        latency_ms: 20.0,
    });
    s.push_split(0, 100, "reviews v2");
    let state = s.wait_rolled_back_by_two_failed_checks().await;
    s.wait_split("split restored exactly", (100, 0)).await;
    assert_eq!(live_split(&s.client).await, Some((100, 0)));
    // The alert names the failing metric, its value and threshold.
    let alert = s
        .wait_notification(&[
            "\"kind\":\"rolled-back\"",
            "\"name\":\"success-rate\"",
            ">= 99",
        ])
        .await;
    assert!(alert.contains("2 failed checks (threshold 2)"), "{alert}");
    // Rolled back at the threshold-th failed analysis, with no analysis in between: counted
    // in intervals, not wall time (a busy machine stretches an interval, not the count).
    let failed = failed_records(&state);
    assert!(
        failed.iter().all(|r| r.check == "success-rate"),
        "{failed:#?}"
    );
    let first = failed.first().expect("a failed check").at;
    let since_first: Vec<_> = state
        .history
        .iter()
        .filter(|r| r.check == "success-rate" && r.at >= first)
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        since_first,
        [veer::rollout::state::CheckOutcome::Failed; 2],
        "{:#?}",
        state.history
    );
    // And in time: threshold × interval after the first failed check, with slack for a busy
    // machine (the count above is the exact statement).
    let (threshold, interval, slack) = (
        2,
        chrono::TimeDelta::seconds(1),
        chrono::TimeDelta::seconds(5),
    );
    let last = failed.last().expect("a failed check").at;
    assert!(
        last - first <= interval * threshold + slack,
        "rolled back {} after the first failed check",
        last - first
    );
    // Never past the first step.
    assert!(
        v2_path(&s.recorded()).iter().all(|w| *w <= 25),
        "{:?}",
        s.recorded()
    );
    // The failed revision is not retried: a few more intervals change nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(live_split(&s.client).await, Some((100, 0)));
    assert_eq!(s.state().await.map(|s| s.phase), Some(Phase::Failed));
    // Until an operator asks: fixed, retried, promoted.
    s.set_v2(Behaviour::default());
    let (code, out) = s.veer_cli(&["rollout", "retry", "shop/reviews"]).await;
    assert_eq!(code, 0, "{out}");
    s.wait_phase("retried and promoted", Phase::Succeeded).await;
    s.wait_split("live equals git", (0, 100)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_breach_is_rolled_back() {
    let s = Scenario::start(&policy("20s")).await;
    s.set_v2(Behaviour {
        error_rate: 0.0,
        latency_ms: 2000.0,
    });
    s.push_split(0, 100, "reviews v2 (slow)");
    let state = s.wait_phase("rolled back", Phase::Failed).await;
    assert!(
        matches!(state.failure, Some(FailureReason::FailedChecks { .. })),
        "{:?}",
        state.failure
    );
    let failing: Vec<&str> = failed_records(&state)
        .iter()
        .map(|r| r.check.as_str())
        .collect();
    assert!(failing.iter().all(|c| *c == "p99-latency"), "{failing:?}");
    s.wait_split("split restored", (100, 0)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_traffic_holds_then_misses_the_progress_deadline() {
    let s = Scenario::start(&policy("5s")).await;
    s.exporter.set_rate(&ServiceKey::new(NS, "reviews"), 0.0);
    s.push_split(0, 100, "reviews v2, nobody calls");
    let state = s.wait_phase("rolled back", Phase::Failed).await;
    assert!(
        matches!(
            state.failure,
            Some(FailureReason::ProgressDeadline {
                phase: Phase::Progressing
            })
        ),
        "{:?}",
        state.failure
    );
    assert!(
        state
            .history
            .iter()
            .any(|r| r.outcome == veer::rollout::state::CheckOutcome::Held),
        "it held before the deadline: {:#?}",
        state.history
    );
    assert_eq!(state.failed_checks, 0, "no data is not a failed check");
    s.wait_split("split restored", (100, 0)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_outage_holds_and_does_not_roll_back() {
    let mut s = Scenario::start(&policy("60s")).await;
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    s.prometheus.stop();
    // Far more than threshold × interval: an outage is not a bad canary.
    let (state, _) = s
        .wait_until("holding on the metrics error", |st, _| {
            st.is_some_and(|st| matches!(st.last_hold, Some(HoldReason::MetricsError { .. })))
        })
        .await;
    let state = state.expect("a state");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = s.state().await.expect("a state");
    assert_eq!(later.failed_checks, 0, "{:#?}", later.history);
    assert!(
        !matches!(later.phase, Phase::RollingBack | Phase::Failed),
        "{:?}",
        later.phase
    );
    assert_eq!(later.step, state.step, "held on the same step");
    let split = live_split(&s.client).await.expect("a split");
    assert!(split.1 > 0 && split.1 < 100, "still mid-rollout: {split:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_veer_resumes_from_the_stored_step() {
    let mut s = Scenario::start(&policy("30s")).await;
    let commit = s.push_split(0, 100, "reviews v2");
    s.wait_split("second step", (50, 50)).await;
    s.kill_veer().await;
    let before = s.state().await.expect("a state");
    assert_eq!(before.revision, commit);
    s.start_veer().await;
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    assert!(state.seq > before.seq);
    s.wait_split("live equals git", (0, 100)).await;
    // Resumed, never repeated: the weights only went up, each step once.
    assert_eq!(s.v2_path_to((0, 100)).await, vec![0, 25, 50, 75, 100]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_commit_restarts_toward_the_new_target_from_the_live_split() {
    let s = Scenario::start(&policy("30s")).await;
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    let second = s.push_split(50, 50, "reviews: half and half");
    let state = s
        .wait_until("promoted to the new target", |st, _| {
            st.is_some_and(|st| st.phase == Phase::Succeeded && st.revision == second)
        })
        .await
        .0
        .expect("a state");
    s.wait_split("live equals the new git", (50, 50)).await;
    let path = s.v2_path_to((50, 50)).await;
    let at = path.iter().position(|w| *w == 25).expect("the first step");
    assert!(
        path[at..].iter().all(|w| *w <= 50),
        "never beyond the new target after it: {path:?}"
    );
    // A rollback would still restore the split from before the first rollout.
    let v1 = veer::rollout::DestinationId::new("reviews", Some("v1"));
    assert_eq!(state.start_split.weight(&v1), 100);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_gate_waits_for_the_new_deployment() {
    let s = Scenario::start(&policy("30s")).await;
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), NS);
    let hold =
        |value: Value| json!({"metadata": {"annotations": {"devcluster.veer.io/hold": value}}});
    deployments
        .patch(
            "reviews-v2",
            &PatchParams::default(),
            &Patch::Merge(&hold(json!("unavailable"))),
        )
        .await
        .expect("hold reviews-v2");
    s.push_split(0, 100, "reviews v2");
    s.wait_phase("waiting for health", Phase::WaitingForHealth)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let state = s.state().await.expect("a state");
    assert_eq!(state.phase, Phase::WaitingForHealth);
    assert_eq!(
        live_split(&s.client).await,
        Some((100, 0)),
        "no traffic moved"
    );
    deployments
        .patch(
            "reviews-v2",
            &PatchParams::default(),
            &Patch::Merge(&hold(Value::Null)),
        )
        .await
        .expect("release reviews-v2");
    s.wait_phase("promoted", Phase::Succeeded).await;
    s.wait_split("live equals git", (0, 100)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_pause_resume_and_abort() {
    let s = Scenario::start(&policy("60s")).await;
    let id = RolloutId {
        namespace: NS.into(),
        name: "reviews".into(),
    };
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    let (code, out) = s.veer_cli(&["rollout", "pause", "shop/reviews"]).await;
    assert_eq!(code, 0, "{out}");
    s.wait_phase("paused", Phase::Paused).await;
    let (code, out) = s.veer_cli(&["rollout", "status", "shop/reviews"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("shop/reviews  Paused  policy e2e")
            && out.contains("[#####---------------]  25%  (reviews/v2 toward 100%)"),
        "{out}"
    );
    let (code, out) = s.veer_cli(&["rollout", "pause", "shop/nothing"]).await;
    assert_eq!(code, 3, "{out}");
    let paused_at = live_split(&s.client).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        live_split(&s.client).await,
        paused_at,
        "nothing moves while paused"
    );
    rollouts::send_command(&s.client, STATE_NS, &id, Command::Abort)
        .await
        .expect("send abort")
        .expect("a rollout");
    let state = s.wait_phase("aborted", Phase::Failed).await;
    assert_eq!(state.failure, Some(FailureReason::Aborted));
    let (code, out) = s
        .veer_cli(&["rollout", "status", "shop/reviews", "--watch"])
        .await;
    assert_eq!(code, 5, "a failed rollout: {out}");
    assert!(out.contains("failure  aborted by an operator"), "{out}");
    s.wait_split("split restored", (100, 0)).await;
    // The command was consumed and cleared.
    let pending = rollouts::read_rollout(&s.client, STATE_NS, &id)
        .await
        .expect("read")
        .and_then(|(_, c, _)| c);
    assert_eq!(pending, None);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_pushes_a_revert_commit_to_the_real_remote() {
    let policy = policy_with(
        "20s",
        "  revert: git\n  revertAuthor: veer bot <veer@example.com>\n",
    );
    let s = Scenario::start(&policy).await;
    s.set_v2(Behaviour {
        error_rate: 0.5,
        latency_ms: 20.0,
    });
    let offending = s.push_split(0, 100, "reviews: all traffic to v2");
    let (state, _) = s
        .wait_until("reverted in git", |st, _| {
            st.is_some_and(|st| st.phase == Phase::Failed && st.revert_commit.is_some())
        })
        .await;
    let state = state.expect("a state");
    let tip = s.remote.remote_tip("main");
    assert_ne!(tip, offending);
    assert_eq!(state.revert_commit.as_deref(), Some(tip.as_str()));
    s.remote.git(&["fetch", "-q", "origin"]);
    let message = s
        .remote
        .git(&["log", "-1", "--format=%an <%ae>%n%B", "origin/main"]);
    assert!(
        message.starts_with("veer bot <veer@example.com>\nRevert \"reviews: all traffic to v2\""),
        "{message}"
    );
    let file = s.remote.git(&["show", "origin/main:reviews.yaml"]);
    assert_eq!(file.trim_end(), virtual_service(100, 0).trim_end());
    // veer reads its own revert: git and live agree again, nothing moves.
    s.wait_until("the revert adopted", |st, _| {
        st.is_some_and(|st| st.revision == tip)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(live_split(&s.client).await, Some((100, 0)));
    s.stop().await;
}

/// A webhook receiver answering `status` to every POST, counting calls.
async fn webhook_server(
    status: Arc<std::sync::atomic::AtomicU16>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    use axum::http::StatusCode;
    use std::sync::atomic::Ordering;
    let app = axum::Router::new().route(
        "/gate",
        axum::routing::post(move || {
            let status = status.clone();
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the webhook receiver");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/gate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_promotion_webhook_holds_until_it_passes() {
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
    let status = Arc::new(AtomicU16::new(403));
    let calls = Arc::new(AtomicUsize::new(0));
    let url = webhook_server(status.clone(), calls.clone()).await;
    let policy = policy_with(
        "30s",
        &format!(
            "  webhooks:\n    - name: approve\n      type: confirm-promotion\n      url: {url}\n      timeout: 2s\n"
        ),
    );
    let s = Scenario::start(&policy).await;
    s.push_split(0, 100, "reviews v2");
    let (state, _) = s
        .wait_until("awaiting approval", |st, _| {
            st.is_some_and(|st| {
                st.phase == Phase::AwaitingPromotion
                    && matches!(st.last_hold, Some(HoldReason::AwaitingConfirmation { .. }))
            })
        })
        .await;
    let held_at = calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(calls.load(Ordering::SeqCst) > held_at, "it keeps asking");
    assert_eq!(
        live_split(&s.client).await,
        Some((25, 75)),
        "held at the last step"
    );
    assert_eq!(
        state.expect("a state").failed_checks,
        0,
        "a gate, not a failure"
    );
    status.store(200, Ordering::SeqCst);
    s.wait_phase("promoted", Phase::Succeeded).await;
    s.wait_split("live equals git", (0, 100)).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_rollouts_queue_the_rest() {
    // A second service like reviews, in the namespace reviews' base creates.
    let ratings_base = BASE
        .replace(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n",
            "",
        )
        .replace("reviews", "ratings");
    let ratings_deployments =
        (deployment("v1") + "---\n" + &deployment("v2")).replace("reviews", "ratings");
    let ratings_at = |v1, v2| {
        format!(
            "{ratings_base}---\n{}",
            named_virtual_service("ratings", v1, v2)
        )
    };
    let s = Scenario::start_with(
        &policy("30s"),
        &[
            ("ratings.yaml", ratings_at(100, 0)),
            ("ratings-deployments.yaml", ratings_deployments),
        ],
        1,
    )
    .await;
    assert_eq!(live_split_of(&s.client, "ratings").await, Some((100, 0)));
    s.remote.write("ratings.yaml", &ratings_at(0, 100));
    s.push_split(0, 100, "reviews and ratings to v2");
    let start = Instant::now();
    let mut saw_queued = false;
    loop {
        let (a, b) = (s.state_of("reviews").await, s.state_of("ratings").await);
        let phases = (a.as_ref().map(|x| x.phase), b.as_ref().map(|x| x.phase));
        if phases == (Some(Phase::Succeeded), Some(Phase::Succeeded)) {
            break;
        }
        let busy = |p: Option<Phase>| p.is_some_and(|p| p.occupies_slot());
        if busy(phases.0) && busy(phases.1) {
            // The two reads are apart in time: reviews may have finished and ratings started
            // in between. Reviews busy again after ratings' read means both at once.
            let again = s.state_of("reviews").await.map(|x| x.phase);
            assert!(
                !busy(again),
                "two rollouts at once with maxConcurrent 1: {phases:?}, then reviews {again:?}"
            );
        }
        if phases.0 == Some(Phase::Queued) || phases.1 == Some(Phase::Queued) {
            saw_queued = true;
            // The queued one's traffic has not moved.
            let queued = if phases.0 == Some(Phase::Queued) {
                "reviews"
            } else {
                "ratings"
            };
            let split = live_split_of(&s.client, queued).await;
            // The queue may start it between the two reads: judge the split only when the
            // state read after it still says queued (the phase is stored before a write).
            let still_queued = s.state_of(queued).await.map(|x| x.phase) == Some(Phase::Queued);
            if still_queued {
                assert_eq!(split, Some((100, 0)), "{queued}");
            }
        }
        assert!(start.elapsed() < DEADLINE, "not both promoted: {phases:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_queued, "one of the two waited in the queue");
    assert_eq!(live_split_of(&s.client, "ratings").await, Some((0, 100)));
    s.wait_split("reviews live equals git", (0, 100)).await;
    // The metrics say where each rollout ended.
    let text = s.metrics.encode();
    for name in ["shop/reviews", "shop/ratings"] {
        assert!(
            text.lines().any(|l| l.contains("rollout_phase")
                && l.contains(name)
                && l.contains("Succeeded")
                && l.ends_with(" 1")),
            "{name} Succeeded in:\n{text}"
        );
    }
    assert!(
        text.lines().any(|l| l.contains("analysis_checks")
            && l.contains("success-rate")
            && l.contains("pass")),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_that_does_not_read_back_alerts_and_is_written_again() {
    let s = Scenario::start(&policy("20s")).await;
    s.set_v2(Behaviour {
        error_rate: 0.5,
        latency_ms: 20.0,
    });
    s.push_split(0, 100, "reviews v2");
    // One failed check in: the next one rolls back. Its first write is refused.
    s.wait_until("a failed check", |st, _| {
        st.is_some_and(|st| st.failed_checks == 1)
    })
    .await;
    s.faults.add(faults::Fault {
        method: "PATCH",
        path: "/virtualservices/reviews".into(),
        code: 422,
        reason: "Invalid",
        message: "refused by the test".into(),
        times: 1,
    });
    let state = s.wait_phase("rolled back", Phase::Failed).await;
    assert_eq!(
        s.faults.injected(),
        1,
        "the rollback's first write was refused"
    );
    s.wait_split("restored on the second write", (100, 0)).await;
    assert!(state.seq >= 2);
    let alert = s
        .wait_notification(&["\"kind\":\"sync-failed\"", "rollback did not restore"])
        .await;
    assert!(alert.contains("reviews/v1:100"), "{alert}");
    s.stop().await;
}

// Baseline comparison (the policy's `spec.baseline`): both versions' samples from the real
// Prometheus, one per second since the phase began, compared with a Mann-Whitney U test.

/// The test policy comparing both metrics with the old version, a sample a second.
fn baseline_policy() -> String {
    policy_with(
        "20s",
        "  baseline:\n    mannWhitney: {alpha: 0.05}\n    step: 1s\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_a_slower_canary_inside_its_threshold_is_rolled_back() {
    use veer::analysis::{AnalysisVerdict, BaselineVerdict};
    use veer::rollout::state::CheckOutcome;
    let s = Scenario::start(&baseline_policy()).await;
    // Ten times v1's 20 ms: a p99 of 248.5 ms, well inside `max: 500`.
    s.set_v2(Behaviour {
        error_rate: 0.0,
        latency_ms: 200.0,
    });
    s.push_split(0, 100, "reviews v2, slower");
    let state = s.wait_rolled_back_by_two_failed_checks().await;
    s.wait_split("split restored exactly", (100, 0)).await;
    let failed = failed_records(&state);
    assert_eq!(failed.len(), 2, "{:#?}", state.history);
    for r in failed {
        // Failed by the comparison, not by the threshold.
        assert_eq!(r.check, "p99-latency", "{r:#?}");
        assert!(r.value.is_some_and(|v| v < 500.0), "{r:#?}");
        assert!(
            matches!(r.verdict, AnalysisVerdict::WorseThanBaseline { p_value, alpha } if p_value < alpha),
            "{r:#?}"
        );
        let b = r.baseline.as_ref().expect("the comparison is recorded");
        assert!(matches!(b.verdict, BaselineVerdict::Fail { .. }), "{b:?}");
        assert!(
            b.query.contains("destination_version=\"v1\""),
            "{}",
            b.query
        );
        assert!(b.canary_median > b.baseline_median, "{b:?}");
    }
    assert!(
        state
            .history
            .iter()
            .filter(|r| r.check == "success-rate")
            .all(|r| r.outcome != CheckOutcome::Failed),
        "equal success rates never fail: {:#?}",
        state.history
    );
    // The alert, `veer rollout status` and the metrics carry the p-value next to the value
    // and threshold.
    s.wait_notification(&[
        "\"kind\":\"rolled-back\"",
        "\"name\":\"p99-latency\"",
        "<= 500",
        "baseline fail p=",
    ])
    .await;
    let (code, out) = s.veer_cli(&["rollout", "status", "shop/reviews"]).await;
    assert_eq!(code, 5, "{out}");
    // Without a name too: one rollout failed, so the command fails.
    let (all_code, all_out) = s.veer_cli(&["rollout", "status"]).await;
    assert_eq!(all_code, 5, "{all_out}");
    // `veer status` says the revision is applied, and that its rollout rolled back.
    let (code, status) = s.veer_cli(&["status"]).await;
    assert_eq!(code, 0, "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("rollout") && l.contains("shop/reviews ROLLED BACK")),
        "{status}"
    );
    assert!(
        out.lines().any(|l| l.contains("p99-latency")
            && l.contains("<= 500")
            && l.contains("FAIL  baseline fail p=")),
        "{out}"
    );
    let text = s.metrics.encode();
    assert!(
        text.lines()
            .any(|l| l.starts_with("veer_analysis_baseline_p_value")
                && l.contains("p99-latency")
                && l.contains("shop/reviews")),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_a_canary_equal_to_the_baseline_is_promoted() {
    use veer::analysis::{AnalysisVerdict, BaselineVerdict};
    use veer::rollout::state::CheckOutcome;
    let s = Scenario::start(&baseline_policy()).await;
    // v2 answers as v1 does (20 ms, no errors).
    let commit = s.push_split(0, 100, "reviews v2");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    assert_eq!(state.revision, commit);
    s.wait_split("live equals git", (0, 100)).await;
    assert_eq!(s.v2_path_to((0, 100)).await, vec![0, 25, 50, 75, 100]);
    assert_eq!(state.failed_checks, 0, "{:#?}", state.history);
    let p99: Vec<_> = state
        .history
        .iter()
        .filter(|r| r.check == "p99-latency")
        .collect();
    // A comparison with fewer than 4 samples of the new version (early in a step: only the
    // step's own samples count) cannot decide at 0.05: it holds as "cannot measure"; with 4
    // or more, equal versions pass.
    for r in p99.iter().filter(|r| r.baseline.is_some()) {
        let b = r.baseline.as_ref().expect("filtered");
        if b.canary_samples < 4 {
            assert_eq!(
                (r.outcome, &r.verdict),
                (CheckOutcome::Held, &AnalysisVerdict::Inconclusive),
                "{r:#?}"
            );
            assert!(
                matches!(&b.verdict, BaselineVerdict::Inconclusive { reason }
                    if reason.contains("wait for more intervals")
                        || reason.contains("wait one metric interval")),
                "{r:#?}"
            );
        } else {
            assert_eq!(r.outcome, CheckOutcome::Passed, "{r:#?}");
        }
    }
    // Then every step passed its comparison: equal constant latencies are ties (p = 1).
    for step in 0..3 {
        assert!(
            p99.iter().any(|r| r.step == step
                && r.outcome == CheckOutcome::Passed
                && r.baseline
                    .as_ref()
                    .is_some_and(|b| b.verdict == BaselineVerdict::Pass { p_value: 1.0 }
                        && b.canary_samples >= 4)),
            "step {step} passed its comparison: {p99:#?}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_a_slower_canary_within_the_allowance_is_promoted() {
    use veer::analysis::BaselineVerdict;
    use veer::rollout::state::CheckOutcome;
    let s = Scenario::start(&policy_with(
        "20s",
        "  baseline:\n    mannWhitney: {alpha: 0.05}\n    step: 1s\n    metrics:\n    - {name: success-rate}\n    - {name: p99-latency, allowance: 150}\n",
    ))
    .await;
    // 30 ms against v1's 20 ms: a p99 of 49.75 ms, twice v1's 24.85 ms and certainly slower,
    // but inside the 150 % the policy allows.
    s.set_v2(Behaviour {
        error_rate: 0.0,
        latency_ms: 30.0,
    });
    s.push_split(0, 100, "reviews v2, a little slower");
    let state = s.wait_phase("promoted", Phase::Succeeded).await;
    s.wait_split("live equals git", (0, 100)).await;
    assert_eq!(state.failed_checks, 0, "{:#?}", state.history);
    let allowed: Vec<_> = state
        .history
        .iter()
        .filter_map(|r| r.baseline.as_ref().map(|b| (r, b)))
        .filter(|(_, b)| matches!(b.verdict, BaselineVerdict::WithinAllowance { .. }))
        .collect();
    assert!(!allowed.is_empty(), "{:#?}", state.history);
    for (r, b) in allowed {
        assert_eq!(
            (r.check.as_str(), r.outcome),
            ("p99-latency", CheckOutcome::Passed)
        );
        assert!(
            matches!(b.verdict, BaselineVerdict::WithinAllowance { p_value, change }
                if p_value < 0.05 && (change - 1.0).abs() < 0.01),
            "{b:?}"
        );
        assert!(b.to_string().contains("within the 150% allowance"), "{b}");
    }
    s.stop().await;
}

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

fn weights_of(route: &Value) -> (u32, u32) {
    let mut out = (0, 0);
    for r in route
        .get("route")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let w = r.get("weight").and_then(Value::as_u64).unwrap_or(100) as u32;
        match r.pointer("/destination/subset").and_then(Value::as_str) {
            Some("v1") => out.0 += w,
            Some("v2") => out.1 += w,
            _ => {}
        }
    }
    out
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

/// The checks recorded as failed, oldest first.
fn failed_records(state: &RolloutState) -> Vec<&veer::rollout::state::CheckRecord> {
    state
        .history
        .iter()
        .filter(|r| r.outcome == veer::rollout::state::CheckOutcome::Failed)
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

/// `kubectl edit` of the route's weights to `(v1, v2)`: a PUT by the field manager
/// `kubectl-edit`, as kubectl makes it.
async fn hand_edit(client: &kube::Client, (v1, v2): (u32, u32)) {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), NS, &vs_resource());
    let mut vs =
        serde_json::to_value(api.get("reviews").await.expect("the VirtualService")).expect("JSON");
    let routes = vs
        .pointer_mut("/spec/http/0/route")
        .and_then(Value::as_array_mut)
        .expect("a route");
    for r in routes.iter_mut() {
        match r.pointer("/destination/subset").and_then(Value::as_str) {
            Some("v1") => r["weight"] = serde_json::json!(v1),
            Some("v2") => r["weight"] = serde_json::json!(v2),
            _ => {}
        }
    }
    let object: DynamicObject = serde_json::from_value(vs).expect("a DynamicObject");
    let params = kube::api::PostParams {
        field_manager: Some("kubectl-edit".into()),
        ..Default::default()
    };
    api.replace("reviews", &params, &object)
        .await
        .expect("the hand edit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edit_mid_step_is_undone_and_reported() {
    let s = Scenario::start(&policy("60s")).await;
    // Nobody calls yet: the rollout holds at its first step (no data), its split in force.
    s.exporter.set_rate(&ServiceKey::new(NS, "reviews"), 0.0);
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    s.wait_until("holding at the first step", |st, _| {
        st.is_some_and(|st| st.phase == Phase::Progressing && st.last_hold.is_some())
    })
    .await;
    hand_edit(&s.client, (50, 50)).await;
    // Written back within a pass (the 1 s interval), and told with the editor's name.
    s.wait_split("the step's split written back", (75, 25))
        .await;
    let n = s
        .wait_notification(&[
            "\"kind\":\"rollout-interfered\"",
            "kubectl-edit",
            "reviews/v1:50",
        ])
        .await;
    assert!(n.contains("shop/reviews"), "{n}");
    let state = s.state().await.expect("a state");
    assert_eq!(
        (state.phase, state.step),
        (Phase::Progressing, 0),
        "the step did not move"
    );
    s.stop().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_undoes_a_kubectl_edit_mid_step_and_says_who_made_it() {
    let (s, mut veer) = Scenario::start_binary(&policy("60s")).await;
    // Nobody calls yet: the rollout holds at its first step (no data), its split in force.
    s.exporter.set_rate(&ServiceKey::new(NS, "reviews"), 0.0);
    s.push_split(0, 100, "reviews v2");
    s.wait_split("first step", (75, 25)).await;
    let kubeconfig = s._tmp.path().join("kubeconfig");
    let out = support::devcluster::kubectl_ok(
        &kubeconfig,
        &[
            "-n",
            NS,
            "patch",
            "virtualservices.networking.istio.io",
            "reviews",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/http/0/route/0/weight","value":50},{"op":"replace","path":"/spec/http/0/route/1/weight","value":50}]"#,
        ],
        None,
    )
    .await;
    assert!(out.contains("patched"), "{out}");
    // Written back within a pass or two (1 s interval), and the log names the editor.
    s.wait_split("the step's split written back", (75, 25))
        .await;
    let start = Instant::now();
    loop {
        let log = s.binary_log();
        if log.contains("the route was edited mid-step") && log.contains("kubectl-patch") {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no interference logged with the editor's name:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, out) = s.veer_cli(&["rollout", "status", "shop/reviews"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Progressing"), "{out}");
    let _ = veer.kill();
    let _ = veer.wait();
    s.stop().await;
}
