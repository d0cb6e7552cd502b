//! The command line: flags with `VEER_*` environment fallbacks (clap). Parsing only; the
//! commands run in `main.rs`, which turns these into a [`Config`](crate::config::Config)
//! through [`config::resolve`](crate::config::resolve).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{LogFormat, Overrides};

/// Exit codes shared by all commands.
pub mod exit {
    /// Everything is fine.
    pub const OK: i32 = 0;
    /// Validation found errors.
    pub const INVALID: i32 = 1;
    /// `diff`/`sync --dry-run`: there are differences (like diff(1)).
    pub const DIFFERENCES: i32 = 2;
    /// veer could not do its job: bad config, unreachable repository, bad flags.
    pub const FAILURE: i32 = 3;
}

#[derive(Debug, Parser)]
#[command(
    name = "veer",
    version,
    about = "GitOps for Istio traffic: validate, diff, sync and progressively shift traffic from git",
    propagate_version = true
)]
pub struct Cli {
    /// Configuration file. Default: ./veer.yaml when it exists.
    #[arg(long, global = true, env = "VEER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format.
    #[arg(long, global = true, env = "VEER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log level or tracing filter (e.g. `debug`, `veer=debug,info`).
    #[arg(long, global = true, env = "VEER_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate manifests the way `istioctl analyze` would; exit 1 on any error.
    Validate(ValidateArgs),
    /// Poll the repository and validate each new revision until stopped.
    Run(RunArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

/// Where the manifests come from.
#[derive(Debug, Clone, Default, Args)]
pub struct SourceArgs {
    /// Git repository: path, file://, git://, https://, ssh:// or user@host:repo.
    #[arg(long, env = "VEER_REPO", value_name = "URL")]
    pub repo: Option<String>,

    /// Branch (`main`, `branch:x`), tag (`tag:v1`) or commit (`commit:<sha>` or 40 hex digits).
    #[arg(long = "ref", env = "VEER_REF", value_name = "REF")]
    pub reference: Option<String>,

    /// Sub-directory of the repository holding the manifests.
    #[arg(long, env = "VEER_PATH", value_name = "DIR")]
    pub path: Option<String>,

    /// Namespace for objects that name none.
    #[arg(long, env = "VEER_DEFAULT_NAMESPACE", value_name = "NS")]
    pub default_namespace: Option<String>,

    /// Where veer keeps its clone of the repository (a cache).
    #[arg(long, env = "VEER_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Directory (or single file) to validate. Omit to validate the configured repository.
    pub dir: Option<PathBuf>,

    #[command(flatten)]
    pub source: SourceArgs,

    /// Output format.
    #[arg(long, short, value_enum, default_value = "human")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Poll every DURATION (`30s`, `2m`).
    #[arg(
        long,
        env = "VEER_INTERVAL",
        value_name = "DURATION",
        conflicts_with = "schedule"
    )]
    pub interval: Option<String>,

    /// Poll on a cron schedule, seconds field first (`0 */5 * * * *`).
    #[arg(long, env = "VEER_SCHEDULE", value_name = "CRON")]
    pub schedule: Option<String>,

    /// Poll once, report, and exit (exit 1 when the revision is invalid).
    #[arg(long)]
    pub once: bool,
}

/// `veer dev-cluster`: an embedded Kubernetes API server for tests and demos.
#[derive(Debug, Clone, Args)]
pub struct DevClusterArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, env = "VEER_DEV_CLUSTER_PORT", default_value_t = 6443)]
    pub port: u16,

    /// Write a kubeconfig for the server here (for kubectl and `veer --kubeconfig`).
    #[arg(
        long,
        env = "VEER_DEV_CLUSTER_KUBECONFIG",
        value_name = "FILE",
        default_value = "dev-cluster.kubeconfig"
    )]
    pub kubeconfig: PathBuf,

    /// Keep objects in this file across restarts.
    #[arg(long, env = "VEER_DEV_CLUSTER_STATE", value_name = "FILE")]
    pub state: Option<PathBuf>,
}

impl Cli {
    /// The overrides the flags make to the configuration file.
    pub fn overrides(&self) -> Overrides {
        let source = match &self.command {
            Command::Validate(a) => &a.source,
            Command::Run(a) => &a.source,
        };
        let (interval, schedule) = match &self.command {
            Command::Run(a) => (a.interval.clone(), a.schedule.clone()),
            Command::Validate(_) => (None, None),
        };
        Overrides {
            repo: source.repo.clone(),
            reference: source.reference.clone(),
            path: source.path.clone(),
            interval,
            schedule,
            cache_dir: source.cache_dir.clone(),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            default_namespace: source.default_namespace.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_become_overrides() {
        let cli = Cli::parse_from([
            "veer",
            "run",
            "--repo",
            "/r",
            "--ref",
            "tag:v1",
            "--interval",
            "5s",
            "--log-format",
            "json",
        ]);
        let o = cli.overrides();
        assert_eq!(o.repo.as_deref(), Some("/r"));
        assert_eq!(o.reference.as_deref(), Some("tag:v1"));
        assert_eq!(o.interval.as_deref(), Some("5s"));
        assert_eq!(o.log_format, Some(LogFormat::Json));
    }
}
