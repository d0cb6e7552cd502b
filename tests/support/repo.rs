//! A git repository of manifests, and the real `veer` binary run against it and a test
//! cluster as a user runs it (shared by the conformance and RBAC tests).
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use super::Remote;
use super::backend::TestCluster;

/// A git repository of manifests, and veer run against it and a cluster as a user runs it.
pub struct Repo {
    tmp: tempfile::TempDir,
    pub remote: Remote,
    /// Where veer keeps its state ConfigMap: one namespace per scenario.
    pub state_namespace: String,
}

impl Repo {
    pub fn new(state_namespace: &str) -> Self {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let remote = Remote::new(tmp.path(), "mesh");
        Repo {
            tmp,
            remote,
            state_namespace: state_namespace.to_string(),
        }
    }

    pub fn write(&self, path: &str, text: &str) {
        self.remote.write(path, text);
    }

    pub fn remove(&self, path: &str) {
        self.remote.remove(path);
    }

    pub fn commit(&self, message: &str) -> String {
        self.remote.commit_and_push(message)
    }

    /// `veer <args> --repo … --kubeconfig … --state-namespace …`.
    pub async fn veer(&self, cluster: &TestCluster, args: &[&str]) -> Output {
        self.veer_as(cluster.kubeconfig(), args).await
    }

    /// The same with another identity's kubeconfig (e.g. a ServiceAccount's token).
    pub async fn veer_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        self.command_as(kubeconfig, args)
            .output()
            .await
            .expect("veer runs")
    }

    /// The command [`Repo::veer`] runs, to start it and stop it (or kill it) yourself.
    pub fn command(&self, cluster: &TestCluster, args: &[&str]) -> tokio::process::Command {
        self.command_as(cluster.kubeconfig(), args)
    }

    fn command_as(&self, kubeconfig: &Path, args: &[&str]) -> tokio::process::Command {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if matches!(args[0], "diff" | "sync" | "run") {
            all.extend([
                "--repo".into(),
                self.remote.bare.display().to_string(),
                "--cache-dir".into(),
                self.tmp.path().join("cache").display().to_string(),
            ]);
        }
        all.extend([
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--state-namespace".into(),
            self.state_namespace.clone(),
        ]);
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_veer"));
        command
            .args(&all)
            .current_dir(self.tmp.path())
            .env_remove("VEER_CONFIG")
            .env_remove("VEER_REPO")
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        command
    }

    /// Run veer and require an exit code; returns stdout and stderr together.
    pub async fn expect(&self, cluster: &TestCluster, args: &[&str], code: i32) -> String {
        let out = self.veer(cluster, args).await;
        let text = show(&out);
        assert_eq!(
            out.status.code(),
            Some(code),
            "[{}] veer {args:?} exited {:?}, expected {code}:\n{text}",
            cluster.backend.name(),
            out.status.code()
        );
        text
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Copy a directory tree (an example repository) into a working tree.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read example dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The Namespaces an example creates (documents of kind Namespace in its YAML files).
pub fn namespaces_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let text = std::fs::read_to_string(&path).expect("read yaml");
                for doc in serde_saphyr::from_multiple::<Value>(&text).unwrap_or_default() {
                    if doc["kind"] == "Namespace" {
                        out.push(doc["metadata"]["name"].as_str().unwrap_or("").to_string());
                    }
                }
            }
        }
    }
    out
}
