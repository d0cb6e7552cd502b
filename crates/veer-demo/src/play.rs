//! The demo's stage: starts every piece, plays the acts (commit, then follow what veer does
//! through its state in the cluster, Prometheus and the Slack receiver, printing as it
//! happens), and stops everything it started. Every wait polls with the act's deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use super::DemoError;
use super::prometheus::PrometheusServer;
use super::render::{self, ActReport, Closing, Paint, short};
use super::repo::DemoRepo;
use super::slack::SlackReceiver;
use super::story::{self, Act, Expect, TrafficRule};
use super::veer::VeerProcess;
use veer_controller::analysis::Prometheus;
use veer_controller::sync::state::{self as sync_state, StateLocation, SyncState};
use veer_devcluster::RunningCluster;
use veer_devcluster::exporter::Exporter;

mod start;
mod stop;
mod watch;

pub use stop::find_kubectl;

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

impl Stage {
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
}
