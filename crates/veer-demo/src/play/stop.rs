//! The end of the demo: the `--keep-running` hint (with a kubectl to try) and stopping
//! everything the stage started, in order.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Stage;

/// kubectl for the `--keep-running` hint: Debian's from `make deps` beside this build
/// (`target/tools/…`, the binary being `target/debug/veer`), else one on PATH.
pub fn find_kubectl(exe: &Path, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("tools/kubernetes-client/usr/bin/kubectl"));
    let on_path = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("kubectl"));
    beside.into_iter().chain(on_path).find(|p| p.is_file())
}

impl Stage {
    /// With `--keep-running`: how to look around, then wait (the caller waits for Ctrl-C).
    pub fn print_keep_running(&self) {
        let paint = self.paint;
        println!();
        let header = "━━ Still running (--keep-running) ";
        println!(
            "{}",
            paint.bold(&format!(
                "{header}{}",
                "━".repeat(86 - header.chars().count())
            ))
        );
        let kubectl = find_kubectl(&self.exe, std::env::var_os("PATH").as_deref());
        let kubectl_text = kubectl
            .as_ref()
            .map_or_else(|| "kubectl".to_string(), |p| p.display().to_string());
        let config = self.kubeconfig.display();
        println!("  kubeconfig   {config}");
        println!("  try          {kubectl_text} --kubeconfig {config} get virtualservices -A");
        println!(
            "               {} --kubeconfig {config} rollout status",
            self.exe.display()
        );
        if kubectl.is_none() {
            println!(
                "               (no kubectl found: `make deps` puts Debian's in target/tools/)"
            );
        }
        println!("  status page  {}", paint.cyan(&self.status_url));
        println!("  veer's log   {}", self.dir.join("veer.log").display());
        println!("  Ctrl-C stops everything (the demo directory is kept).");
    }

    /// Stop everything that was started, in order (veer first: it still talks to the rest),
    /// and remove the temporary directory unless `keep`.
    pub async fn stop(mut self, keep: bool) {
        let mut stopped = Vec::new();
        if let Some(veer) = self.veer.take() {
            let pid = veer.pid();
            let ended = match veer.stop().await {
                Some(status) if status.success() => String::new(),
                Some(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => format!(", which exited with code {code}"),
                    (None, Some(signal)) => format!(", which ended on signal {signal}"),
                    (None, None) => format!(", which ended with {status}"),
                },
                None => ", whose exit status could not be read".to_string(),
            };
            stopped.push(format!("veer run (pid {pid}{ended})"));
        }
        let pid = self.prometheus.pid();
        self.prometheus.stop();
        stopped.push(format!("prometheus (pid {})", pid.unwrap_or(0)));
        self.exporter.take();
        self.slack.take();
        stopped.push("the exporter, the Slack receiver".to_string());
        if let Some(cluster) = self.cluster.take() {
            // Bounded: the demo must end even if a client keeps a connection open.
            let _ = tokio::time::timeout(Duration::from_secs(5), cluster.shutdown()).await;
            stopped.push("the API server".to_string());
        }
        println!("stopped {}", stopped.join(", "));
        match self.temp.take() {
            Some(t) if keep => {
                let path = t.keep();
                println!("kept the demo directory {}", path.display());
            }
            Some(t) => {
                let path = t.path().display().to_string();
                match t.close() {
                    Ok(()) => println!("removed {path}"),
                    Err(e) => println!("could not remove {path}: {e}"),
                }
            }
            None => println!("the demo directory {} is kept (--dir)", self.dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_beside_the_build_first_then_path() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("target/debug/veer");
        let tools = dir.path().join("target/tools/kubernetes-client/usr/bin");
        let on_path = dir.path().join("bin");
        std::fs::create_dir_all(&on_path).unwrap();
        std::fs::write(on_path.join("kubectl"), "").unwrap();
        let path_var = std::env::join_paths([&on_path]).unwrap();
        assert_eq!(
            find_kubectl(&exe, Some(&path_var)),
            Some(on_path.join("kubectl"))
        );
        std::fs::create_dir_all(&tools).unwrap();
        std::fs::write(tools.join("kubectl"), "").unwrap();
        assert_eq!(
            find_kubectl(&exe, Some(&path_var)),
            Some(tools.join("kubectl"))
        );
        assert_eq!(find_kubectl(Path::new("/nonexistent/veer"), None), None);
    }
}
