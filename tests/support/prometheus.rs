//! A real `prometheus` server for the analysis and server tests: `veer::demo::prometheus` (the
//! one the demo runs) in a temporary directory removed on drop. A missing binary fails the
//! test with the install command, never skips it.
#![allow(dead_code)]

use veer::demo::prometheus::PrometheusServer as Server;

pub struct PrometheusServer {
    server: Server,
    pub port: u16,
    // Declared after the server: dropped (removed) once the process is gone.
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `targets` (`host:port`) every second and waits until it is
    /// ready.
    pub fn start(targets: &[String]) -> Self {
        Self::start_job("istio-synthetic", targets)
    }

    /// As [`PrometheusServer::start`], naming the scrape job (the `job` label).
    pub fn start_job(job: &str, targets: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let server = Server::start(dir.path(), job, targets).unwrap_or_else(|e| panic!("{e}"));
        PrometheusServer {
            port: server.port,
            server,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Kills the server and waits for it, so its port refuses connections afterwards.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}
