//! Starting the demo's stage: the API server, exporter, Prometheus, Slack receiver, the git
//! repository and `veer run` (waited on until it answers), and the lines saying where each
//! one is.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{MATCHED_SHARE, POLL, REQUESTS_PER_SECOND, Stage, cluster_error, io};
use crate::prometheus::PrometheusServer;
use crate::render::{Paint, header_row};
use crate::repo::DemoRepo;
use crate::slack::SlackReceiver;
use crate::veer::{VeerProcess, VeerSetup};
use crate::{DemoError, DemoOptions};
use veer_controller::analysis::{Prometheus, PrometheusConfig};
use veer_devcluster::exporter::{Exporter, ExporterConfig, WatchConfig};
use veer_devcluster::{DevCluster, DevClusterOptions};

impl Stage {
    /// Start the API server, exporter, Prometheus, Slack receiver, the repository and `veer
    /// run`, and print where each is. On an error, what had started is stopped and the
    /// temporary demo directory is kept (the error may point at veer's log in it).
    pub async fn start(options: &DemoOptions) -> Result<Stage, DemoError> {
        let started = Instant::now();
        crate::prometheus::require_binary()?;
        let (temp, dir) = match &options.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(io("create the demo directory", Some(d)))?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("veer-demo-")
                    .tempdir()
                    .map_err(io(
                        "create a temporary directory in",
                        Some(&std::env::temp_dir()),
                    ))?;
                let path = t.path().to_path_buf();
                (Some(t), path)
            }
        };
        match Self::start_in(options, started, dir, temp.is_some()).await {
            Ok(mut stage) => {
                stage.temp = temp;
                Ok(stage)
            }
            Err(e) => {
                if let Some(t) = temp {
                    println!("kept the demo directory {}", t.keep().display());
                }
                Err(e)
            }
        }
    }

    /// [`Stage::start`] in `dir`, which is temporary when `temporary` (the caller owns it).
    async fn start_in(
        options: &DemoOptions,
        started: Instant,
        dir: PathBuf,
        temporary: bool,
    ) -> Result<Stage, DemoError> {
        let paint = Paint {
            color: options.color,
        };
        println!(
            "{}",
            paint.bold(
                "veer demo: git → validate → diff → sync → canary with Prometheus analysis → Slack, on this machine"
            )
        );
        println!();

        let cluster = DevCluster::start(DevClusterOptions::default()).await?;
        let kubeconfig = dir.join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig)?;
        let url: axum::http::Uri =
            cluster
                .url()
                .parse()
                .map_err(|e: axum::http::uri::InvalidUri| {
                    cluster_error("use the API server's URL")(e.to_string())
                })?;
        let client = kube::Client::try_from(kube::Config::new(url))
            .map_err(|e| cluster_error("make a client for the API server")(e.to_string()))?;

        let exporter = Exporter::start(ExporterConfig {
            watch: Some(WatchConfig {
                client: client.clone(),
                namespace: None,
                api_version: "v1".to_string(),
            }),
            matched_share: MATCHED_SHARE,
            ..ExporterConfig::local(REQUESTS_PER_SECOND)
        })
        .await?;

        let prometheus_dir = dir.join("prometheus");
        let target = exporter.target();
        let prometheus = tokio::task::spawn_blocking(move || {
            PrometheusServer::start(&prometheus_dir, "istio-synthetic", &[target])
        })
        .await
        .map_err(|e| DemoError::Io {
            what: "start prometheus".into(),
            path: None,
            source: std::io::Error::other(e.to_string()),
        })??;
        let mut prometheus_config = PrometheusConfig::new(&prometheus.url());
        prometheus_config.timeout = Duration::from_secs(2);
        let metrics = Prometheus::new(prometheus_config)?;

        let (tx, slack_messages) = mpsc::unbounded_channel();
        let slack = SlackReceiver::start(tx)
            .await
            .map_err(io("start the Slack receiver", None))?;
        let slack_url_file = dir.join("slack-webhook-url");
        std::fs::write(&slack_url_file, slack.url())
            .map_err(io("write the Slack URL file", Some(&slack_url_file)))?;

        let repo = DemoRepo::create(&dir)?;
        let port = crate::prometheus::free_loopback_port()
            .map_err(io("find a free loopback port for `veer run`", None))?;
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        let config = dir.join("veer.yaml");
        std::fs::write(
            &config,
            crate::veer::config_yaml(&VeerSetup {
                repo: repo.bare().to_path_buf(),
                cache_dir: dir.join("cache"),
                kubeconfig: kubeconfig.clone(),
                listen,
                prometheus_url: prometheus.url(),
                slack_url_file,
            }),
        )
        .map_err(io("write", Some(&config)))?;
        let mut veer = VeerProcess::spawn(&options.exe, &config, &dir.join("veer.log"))?;
        wait_healthy(&mut veer, listen).await?;
        let status_url = format!("http://{listen}/");

        let row = |label: &str, text: String| println!("{}", header_row(label, &text, paint));
        row(
            "API server",
            format!("{} (embedded, in memory)", cluster.url()),
        );
        row("kubeconfig", kubeconfig.display().to_string());
        row(
            "exporter",
            format!(
                "http://{}/metrics (synthetic Istio traffic, {REQUESTS_PER_SECOND} requests/s per service, following the live weights)",
                exporter.addr()
            ),
        );
        row(
            "prometheus",
            format!(
                "{} (pid {}, scraping the exporter every second)",
                prometheus.url(),
                prometheus.pid().unwrap_or(0)
            ),
        );
        row(
            "slack",
            format!("{} (what veer posts is printed as [slack])", slack.url()),
        );
        row(
            "git",
            format!(
                "{} (branch main; veer polls it every second)",
                repo.bare().display()
            ),
        );
        row(
            "veer run",
            format!(
                "pid {}, --config {}, log {}",
                veer.pid(),
                config.display(),
                veer.log().display()
            ),
        );
        row("status page", paint.cyan(&status_url));
        row(
            "demo dir",
            format!(
                "{} ({})",
                dir.display(),
                match (temporary, options.keep_running) {
                    (false, _) => "given with --dir: kept",
                    (true, true) => "kept: --keep-running",
                    (true, false) => "removed at the end",
                }
            ),
        );
        Ok(Stage {
            paint,
            started,
            dir,
            // Set by the caller, which keeps it on an error.
            temp: None,
            exe: options.exe.clone(),
            cluster: Some(cluster),
            client,
            exporter: Some(exporter),
            prometheus,
            metrics,
            slack: Some(slack),
            slack_messages,
            slack_count: 0,
            veer: Some(veer),
            repo,
            status_url,
            kubeconfig,
            rules: Vec::new(),
            revert: None,
            applied: None,
            act_started_at: chrono::Utc::now(),
        })
    }
}

/// Wait until `veer run` answers `/healthz` (it serves before its first pass).
async fn wait_healthy(veer: &mut VeerProcess, listen: SocketAddr) -> Result<(), DemoError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(e) = veer.exited() {
            return Err(e);
        }
        let port = listen.port();
        let status = tokio::task::spawn_blocking(move || {
            crate::prometheus::http_get_status(port, "/healthz")
        })
        .await
        .ok()
        .flatten();
        if status == Some(200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(DemoError::Timeout {
                what: "`veer run` answering /healthz".to_string(),
                seconds: 30,
                log: veer.log().display().to_string(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
