//! The demo's stage: starts every piece, plays the acts (commit, then follow what veer does
//! through its state in the cluster, Prometheus and the Slack receiver, printing as it
//! happens), and stops everything it started. Every wait polls with the act's deadline.

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use super::prometheus::PrometheusServer;
use super::render::{self, ActReport, Closing, Paint, RolloutSeen, short};
use super::repo::DemoRepo;
use super::slack::SlackReceiver;
use super::story::{self, Act, Expect, TrafficRule, Tree};
use super::veer::{VeerProcess, VeerSetup};
use super::{DemoError, DemoOptions};
use veer_controller::analysis::{
    Builtin, MetricsProvider, Prometheus, PrometheusConfig, QueryTemplate, Vars, builtin,
};
use veer_controller::controller::rollouts::read_rollout;
use veer_controller::ids::RolloutId;
use veer_controller::manifest::rollout_policy::Revert;
use veer_controller::rollout::{Phase, RolloutState};
use veer_controller::sync::state::{self as sync_state, StateLocation, SyncState};
use veer_devcluster::exporter::{Exporter, ExporterConfig, ServiceKey, WatchConfig};
use veer_devcluster::{DevCluster, DevClusterOptions, RunningCluster};

/// Requests per second the exporter sends each service.
const REQUESTS_PER_SECOND: f64 = 50.0;
/// Share of them carrying the header of an A/B (matched) route.
const MATCHED_SHARE: f64 = veer_devcluster::exporter::DEFAULT_MATCHED_SHARE;
/// How often the demo looks at veer's state, the exporter and the Slack receiver.
const POLL: Duration = Duration::from_millis(200);
/// Longest one act may take.
const ACT_DEADLINE: Duration = Duration::from_secs(120);
/// Window of the demo's own Prometheus measurements.
const MEASURE_WINDOW: Duration = Duration::from_secs(10);
/// Requests the measured subset must have answered before the demo reads a share off them.
const MIN_MEASURED: f64 = 150.0;
/// veer's state namespace (the default).
const STATE_NAMESPACE: &str = "veer";

/// What a rollout act wants to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    RolledBack,
    Promoted,
}

pub struct Stage {
    paint: Paint,
    started: Instant,
    dir: PathBuf,
    /// The temporary demo directory (removed at the end unless kept); `None` with `--dir`.
    temp: Option<tempfile::TempDir>,
    exe: PathBuf,
    cluster: Option<RunningCluster>,
    client: kube::Client,
    exporter: Option<Exporter>,
    prometheus: PrometheusServer,
    metrics: Prometheus,
    slack: Option<SlackReceiver>,
    slack_messages: mpsc::UnboundedReceiver<Value>,
    slack_count: usize,
    veer: Option<VeerProcess>,
    repo: DemoRepo,
    status_url: String,
    kubeconfig: PathBuf,
    rules: Vec<(TrafficRule, bool)>,
    revert: Option<String>,
    /// veer's state as last shown: what the next pass changed is told against it.
    applied: Option<SyncState>,
    /// When the current act began (its rollout's earlier checks are not news).
    act_started_at: chrono::DateTime<chrono::Utc>,
}

/// An I/O error, about `path` when given.
fn io(what: &str, path: Option<&Path>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.to_string();
    let path = path.map(Path::to_path_buf);
    move |source| DemoError::Io { what, path, source }
}

fn cluster_error(what: &str) -> impl FnOnce(String) -> DemoError {
    let what = what.to_string();
    move |message| DemoError::Cluster { what, message }
}

/// Is `revision` (as veer stored it) the commit `id`?
fn same_commit(revision: &str, id: &str) -> bool {
    !revision.is_empty() && (id.starts_with(revision) || revision.starts_with(id))
}

/// kubectl for the `--keep-running` hint: Debian's from `make deps` beside this build
/// (`target/tools/…`, the binary being `target/debug/veer`), else one on PATH.
pub fn find_kubectl(exe: &Path, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("tools/kubernetes-client/usr/bin/kubectl"));
    let on_path = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("kubectl"));
    beside.into_iter().chain(on_path).find(|p| p.is_file())
}

impl Stage {
    /// Start the API server, exporter, Prometheus, Slack receiver, the repository and `veer
    /// run`, and print where each is. On an error, what had started is stopped and the
    /// temporary demo directory is kept (the error may point at veer's log in it).
    pub async fn start(options: &DemoOptions) -> Result<Stage, DemoError> {
        let started = Instant::now();
        super::prometheus::require_binary()?;
        let (temp, dir) = match &options.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(io("create the demo directory", Some(d)))?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("veer-demo-")
                    .tempdir()
                    .map_err(io(
                        "create a temporary directory in",
                        Some(&std::env::temp_dir()),
                    ))?;
                let path = t.path().to_path_buf();
                (Some(t), path)
            }
        };
        match Self::start_in(options, started, dir, temp.is_some()).await {
            Ok(mut stage) => {
                stage.temp = temp;
                Ok(stage)
            }
            Err(e) => {
                if let Some(t) = temp {
                    println!("kept the demo directory {}", t.keep().display());
                }
                Err(e)
            }
        }
    }

    /// [`Stage::start`] in `dir`, which is temporary when `temporary` (the caller owns it).
    async fn start_in(
        options: &DemoOptions,
        started: Instant,
        dir: PathBuf,
        temporary: bool,
    ) -> Result<Stage, DemoError> {
        let paint = Paint {
            color: options.color,
        };
        println!(
            "{}",
            paint.bold(
                "veer demo: git → validate → diff → sync → canary with Prometheus analysis → Slack, on this machine"
            )
        );
        println!();

        let cluster = DevCluster::start(DevClusterOptions::default()).await?;
        let kubeconfig = dir.join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig)?;
        let url: axum::http::Uri =
            cluster
                .url()
                .parse()
                .map_err(|e: axum::http::uri::InvalidUri| {
                    cluster_error("use the API server's URL")(e.to_string())
                })?;
        let client = kube::Client::try_from(kube::Config::new(url))
            .map_err(|e| cluster_error("make a client for the API server")(e.to_string()))?;

        let exporter = Exporter::start(ExporterConfig {
            watch: Some(WatchConfig {
                client: client.clone(),
                namespace: None,
                api_version: "v1".to_string(),
            }),
            matched_share: MATCHED_SHARE,
            ..ExporterConfig::local(REQUESTS_PER_SECOND)
        })
        .await?;

        let prometheus_dir = dir.join("prometheus");
        let target = exporter.target();
        let prometheus = tokio::task::spawn_blocking(move || {
            PrometheusServer::start(&prometheus_dir, "istio-synthetic", &[target])
        })
        .await
        .map_err(|e| DemoError::Io {
            what: "start prometheus".into(),
            path: None,
            source: std::io::Error::other(e.to_string()),
        })??;
        let mut prometheus_config = PrometheusConfig::new(&prometheus.url());
        prometheus_config.timeout = Duration::from_secs(2);
        let metrics = Prometheus::new(prometheus_config)?;

        let (tx, slack_messages) = mpsc::unbounded_channel();
        let slack = SlackReceiver::start(tx)
            .await
            .map_err(io("start the Slack receiver", None))?;
        let slack_url_file = dir.join("slack-webhook-url");
        std::fs::write(&slack_url_file, slack.url())
            .map_err(io("write the Slack URL file", Some(&slack_url_file)))?;

        let repo = DemoRepo::create(&dir)?;
        let port = super::prometheus::free_loopback_port()
            .map_err(io("find a free loopback port for `veer run`", None))?;
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let config = dir.join("veer.yaml");
        std::fs::write(
            &config,
            super::veer::config_yaml(&VeerSetup {
                repo: repo.bare().to_path_buf(),
                cache_dir: dir.join("cache"),
                kubeconfig: kubeconfig.clone(),
                listen,
                prometheus_url: prometheus.url(),
                slack_url_file,
            }),
        )
        .map_err(io("write", Some(&config)))?;
        let mut veer = VeerProcess::spawn(&options.exe, &config, &dir.join("veer.log"))?;
        wait_healthy(&mut veer, listen).await?;
        let status_url = format!("http://{listen}/");

        let row = |label: &str, text: String| println!("  {:<13}{text}", paint.bold(label));
        row(
            "API server",
            format!("{} (embedded, in memory)", cluster.url()),
        );
        row("kubeconfig", kubeconfig.display().to_string());
        row(
            "exporter",
            format!(
                "http://{}/metrics (synthetic Istio traffic, {REQUESTS_PER_SECOND} requests/s per service, following the live weights)",
                exporter.addr()
            ),
        );
        row(
            "prometheus",
            format!(
                "{} (pid {}, scraping the exporter every second)",
                prometheus.url(),
                prometheus.pid().unwrap_or(0)
            ),
        );
        row(
            "slack",
            format!("{} (what veer posts is printed as [slack])", slack.url()),
        );
        row(
            "git",
            format!(
                "{} (branch main; veer polls it every second)",
                repo.bare().display()
            ),
        );
        row(
            "veer run",
            format!(
                "pid {}, --config {}, log {}",
                veer.pid(),
                config.display(),
                veer.log().display()
            ),
        );
        row("status page", paint.cyan(&status_url));
        row(
            "demo dir",
            format!(
                "{} ({})",
                dir.display(),
                match (temporary, options.keep_running) {
                    (false, _) => "given with --dir: kept",
                    (true, true) => "kept: --keep-running",
                    (true, false) => "removed at the end",
                }
            ),
        );
        Ok(Stage {
            paint,
            started,
            dir,
            // Set by the caller, which keeps it on an error.
            temp: None,
            exe: options.exe.clone(),
            cluster: Some(cluster),
            client,
            exporter: Some(exporter),
            prometheus,
            metrics,
            slack: Some(slack),
            slack_messages,
            slack_count: 0,
            veer: Some(veer),
            repo,
            status_url,
            kubeconfig,
            rules: Vec::new(),
            revert: None,
            applied: None,
            act_started_at: chrono::Utc::now(),
        })
    }

    /// Play the acts in order and print the summary; whether every act showed what it had to.
    pub async fn play(&mut self, acts: &[Act]) -> Result<bool, DemoError> {
        let mut reports = Vec::new();
        for (i, act) in acts.iter().enumerate() {
            let report = self.act(i + 1, act).await?;
            // Notifications of this act arrive a moment after veer's state says it is done.
            self.settle_slack(Duration::from_millis(800), Duration::from_secs(3))
                .await;
            self.show_later_changes().await?;
            let mark = if report.ok {
                self.paint.green("✓")
            } else {
                self.paint.red("✗")
            };
            println!("  {mark} {}", report.outcome);
            reports.push(report);
        }
        self.settle_slack(Duration::from_millis(1500), Duration::from_secs(6))
            .await;
        let closing = Closing {
            slack_messages: self.slack_count,
            revert: self.revert.clone(),
            log: self.repo.log()?,
            status_url: self.status_url.clone(),
            total: self.started.elapsed(),
        };
        println!();
        print!("{}", render::summary(&reports, &closing, self.paint));
        Ok(reports.iter().all(|r| r.ok))
    }

    async fn act(&mut self, number: usize, act: &Act) -> Result<ActReport, DemoError> {
        println!();
        println!("{}", render::act_header(number, act.title, self.paint));
        for line in act.about {
            println!("  {}", self.paint.dim(line));
        }
        let since = Instant::now();
        self.act_started_at = chrono::Utc::now();
        // git2 blocks, but on local repositories of a few small files (milliseconds): not
        // worth moving the repository in and out of spawn_blocking here, nor in play().
        let mut tree = self.repo.sync_to_tip()?;
        for change in act.changes {
            story::apply(&mut tree, change)?;
        }
        let commit = self.repo.commit_and_push(&tree, act.commit)?;
        println!(
            "  git commit {} \"{}\" (author veer demo), pushed",
            self.paint.bold(short(&commit)),
            act.commit
        );
        self.rules = act.traffic.iter().map(|r| (*r, false)).collect();
        // Right away, as well as on every poll: a rule that holds already is never skipped.
        self.apply_rules()?;
        let (ok, outcome, weights) = match act.expect {
            Expect::Applied => {
                let state = self.show_applied(&commit, since).await?;
                let created = state
                    .objects
                    .iter()
                    .filter(|o| o.result == "created")
                    .count();
                (
                    true,
                    format!("applied: {created} objects created"),
                    Vec::new(),
                )
            }
            Expect::RolledBack { vs } => {
                self.follow_rollout(&tree, vs, &commit, since, Want::RolledBack)
                    .await?
            }
            Expect::Promoted { vs } => {
                self.follow_rollout(&tree, vs, &commit, since, Want::Promoted)
                    .await?
            }
            Expect::Mirrored { vs } => {
                self.show_applied(&commit, since).await?;
                self.measure_mirror(&tree, vs, since).await?
            }
            Expect::FaultInjected { vs } => {
                self.show_applied(&commit, since).await?;
                self.measure_fault(&tree, vs, since).await?
            }
        };
        Ok(ActReport {
            title: act.title.to_string(),
            ok,
            outcome,
            weights,
            took: since.elapsed(),
        })
    }

    /// One poll: print Slack messages, apply the act's traffic rules, check veer still runs
    /// and the act's deadline; then sleep.
    async fn tick(&mut self, waiting_for: &str, since: Instant) -> Result<(), DemoError> {
        self.drain_slack();
        self.apply_rules()?;
        if let Some(e) = self.veer.as_mut().and_then(VeerProcess::exited) {
            return Err(e);
        }
        if since.elapsed() > ACT_DEADLINE {
            return Err(DemoError::Timeout {
                what: waiting_for.to_string(),
                seconds: ACT_DEADLINE.as_secs(),
                log: self.dir.join("veer.log").display().to_string(),
            });
        }
        tokio::time::sleep(POLL).await;
        Ok(())
    }

    fn drain_slack(&mut self) {
        while let Ok(message) = self.slack_messages.try_recv() {
            self.slack_count += 1;
            for line in render::slack_lines(&message, self.paint) {
                println!("{line}");
            }
        }
    }

    /// Let the last notifications arrive: until `quiet` passes without one (at most `most`).
    async fn settle_slack(&mut self, quiet: Duration, most: Duration) {
        let start = Instant::now();
        let mut quiet_since = Instant::now();
        while start.elapsed() < most && quiet_since.elapsed() < quiet {
            let before = self.slack_count;
            self.drain_slack();
            if self.slack_count != before {
                quiet_since = Instant::now();
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn apply_rules(&mut self) -> Result<(), DemoError> {
        let Some(exporter) = &self.exporter else {
            return Ok(());
        };
        for (rule, applied) in &mut self.rules {
            if *applied || !rule.applies(exporter.split(&rule.key()).as_ref()) {
                continue;
            }
            exporter.set_behaviour(&rule.key(), rule.subset, rule.behaviour)?;
            *applied = true;
            println!("  {} {}", self.paint.yellow("exporter:"), rule.note);
        }
        Ok(())
    }

    async fn sync_state(&self) -> Result<Option<SyncState>, DemoError> {
        let at = StateLocation {
            namespace: STATE_NAMESPACE.to_string(),
            name: veer_controller::config::DEFAULT_STATE_NAME.to_string(),
        };
        sync_state::read(&self.client, &at)
            .await
            .map_err(|e| cluster_error("read veer's state")(e.to_string()))
    }

    /// Wait until veer has applied `commit`, then print what it did.
    async fn show_applied(&mut self, commit: &str, since: Instant) -> Result<SyncState, DemoError> {
        loop {
            if let Some(state) = self.sync_state().await? {
                if let Some(r) = &state.rejected
                    && same_commit(&r.commit, commit)
                {
                    return Err(DemoError::Rejected {
                        commit: commit.to_string(),
                        errors: r.errors,
                        log: self.dir.join("veer.log").display().to_string(),
                    });
                }
                if state
                    .revision
                    .as_ref()
                    .is_some_and(|r| same_commit(&r.commit, commit))
                {
                    println!(
                        "  veer applied {} after {}:",
                        short(commit),
                        render::seconds(since.elapsed())
                    );
                    for line in render::applied_lines(self.applied.as_ref(), &state, self.paint) {
                        println!("{line}");
                    }
                    self.applied = Some(state.clone());
                    return Ok(state);
                }
            }
            self.tick(&format!("veer applying commit {}", short(commit)), since)
                .await?;
        }
    }

    /// Print what veer's sync state recorded since it was last shown (e.g. the promotion
    /// writing git's VirtualService), so every write shows in the act that caused it.
    async fn show_later_changes(&mut self) -> Result<(), DemoError> {
        let Some(state) = self.sync_state().await? else {
            return Ok(());
        };
        let lines = render::applied_lines(self.applied.as_ref(), &state, self.paint);
        // The last line is the counts: anything before it is a change.
        if lines.len() > 1 {
            println!("  also recorded in veer's sync state during this act:");
            for line in lines {
                println!("{line}");
            }
        }
        self.applied = Some(state);
        Ok(())
    }

    /// Follow the rollout `commit` starts on the VirtualService in `vs` until it ends (and,
    /// for a rollback under `revert: git`, until veer has pushed and applied its revert).
    async fn follow_rollout(
        &mut self,
        tree: &Tree,
        vs: &str,
        commit: &str,
        since: Instant,
        want: Want,
    ) -> Result<(bool, String, Vec<u32>), DemoError> {
        let info = story::virtual_service(tree, vs)?;
        let policy = story::policy_for(tree, vs)?;
        let reverts = policy
            .as_ref()
            .is_some_and(|p| p.spec.revert == Revert::Git);
        if let Some(p) = &policy {
            println!("{}", self.paint.dim(&render::policy_line(p)));
        }
        let id = RolloutId {
            namespace: info.namespace.clone(),
            name: info.name.clone(),
        };
        println!("  rollout {id}:");
        let mut seen = RolloutSeen::since(self.act_started_at);
        let mut weights: Vec<u32> = Vec::new();
        let mut last_split = None;
        let state: RolloutState = loop {
            let stored = read_rollout(&self.client, STATE_NAMESPACE, &id)
                .await
                .map_err(|e| cluster_error("read the rollout's state")(e.to_string()))?;
            // Once veer adopts its own revert commit, the failed rollout's state carries that
            // revision: it is still this rollout.
            if let Some((state, _, _)) = stored
                && (same_commit(&state.revision, commit)
                    || (last_split.is_some()
                        && state
                            .revert_commit
                            .as_deref()
                            .is_some_and(|r| same_commit(&state.revision, r))))
            {
                for line in render::rollout_updates(&mut seen, &state, self.paint) {
                    println!("{line}");
                }
                if last_split.as_ref() != Some(&state.current_split)
                    && (last_split.is_some() || state.current_split != state.start_split)
                {
                    weights.push(state.canary_weight());
                }
                last_split = Some(state.current_split.clone());
                // A failed rollout is done once its revert commit is recorded (when it reverts).
                let done = if state.phase.is_failed() {
                    !reverts || state.revert_commit.is_some()
                } else {
                    state.phase.is_terminal()
                };
                if done {
                    break state;
                }
            }
            self.tick(&format!("the rollout of {id}"), since).await?;
        };
        let split = render::split_text(&state.current_split);
        let result = match (want, state.phase) {
            (Want::Promoted, Phase::Succeeded) => (
                true,
                format!(
                    "promoted step by step to {}% ({split})",
                    state.canary_weight()
                ),
            ),
            (Want::RolledBack, Phase::Failed) => {
                let reason = state
                    .failure
                    .as_ref()
                    .map_or_else(|| "failed".to_string(), ToString::to_string);
                let mut outcome = format!("rolled back to {split} after {reason}");
                if let Some(revert) = &state.revert_commit {
                    let described = self.repo.describe(revert)?;
                    println!("  git log: {}", self.paint.yellow(&described));
                    self.show_applied(revert, since).await?;
                    println!(
                        "  {}",
                        self.paint
                            .dim("veer applied its own revert: git and live agree again")
                    );
                    outcome.push_str(&format!("; reverted in git by {}", short(revert)));
                    self.revert = Some(described);
                }
                (true, outcome)
            }
            (Want::Promoted | Want::RolledBack, phase) => (
                false,
                format!(
                    "expected the rollout to be {}, it ended {phase} ({split})",
                    match want {
                        Want::Promoted => "promoted",
                        Want::RolledBack => "rolled back",
                    }
                ),
            ),
        };
        Ok((result.0, result.1, weights))
    }

    /// Requests `subset` of `key` answered over [`MEASURE_WINDOW`], as its own sidecar
    /// reports them (mirrored copies included), from Prometheus.
    async fn served(&self, key: &ServiceKey, subset: &str) -> Result<Option<f64>, DemoError> {
        let vars = Vars::new(&key.namespace, &key.service, subset, MEASURE_WINDOW);
        let query = builtin::request_count().render(&vars)?;
        Ok(self.metrics.query(&query).await.value())
    }

    /// Show that the mirror's copies reach the mirrored subset, measured in Prometheus.
    async fn measure_mirror(
        &mut self,
        tree: &Tree,
        vs: &str,
        since: Instant,
    ) -> Result<(bool, String, Vec<u32>), DemoError> {
        let info = story::virtual_service(tree, vs)?;
        let Some((key, split)) = info
            .routes()
            .into_iter()
            .filter_map(|(key, routes)| routes.plain.map(|split| (key, split)))
            .find(|(_, s)| s.mirror.is_some())
        else {
            return Ok((false, format!("{vs} mirrors nothing"), Vec::new()));
        };
        let Some(mirror) = split.mirror.clone() else {
            return Ok((false, format!("{vs} mirrors nothing"), Vec::new()));
        };
        let Some((primary, weight)) = split.weights.iter().max_by_key(|(_, w)| **w) else {
            return Ok((false, format!("{vs} routes nowhere"), Vec::new()));
        };
        let (primary, weight) = (primary.clone(), *weight);
        println!(
            "  measuring in Prometheus: requests {}/{} answered per subset over the last {} s",
            key.namespace,
            key.service,
            MEASURE_WINDOW.as_secs()
        );
        loop {
            let served = self.served(&key, &primary).await?;
            let copies = self.served(&key, &mirror.subset).await?;
            if let (Some(served), Some(copies)) = (served, copies)
                && served >= MIN_MEASURED
            {
                let share = 100.0 * copies / served;
                println!(
                    "    {primary:<4} {} {weight:>3}%  {served:>6.0} requests answered",
                    self.paint.cyan(&render::bar(weight))
                );
                println!(
                    "    {:<4} {:<20} {:>4}  {copies:>6.0} mirrored copies = {share:.1} % of {primary}'s (answers thrown away)",
                    mirror.subset,
                    format!("mirror {}%", mirror.percent),
                    ""
                );
                let ok = copies > 0.0 && (share - mirror.percent).abs() <= 10.0;
                return Ok((
                    ok,
                    format!(
                        "{} received {share:.1} % of {primary}'s requests as copies (mirrorPercentage {} %), with weight 0",
                        mirror.subset, mirror.percent
                    ),
                    Vec::new(),
                ));
            }
            self.tick("mirrored requests showing in Prometheus", since)
                .await?;
        }
    }

    /// What the callers' sidecars report for `key` over [`MEASURE_WINDOW`] (the source
    /// reporter sees faults; the destination never sees an aborted request): requests, the
    /// success rate and the p99 latency (veer's caller-side built-ins).
    async fn measure_callers(
        &self,
        key: &ServiceKey,
    ) -> Result<(Option<f64>, Option<f64>, Option<f64>), DemoError> {
        let vars = Vars::new(&key.namespace, &key.service, "", MEASURE_WINDOW);
        // The built-ins have no caller-side request count: the same selector, counted.
        let count = QueryTemplate::new(
            r#"sum(increase(istio_requests_total{reporter="source",destination_service_namespace="{{ namespace }}",destination_service_name="{{ service }}"}[{{ interval }}]))"#,
        );
        let mut out = [None, None, None];
        let templates = [
            count,
            Builtin::CallerRequestSuccessRate.template(),
            Builtin::CallerRequestDuration.template(),
        ];
        for (slot, template) in out.iter_mut().zip(templates) {
            let query = template.render(&vars)?;
            *slot = self.metrics.query(&query).await.value();
        }
        Ok((out[0], out[1], out[2]))
    }

    /// Show the faults now live and what the callers see of them, measured in Prometheus
    /// against what the exporter's model of Istio says they should see.
    async fn measure_fault(
        &mut self,
        tree: &Tree,
        vs: &str,
        since: Instant,
    ) -> Result<(bool, String, Vec<u32>), DemoError> {
        let info = story::virtual_service(tree, vs)?;
        for f in info.faults() {
            println!("  fault  {f}");
        }
        let Some((key, routes)) = info.routes().into_iter().next() else {
            return Ok((false, format!("{vs} routes no traffic"), Vec::new()));
        };
        let expected = story::fault_effect(&routes, MATCHED_SHARE);
        if routes.matched.is_some() {
            println!(
                "  {} {:.0} % of the requests to {} carry the header of its matched route",
                self.paint.yellow("exporter:"),
                MATCHED_SHARE * 100.0,
                key.service
            );
        }
        println!(
            "  measuring in Prometheus what the callers of {} see (reporter=\"source\"), over the last {} s:",
            key.service,
            MEASURE_WINDOW.as_secs()
        );
        loop {
            if let (Some(count), Some(success), Some(p99)) = self.measure_callers(&key).await?
                && count >= MIN_MEASURED
            {
                let failed = 100.0 - success;
                println!(
                    "    {count:.0} requests: {failed:.1} % answered 5xx by the fault (expected {:.1} %)",
                    expected.aborted
                );
                let delayed = expected.delayed >= 1.0;
                if delayed {
                    println!(
                        "    p99 latency {p99:.0} ms ({:.1} % of requests are delayed {:.0} ms)",
                        expected.delayed, expected.delay_ms
                    );
                } else {
                    println!("    p99 latency {p99:.0} ms");
                }
                let ok = (failed - expected.aborted).abs() <= 4.0
                    && (!delayed || p99 >= expected.delay_ms / 2.0);
                let mut outcome = format!(
                    "{failed:.1} % of the requests to {} aborted with 5xx (expected {:.1} %)",
                    key.service, expected.aborted
                );
                if delayed {
                    outcome.push_str(&format!(
                        ", p99 {:.1} s with {:.0} % delayed {:.0} s",
                        p99 / 1000.0,
                        expected.delayed,
                        expected.delay_ms / 1000.0
                    ));
                }
                return Ok((ok, outcome, Vec::new()));
            }
            self.tick("the faulty service's requests showing in Prometheus", since)
                .await?;
        }
    }

    /// With `--keep-running`: how to look around, then wait (the caller waits for Ctrl-C).
    pub fn print_keep_running(&self) {
        let paint = self.paint;
        println!();
        let header = "━━ Still running (--keep-running) ";
        println!(
            "{}",
            paint.bold(&format!(
                "{header}{}",
                "━".repeat(86 - header.chars().count())
            ))
        );
        let kubectl = find_kubectl(&self.exe, std::env::var_os("PATH").as_deref());
        let kubectl_text = kubectl
            .as_ref()
            .map_or_else(|| "kubectl".to_string(), |p| p.display().to_string());
        let config = self.kubeconfig.display();
        println!("  kubeconfig   {config}");
        println!("  try          {kubectl_text} --kubeconfig {config} get virtualservices -A");
        println!(
            "               {} --kubeconfig {config} rollout status",
            self.exe.display()
        );
        if kubectl.is_none() {
            println!(
                "               (no kubectl found: `make deps` puts Debian's in target/tools/)"
            );
        }
        println!("  status page  {}", paint.cyan(&self.status_url));
        println!("  veer's log   {}", self.dir.join("veer.log").display());
        println!("  Ctrl-C stops everything (the demo directory is kept).");
    }

    /// Stop everything that was started, in order (veer first: it still talks to the rest),
    /// and remove the temporary directory unless `keep`.
    pub async fn stop(mut self, keep: bool) {
        let mut stopped = Vec::new();
        if let Some(veer) = self.veer.take() {
            let pid = veer.pid();
            let ended = match veer.stop().await {
                Some(status) if status.success() => String::new(),
                Some(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => format!(", which exited with code {code}"),
                    (None, Some(signal)) => format!(", which ended on signal {signal}"),
                    (None, None) => format!(", which ended with {status}"),
                },
                None => ", whose exit status could not be read".to_string(),
            };
            stopped.push(format!("veer run (pid {pid}{ended})"));
        }
        let pid = self.prometheus.pid();
        self.prometheus.stop();
        stopped.push(format!("prometheus (pid {})", pid.unwrap_or(0)));
        self.exporter.take();
        self.slack.take();
        stopped.push("the exporter, the Slack receiver".to_string());
        if let Some(cluster) = self.cluster.take() {
            // Bounded: the demo must end even if a client keeps a connection open.
            let _ = tokio::time::timeout(Duration::from_secs(5), cluster.shutdown()).await;
            stopped.push("the API server".to_string());
        }
        println!("stopped {}", stopped.join(", "));
        match self.temp.take() {
            Some(t) if keep => {
                let path = t.keep();
                println!("kept the demo directory {}", path.display());
            }
            Some(t) => {
                let path = t.path().display().to_string();
                match t.close() {
                    Ok(()) => println!("removed {path}"),
                    Err(e) => println!("could not remove {path}: {e}"),
                }
            }
            None => println!("the demo directory {} is kept (--dir)", self.dir.display()),
        }
    }
}

/// Wait until `veer run` answers `/healthz` (it serves before its first pass).
async fn wait_healthy(veer: &mut VeerProcess, listen: SocketAddr) -> Result<(), DemoError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = veer.exited() {
            return Err(e);
        }
        let port = listen.port();
        let status = tokio::task::spawn_blocking(move || {
            super::prometheus::http_get_status(port, "/healthz")
        })
        .await
        .ok()
        .flatten();
        if status == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(DemoError::Timeout {
                what: "`veer run` answering /healthz".to_string(),
                seconds: 30,
                log: veer.log().display().to_string(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_match_by_prefix_either_way() {
        let id = "0123456789abcdef0123456789abcdef01234567";
        assert!(same_commit(id, id));
        assert!(same_commit("0123456789ab", id));
        assert!(same_commit(id, "0123456"));
        assert!(!same_commit("", id));
        assert!(!same_commit("1123456", id));
    }

    #[test]
    fn kubectl_beside_the_build_first_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("target/debug/veer");
        let tools = dir.path().join("target/tools/kubernetes-client/usr/bin");
        let on_path = dir.path().join("bin");
        std::fs::create_dir_all(&on_path).unwrap();
        std::fs::write(on_path.join("kubectl"), "").unwrap();
        let path_var = std::env::join_paths([&on_path]).unwrap();
        assert_eq!(
            find_kubectl(&exe, Some(&path_var)),
            Some(on_path.join("kubectl"))
        );
        std::fs::create_dir_all(&tools).unwrap();
        std::fs::write(tools.join("kubectl"), "").unwrap();
        assert_eq!(
            find_kubectl(&exe, Some(&path_var)),
            Some(tools.join("kubectl"))
        );
        assert_eq!(find_kubectl(Path::new("/nonexistent/veer"), None), None);
    }
}
