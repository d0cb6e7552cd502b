//! `veer run`: the reconcile loop with the HTTP server, notifications and leader election, until
//! stopped (or one pass with `--once`, ending with its result line on stdout).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tracing::{error, info};

use veer::cli::{RunArgs, exit};
use veer::cluster;
use veer::config::Config;
use veer::controller;
use veer::source::{GitSource, Poller};
use veer::sync::WriteMode;

use super::{
    local_policies, loop_runtime, require_source, rollout_driver, start_controller, sync_options,
};

/// `veer run`: the reconcile loop until stopped (`--once`: one pass, exit as `veer sync`),
/// with the HTTP server, notifications and, with `--leader-elect`, only while leading.
pub(crate) fn run_command(config: &Config, args: &RunArgs) -> Result<i32> {
    let source_config = require_source(config)?;
    loop_runtime()?.block_on(async {
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
        let fetches = metrics.clone();
        let mut poller = Poller::with_options(
            git,
            source_config.schedule.clone(),
            source_config.timeout,
            config.read.clone(),
        )
        .on_fetch(Arc::new(move |took, failed| match failed {
            None => fetches.observe_git_fetch(took),
            Some(reason) => fetches.record_git_fetch_error(took, reason),
        }));
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
            // The log has each object; stdout gets the outcome, as `veer sync` ends with it.
            println!("{}", super::sync::result_line(&pass));
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
        veer::duration::parse(text)
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
