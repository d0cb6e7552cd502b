//! `veer demo`: the demo story on this machine, with its own logging and configuration.

use anyhow::{Context, Result};

use veer::cli::Cli;

use super::runtime;

/// `veer demo`: the story on this machine. Logs only warnings (the story is on stdout; veer
/// run's own log goes to a file in the demo directory).
pub(crate) fn demo_command(cli: &Cli, args: &veer::cli::DemoArgs) -> Result<i32> {
    let level = cli.log_level.as_deref().unwrap_or("warn");
    let filter = tracing_subscriber::EnvFilter::try_new(veer::log_filter::expand(level))
        .with_context(|| format!("invalid log level `{level}`"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(cli.color.for_stream(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let options = veer::demo::DemoOptions {
        keep_running: args.keep_running,
        color: cli.color.for_stream(&std::io::stdout()),
        dir: args.dir.clone(),
        exe: std::env::current_exe().context("cannot find the veer binary to run")?,
    };
    Ok(runtime()?.block_on(veer::demo::run(options))?)
}
