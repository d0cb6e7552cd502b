//! Fetch, validate and plan one revision, and print the plan or the rejection: the pass that
//! `veer diff` and `veer sync` share.

use std::sync::Arc;

use anyhow::{Context, Result};

use veer::cli::{OutputFormat, exit};
use veer::config::{Config, SourceConfig};
use veer::controller::{self, Controller};
use veer::diff::render;
use veer::manifest::ParseCache;
use veer::source::{GitSource, LoadedRevision};
use veer::sync::SyncOptions;
use veer::validate::{self, Report};

use super::{connect, local_policies, require_source, rollout_driver, start_controller};

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
pub(super) async fn plan_revision(
    config: &Config,
    sync: SyncOptions,
    output: OutputFormat,
) -> Result<std::result::Result<(Controller, Arc<LoadedRevision>, controller::Planned), i32>> {
    let source = require_source(config)?;
    let loaded = fetch_revision(config, source).await?;
    let policies = local_policies(config)?;
    // The cluster's Services and ServiceEntries, as the controller validates with them (none
    // when they cannot be listed; a cluster that cannot be reached fails below, as before).
    let services = match connect(config).await {
        Ok(cluster) => cluster.services_for_validation().await,
        Err(_) => None,
    };
    let context = validate::ValidationContext {
        policies: &policies,
        cluster: services.as_ref(),
    };
    let report = config
        .validation
        .apply(validate::validate_with(&loaded.set, &context));
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

pub(super) fn print_plan(
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
