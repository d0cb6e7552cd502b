//! The `veer` binary: parses the command line, resolves the configuration, sets up logging and
//! runs one command (one module each under `cmd`). The binary is the only place `anyhow` is used.
// The workspace's rule, for this crate's own code; its integration tests (tests/) may unwrap.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use veer::cli::{Cli, ColorChoice, Command, exit};
use veer::config::{self, Config, LogFormat};

// veer's allocator (why mimalloc: `veer::controller::memory`).
#[global_allocator]
static ALLOCATOR: veer::controller::memory::Allocator = veer::controller::memory::Allocator;

fn main() -> ExitCode {
    veer::controller::memory::configure();
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
        return Ok(cmd::completions::completions_command(args));
    }
    // reqwest shares kube's rustls stack without choosing a crypto provider: choose it once.
    veer::http_client::install_crypto_provider();
    if let Command::Demo(args) = &cli.command {
        // Its own configuration, whatever ./veer.yaml says: it must work from any directory.
        return cmd::demo::demo_command(&cli, args);
    }
    let config = load_config(&cli)?;
    let color = cli.color;
    init_logging(&config, color)?;
    match cli.command {
        Command::Validate(args) => cmd::validate::validate_command(&config, &args),
        Command::Run(args) => cmd::run::run_command(&config, &args),
        Command::Diff(args) => cmd::diff::diff_command(&config, &args, color),
        Command::Sync(args) => cmd::sync::sync_command(&config, &args, color),
        Command::Status(args) => cmd::status::status_command(&config, &args),
        Command::Rollout(command) => cmd::rollout::rollout_command(&config, &command),
        Command::DevCluster(args) => cmd::dev_cluster::dev_cluster_command(&args),
        Command::SyntheticExporter(args) => {
            cmd::synthetic_exporter::synthetic_exporter(&config, &args)
        }
        Command::Demo(_) | Command::Completions(_) => Ok(exit::OK),
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

/// Logs go to stderr, coloured only as `--color` says of stderr (plain in a file or a pipe).
fn init_logging(config: &Config, color: ColorChoice) -> Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(veer::log_filter::expand(&config.log_level))
            .with_context(|| format!("invalid log level `{}`", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color.for_stream(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
