//! veer itself in the demo: this very binary run as `veer run --config <demo dir>/veer.yaml`,
//! exactly what a user runs, as a child process logging to a file in the demo directory.
//! Stopped with SIGTERM (veer delivers its queued notifications and exits), killed if it
//! does not stop in time, and killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use super::DemoError;

/// How long `veer run` may take to exit after SIGTERM (it waits up to 5 s for notifications).
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// What the demo's veer.yaml points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeerSetup {
    pub repo: PathBuf,
    pub cache_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub listen: std::net::SocketAddr,
    pub prometheus_url: String,
    /// A file holding the Slack incoming-webhook URL (a secret, so never inline).
    pub slack_url_file: PathBuf,
}

/// A YAML (JSON-compatible) quoted string.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("'{text}'"))
}

fn path(p: &Path) -> String {
    quoted(&p.display().to_string())
}

/// The demo's veer.yaml: poll the demo's repository every second, sync into the embedded API
/// server, analyse with the demo's Prometheus, post to the demo's Slack receiver.
pub fn config_yaml(setup: &VeerSetup) -> String {
    format!(
        "# Written by `veer demo`: what `veer run` uses in the demo.\n\
         source:\n  url: {repo}\n  ref: main\n  interval: 1s\n\
         cacheDir: {cache}\n\
         cluster:\n  kubeconfig: {kubeconfig}\n  stateNamespace: veer\n\
         log:\n  level: info\n\
         server:\n  listen: {listen}\n\
         analysis:\n  prometheus:\n    url: {prometheus}\n    timeout: 2s\n\
         notify:\n  slack:\n    webhookUrl: {{file: {slack}}}\n    username: veer\n  timeout: 5s\n",
        repo = path(&setup.repo),
        cache = path(&setup.cache_dir),
        kubeconfig = path(&setup.kubeconfig),
        listen = quoted(&setup.listen.to_string()),
        prometheus = quoted(&setup.prometheus_url),
        slack = path(&setup.slack_url_file),
    )
}

pub struct VeerProcess {
    child: tokio::process::Child,
    pid: u32,
    log: PathBuf,
}

impl VeerProcess {
    /// Start `exe run --config config`, its logs (stderr) going to `log`. `VEER_*` variables
    /// of the demo's environment are not passed on: they would win over the demo's
    /// configuration (e.g. `VEER_KUBECONFIG` pointing at a real cluster).
    pub fn spawn(exe: &Path, config: &Path, log: &Path) -> Result<Self, DemoError> {
        let io = |what: &str, path: &Path| {
            let what = what.to_string();
            let path = Some(path.to_path_buf());
            move |source| DemoError::Io { what, path, source }
        };
        let log_file = std::fs::File::create(log).map_err(io("create veer's log file", log))?;
        let mut command = tokio::process::Command::new(exe);
        command
            .arg("run")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("VEER_") {
                command.env_remove(name);
            }
        }
        let child = command.spawn().map_err(io("start `veer run` with", exe))?;
        let pid = child.id().ok_or_else(|| DemoError::VeerExited {
            log: log.display().to_string(),
            tail: String::new(),
        })?;
        Ok(Self {
            child,
            pid,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The error to return when veer is not running any more; `None` while it runs.
    pub fn exited(&mut self) -> Option<DemoError> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(_)) | Err(_) => Some(DemoError::VeerExited {
                log: self.log.display().to_string(),
                tail: super::log_tail(&self.log, 20),
            }),
        }
    }

    /// SIGTERM, wait, and kill it if it does not stop in time.
    pub async fn stop(mut self) -> Option<ExitStatus> {
        if let Ok(pid) = i32::try_from(self.pid) {
            // SAFETY: kill(2) on our own child's pid, which cannot have been reused: the
            // child is not reaped until `wait` below.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(STOP_WITHIN, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = self.child.kill().await;
                self.child.wait().await.ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veer_controller::config::{self, Overrides};

    #[test]
    fn the_demo_config_is_valid_and_says_what_the_demo_runs() {
        let setup = VeerSetup {
            repo: "/tmp/veer demo/repo.git".into(),
            cache_dir: "/tmp/veer demo/cache".into(),
            kubeconfig: "/tmp/veer demo/kubeconfig".into(),
            listen: "127.0.0.1:4321".parse().unwrap(),
            prometheus_url: "http://127.0.0.1:9999".into(),
            slack_url_file: "/tmp/veer demo/slack-url".into(),
        };
        let text = config_yaml(&setup);
        let c = config::resolve(Some(("veer.yaml", &text)), &Overrides::default())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let source = c.source.unwrap();
        assert_eq!(source.spec.url.text, "/tmp/veer demo/repo.git");
        assert_eq!(
            source.schedule,
            veer_controller::source::Schedule::parse("1s").unwrap()
        );
        assert_eq!(
            c.cluster.kubeconfig.as_deref(),
            Some(Path::new("/tmp/veer demo/kubeconfig"))
        );
        assert_eq!(c.server.listen, setup.listen);
        assert_eq!(c.analysis.prometheus.unwrap().url, "http://127.0.0.1:9999");
        assert!(c.notify.slack.is_some());
    }
}
