//! A real `prometheus` server for the analysis and server tests: its own config scraping the given
//! targets every second, its own data directory, a free loopback port; stopped on drop.
//! Missing binary fails the test with the install command, never skips it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrometheusServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn binary() -> PathBuf {
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "these tests need a `prometheus` server binary on PATH: install it with \
         `apt-get install prometheus` (or `make deps`)"
    );
    PathBuf::from("prometheus")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    listener.local_addr().expect("local address").port()
}

/// A plain HTTP/1.0 GET on loopback; returns the status code, or None when nothing answers.
pub fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

impl PrometheusServer {
    /// Starts Prometheus scraping `targets` (`host:port`) every second and waits until it is
    /// ready. Retries on another port if the chosen one was taken in the meantime.
    pub fn start(targets: &[String]) -> Self {
        Self::start_job("istio-synthetic", targets)
    }

    /// As [`PrometheusServer::start`], naming the scrape job (the `job` label).
    pub fn start_job(job: &str, targets: &[String]) -> Self {
        let bin = binary();
        let mut dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("prometheus.yml");
        let target_list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{target_list}]\n"
            ),
        )
        .expect("write prometheus.yml");
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log_path = dir.path().join(format!("prometheus-{port}.log"));
            let log = std::fs::File::create(&log_path).expect("create prometheus log");
            let child = Command::new(&bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start prometheus");
            let mut server = Self {
                child: Some(child),
                dir,
                port,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if http_get_status(port, "/-/ready") == Some(200) {
                    return server;
                }
                if let Some(child) = server.child.as_mut()
                    && let Ok(Some(_)) = child.try_wait()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            server.stop();
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
            dir = std::mem::replace(&mut server.dir, tempfile::tempdir().expect("tempdir"));
        }
        panic!("prometheus did not become ready; its log:\n{last_log}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits for it, so its port refuses connections afterwards.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.stop();
    }
}
