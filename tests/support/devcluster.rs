//! Shared test helpers: start an embedded dev cluster, build a kube client for it, and find
//! Debian's kubectl (unpacked by `scripts/install-deps.sh` into `target/tools/`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use veer::devcluster::{DevCluster, DevClusterOptions, RunningCluster};

/// Start a dev cluster on an ephemeral port.
pub async fn start() -> RunningCluster {
    start_with(DevClusterOptions::default()).await
}

pub async fn start_with(options: DevClusterOptions) -> RunningCluster {
    DevCluster::start(options)
        .await
        .expect("the dev cluster starts on an ephemeral port")
}

/// A kube client talking to `cluster`, in namespace `default`.
pub fn client(cluster: &RunningCluster) -> kube::Client {
    let url: axum::http::Uri = cluster.url().parse().expect("the cluster URL parses");
    let config = kube::Config::new(url);
    kube::Client::try_from(config).expect("a kube client for the dev cluster")
}

/// Debian's kubectl (package kubernetes-client, 1.20). Fails the test, with the install
/// command, when it is missing: these tests never skip silently.
pub fn kubectl() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("target/tools/kubernetes-client/usr/bin/kubectl");
    assert!(
        path.is_file(),
        "Debian's kubectl is missing at {}: run `make deps` (scripts/install-deps.sh fetches \
         the kubernetes-client package with `apt-get download` and unpacks it there)",
        path.display()
    );
    path
}

/// A kubeconfig for `cluster` in a temporary directory (kept alive by the returned guard).
pub fn kubeconfig(cluster: &RunningCluster) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("kubeconfig");
    cluster
        .write_kubeconfig(&path)
        .expect("the kubeconfig is written");
    (dir, path)
}

/// Run kubectl against a kubeconfig, on a blocking thread so the server keeps serving.
pub async fn run_kubectl(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    run(config, args, stdin, &[]).await
}

/// Run kubectl with extra environment variables (e.g. `KUBE_EDITOR`).
pub async fn run_kubectl_env(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run(config, args, None, env).await
}

async fn run(config: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(kubectl());
    cmd.envs(env.iter().copied());
    cmd.env("KUBECONFIG", config)
        .env("HOME", config.parent().unwrap_or(Path::new("/tmp")))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::piped());
    let input = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().expect("kubectl starts");
        if let Some(input) = input {
            let mut pipe = child.stdin.take().expect("kubectl stdin");
            pipe.write_all(input.as_bytes())
                .expect("write kubectl stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("kubectl runs")
    })
    .await
    .expect("the kubectl thread finishes")
}

/// kubectl must succeed; returns stdout.
pub async fn kubectl_ok(config: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = run_kubectl(config, args, stdin).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
