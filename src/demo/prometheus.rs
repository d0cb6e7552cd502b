//! A real `prometheus` server for the demo and the tests: its own configuration scraping the
//! given targets every second, its own data directory under a directory the caller owns, a
//! free loopback port; killed on drop. A missing binary is an error saying how to install it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Prometheus may take to answer `/-/ready` (it usually takes well under a second).
const READY_WITHIN: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error(
        "`prometheus` is not on PATH: install it with `make deps` or `apt-get install prometheus`"
    )]
    NotInstalled,
    #[error("prometheus: cannot {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("prometheus did not become ready within {READY_WITHIN:?}; its log ({log}):\n{tail}")]
    NotReady { log: String, tail: String },
}

/// A running Prometheus.
#[derive(Debug)]
pub struct PrometheusServer {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
}

/// Is `prometheus` on PATH?
pub fn require_binary() -> Result<(), PrometheusError> {
    let found = Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(PrometheusError::NotInstalled)
    }
}

fn free_port() -> Result<u16, PrometheusError> {
    let io = |source| PrometheusError::Io {
        what: "find a free loopback port".into(),
        source,
    };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    Ok(listener.local_addr().map_err(io)?.port())
}

/// A plain HTTP/1.0 GET on loopback; the status code, or `None` when nothing answers.
pub fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// The configuration: scrape `targets` (`host:port`) every second as job `job`.
pub fn config(job: &str, targets: &[String]) -> String {
    let list = targets
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [{list}]\n"
    )
}

impl PrometheusServer {
    /// Start Prometheus with its configuration, data and log in `dir`, scraping `targets`
    /// every second as job `job`, and wait (blocking) until it is ready. Tries another port
    /// when the chosen one was taken meanwhile.
    pub fn start(dir: &Path, job: &str, targets: &[String]) -> Result<Self, PrometheusError> {
        require_binary()?;
        let io = |what: &str| {
            let what = what.to_string();
            move |source| PrometheusError::Io { what, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create its directory"))?;
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config(job, targets)).map_err(io("write prometheus.yml"))?;
        let mut last = None;
        for _attempt in 0..3 {
            let port = free_port()?;
            let log = dir.join(format!("prometheus-{port}.log"));
            let log_file = std::fs::File::create(&log).map_err(io("create its log file"))?;
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .map_err(io("start `prometheus`"))?;
            let mut server = Self {
                child: Some(child),
                port,
                log,
            };
            let deadline = Instant::now() + READY_WITHIN;
            while Instant::now() < deadline {
                if http_get_status(port, "/-/ready") == Some(200) {
                    return Ok(server);
                }
                if let Some(child) = server.child.as_mut()
                    && let Ok(Some(_)) = child.try_wait()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            server.stop();
            last = Some(server.log.clone());
        }
        let log = last.unwrap_or_default();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        Err(PrometheusError::NotReady {
            log: log.display().to_string(),
            tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Kill the server and wait for it, so its port refuses connections afterwards.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_scrapes_every_target_each_second() {
        let text = config("istio", &["127.0.0.1:1".into(), "127.0.0.1:2".into()]);
        assert!(text.contains("scrape_interval: 1s"), "{text}");
        assert!(text.contains("job_name: istio"), "{text}");
        assert!(
            text.contains("targets: ['127.0.0.1:1', '127.0.0.1:2']"),
            "{text}"
        );
    }
}
