//! A running scenario: its dev cluster, exporter, Prometheus, git remote and veer, with the
//! waits the tests poll through, and the helpers reading a rollout's check history.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use veer::analysis::{Prometheus, PrometheusConfig};
use veer::cluster::Cluster;
use veer::controller::rollouts::{self, GitRevert, RolloutDriver, RolloutOptions};
use veer::controller::{self, Controller, ControllerOptions};
use veer::devcluster::RunningCluster;
use veer::exporter::{Behaviour, Exporter, ExporterConfig, ServiceKey, WatchConfig};
use veer::ids::RolloutId;
use veer::metrics::Metrics;
use veer::notify::{EventKind, Filter, Notifications, NotifyConfig, Severity, WebhookConfig};
use veer::rollout::{FailureReason, Phase, RolloutState};
use veer::source::{GitRef, GitSource, Poller, Schedule, SourceSpec};
use veer::sync::SyncOptions;
use veer::sync::state::StateLocation;

use crate::faults;
use crate::fixtures::*;
use crate::prometheus_support::PrometheusServer;
use crate::support::Remote;
use crate::support::devcluster as dev;

/// One veer process: the reconcile loop on a task (aborting it is a kill).
struct Veer {
    task: tokio::task::JoinHandle<()>,
}

pub(crate) struct Scenario {
    pub(crate) _tmp: tempfile::TempDir,
    cluster: RunningCluster,
    pub(crate) client: kube::Client,
    pub(crate) remote: Remote,
    pub(crate) exporter: Exporter,
    pub(crate) prometheus: PrometheusServer,
    veer: Option<Veer>,
    max_concurrent: usize,
    pub(crate) metrics: Arc<Metrics>,
    /// Faults in front of veer's client (not the test's).
    pub(crate) faults: faults::Faults,
    /// Bodies of the notifications veer delivered to its webhook notifier.
    notified: Arc<Mutex<Vec<Value>>>,
    notify_url: String,
    recorded: Arc<Mutex<Vec<(u32, u32)>>>,
    recorder: tokio::task::JoinHandle<()>,
}

impl Scenario {
    /// Cluster, exporter, Prometheus, a remote at `v1: 100` with `policy`, and veer running.
    pub(crate) async fn start(policy: &str) -> Scenario {
        Self::start_with(policy, &[], 0).await
    }

    pub(crate) async fn start_with(
        policy: &str,
        extra: &[(&str, String)],
        max_concurrent: usize,
    ) -> Scenario {
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
    pub(crate) async fn start_binary(policy: &str) -> (Scenario, std::process::Child) {
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

    pub(crate) fn binary_log(&self) -> String {
        std::fs::read_to_string(self._tmp.path().join("veer.log")).unwrap_or_default()
    }

    pub(crate) async fn start_veer(&mut self) {
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
    pub(crate) async fn kill_veer(&mut self) {
        if let Some(v) = self.veer.take() {
            v.task.abort();
            let _ = v.task.await;
        }
    }

    pub(crate) fn push_split(&self, v1: u32, v2: u32, message: &str) -> String {
        self.remote.write("reviews.yaml", &virtual_service(v1, v2));
        self.remote.commit_and_push(message)
    }

    pub(crate) async fn state(&self) -> Option<RolloutState> {
        self.state_of("reviews").await
    }

    /// Wait for the rollout to fail, rolled back by the test policy's two failed checks.
    pub(crate) async fn wait_rolled_back_by_two_failed_checks(&self) -> RolloutState {
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

    pub(crate) async fn state_of(&self, name: &str) -> Option<RolloutState> {
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
    pub(crate) async fn wait_until(
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

    pub(crate) async fn wait_split(&self, what: &str, want: (u32, u32)) {
        self.wait_until(what, |_, split| split == Some(want)).await;
    }

    pub(crate) async fn wait_phase(&self, what: &str, phase: Phase) -> RolloutState {
        self.wait_until(what, |s, _| s.is_some_and(|s| s.phase == phase))
            .await
            .0
            .expect("a state")
    }

    /// Run the `veer` binary against this cluster; (exit code, stdout + stderr).
    pub(crate) async fn veer_cli(&self, args: &[&str]) -> (i32, String) {
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
    pub(crate) async fn v2_path_to(&self, last: (u32, u32)) -> Vec<u32> {
        let start = Instant::now();
        while self.recorded().last() != Some(&last) && start.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        v2_path(&self.recorded())
    }

    pub(crate) fn recorded(&self) -> Vec<(u32, u32)> {
        self.recorded.lock().unwrap().clone()
    }

    pub(crate) fn set_v2(&self, behaviour: Behaviour) {
        self.exporter
            .set_behaviour(&ServiceKey::new(NS, "reviews"), "v2", behaviour)
            .expect("a valid behaviour");
    }

    pub(crate) async fn stop(mut self) {
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
    pub(crate) fn notifications(&self) -> Vec<String> {
        self.notified
            .lock()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect()
    }

    /// Wait until a notification containing every one of `parts` arrived.
    pub(crate) async fn wait_notification(&self, parts: &[&str]) -> String {
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
pub(crate) fn v2_path(recorded: &[(u32, u32)]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for (_, v2) in recorded {
        if out.last() != Some(v2) {
            out.push(*v2);
        }
    }
    out
}

/// The checks recorded as failed, oldest first.
pub(crate) fn failed_records(state: &RolloutState) -> Vec<&veer::rollout::state::CheckRecord> {
    state
        .history
        .iter()
        .filter(|r| r.outcome == veer::rollout::state::CheckOutcome::Failed)
        .collect()
}
