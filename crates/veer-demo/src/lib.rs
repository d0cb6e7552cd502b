//! `veer demo`: the whole loop on one machine, with no cluster. It starts the embedded API
//! server, the synthetic Istio exporter (traffic follows the live weights), a real Prometheus,
//! a local Slack receiver that prints what veer posts, and `veer run` itself (this binary, as
//! a child process) tracking a git repository the demo creates from `examples/`; then it plays
//! a story by making real commits (first deploy, a bad canary rolled back and reverted in git,
//! a good canary promoted, mirroring, fault injection), prints each step as it happens, sums
//! up, and stops everything it started (on Ctrl-C too).
//!
//! Parts: `story` (the acts as data, pure), `render` (everything printed, pure), `repo` (the
//! git repository), `prometheus`, `slack`, `veer` (the child process) and `play` (the
//! running stage: starting, waiting, measuring, stopping).

pub mod play;
pub mod prometheus;
pub mod render;
pub mod repo;
pub mod slack;
pub mod story;
pub mod veer;

use std::path::{Path, PathBuf};

use veer_controller::exit;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Prometheus(#[from] prometheus::PrometheusError),
    #[error(transparent)]
    DevCluster(#[from] veer_devcluster::DevClusterError),
    #[error(transparent)]
    Exporter(#[from] veer_devcluster::exporter::ExporterError),
    #[error(transparent)]
    Repo(#[from] repo::RepoError),
    #[error(transparent)]
    Story(#[from] story::StoryError),
    #[error(transparent)]
    Analysis(#[from] veer_controller::analysis::AnalysisError),
    #[error("veer demo: a measurement query: {0}")]
    Template(#[from] veer_controller::analysis::TemplateError),
    #[error("veer demo: cannot {what}{}: {source}", on(path.as_deref()))]
    Io {
        what: String,
        /// The file or directory it was about, if any.
        path: Option<PathBuf>,
        source: std::io::Error,
    },
    #[error("veer demo: cannot {what}: {message}")]
    Cluster { what: String, message: String },
    #[error("veer demo: `veer run` exited; the end of its log ({log}):\n{tail}")]
    VeerExited { log: String, tail: String },
    #[error(
        "veer demo: {what} did not happen within {seconds} s; veer's log is {log} (the demo directory is kept)"
    )]
    Timeout {
        what: String,
        seconds: u64,
        log: String,
    },
    #[error(
        "veer demo: veer rejected commit {commit} of the story: {errors} validation errors; see {log}"
    )]
    Rejected {
        commit: String,
        errors: usize,
        log: String,
    },
}

impl DemoError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            DemoError::Prometheus(_) => "prometheus",
            DemoError::DevCluster(_) => "dev-cluster",
            DemoError::Exporter(_) => "exporter",
            DemoError::Repo(_) => "repo",
            DemoError::Story(_) => "story",
            DemoError::Analysis(_) => "analysis",
            DemoError::Template(_) => "template",
            DemoError::Io { .. } => "io",
            DemoError::Cluster { .. } => "cluster",
            DemoError::VeerExited { .. } => "veer-exited",
            DemoError::Timeout { .. } => "timeout",
            DemoError::Rejected { .. } => "rejected",
        }
    }
}

/// ` <path>` after an error's action, when it was about a file or directory.
pub(crate) fn on(path: Option<&Path>) -> String {
    path.map_or_else(String::new, |p| format!(" {}", p.display()))
}

/// The last `lines` lines of a log file (empty when it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// How to run the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// After the story, keep everything up until Ctrl-C.
    pub keep_running: bool,
    pub color: bool,
    /// Work here (created if missing, kept afterwards) instead of a temporary directory that
    /// is removed at the end.
    pub dir: Option<PathBuf>,
    /// The veer binary to run as `veer run` (this one).
    pub exe: PathBuf,
}

/// Run the demo; the exit code: 0 when every act showed what it had to (or, with
/// `--keep-running`, after Ctrl-C), [`exit::FAILURE`] when one did not, [`exit::INTERRUPTED`]
/// when stopped before the story ended. Everything started is stopped in every case.
pub async fn run(options: DemoOptions) -> Result<i32, DemoError> {
    let mut signal = std::pin::pin!(veer_controller::shutdown::signal());
    let paint = render::Paint {
        color: options.color,
    };
    let mut stage = tokio::select! {
        s = play::Stage::start(&options) => s?,
        () = &mut signal => {
            println!("interrupted while starting: stopped what had started");
            return Ok(exit::INTERRUPTED);
        }
    };
    let played = tokio::select! {
        r = stage.play(story::STORY) => Some(r),
        () = &mut signal => None,
    };
    let code = match played {
        None => {
            println!("\n{}", paint.yellow("interrupted: stopping everything"));
            exit::INTERRUPTED
        }
        Some(Err(e)) => {
            // Kept: the error points at veer's log in it.
            stage.stop(true).await;
            return Err(e);
        }
        Some(Ok(all_ok)) => {
            if options.keep_running {
                stage.print_keep_running();
                signal.await;
                println!();
            }
            if all_ok { exit::OK } else { exit::FAILURE }
        }
    };
    stage.stop(options.keep_running).await;
    Ok(code)
}
