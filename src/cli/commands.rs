//! The arguments of the product's commands: where the manifests come from ([`SourceArgs`]),
//! `validate`, `diff`, `sync`, `status`, `run`, and the `rollout` subcommands.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{DryRunMode, OutputFormat};

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

    /// Where veer keeps its clone of the repository (a cache). Default: one directory per
    /// repository under `$XDG_CACHE_HOME/veer` (`~/.cache/veer`).
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

    /// Treat every warning as an error (exit 1), except checks `validation.severity` sets;
    /// replaces `validation.strict` of veer.yaml.
    #[arg(long, env = "VEER_STRICT", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub strict: Option<bool>,

    /// Also look destination hosts up among the live cluster's Services and ServiceEntries
    /// (the configured kubeconfig and context, as `veer diff` uses). Without it, offline.
    #[arg(long)]
    pub cluster: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Output format.
    #[arg(long, short, value_enum, default_value = "human")]
    pub output: OutputFormat,

    /// Plan prunes (`--prune=false`: show them as skipped).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub prune: Option<bool>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Write nothing: `client` (the default when no value is given) prints the plan;
    /// `server` sends each write with `dryRun=All`.
    #[arg(long, value_enum, value_name = "MODE", num_args = 0..=1, default_missing_value = "client")]
    pub dry_run: Option<DryRunMode>,

    /// Take ownership of fields other field managers own.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub force_conflicts: Option<bool>,

    /// Delete objects veer applied that are gone from git (`--prune=false` keeps them).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub prune: Option<bool>,

    /// Output format.
    #[arg(long, short, value_enum, default_value = "human")]
    pub output: OutputFormat,

    /// Prometheus for rollout analysis (`http://127.0.0.1:9090`); replaces
    /// `analysis.prometheus.url` of veer.yaml.
    #[arg(long, env = "VEER_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, short, value_enum, default_value = "human")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Delete objects veer applied that are gone from git.
    #[arg(long, env = "VEER_PRUNE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub prune: Option<bool>,

    /// Re-apply drift (`--self-heal=false` only reports it).
    #[arg(long, env = "VEER_SELF_HEAL", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub self_heal: Option<bool>,

    /// Take ownership of fields other field managers own.
    #[arg(long, env = "VEER_FORCE_CONFLICTS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub force_conflicts: Option<bool>,

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

    /// Plan every object at least every DURATION (`10m`); between, a pass plans only what
    /// changed in git or in the cluster. Replaces `sync.resyncInterval` of veer.yaml.
    #[arg(long, env = "VEER_RESYNC_INTERVAL", value_name = "DURATION")]
    pub resync_interval: Option<String>,

    /// Reconcile once, report, and exit (exit codes as `veer sync`).
    #[arg(long)]
    pub once: bool,

    /// Prometheus for rollout analysis (`http://127.0.0.1:9090`); replaces
    /// `analysis.prometheus.url` of veer.yaml.
    #[arg(long, env = "VEER_PROMETHEUS_URL", value_name = "URL")]
    pub prometheus_url: Option<String>,

    /// Serve `/`, `/healthz`, `/readyz`, `/metrics` and `/hooks/git` on IP:PORT
    /// (default `server.listen`, else 127.0.0.1:8080).
    #[arg(long, env = "VEER_LISTEN", value_name = "IP:PORT")]
    pub listen: Option<String>,

    /// Run only while holding a Lease, so that several replicas can run and one writes.
    #[arg(long = "leader-elect", env = "VEER_LEADER_ELECTION")]
    pub leader_elect: bool,

    /// Namespace of the leader election Lease (default: the state namespace).
    #[arg(long, env = "VEER_LEADER_ELECTION_NAMESPACE", value_name = "NS")]
    pub leader_election_namespace: Option<String>,

    /// Name of the leader election Lease.
    #[arg(
        long,
        env = "VEER_LEADER_ELECTION_LEASE",
        value_name = "NAME",
        default_value = "veer-leader"
    )]
    pub leader_election_lease: String,

    /// How long the lease lasts without renewal; a standby takes over after it.
    #[arg(
        long,
        env = "VEER_LEADER_ELECTION_LEASE_DURATION",
        value_name = "DURATION",
        default_value = "15s"
    )]
    pub leader_election_lease_duration: String,

    /// How long before the lease expires the leader renews it.
    #[arg(
        long,
        env = "VEER_LEADER_ELECTION_RENEW_PERIOD",
        value_name = "DURATION",
        default_value = "5s"
    )]
    pub leader_election_renew_period: String,
}

/// `veer rollout ...`. Commands are written into the rollout's ConfigMap; the controller
/// applies each once at its next pass and clears it.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Phase, weight (as a bar), split and last checks of one rollout, or of all.
    Status(RolloutStatusArgs),
    /// Hold the rollout where it is (traffic stays as it is).
    Pause(RolloutTarget),
    /// Continue a paused rollout.
    Resume(RolloutTarget),
    /// Skip the remaining steps and promote now.
    Promote(RolloutTarget),
    /// Roll back to the split from before the rollout.
    Abort(RolloutTarget),
    /// Try a failed revision again.
    Retry(RolloutTarget),
}

#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    /// The rollout's VirtualService as NAMESPACE/NAME; all rollouts when absent.
    #[arg(value_name = "NS/NAME")]
    pub rollout: Option<String>,
    /// Redraw every second until the rollout succeeds or fails (needs NS/NAME).
    #[arg(long, short, requires = "rollout")]
    pub watch: bool,
    #[arg(long, short, value_enum, default_value = "human")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RolloutTarget {
    /// The rollout's VirtualService as NAMESPACE/NAME.
    #[arg(value_name = "NS/NAME")]
    pub rollout: String,
}
