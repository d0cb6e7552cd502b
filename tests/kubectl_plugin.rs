//! veer as a kubectl plugin and its shell completions, through the real binaries: the veer
//! binary symlinked as `kubectl-veer` in a temporary directory on PATH, run by Debian's kubectl
//! (`make deps` unpacks it into target/tools/).

#[path = "support/devcluster.rs"]
mod devcluster;

use std::path::Path;
use std::process::{Command, Output};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A directory holding `kubectl-veer` → the veer binary under test.
fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_veer"),
        dir.path().join(veer::cli::KUBECTL_PLUGIN_NAME),
    )
    .expect("symlink kubectl-veer");
    dir
}

fn kubectl(plugins: &Path, args: &[&str]) -> Output {
    // Only the plugin directory and the system's directories: no other kubectl-* plugin of
    // the machine can interfere.
    Command::new(devcluster::kubectl())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", format!("{}:/usr/bin:/bin", plugins.display()))
        .env("HOME", plugins)
        .env("KUBECONFIG", plugins.join("no-kubeconfig"))
        .env_remove("VEER_CONFIG")
        .output()
        .expect("kubectl runs")
}

#[test]
fn kubectl_runs_veer_as_a_plugin() {
    let dir = plugin_dir();

    let out = kubectl(dir.path(), &["veer", "--version"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout).trim(),
        format!("kubectl veer {}", env!("CARGO_PKG_VERSION"))
    );

    let out = kubectl(dir.path(), &["plugin", "list"]);
    assert!(
        text(&out.stdout).contains("kubectl-veer"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Help and usage errors name the command as the user typed it.
    let out = kubectl(dir.path(), &["veer", "--help"]);
    assert!(
        text(&out.stdout).contains("Usage: kubectl veer"),
        "{}",
        text(&out.stdout)
    );
    let out = kubectl(dir.path(), &["veer", "nonsense"]);
    assert_eq!(out.status.code(), Some(veer::cli::exit::FAILURE));
    assert!(
        text(&out.stderr).contains("Usage: kubectl veer"),
        "{}",
        text(&out.stderr)
    );

    // A real command, with its exit code passed through kubectl.
    let out = kubectl(dir.path(), &["veer", "validate", "examples/reviews"]);
    assert_eq!(
        out.status.code(),
        Some(veer::cli::exit::OK),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("— valid"),
        "{}",
        text(&out.stdout)
    );
}

fn completions(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(["completions", shell])
        // Completions need no configuration, even a broken one.
        .env("VEER_CONFIG", "/nonexistent/veer.yaml")
        .output()
        .expect("veer runs");
    assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    let bash = completions("bash");
    assert!(bash.contains("complete -F _veer"), "{bash}");
    for word in [
        "validate",
        "diff",
        "sync",
        "status",
        "run",
        "dev-cluster",
        "--kubeconfig",
    ] {
        assert!(bash.contains(word), "bash completes {word}");
    }
    // The script is valid bash, and defines the completion when sourced.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("veer.bash");
    std::fs::write(&script, &bash).expect("write the script");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p veer", script.display()))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success() && text(&out.stdout).contains("_veer"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let zsh = completions("zsh");
    assert!(zsh.starts_with("#compdef veer"), "{zsh}");
    assert!(zsh.contains("dev-cluster"), "{zsh}");
    let fish = completions("fish");
    assert!(fish.contains("complete -c veer"), "{fish}");
    assert!(fish.contains("dev-cluster"), "{fish}");
}
