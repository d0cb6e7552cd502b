//! The `veer` binary: parses the command line, resolves the configuration, sets up logging and
//! runs one command. The only place `anyhow` is used.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tracing::{error, info, warn};

use veer::cli::{
    Cli, Command, DiffArgs, DryRunMode, OutputFormat, RolloutCommand, RunArgs, StatusArgs,
    SyncArgs, ValidateArgs, exit,
};
use veer::cluster::{self, Cluster};
use veer::config::{self, Config, LogFormat, SourceConfig};
use veer::controller::rollouts::{GitRevert, RolloutDriver, RolloutOptions};
use veer::controller::{self, Controller, ControllerOptions, Pass, RejectedBy};
use veer::diff::render;
use veer::manifest::{self, ManifestSet, ParseCache};
use veer::source::{self, GitSource, LoadedRevision, Poller};
use veer::sync::state::{self as sync_state, StateLocation, SyncState};
use veer::sync::{SyncOptions, WriteMode};
use veer::validate::{self, Report};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::FAILURE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("veer: {e:#}");
            ExitCode::from(exit::FAILURE as u8)
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    if let Command::Completions(args) = &cli.command {
        // Needs no configuration: works before veer.yaml exists.
        veer::cli::write_completions(args.shell, &mut std::io::stdout().lock());
        return Ok(exit::OK);
    }
    // reqwest shares kube's rustls stack without choosing a crypto provider: choose it once.
    veer::http_client::install_crypto_provider();
    if let Command::Demo(args) = &cli.command {
        // Its own configuration, whatever ./veer.yaml says: it must work from any directory.
        return demo_command(&cli, args);
    }
    let config = load_config(&cli)?;
    init_logging(&config)?;
    match cli.command {
        Command::Validate(args) => validate_command(&config, &args),
        Command::Run(args) => run_command(&config, &args),
        Command::Diff(args) => diff_command(&config, &args),
        Command::Sync(args) => sync_command(&config, &args),
        Command::Status(args) => status_command(&config, &args),
        Command::Rollout(command) => rollout_command(&config, &command),
        Command::DevCluster(args) => {
            let runtime = runtime()?;
            runtime.block_on(veer::devcluster::run(&args))?;
            Ok(exit::OK)
        }
        Command::SyntheticExporter(args) => synthetic_exporter(&args),
        Command::Demo(_) | Command::Completions(_) => Ok(exit::OK),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

fn require_source(config: &Config) -> Result<&SourceConfig> {
    match &config.source {
        Some(s) => Ok(s),
        None => {
            bail!("no repository configured: set `source.url` in veer.yaml or pass `--repo URL`")
        }
    }
}

/// Fetch the followed ref and read its manifests (on a blocking thread).
async fn fetch_revision(config: &Config, source: &SourceConfig) -> Result<Arc<LoadedRevision>> {
    let spec = source.spec.clone();
    let cache_dir = config.cache_dir.clone();
    let read = config.read.clone();
    let timeout = source.timeout;
    let loaded = tokio::task::spawn_blocking(move || -> Result<LoadedRevision> {
        let mut git = GitSource::open(spec, &cache_dir)?;
        git.set_timeout(Some(timeout));
        let commit = git.fetch()?.commit().clone();
        let mut cache = ParseCache::default();
        Ok(git.load(&commit, &read, &mut cache)?)
    })
    .await
    .context("the git task failed")??;
    Ok(Arc::new(loaded))
}

fn state_location(config: &Config) -> StateLocation {
    StateLocation {
        namespace: config.cluster.state_namespace.clone(),
        name: config.cluster.state_name.clone(),
    }
}

async fn connect(config: &Config) -> Result<Cluster> {
    let client = cluster::connect(
        config.cluster.kubeconfig.as_deref(),
        config.cluster.context.as_deref(),
    )
    .await?;
    Ok(Cluster::new(client))
}

async fn start_controller(
    config: &Config,
    source: &SourceConfig,
    sync: SyncOptions,
) -> Result<Controller> {
    let cluster = connect(config).await?;
    let options = ControllerOptions {
        source_url: source.spec.url.text.clone(),
        prune: config.sync.prune,
        sync,
    };
    Ok(Controller::start(cluster, state_location(config), options).await?)
}

fn sync_options(config: &Config, mode: WriteMode) -> SyncOptions {
    SyncOptions {
        force_conflicts: config.sync.force_conflicts,
        self_heal: config.sync.self_heal,
        mode,
        ..SyncOptions::default()
    }
}

/// Print a rejected revision's diagnostics; the exit code for it.
fn print_rejection(loaded: &LoadedRevision, report: &Report, output: OutputFormat) -> i32 {
    match output {
        OutputFormat::Human => {
            print!("{}", report.render_human());
            println!(
                "revision {} is INVALID ({} error{}): nothing from it may be applied",
                loaded.revision.commit.short(),
                report.errors,
                if report.errors == 1 { "" } else { "s" }
            );
        }
        OutputFormat::Json => print!("{}", report.render_json()),
    }
    exit::INVALID
}

/// Fetch, validate and plan: the plan (or the exit code of a rejected revision).
async fn plan_revision(
    config: &Config,
    sync: SyncOptions,
    output: OutputFormat,
) -> Result<std::result::Result<(Controller, Arc<LoadedRevision>, controller::Planned), i32>> {
    let source = require_source(config)?;
    let loaded = fetch_revision(config, source).await?;
    let policies = local_policies(config)?;
    let report = validate::validate_with_policies(&loaded.set, &policies);
    if !report.is_ok() {
        return Ok(Err(print_rejection(&loaded, &report, output)));
    }
    // Rollouts are known here too: a one-pass diff or sync never reports or undoes the weights
    // a running rollout owns (`veer sync` also advances rollouts by one pass).
    let mut controller = start_controller(config, source, sync)
        .await?
        .with_rollouts({
            let metrics = Arc::new(veer::metrics::Metrics::new());
            let notifications = veer::notify::Notifications::start(&config.notify, metrics.clone())
                .context("cannot start notifications")?;
            rollout_driver(config, policies, metrics, Arc::new(notifications))?
        });
    controller.load_rollouts().await?;
    let planned = controller.plan(&loaded).await?;
    Ok(Ok((controller, loaded, planned)))
}

fn print_plan(
    loaded: &LoadedRevision,
    plan: &veer::diff::Plan,
    output: OutputFormat,
    color: bool,
) -> Result<()> {
    match output {
        OutputFormat::Human => {
            println!(
                "revision {} ({})",
                loaded.revision.commit.short(),
                loaded.revision.summary
            );
            print!("{}", render::human(plan, color)?);
        }
        OutputFormat::Json => print!("{}", render::json(plan)?),
    }
    Ok(())
}

/// `veer diff`: one pass, print the plan; exit 2 when there are differences.
fn diff_command(config: &Config, args: &DiffArgs) -> Result<i32> {
    runtime()?.block_on(async {
        let planned =
            plan_revision(config, sync_options(config, WriteMode::Apply), args.output).await?;
        let (_, loaded, planned) = match planned {
            Ok(p) => p,
            Err(code) => return Ok(code),
        };
        let color = args.color.enabled(std::io::stdout().is_terminal());
        print_plan(&loaded, &planned.plan, args.output, color)?;
        Ok(if planned.plan.has_changes() {
            exit::DIFFERENCES
        } else {
            exit::OK
        })
    })
}

/// `veer sync`: one pass; per-object results and a summary.
fn sync_command(config: &Config, args: &SyncArgs) -> Result<i32> {
    let mode = match args.dry_run {
        Some(DryRunMode::Server) => WriteMode::ServerDryRun,
        Some(DryRunMode::Client) | None => WriteMode::Apply,
    };
    runtime()?.block_on(async {
        let planned = plan_revision(config, sync_options(config, mode), args.output).await?;
        let (mut controller, loaded, planned) = match planned {
            Ok(p) => p,
            Err(code) => return Ok(code),
        };
        if args.dry_run == Some(DryRunMode::Client) {
            let color = args.color.enabled(std::io::stdout().is_terminal());
            print_plan(&loaded, &planned.plan, args.output, color)?;
            return Ok(if planned.plan.has_changes() {
                exit::DIFFERENCES
            } else {
                exit::OK
            });
        }
        let pass = controller.reconcile(&loaded, chrono::Utc::now()).await?;
        print_pass(
            &loaded,
            &pass,
            controller.rejected_revision().map(|(_, report)| report),
            args.output,
        );
        let code = controller::exit_code(&pass);
        Ok(match (&pass, mode) {
            (Pass::Synced { .. }, WriteMode::ServerDryRun) if code == exit::OK => exit::DIFFERENCES,
            _ => code,
        })
    })
}

fn print_pass(
    loaded: &LoadedRevision,
    pass: &Pass,
    rejection: Option<&Report>,
    output: OutputFormat,
) {
    let commit = loaded.revision.commit.short();
    match output {
        OutputFormat::Human => match pass {
            Pass::Synced { report, .. } => {
                println!("revision {commit} ({})", loaded.revision.summary);
                print!("{}", report.human());
            }
            Pass::InSync { .. } => println!("revision {commit}: in sync, nothing to do"),
            Pass::DriftReported { objects, .. } => {
                for o in objects {
                    println!("{o}: drift reported, not healed (selfHeal is off)");
                }
                println!("revision {commit}: {} drifted, left alone", objects.len());
            }
            Pass::Rejected { errors, by, .. } => {
                if let Some(report) = rejection {
                    print!("{}", report.render_human());
                }
                match by {
                    RejectedBy::Validation => {
                        println!("revision {commit} is INVALID ({errors} errors): nothing applied");
                    }
                    RejectedBy::Server => println!(
                        "revision {commit} was REFUSED by the API server's dry run ({errors} object{}): nothing from it was written",
                        if *errors == 1 { "" } else { "s" }
                    ),
                }
            }
            Pass::NoRevision => println!("no valid revision loaded"),
            Pass::Failed { message } => println!("sync failed: {message}"),
        },
        OutputFormat::Json => {
            let value = match pass {
                Pass::Synced { report, .. } => serde_json::json!({
                    "revision": loaded.revision.commit.0, "result": "synced",
                    "mode": report.mode, "objects": report.objects, "summary": report.summary(),
                }),
                Pass::InSync { .. } => {
                    serde_json::json!({"revision": loaded.revision.commit.0, "result": "inSync"})
                }
                Pass::DriftReported { objects, .. } => serde_json::json!({
                    "revision": loaded.revision.commit.0, "result": "driftReported",
                    "drift": objects.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }),
                Pass::Rejected { errors, by, .. } => serde_json::json!({
                    "revision": loaded.revision.commit.0, "result": "rejected",
                    "by": match by {
                        RejectedBy::Validation => "validation",
                        RejectedBy::Server => "server",
                    },
                    "errors": errors,
                    "diagnostics": rejection.map(|r| r.diagnostics.clone()).unwrap_or_default(),
                }),
                Pass::NoRevision => serde_json::json!({"result": "noRevision"}),
                Pass::Failed { message } => {
                    serde_json::json!({"result": "failed", "message": message})
                }
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
    }
}

/// `veer status`: what veer last recorded in the cluster.
fn status_command(config: &Config, args: &StatusArgs) -> Result<i32> {
    runtime()?.block_on(async {
        let cluster = connect(config).await?;
        let at = state_location(config);
        let state = sync_state::read(cluster.client(), &at).await?;
        match args.output {
            OutputFormat::Human => match &state {
                Some(s) => print!("{}", status_human(s)),
                None => println!(
                    "veer has recorded nothing in {}/{} yet: no sync has run against this cluster",
                    at.namespace, at.name
                ),
            },
            OutputFormat::Json => {
                let value = match &state {
                    Some(s) => {
                        serde_json::json!({"recorded": true, "state": s, "counts": counts(s)})
                    }
                    None => serde_json::json!({"recorded": false}),
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            }
        }
        Ok(exit::OK)
    })
}

fn counts(state: &SyncState) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for o in &state.objects {
        *counts.entry(o.result.clone()).or_insert(0) += 1;
    }
    counts
}

fn status_human(s: &SyncState) -> String {
    let mut out = String::new();
    let line = |out: &mut String, label: &str, value: String| {
        out.push_str(&format!("{label:<11}{value}\n"));
    };
    match &s.revision {
        Some(r) => line(
            &mut out,
            "revision",
            format!("{} ({}) by {}", r.commit, r.summary, r.author),
        ),
        None => line(&mut out, "revision", "none applied yet".into()),
    }
    if let Some(o) = s.outcome {
        line(
            &mut out,
            "outcome",
            match o {
                sync_state::RevisionOutcome::Applied => "applied".into(),
                sync_state::RevisionOutcome::PartiallyApplied => {
                    "PARTIALLY applied: some objects failed".into()
                }
            },
        );
    }
    if let Some(at) = &s.applied_at {
        line(&mut out, "applied at", at.clone());
    }
    let counts = counts(s)
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    line(
        &mut out,
        "objects",
        format!("{} in inventory ({counts})", s.inventory().len()),
    );
    for o in s.objects.iter().filter(|o| o.result == "failed") {
        line(
            &mut out,
            "failed",
            format!(
                "{} {}: {}",
                o.key(),
                o.code.map(|c| c.to_string()).unwrap_or_default(),
                o.message.clone().unwrap_or_default()
            ),
        );
    }
    for d in &s.drift {
        line(&mut out, "drift", format!("{d} (selfHeal is off)"));
    }
    if let Some(r) = &s.rejected {
        line(
            &mut out,
            "rejected",
            format!(
                "{} ({}): {} errors, at {}",
                r.commit, r.summary, r.errors, r.at
            ),
        );
    }
    if let Some(e) = &s.last_error {
        line(
            &mut out,
            "last error",
            format!("{} (at {})", e.message, e.at),
        );
    }
    if let Some(at) = &s.updated_at {
        line(&mut out, "updated at", at.clone());
    }
    out
}

fn load_config(cli: &Cli) -> Result<Config> {
    let path = match &cli.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from("veer.yaml")).filter(|p| p.is_file()),
    };
    let text = match &path {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config file {}", p.display()))?,
        ),
        None => None,
    };
    let name = path.as_ref().map(|p| p.display().to_string());
    let file = name.as_deref().zip(text.as_deref());
    Ok(config::resolve(file, &cli.overrides())?)
}

fn init_logging(config: &Config) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .with_context(|| format!("invalid log level `{}`", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// `veer demo`: the story on this machine. Logs only warnings (the story is on stdout; veer
/// run's own log goes to a file in the demo directory).
fn demo_command(cli: &Cli, args: &veer::cli::DemoArgs) -> Result<i32> {
    let level = cli.log_level.as_deref().unwrap_or("warn");
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .with_context(|| format!("invalid log level `{level}`"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let options = veer::demo::DemoOptions {
        keep_running: args.keep_running,
        color: args.color.enabled(std::io::stdout().is_terminal()),
        dir: args.dir.clone(),
        exe: std::env::current_exe().context("cannot find the veer binary to run")?,
    };
    Ok(runtime()?.block_on(veer::demo::run(options))?)
}

/// `veer synthetic-exporter`: serve Istio-shaped metrics until Ctrl-C.
fn synthetic_exporter(args: &veer::cli::SyntheticExporterArgs) -> Result<i32> {
    use veer::exporter::{Exporter, ExporterConfig, WatchConfig};
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let watch = if args.namespace.is_some() || args.all_namespaces {
            let client = kube::Client::try_default()
                .await
                .context("cannot reach the Kubernetes API server of the current kubeconfig")?;
            Some(WatchConfig {
                client,
                namespace: args.namespace.clone(),
                api_version: args.istio_api_version.clone(),
            })
        } else {
            None
        };
        let exporter = Exporter::start(ExporterConfig {
            listen: args.listen,
            requests_per_second: args.requests_per_second,
            matched_share: args.matched_share,
            tick: std::time::Duration::from_millis(args.tick_ms),
            watch,
        })
        .await?;
        info!(addr = %exporter.addr(), "synthetic Istio metrics exporter serving /metrics and /control");
        exporter
            .run_until(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        Ok(exit::OK)
    })
}

/// `veer validate [PATH] [--repo URL --ref REF]`.
fn validate_command(config: &Config, args: &ValidateArgs) -> Result<i32> {
    let set = match (&args.dir, &config.source) {
        (Some(dir), _) => read_path(dir, config)?,
        (None, Some(source)) => {
            let mut git = GitSource::open(source.spec.clone(), &config.cache_dir)?;
            git.set_timeout(Some(source.timeout));
            let commit = git.fetch()?.commit().clone();
            let mut cache = ParseCache::default();
            let loaded = git.load(&commit, &config.read, &mut cache)?;
            if args.output == OutputFormat::Human {
                println!(
                    "revision {} ({})",
                    loaded.revision.commit.short(),
                    loaded.revision.summary
                );
            }
            loaded.set
        }
        (None, None) => {
            bail!(
                "nothing to validate: give a directory (`veer validate DIR`) or a repository (`--repo URL`)"
            )
        }
    };
    let report = validate::validate_with_policies(&set, &local_policies(config)?);
    match args.output {
        OutputFormat::Human => print!("{}", human_output(&set, &report)),
        OutputFormat::Json => print!("{}", json_output(&set, &report)),
    }
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::INVALID
    })
}

fn read_path(path: &Path, config: &Config) -> Result<ManifestSet> {
    if path.is_file() {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut set = ManifestSet::default();
        set.extend(&manifest::parse_file(
            &path.display().to_string(),
            &bytes,
            &config.read,
        ));
        return Ok(set);
    }
    Ok(source::read_local(path, &config.read)?)
}

/// Diagnostics, then converted legacy objects, then a one-line verdict.
fn human_output(set: &ManifestSet, report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        out.push_str(&d.to_string());
        out.push('\n');
    }
    for m in set.manifests.iter().filter(|m| m.converted_from.is_some()) {
        if let Some(from) = &m.converted_from {
            out.push_str(&format!(
                "\n# {from} ({}:{}) converted to {}:\n---\n",
                m.file, m.line, m.key
            ));
            out.push_str(&serde_saphyr::to_string(&m.value).unwrap_or_default());
        }
    }
    let files = set
        .manifests
        .iter()
        .map(|m| m.file.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    out.push_str(&format!(
        "\n{} objects in {files} files: {} error{}, {} warning{} — {}\n",
        set.manifests.len(),
        report.errors,
        if report.errors == 1 { "" } else { "s" },
        report.warnings,
        if report.warnings == 1 { "" } else { "s" },
        if report.is_ok() {
            "valid"
        } else {
            "INVALID: nothing from this revision may be applied"
        },
    ));
    out
}

fn json_output(set: &ManifestSet, report: &Report) -> String {
    let converted: Vec<_> = set
        .manifests
        .iter()
        .filter_map(|m| {
            m.converted_from.as_ref().map(|from| {
                serde_json::json!({"from": from, "file": m.file, "line": m.line, "object": m.value})
            })
        })
        .collect();
    let value = serde_json::json!({
        "valid": report.is_ok(),
        "objects": set.manifests.len(),
        "errors": report.errors,
        "warnings": report.warnings,
        "diagnostics": report.diagnostics,
        "converted": converted,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

/// `veer rollout status|pause|resume|promote|abort|retry`.
fn rollout_command(config: &Config, command: &RolloutCommand) -> Result<i32> {
    use veer::controller::rollouts::{self as r, RolloutId};
    use veer::rollout::{Command as Op, Phase};
    let parse = |text: &str| {
        RolloutId::parse(text)
            .with_context(|| format!("`{text}` is not NAMESPACE/NAME of a VirtualService"))
    };
    let ns = config.cluster.state_namespace.clone();
    runtime()?.block_on(async {
        let cluster = connect(config).await?;
        let client = cluster.client();
        let (target, op) = match command {
            RolloutCommand::Status(args) => {
                let Some(text) = &args.rollout else {
                    let all = r::list_rollouts(client, &ns).await?;
                    match args.output {
                        OutputFormat::Json => {
                            let value: Vec<serde_json::Value> = all
                                .iter()
                                .map(|(id, state, policy)| serde_json::json!({"rollout": id.to_string(), "policy": policy, "state": state}))
                                .collect();
                            println!("{}", serde_json::to_string_pretty(&value)?);
                        }
                        OutputFormat::Human if all.is_empty() => println!("no rollouts"),
                        OutputFormat::Human => {
                            for (id, state, policy) in &all {
                                print!("{}", r::render_status(id, state, policy));
                            }
                        }
                    }
                    return Ok(exit::OK);
                };
                let id = parse(text)?;
                let mut last = String::new();
                loop {
                    let Some((state, _, policy)) = r::read_rollout(client, &ns, &id).await? else {
                        eprintln!("veer: no rollout of {id} (state namespace {ns})");
                        return Ok(exit::FAILURE);
                    };
                    let text = match args.output {
                        OutputFormat::Human => r::render_status(&id, &state, &policy),
                        OutputFormat::Json => serde_json::to_string_pretty(&state)? + "\n",
                    };
                    if text != last {
                        if args.watch && std::io::stdout().is_terminal() {
                            print!("\x1b[2J\x1b[H");
                        }
                        print!("{text}");
                        last = text;
                    }
                    let code = match state.phase {
                        Phase::Failed => exit::ROLLOUT_FAILED,
                        Phase::Queued
                        | Phase::WaitingForHealth
                        | Phase::PreRollout
                        | Phase::Mirroring
                        | Phase::Matching
                        | Phase::FaultTesting
                        | Phase::Progressing
                        | Phase::Paused
                        | Phase::AwaitingPromotion
                        | Phase::Promoting
                        | Phase::Succeeded
                        | Phase::RollingBack => exit::OK,
                    };
                    if !args.watch || state.phase.is_terminal() {
                        return Ok(code);
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
            RolloutCommand::Pause(t) => (t, Op::Pause),
            RolloutCommand::Resume(t) => (t, Op::Resume),
            RolloutCommand::Promote(t) => (t, Op::Promote),
            RolloutCommand::Abort(t) => (t, Op::Abort),
            RolloutCommand::Retry(t) => (t, Op::Retry),
        };
        let id = parse(&target.rollout)?;
        match r::send_command(client, &ns, &id, op).await? {
            Some(sent) => {
                println!(
                    "{} sent to {id} (command {}); veer applies it at its next pass",
                    op.as_str(),
                    sent.id
                );
                Ok(exit::OK)
            }
            None => {
                eprintln!("veer: no rollout of {id} (state namespace {ns})");
                Ok(exit::FAILURE)
            }
        }
    })
}

/// The policies of `rollouts.policiesDir` (none without it); refused when any is invalid.
fn local_policies(config: &Config) -> Result<Vec<veer::rollout::RolloutPolicy>> {
    let Some(dir) = &config.rollouts.policies_dir else {
        return Ok(Vec::new());
    };
    let set = read_path(dir, config)?;
    let report = validate::validate(&set);
    if !report.is_ok() {
        for d in &report.diagnostics {
            warn!("{d}");
        }
        bail!("the rollout policies in {} are invalid", dir.display());
    }
    Ok(set
        .manifests
        .iter()
        .filter_map(|m| veer::manifest::policy::rollout_policy(m).cloned())
        .collect())
}

/// The rollout driver as configured: Prometheus, the policies directory's `policies`, the
/// concurrency cap, notifications.
fn rollout_driver(
    config: &Config,
    policies: Vec<veer::rollout::RolloutPolicy>,
    metrics: Arc<veer::metrics::Metrics>,
    notifications: Arc<veer::notify::Notifications>,
) -> Result<RolloutDriver> {
    let mut driver = RolloutDriver::new(
        RolloutOptions {
            state_namespace: config.cluster.state_namespace.clone(),
            max_concurrent: config.rollouts.max_concurrent,
            policies,
        },
        metrics,
    )?
    .with_notifications(notifications);
    if let Some(source) = &config.source {
        // A revert is pushed from a cache repository of its own, beside the poller's.
        driver = driver.with_revert(Arc::new(GitRevert::new(
            source.spec.clone(),
            PathBuf::from(format!("{}-revert", config.cache_dir.display())),
        )));
    }
    if let Some(p) = &config.analysis.prometheus {
        let provider = veer::analysis::Prometheus::new(p.clone())
            .context("cannot set up the Prometheus client")?;
        driver = driver.with_provider(Arc::new(provider));
    }
    Ok(driver)
}

/// `veer run`: the reconcile loop until stopped (`--once`: one pass, exit as `veer sync`),
/// with the HTTP server, notifications and, with `--leader-elect`, only while leading.
fn run_command(config: &Config, args: &RunArgs) -> Result<i32> {
    let source_config = require_source(config)?;
    runtime()?.block_on(async {
        // Open files: the soft limit raised to the hard one, the HTTP server kept to its share.
        let limits = veer::server::budget::at_start(&config.server);
        let metrics = Arc::new(veer::metrics::Metrics::new());
        let notifications = Arc::new(
            veer::notify::Notifications::start(&config.notify, metrics.clone())
                .context("cannot start notifications")?,
        );
        let board = veer::server::StatusBoard::new();
        board.set_source(veer::server::TrackedSource::from(&source_config.spec));
        let (trigger_tx, trigger_rx) = veer::server::trigger_channel();
        // The server runs on standbys too: they answer /healthz and show the page.
        let server = if args.once {
            None
        } else {
            let state = veer::server::ServerState::from_config(
                config,
                metrics.clone(),
                board.clone(),
                trigger_tx,
            );
            let server =
                veer::server::Server::start_with(config.server.listen, state, limits).await?;
            info!(addr = %server.local_addr(), "HTTP server: / (status), /healthz, /readyz, /metrics, /hooks/git");
            Some(server)
        };
        let mut leader = match args.leader_elect {
            true => Some(elect_leader(config, args).await?),
            false => None,
        };

        let git = GitSource::open(source_config.spec.clone(), &config.cache_dir)?;
        let mut poller = Poller::with_options(
            git,
            source_config.schedule.clone(),
            source_config.timeout,
            config.read.clone(),
        );
        let mut controller = start_controller(
            config,
            source_config,
            sync_options(config, WriteMode::Apply),
        )
        .await?
        .with_rollouts(rollout_driver(
            config,
            local_policies(config)?,
            metrics.clone(),
            notifications.clone(),
        )?);
        // /readyz: not ready once the API has been unreachable too long, as the watches see it.
        board.set_contact(controller.cluster().contact());
        info!(url = %source_config.spec.url, reference = %source_config.spec.reference, "veer started");
        let observers = controller::observers::Observers {
            board: Some(board),
            metrics: Some(metrics),
            notifications: Some(notifications.clone()),
        };
        let code = if args.once {
            let started = std::time::Instant::now();
            let poll = poller.poll_once().await;
            let pass = controller.handle(poll, chrono::Utc::now()).await;
            observers.after_pass(&controller, &pass, started.elapsed(), chrono::Utc::now());
            controller::exit_code(&pass)
        } else {
            let lost = async {
                match leader.as_mut() {
                    Some(l) => Some(l.lost().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = controller::run_loop(&mut controller, &mut poller, &observers, Some(trigger_rx), shutdown_signal()) => exit::OK,
                Some(e) = lost => {
                    error!(error = %e, "stopping: not the leader any more");
                    exit::FAILURE
                }
            }
        };
        // Deliver what is queued, give the lease up (a standby takes over at once), stop serving.
        drop(controller);
        drop(observers);
        if let Ok(n) = Arc::try_unwrap(notifications) {
            n.shutdown(std::time::Duration::from_secs(5)).await;
        }
        if let Some(l) = leader {
            l.release().await;
        }
        if let Some(s) = server {
            let _ = s.shutdown().await;
        }
        Ok(code)
    })
}

/// Wait until this replica holds the leader Lease.
async fn elect_leader(config: &Config, args: &RunArgs) -> Result<veer::leader::LeaderElection> {
    let duration = |flag: &str, text: &str| {
        veer::validate::duration::parse(text)
            .map_err(|e| anyhow::anyhow!("{flag}: {e}; write a duration like 15s"))
    };
    let mut lease = veer::leader::LeaderConfig::new(
        args.leader_election_namespace
            .clone()
            .unwrap_or_else(|| config.cluster.state_namespace.clone()),
    );
    lease.name = args.leader_election_lease.clone();
    lease.duration = duration(
        "--leader-election-lease-duration",
        &args.leader_election_lease_duration,
    )?;
    lease.grace = duration(
        "--leader-election-renew-period",
        &args.leader_election_renew_period,
    )?;
    let client = cluster::connect(
        config.cluster.kubeconfig.as_deref(),
        config.cluster.context.as_deref(),
    )
    .await?;
    let mut election = veer::leader::LeaderElection::start(client, &lease).await?;
    info!(identity = %election.identity(), "waiting to become the leader");
    tokio::select! {
        r = election.acquired() => r?,
        () = shutdown_signal() => bail!("stopped before becoming the leader"),
    }
    Ok(election)
}

/// Ctrl-C, or SIGTERM as Kubernetes sends it; logged, as it ends the process.
async fn shutdown_signal() {
    veer::shutdown::signal().await;
    info!("stopping");
}
