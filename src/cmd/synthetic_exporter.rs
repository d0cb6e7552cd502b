//! `veer synthetic-exporter`: the test exporter of Istio-shaped metrics, served until Ctrl-C.

use anyhow::{Context, Result};
use tracing::info;

use veer::cli::exit;

/// `veer synthetic-exporter`: serve Istio-shaped metrics until Ctrl-C.
pub(crate) fn synthetic_exporter(
    config: &veer::config::Config,
    args: &veer::cli::SyntheticExporterArgs,
) -> Result<i32> {
    use veer::exporter::{Exporter, ExporterConfig, WatchConfig};
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let watch = if args.namespace.is_some() || args.all_namespaces {
            // The kubeconfig and context of `--kubeconfig`/`--context` (or veer.yaml), as
            // every other command.
            let client = veer::cluster::connect(
                config.cluster.kubeconfig.as_deref(),
                config.cluster.context.as_deref(),
            )
            .await
            .context("cannot reach the Kubernetes API server of the kubeconfig")?;
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
