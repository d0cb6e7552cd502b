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
    #[error("prometheus: cannot {what}{}: {source}", super::on(path.as_deref()))]
    Io {
        what: String,
        /// The file or directory it was about, if any.
        path: Option<PathBuf>,
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

/// Is an executable `prometheus` on PATH? Looks, without running anything (a fast check
/// before starting the rest; [`PrometheusServer::start`] reports a missing binary too).
pub fn require_binary() -> Result<(), PrometheusError> {
    use std::os::unix::fs::PermissionsExt;
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path_var).any(|dir| {
        std::fs::metadata(dir.join("prometheus"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    });
    if found {
        Ok(())
    } else {
        Err(PrometheusError::NotInstalled)
    }
}

/// A loopback port nothing listens on right now.
pub fn free_loopback_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
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
        let io = |what: &str, path: Option<&Path>| {
            let what = what.to_string();
            let path = path.map(Path::to_path_buf);
            move |source| PrometheusError::Io { what, path, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create its directory", Some(dir)))?;
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config(job, targets))
            .map_err(io("write", Some(&config_path)))?;
        let mut last = None;
        for _attempt in 0..3 {
            let port = free_loopback_port().map_err(io("find a free loopback port", None))?;
            let log = dir.join(format!("prometheus-{port}.log"));
            let log_file =
                std::fs::File::create(&log).map_err(io("create its log file", Some(&log)))?;
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
                .map_err(|source| match source.kind() {
                    std::io::ErrorKind::NotFound => PrometheusError::NotInstalled,
                    _ => io("start `prometheus` with", Some(&config_path))(source),
                })?;
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
        Err(PrometheusError::NotReady {
            log: log.display().to_string(),
            tail: super::log_tail(&log, 20),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
