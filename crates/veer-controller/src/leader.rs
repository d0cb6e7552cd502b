//! Leader election on a `coordination.k8s.io/v1` Lease, so that several veer replicas can run
//! and only one writes. The lease mechanics (acquire, renew before expiry, take over an expired
//! lease, release on shutdown) are `kube-lease-manager`'s; this module names the lease, picks
//! the identity and turns the lock state into two awaitable events: became leader, lost it.

use std::time::Duration;

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Where the lease lives and how long it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity in the lease (`holderIdentity`).
    pub identity: String,
    /// How long a lease is held without renewal; a standby takes over after it expires.
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub grace: Duration,
}

impl LeaderConfig {
    /// Defaults: lease `veer-leader`, 15 s, renewed 5 s before expiry; identity from
    /// `VEER_POD_NAME` (the Helm chart sets it) or the host name, plus a random suffix so two
    /// processes on one host never share it.
    pub fn new(namespace: impl Into<String>) -> Self {
        let host = std::env::var("VEER_POD_NAME")
            .or_else(|_| std::env::var("POD_NAME"))
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "veer".to_string());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        LeaderConfig {
            namespace: namespace.into(),
            name: "veer-leader".to_string(),
            identity: format!("{host}-{}", &suffix[..8]),
            duration: Duration::from_secs(15),
            grace: Duration::from_secs(5),
        }
    }
}

/// Why leader election could not run.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(
        "cannot use the leader election lease {namespace}/{name}: {source}; check that veer may get, create and update Leases there"
    )]
    Lease {
        namespace: String,
        name: String,
        #[source]
        source: LeaseManagerError,
    },
    #[error(
        "leader election stopped: {reason}; veer stops writing and exits so that a standby takes over"
    )]
    Stopped { reason: String },
}

impl LeaderError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            LeaderError::Lease { .. } => "lease",
            LeaderError::Stopped { .. } => "stopped",
        }
    }
}

/// A running election. Dropping it releases the lease (the manager's task sees the channel
/// close and gives the lock up), so a standby takes over at once on a clean shutdown.
pub struct LeaderElection {
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
    identity: String,
}

impl LeaderElection {
    pub async fn start(client: kube::Client, config: &LeaderConfig) -> Result<Self, LeaderError> {
        let lease_error = |source| LeaderError::Lease {
            namespace: config.namespace.clone(),
            name: config.name.clone(),
            source,
        };
        let manager = LeaseManagerBuilder::new(client, &config.name)
            .with_namespace(&config.namespace)
            .with_identity(&config.identity)
            .with_duration(config.duration.as_secs().max(1))
            .with_grace(config.grace.as_secs().max(1))
            .with_field_manager("veer")
            .build()
            .await
            .map_err(lease_error)?;
        let (state, task) = manager.watch().await;
        info!(identity = %config.identity, lease = %format!("{}/{}", config.namespace, config.name), "leader election started");
        Ok(LeaderElection {
            state,
            task,
            identity: config.identity.clone(),
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Wait until this replica holds the lease.
    pub async fn acquired(&mut self) -> Result<(), LeaderError> {
        self.wait_for(true).await?;
        info!(identity = %self.identity, "became the leader");
        Ok(())
    }

    /// Wait until this replica no longer holds the lease (or the election stops). Always an
    /// error: a replica that lost the lease must stop writing.
    pub async fn lost(&mut self) -> LeaderError {
        match self.wait_for(false).await {
            Ok(()) => {
                warn!(identity = %self.identity, "lost the leader lease");
                LeaderError::Stopped {
                    reason: "another replica holds the lease now".to_string(),
                }
            }
            Err(e) => e,
        }
    }

    async fn wait_for(&mut self, leader: bool) -> Result<(), LeaderError> {
        self.state
            .wait_for(|is_leader| *is_leader == leader)
            .await
            .map(|_| ())
            .map_err(|_| LeaderError::Stopped {
                reason: "the lease manager ended".to_string(),
            })
    }

    /// Give the lease up now and wait until it is released.
    pub async fn release(self) {
        let LeaderElection { state, task, .. } = self;
        drop(state);
        if let Err(e) = task.await {
            warn!(error = %e, "lease manager task ended badly");
        }
    }
}
