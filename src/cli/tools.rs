//! The arguments of the dev-tooling commands: `veer demo` and the hidden
//! `veer synthetic-exporter` (for tests and the demo).

use std::path::PathBuf;

use clap::Args;

/// `veer demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// After the story, keep everything running (for kubectl and the status page) until
    /// Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,

    /// Work in DIR (created if missing, kept afterwards) instead of a temporary directory
    /// (for tests).
    #[arg(long, hide = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `veer synthetic-exporter` (hidden; for tests and the demo): serve synthetic Istio metrics
/// for traffic that follows the live VirtualService weights.
#[derive(Debug, Clone, Args)]
pub struct SyntheticExporterArgs {
    /// Address to serve `/metrics` and `/control` on.
    #[arg(long, env = "VEER_EXPORTER_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,

    /// Requests per second each service receives, split across its subsets by weight.
    #[arg(long, env = "VEER_EXPORTER_RPS", default_value_t = 20.0)]
    pub requests_per_second: f64,

    /// Share (0 to 1) of each service's requests that carry the header or cookie of an A/B
    /// route, so they take that route while one is ahead of the catch-all.
    #[arg(long, env = "VEER_EXPORTER_MATCHED_SHARE", default_value_t = crate::exporter::DEFAULT_MATCHED_SHARE)]
    pub matched_share: f64,

    /// How often counters advance, in milliseconds.
    #[arg(long, env = "VEER_EXPORTER_TICK_MS", default_value_t = 100)]
    pub tick_ms: u64,

    /// Follow the VirtualServices of this namespace on the API server of the current
    /// kubeconfig. Without it (and without --all-namespaces) only weights set through
    /// `PUT /control/{namespace}/{service}` generate traffic.
    #[arg(long, env = "VEER_EXPORTER_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,

    /// Follow VirtualServices in every namespace.
    #[arg(long, conflicts_with = "namespace")]
    pub all_namespaces: bool,

    /// The networking.istio.io API version to watch.
    #[arg(long, default_value = "v1")]
    pub istio_api_version: String,
}
