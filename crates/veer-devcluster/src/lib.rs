//! veer's tooling for tests and the demo, kept out of the product library.
//!
//! `veer dev-cluster`: an embedded Kubernetes API server for tests, the demo and trying veer
//! without a cluster. Real HTTP (axum) on 127.0.0.1, the real REST protocol, objects in memory
//! (optionally kept in a state file across restarts). Not a production cluster: no
//! authentication, no admission webhooks, no kubelet (Deployments are marked available).
//!
//! Parts: `catalog` (which kinds are served, how their lists merge), `store` (objects,
//! versions, write rules), `numbers` (numbers as a real server stores them), `selector`,
//! `patch`, `status` (errors as `Status`), `openapi`, `table` (`kubectl get`'s server-side
//! columns), `api` (HTTP edge).
//!
//! `exporter`: the synthetic Istio metrics exporter (`veer synthetic-exporter`), whose traffic
//! follows the live VirtualServices, for Prometheus to scrape where no mesh runs.

mod api;
pub mod catalog;
pub mod exporter;
mod immutable;
mod numbers;
mod openapi;
pub mod patch;
pub mod selector;
pub mod status;
pub mod store;
pub mod table;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use api::RequestCounts;
pub use store::HOLD_ANNOTATION;

use clap::Args;

/// How to start a dev cluster.
#[derive(Debug, Clone)]
pub struct DevClusterOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Keep objects in this file across restarts (written shortly after each write and at
    /// shutdown, atomically).
    pub state_file: Option<PathBuf>,
    /// Changes kept for watch resumption; older resourceVersions get 410 Gone.
    pub history_limit: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
}

impl Default for DevClusterOptions {
    fn default() -> Self {
        Self {
            port: 0,
            state_file: None,
            history_limit: 10_000,
            bookmark_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevClusterError {
    #[error(
        "dev cluster: cannot listen on 127.0.0.1:{port}: {source} (pick another --port, or 0 for any free port)"
    )]
    Bind { port: u16, source: std::io::Error },
    #[error(
        "dev cluster: cannot read state file {path}: {reason} (fix or delete the file to start empty)"
    )]
    ReadState { path: PathBuf, reason: String },
    #[error(
        "dev cluster: cannot write state file {path}: {source} (check the directory exists and is writable)"
    )]
    WriteState {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "dev cluster: cannot write kubeconfig {path}: {source} (check the directory exists and is writable)"
    )]
    WriteKubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dev cluster: the server stopped with an error: {0}")]
    Serve(std::io::Error),
    #[error("dev cluster: cannot wait for Ctrl-C: {0}")]
    Signal(std::io::Error),
}

impl DevClusterError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            DevClusterError::Bind { .. } => "bind",
            DevClusterError::ReadState { .. } => "read_state",
            DevClusterError::WriteState { .. } => "write_state",
            DevClusterError::WriteKubeconfig { .. } => "write_kubeconfig",
            DevClusterError::Serve(_) => "serve",
            DevClusterError::Signal(_) => "signal",
        }
    }
}

/// The embedded API server.
pub struct DevCluster;

/// A started dev cluster. Dropping it without [`RunningCluster::shutdown`] stops serving
/// when the runtime ends, without a final state write.
pub struct RunningCluster {
    addr: SocketAddr,
    shared: Arc<api::Shared>,
    server: JoinHandle<Result<(), std::io::Error>>,
    persister: Option<JoinHandle<Result<(), DevClusterError>>>,
}

impl DevCluster {
    /// Bind 127.0.0.1:`port`, load the state file when there is one, and serve.
    pub async fn start(options: DevClusterOptions) -> Result<RunningCluster, DevClusterError> {
        let mut state = store::State::new(options.history_limit, api::now());
        if let Some(path) = &options.state_file {
            load_state(path, &mut state)?;
        }
        let (closing, _) = watch::channel(false);
        let shared = Arc::new(api::Shared {
            state: std::sync::Mutex::new(state),
            counters: api::Counters::default(),
            dirty: Notify::new(),
            closing,
            bookmark_interval: options.bookmark_interval,
        });
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)))
                .await
                .map_err(|source| DevClusterError::Bind {
                    port: options.port,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DevClusterError::Bind {
                port: options.port,
                source,
            })?;
        let app = api::router(shared.clone());
        let mut closed = shared.closing.subscribe();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = closed.wait_for(|c| *c).await;
                })
                .await
        });
        let persister = options
            .state_file
            .clone()
            .map(|path| tokio::spawn(persist(shared.clone(), path)));
        tracing::info!(%addr, "dev cluster listening");
        Ok(RunningCluster {
            addr,
            shared,
            server,
            persister,
        })
    }
}

impl RunningCluster {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for this server: plain HTTP on loopback, no credentials.
    pub fn kubeconfig(&self) -> String {
        format!(
            "# veer dev-cluster: an embedded, in-memory Kubernetes API server for tests and demos.\n\
             # Plain HTTP on loopback and no authentication: not a production cluster.\n\
             apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: veer-dev\n  cluster:\n    server: {url}\n\
             contexts:\n\
             - name: veer-dev\n  context:\n    cluster: veer-dev\n    user: veer-dev\n    namespace: default\n\
             current-context: veer-dev\n\
             users:\n\
             - name: veer-dev\n  user: {{}}\n\
             preferences: {{}}\n",
            url = self.url()
        )
    }

    /// Write [`RunningCluster::kubeconfig`] to `path` (atomically: readers never see half).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), DevClusterError> {
        write_atomically(path, self.kubeconfig().as_bytes()).map_err(|source| {
            DevClusterError::WriteKubeconfig {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Requests served so far, by verb.
    pub fn request_counts(&self) -> RequestCounts {
        self.shared.counters.snapshot()
    }

    /// Watches open right now.
    pub fn open_watches(&self) -> usize {
        self.shared.lock().watcher_count()
    }

    /// The latest resourceVersion issued.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().resource_version()
    }

    pub fn object_count(&self) -> usize {
        self.shared.lock().object_count()
    }

    /// Stop serving (open watches end), then write the state file one last time.
    pub async fn shutdown(self) -> Result<(), DevClusterError> {
        self.shared.closing.send_replace(true);
        let served = self.server.await;
        let persisted = match self.persister {
            Some(p) => p.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        if let Ok(Err(e)) = served {
            return Err(DevClusterError::Serve(e));
        }
        persisted
    }
}

fn load_state(path: &Path, state: &mut store::State) -> Result<(), DevClusterError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(DevClusterError::ReadState {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let snapshot: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| DevClusterError::ReadState {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    state
        .restore(&snapshot)
        .map_err(|e| DevClusterError::ReadState {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Write a file atomically: a temporary file beside it, then a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn write_state(path: &Path, snapshot: &serde_json::Value) -> Result<(), DevClusterError> {
    write_atomically(path, snapshot.to_string().as_bytes()).map_err(|source| {
        DevClusterError::WriteState {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Write the state file after writes (coalescing bursts) and once more at shutdown.
async fn persist(shared: Arc<api::Shared>, path: PathBuf) -> Result<(), DevClusterError> {
    let mut closing = shared.closing.subscribe();
    let mut written = shared.lock().resource_version();
    loop {
        let stop = tokio::select! {
            _ = shared.dirty.notified() => false,
            _ = closing.wait_for(|c| *c) => true,
        };
        if !stop {
            // Coalesce a burst of writes into one file write.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (rv, snapshot) = {
            let state = shared.lock();
            (state.resource_version(), state.snapshot())
        };
        if rv != written {
            let p = path.clone();
            tokio::task::spawn_blocking(move || write_state(&p, &snapshot))
                .await
                .unwrap_or(Ok(()))?;
            written = rv;
        }
        if stop {
            return Ok(());
        }
    }
}

/// `veer dev-cluster`: serve until Ctrl-C, with a kubeconfig written for kubectl and veer.
pub async fn run(args: &DevClusterArgs) -> Result<(), DevClusterError> {
    let mut signal_error = None;
    let stop = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            signal_error = Some(e);
        }
    };
    run_until(args, stop).await?;
    match signal_error {
        Some(e) => Err(DevClusterError::Signal(e)),
        None => Ok(()),
    }
}

/// [`run`] with the stop signal as an argument (tests stop it without a Ctrl-C).
pub async fn run_until(
    args: &DevClusterArgs,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), DevClusterError> {
    let cluster = DevCluster::start(DevClusterOptions {
        port: args.port,
        state_file: args.state.clone(),
        ..DevClusterOptions::default()
    })
    .await?;
    cluster.write_kubeconfig(&args.kubeconfig)?;
    println!(
        "dev cluster serving on {} (kubeconfig: {}); Ctrl-C to stop",
        cluster.url(),
        args.kubeconfig.display()
    );
    stop.await;
    cluster.shutdown().await
}

/// `veer dev-cluster`: an embedded Kubernetes API server for tests and demos.
#[derive(Debug, Clone, Args)]
pub struct DevClusterArgs {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, env = "VEER_DEV_CLUSTER_PORT", default_value_t = 6443)]
    pub port: u16,

    /// Write a kubeconfig for the server here (for kubectl and `veer --kubeconfig`).
    #[arg(
        long,
        env = "VEER_DEV_CLUSTER_KUBECONFIG",
        value_name = "FILE",
        default_value = "dev-cluster.kubeconfig"
    )]
    pub kubeconfig: PathBuf,

    /// Keep objects in this file across restarts.
    #[arg(long, env = "VEER_DEV_CLUSTER_STATE", value_name = "FILE")]
    pub state: Option<PathBuf>,
}
