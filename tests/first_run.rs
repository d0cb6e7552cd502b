//! A first try from a clone, as a user makes it with the real binary: `veer validate` and
//! `veer diff --repo <the clone>` leave the working tree clean (the git cache goes under
//! `$XDG_CACHE_HOME/veer`), and `--prometheus-url` / `VEER_PROMETHEUS_URL` reach the
//! configuration.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{Remote, service};

/// The binary run in `dir` with `XDG_CACHE_HOME=xdg`, no veer settings from the environment.
fn veer(args: &[&str], dir: &Path, xdg: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veer"));
    command
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", xdg)
        .env_remove("VEER_CONFIG")
        .env_remove("VEER_REPO")
        .env_remove("VEER_PATH")
        .env_remove("VEER_CACHE_DIR")
        .env_remove("VEER_PROMETHEUS_URL");
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run veer")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The clones under `<xdg>/veer/git/`, by directory name.
fn clones(xdg: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(xdg.join("veer").join("git")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.expect("a directory entry").file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn validate_and_diff_from_a_clone_leave_it_clean() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let remote = Remote::new(tmp.path(), "mesh");
    remote.write("prod/svc.yaml", &service("ratings"));
    remote.commit_and_push("add ratings");
    let xdg = tmp.path().join("xdg");
    let work = remote.work.to_str().expect("utf-8 path");

    let out = run(&mut veer(
        &["validate", "--repo", ".", "--path", "prod"],
        &remote.work,
        &xdg,
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(!remote.work.join(".veer-cache").exists());
    assert_eq!(remote.git(&["status", "--porcelain", "--ignored"]), "");
    let after_validate = clones(&xdg);
    assert_eq!(after_validate.len(), 1, "{after_validate:?}");
    assert!(after_validate[0].starts_with("repo-"), "{after_validate:?}");
    assert!(
        xdg.join("veer/git")
            .join(&after_validate[0])
            .join("HEAD")
            .is_file()
    );

    // `veer diff` needs a cluster: the embedded one, served from this process.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let cluster = runtime.block_on(support::devcluster::start());
    let (_kube_dir, kubeconfig) = support::devcluster::kubeconfig(&cluster);
    let out = run(&mut veer(
        &[
            "diff",
            "--repo",
            work,
            "--path",
            "prod",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8 path"),
        ],
        &remote.work,
        &xdg,
    ));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("ratings"), "{stdout}");
    assert!(!remote.work.join(".veer-cache").exists());
    assert_eq!(remote.git(&["status", "--porcelain", "--ignored"]), "");
    // A clone of its own, named after the repository, beside the first (another URL).
    let after_diff = clones(&xdg);
    assert_eq!(after_diff.len(), 2, "{after_diff:?}");
    assert!(
        after_diff.iter().any(|n| n.starts_with("mesh-")),
        "{after_diff:?}"
    );

    // An explicit `--cache-dir` is still obeyed.
    let explicit = tmp.path().join("explicit");
    let out = run(&mut veer(
        &[
            "validate",
            "--repo",
            work,
            "--path",
            "prod",
            "--cache-dir",
            explicit.to_str().expect("utf-8 path"),
        ],
        tmp.path(),
        &xdg,
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(explicit.join("HEAD").is_file());
    drop(cluster);
}

#[test]
fn prometheus_url_from_the_flag_or_the_environment_reaches_the_config() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let xdg = tmp.path().join("xdg");
    // A URL veer refuses shows that the value was read, without needing a cluster.
    let out = run(&mut veer(
        &[
            "run",
            "--once",
            "--repo",
            "/x",
            "--prometheus-url",
            "prom:9090",
        ],
        tmp.path(),
        &xdg,
    ));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("--prometheus-url: `analysis.prometheus.url`"),
        "{stderr}"
    );
    let out =
        run(veer(&["sync", "--repo", "/x"], tmp.path(), &xdg)
            .env("VEER_PROMETHEUS_URL", "prom:9090"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("--prometheus-url: `analysis.prometheus.url`"),
        "{stderr}"
    );
}
