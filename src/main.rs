//! The `veer` binary: parses the command line, resolves the configuration, sets up logging and
//! runs one command. The only place `anyhow` is used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use tracing::{error, info, warn};

use veer::cli::{Cli, Command, OutputFormat, RunArgs, ValidateArgs, exit};
use veer::config::{self, Config, LogFormat};
use veer::manifest::{self, ManifestSet, ParseCache};
use veer::source::{self, GitSource, PollOutcome, Poller};
use veer::validate::{self, Report};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
    // reqwest shares kube's rustls stack without choosing a crypto provider: choose it once.
    veer::analysis::install_crypto_provider();
    let config = load_config(&cli)?;
    init_logging(&config)?;
    match cli.command {
        Command::Validate(args) => validate_command(&config, &args),
        Command::Run(args) => run_command(&config, &args),
        Command::DevCluster(args) => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(veer::devcluster::run(&args))?;
            Ok(exit::OK)
        }
        Command::SyntheticExporter(args) => synthetic_exporter(&args),
    }
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
    let report = validate::validate(&set);
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

/// `veer run`: poll → validate, until stopped. Sync and rollouts build on this loop.
fn run_command(config: &Config, args: &RunArgs) -> Result<i32> {
    let Some(source_config) = &config.source else {
        bail!("no repository configured: set `source.url` in veer.yaml or pass `--repo URL`");
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let git = GitSource::open(source_config.spec.clone(), &config.cache_dir)?;
        let mut poller = Poller::with_options(
            git,
            source_config.schedule.clone(),
            source_config.timeout,
            config.read.clone(),
        );
        info!(url = %source_config.spec.url, reference = %source_config.spec.reference, "veer started");
        loop {
            let code = match poller.poll_once().await {
                PollOutcome::Unchanged { .. } => exit::OK,
                PollOutcome::Updated(loaded) => {
                    let report = validate::validate(&loaded.set);
                    let commit = loaded.revision.commit.short().to_string();
                    if report.is_ok() {
                        info!(
                            %commit,
                            objects = loaded.set.manifests.len(),
                            parsed_files = loaded.parsed_files,
                            changed_files = loaded.changed_files.len(),
                            warnings = report.warnings,
                            "revision accepted"
                        );
                        exit::OK
                    } else {
                        for d in &report.diagnostics {
                            warn!(%commit, "{d}");
                        }
                        error!(%commit, errors = report.errors, "revision rejected: nothing from it is applied");
                        exit::INVALID
                    }
                }
                PollOutcome::Failed { error, kept } => {
                    error!(%error, kept = ?kept.map(|c| c.short().to_string()), "poll failed; the last good revision stays in force");
                    exit::FAILURE
                }
            };
            if args.once {
                return Ok(code);
            }
            tokio::select! {
                () = poller.next_tick() => {}
                _ = tokio::signal::ctrl_c() => {
                    info!("stopping");
                    return Ok(exit::OK);
                }
            }
        }
    })
}
