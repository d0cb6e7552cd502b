//! The commands of the `veer` binary, one module each, and the helpers they share: the async
//! runtime, the cluster connection, the state location, the controller and the rollout driver
//! as configured, the local manifests and rollout policies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tracing::warn;

use veer::cluster::{self, Cluster};
use veer::config::{Config, SourceConfig};
use veer::controller::rollouts::{GitRevert, RolloutDriver, RolloutOptions};
use veer::controller::{Controller, ControllerOptions};
use veer::manifest::{self, ManifestSet};
use veer::source;
use veer::sync::state::StateLocation;
use veer::sync::{SyncOptions, WriteMode};

pub(crate) mod completions;
pub(crate) mod demo;
pub(crate) mod dev_cluster;
pub(crate) mod diff;
mod plan;
pub(crate) mod rollout;
pub(crate) mod run;
pub(crate) mod status;
pub(crate) mod sync;
pub(crate) mod synthetic_exporter;
pub(crate) mod validate;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

/// `veer run`'s runtime ([`veer::controller::runtime::loop_runtime`]: one thread).
fn loop_runtime() -> Result<tokio::runtime::Runtime> {
    veer::controller::runtime::loop_runtime().context("cannot start the async runtime")
}

fn require_source(config: &Config) -> Result<&SourceConfig> {
    match &config.source {
        Some(s) => Ok(s),
        None => {
            bail!("no repository configured: set `source.url` in veer.yaml or pass `--repo URL`")
        }
    }
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
    Ok(Controller::start(cluster, state_location(config), options)
        .await?
        .with_severities(config.validation.clone())
        .with_resync_interval(config.sync.resync_interval))
}

fn sync_options(config: &Config, mode: WriteMode) -> SyncOptions {
    SyncOptions {
        force_conflicts: config.sync.force_conflicts,
        self_heal: config.sync.self_heal,
        mode,
        ..SyncOptions::default()
    }
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

/// The policies of `rollouts.policiesDir` (none without it); refused when any is invalid.
fn local_policies(config: &Config) -> Result<Vec<veer::rollout::RolloutPolicy>> {
    let Some(dir) = &config.rollouts.policies_dir else {
        return Ok(Vec::new());
    };
    let set = read_path(dir, config)?;
    let report = config.validation.apply(veer::validate::validate(&set));
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
            concurrency: RolloutOptions::DEFAULT_CONCURRENCY,
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
