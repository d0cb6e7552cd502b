//! The command line: flags with `VEER_*` environment fallbacks (clap). Parsing only; the
//! commands run in `main.rs`, which turns these into a [`Config`](crate::config::Config)
//! through [`config::resolve`](crate::config::resolve).
//!
//! The same binary is a kubectl plugin: installed (or symlinked) as `kubectl-veer`, kubectl
//! runs it for `kubectl veer ...`, and help and errors then say `kubectl veer`.
//!
//! The per-command arguments are in `commands`, those of the dev tooling (`demo`,
//! `synthetic-exporter`) in `tools`; both are re-exported here.

mod commands;
mod tools;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::config::{LogFormat, Overrides};

pub use veer_controller::exit;
pub use veer_devcluster::DevClusterArgs;

pub use commands::{
    DiffArgs, RolloutCommand, RolloutStatusArgs, RolloutTarget, RunArgs, SourceArgs, StatusArgs,
    SyncArgs, ValidateArgs,
};
pub use tools::{DemoArgs, SyntheticExporterArgs};

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

    /// Kubeconfig file. Default: `KUBECONFIG`, `~/.kube/config`, then the in-cluster
    /// service account.
    #[arg(long, global = true, env = "VEER_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context. Default: the current context.
    #[arg(long, global = true, env = "VEER_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace of veer's state ConfigMap (default `veer`).
    #[arg(long, global = true, env = "VEER_STATE_NAMESPACE", value_name = "NS")]
    pub state_namespace: Option<String>,

    /// When to colour the logs (stderr) and what a command prints (stdout: the diff, the
    /// demo); each stream is judged on its own.
    #[arg(
        long,
        global = true,
        env = "VEER_COLOR",
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate manifests the way `istioctl analyze` would; exit 1 on any error.
    Validate(ValidateArgs),
    /// Show what a sync would change (one pass); exit 2 when there are differences.
    Diff(DiffArgs),
    /// Make the cluster match git (one pass): apply, then prune.
    Sync(SyncArgs),
    /// Show what veer last did, from its state in the cluster.
    Status(StatusArgs),
    /// Reconcile until stopped: poll → validate → plan → apply → record.
    Run(RunArgs),
    /// Show and steer progressive rollouts (state read from the cluster).
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Serve an embedded, in-memory Kubernetes API server for tests and demos.
    DevCluster(DevClusterArgs),
    /// Serve synthetic Istio metrics whose traffic follows the live weights (tests, demos).
    #[command(hide = true)]
    SyntheticExporter(SyntheticExporterArgs),
    /// Play the whole story on this machine, no cluster needed: a bad canary rolled back
    /// and reverted in git, a good one promoted, mirroring and fault injection.
    Demo(DemoArgs),
    /// Print a shell completion script (`source <(veer completions bash)`).
    Completions(CompletionsArgs),
}

/// `veer completions SHELL`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The file name under which kubectl finds veer as a plugin (`kubectl veer ...`).
pub const KUBECTL_PLUGIN_NAME: &str = "kubectl-veer";

/// How to call veer in help and errors, from the name it was run as (`argv[0]`): `kubectl
/// veer` when run as the kubectl plugin, else `veer`.
pub fn bin_name(argv0: Option<&Path>) -> &'static str {
    let file = argv0.and_then(|p| p.file_stem()).and_then(|f| f.to_str());
    match file {
        Some(KUBECTL_PLUGIN_NAME) => "kubectl veer",
        _ => "veer",
    }
}

impl Cli {
    /// Parse `args` (the first one is the program, as in `std::env::args_os`), naming the
    /// program after it (see [`bin_name`]).
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let name = bin_name(args.first().map(Path::new));
        let mut command = Cli::command().bin_name(name).display_name(name);
        let matches = command.try_get_matches_from_mut(args)?;
        Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
    }
}

/// Write the completion script for `shell` (for the command `veer`).
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "veer", out);
}

/// When to colour output: logs, the diff, the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Only on a terminal, and not when `NO_COLOR` is set (a file or a pipe gets plain text).
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Colour or not, given whether the stream is a terminal (and `NO_COLOR` unset). Pure.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Auto => is_terminal,
            ColorChoice::Always => true,
            ColorChoice::Never => false,
        }
    }

    /// Colour `stream` or not: `auto` asks whether it is a terminal and honours `NO_COLOR`
    /// (<https://no-color.org>), so that logs redirected to a file carry no escape codes.
    pub fn for_stream(self, stream: &impl std::io::IsTerminal) -> bool {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        self.enabled(stream.is_terminal() && !no_color)
    }
}

/// `--dry-run` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRunMode {
    /// Plan only: no request that writes.
    Client,
    /// Send every write with `dryRun=All`: the server validates, nothing is stored.
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

impl Cli {
    /// The overrides the flags make to the configuration file.
    pub fn overrides(&self) -> Overrides {
        let none = SourceArgs::default();
        let source = match &self.command {
            Command::Validate(a) => &a.source,
            Command::Run(a) => &a.source,
            Command::Diff(a) => &a.source,
            Command::Sync(a) => &a.source,
            Command::Status(_)
            | Command::Rollout(_)
            | Command::DevCluster(_)
            | Command::SyntheticExporter(_)
            | Command::Demo(_)
            | Command::Completions(_) => &none,
        };
        let (interval, schedule, resync_interval) = match &self.command {
            Command::Run(a) => (
                a.interval.clone(),
                a.schedule.clone(),
                a.resync_interval.clone(),
            ),
            Command::Validate(_)
            | Command::Diff(_)
            | Command::Sync(_)
            | Command::Status(_)
            | Command::Rollout(_)
            | Command::DevCluster(_)
            | Command::SyntheticExporter(_)
            | Command::Demo(_)
            | Command::Completions(_) => (None, None, None),
        };
        let (prune, self_heal, force_conflicts) = match &self.command {
            Command::Run(a) => (a.prune, a.self_heal, a.force_conflicts),
            Command::Sync(a) => (a.prune, None, a.force_conflicts),
            Command::Diff(a) => (a.prune, None, None),
            Command::Validate(_)
            | Command::Status(_)
            | Command::Rollout(_)
            | Command::DevCluster(_)
            | Command::SyntheticExporter(_)
            | Command::Demo(_)
            | Command::Completions(_) => (None, None, None),
        };
        let prometheus_url = match &self.command {
            Command::Run(a) => a.prometheus_url.clone(),
            Command::Sync(a) => a.prometheus_url.clone(),
            Command::Validate(_)
            | Command::Diff(_)
            | Command::Status(_)
            | Command::Rollout(_)
            | Command::DevCluster(_)
            | Command::SyntheticExporter(_)
            | Command::Demo(_)
            | Command::Completions(_) => None,
        };
        let listen = match &self.command {
            Command::Run(a) => a.listen.clone(),
            Command::Validate(_)
            | Command::Diff(_)
            | Command::Sync(_)
            | Command::Status(_)
            | Command::Rollout(_)
            | Command::DevCluster(_)
            | Command::SyntheticExporter(_)
            | Command::Demo(_)
            | Command::Completions(_) => None,
        };
        let strict = match &self.command {
            Command::Validate(a) => a.strict,
            Command::Run(_)
            | Command::Diff(_)
            | Command::Sync(_)
            | Command::Status(_)
            | Command::Rollout(_)
            | Command::DevCluster(_)
            | Command::SyntheticExporter(_)
            | Command::Demo(_)
            | Command::Completions(_) => None,
        };
        Overrides {
            listen,
            strict,
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            state_namespace: self.state_namespace.clone(),
            prune,
            self_heal,
            force_conflicts,
            repo: source.repo.clone(),
            reference: source.reference.clone(),
            path: source.path.clone(),
            interval,
            schedule,
            resync_interval,
            cache_dir: source.cache_dir.clone(),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            default_namespace: source.default_namespace.clone(),
            prometheus_url,
            cache_root: Some(cache_root_from_env()),
        }
    }
}

/// The user's cache directory for veer, from `XDG_CACHE_HOME`, `HOME` or the temporary
/// directory (see [`config::default_cache_root`](crate::config::default_cache_root)).
fn cache_root_from_env() -> PathBuf {
    let var = |name| std::env::var_os(name).map(PathBuf::from);
    crate::config::default_cache_root(
        var("XDG_CACHE_HOME").as_deref(),
        var("HOME").as_deref(),
        &std::env::temp_dir(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "--resync-interval",
            "15m",
            "--log-format",
            "json",
        ]);
        let o = cli.overrides();
        assert_eq!(o.repo.as_deref(), Some("/r"));
        assert_eq!(o.reference.as_deref(), Some("tag:v1"));
        assert_eq!(o.interval.as_deref(), Some("5s"));
        assert_eq!(o.resync_interval.as_deref(), Some("15m"));
        assert_eq!(o.log_format, Some(LogFormat::Json));
    }

    #[test]
    fn prometheus_url_flag_for_run_and_sync() {
        for command in ["run", "sync"] {
            let o = Cli::parse_from(["veer", command, "--prometheus-url", "http://127.0.0.1:9090"])
                .overrides();
            assert_eq!(
                o.prometheus_url.as_deref(),
                Some("http://127.0.0.1:9090"),
                "{command}"
            );
            // The environment fallback is clap's: the flag names `VEER_PROMETHEUS_URL`.
            let cli = Cli::command();
            let env = cli
                .find_subcommand(command)
                .and_then(|c| c.get_arguments().find(|a| a.get_id() == "prometheus_url"))
                .and_then(|a| a.get_env());
            assert_eq!(
                env.and_then(|e| e.to_str()),
                Some("VEER_PROMETHEUS_URL"),
                "{command}"
            );
        }
        assert_eq!(
            Cli::parse_from(["veer", "run"]).overrides().prometheus_url,
            None
        );
        // The cache goes under the user's cache directory, never the working directory.
        let root = Cli::parse_from(["veer", "diff"]).overrides().cache_root;
        assert!(root.is_some_and(|r| r.is_absolute() && r.ends_with("veer")));
    }

    #[test]
    fn color_is_one_flag_for_every_command() {
        for args in [
            &["veer", "diff", "--color", "never"][..],
            &["veer", "--color", "never", "sync"],
            &["veer", "run", "--once", "--color=never"],
            &["veer", "demo", "--color", "never"],
        ] {
            assert_eq!(Cli::parse_from(args).color, ColorChoice::Never, "{args:?}");
        }
        assert_eq!(Cli::parse_from(["veer", "status"]).color, ColorChoice::Auto);
        // `auto` follows the stream; the others do not ask.
        assert!(ColorChoice::Auto.enabled(true) && !ColorChoice::Auto.enabled(false));
        assert!(ColorChoice::Always.enabled(false) && !ColorChoice::Never.enabled(true));
    }

    #[test]
    fn rollout_commands() {
        let cli = Cli::parse_from(["veer", "rollout", "status", "shop/reviews", "--watch"]);
        let Command::Rollout(RolloutCommand::Status(a)) = &cli.command else {
            panic!("not rollout status: {:?}", cli.command);
        };
        assert_eq!(a.rollout.as_deref(), Some("shop/reviews"));
        assert!(a.watch);
        // --watch needs a rollout.
        assert!(Cli::try_parse_from(["veer", "rollout", "status", "--watch"]).is_err());
        for verb in ["pause", "resume", "promote", "abort", "retry"] {
            let cli = Cli::parse_from(["veer", "rollout", verb, "shop/reviews"]);
            assert!(matches!(cli.command, Command::Rollout(_)), "{verb}");
            assert!(
                Cli::try_parse_from(["veer", "rollout", verb]).is_err(),
                "{verb}"
            );
        }
    }

    #[test]
    fn sync_flags() {
        type Case<'a> = (
            &'a [&'a str],
            Option<DryRunMode>,
            Option<bool>,
            Option<bool>,
        );
        let cases: [Case; 5] = [
            (&["veer", "sync"], None, None, None),
            (
                &["veer", "sync", "--dry-run"],
                Some(DryRunMode::Client),
                None,
                None,
            ),
            (
                &["veer", "sync", "--dry-run=server", "--prune=false"],
                Some(DryRunMode::Server),
                None,
                Some(false),
            ),
            (
                &["veer", "sync", "--force-conflicts", "--prune"],
                None,
                Some(true),
                Some(true),
            ),
            (
                &["veer", "--context", "c", "sync", "--force-conflicts=false"],
                None,
                Some(false),
                None,
            ),
        ];
        for (args, dry, force, prune) in cases {
            let cli = Cli::parse_from(args);
            let Command::Sync(s) = &cli.command else {
                panic!("{args:?} is not sync");
            };
            assert_eq!(
                (s.dry_run, s.force_conflicts, s.prune),
                (dry, force, prune),
                "{args:?}"
            );
            let o = cli.overrides();
            assert_eq!((o.force_conflicts, o.prune), (force, prune), "{args:?}");
        }
        let o =
            Cli::parse_from(["veer", "run", "--self-heal=false", "--kubeconfig", "/k"]).overrides();
        assert_eq!(o.self_heal, Some(false));
        assert_eq!(o.kubeconfig.as_deref(), Some(std::path::Path::new("/k")));
    }

    #[test]
    fn named_after_argv0() {
        let cases = [
            (None, "veer"),
            (Some("veer"), "veer"),
            (Some("/usr/local/bin/veer"), "veer"),
            (Some("/home/me/bin/kubectl-veer"), "kubectl veer"),
            (Some("kubectl-veer.exe"), "kubectl veer"),
            (Some("kubectl-veerx"), "veer"),
        ];
        for (argv0, name) in cases {
            assert_eq!(bin_name(argv0.map(Path::new)), name, "{argv0:?}");
        }
        let err = Cli::try_parse_args(["/bin/kubectl-veer", "nonsense"]).unwrap_err();
        assert!(
            err.render().to_string().contains("Usage: kubectl veer"),
            "{}",
            err.render()
        );
        let cli = Cli::try_parse_args(["kubectl-veer", "completions", "zsh"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Completions(CompletionsArgs {
                shell: clap_complete::Shell::Zsh
            })
        ));
    }
}
