//! The `veer` binary as a user runs it: exit codes, human and JSON output, config errors,
//! JSON logs, and a real git remote for `--repo` and `run --once`.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{GitDaemon, Remote, service};

fn veer(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(args)
        .current_dir(dir)
        .env_remove("VEER_CONFIG")
        .env_remove("VEER_REPO")
        .output()
        .expect("run veer")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const BAD_VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
      wieght: 100
";

#[test]
fn validate_example_repo_is_valid_and_shows_the_converted_policy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = veer(&["validate", "examples/reviews"], root);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("— valid"), "{stdout}");
    assert!(
        stdout.contains("converted to DestinationRule bookinfo/ratings-cb"),
        "{stdout}"
    );
    assert!(stdout.contains("http1MaxPendingRequests: 10"), "{stdout}");
    // README.md is excluded by .veerignore and is not YAML anyway; no error about it.
    assert!(!stdout.contains("README"), "{stdout}");
}

#[test]
fn invalid_directory_exits_1_with_file_line_and_fix() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("vs.yaml"), BAD_VS).unwrap();
    std::fs::write(tmp.path().join("svc.yaml"), service("reviews")).unwrap();
    let out = veer(&["validate", "."], tmp.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("error[unknown-field] vs.yaml:10:7: VirtualService default/reviews"),
        "{stdout}"
    );
    assert!(stdout.contains("fix: "), "{stdout}");
    assert!(stdout.contains("INVALID"), "{stdout}");

    let out = veer(&["validate", ".", "--output", "json"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"], 1);
    assert_eq!(json["diagnostics"][0]["file"], "vs.yaml");
    assert_eq!(json["diagnostics"][0]["line"], 10);
    assert_eq!(json["diagnostics"][0]["code"], "unknown-field");
}

/// The summary counts every object and every file read, those with errors too; a file whose
/// only object has typos counted 0 objects in 0 files.
#[test]
fn summary_counts_objects_with_errors_and_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("vs.yaml"), BAD_VS).unwrap();
    let out = veer(&["validate", "vs.yaml"], tmp.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("\n1 object in 1 file: 1 error, "),
        "{stdout}"
    );

    // A List of two, a file that is not YAML, an empty file and a Service.
    std::fs::write(
        tmp.path().join("list.yaml"),
        format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}\n",
            service("a").trim_end().replace('\n', "\n  "),
            service("b").trim_end().replace('\n', "\n  ")
        ),
    )
    .unwrap();
    std::fs::write(tmp.path().join("broken.yaml"), "a: [1\n").unwrap();
    std::fs::write(tmp.path().join("empty.yaml"), "# nothing yet\n").unwrap();
    std::fs::write(tmp.path().join("svc.yaml"), service("reviews")).unwrap();
    let out = veer(&["validate", "."], tmp.path());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("\n4 objects in 5 files: "), "{stdout}");
    let out = veer(&["validate", ".", "--output", "json"], tmp.path());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(
        (json["objects"].as_u64(), json["files"].as_u64()),
        (Some(4), Some(5))
    );
}

#[test]
fn config_errors_name_the_key_and_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("veer.yaml"),
        "source:\n  url: /srv/repo\n  interval: often\n",
    )
    .unwrap();
    let out = veer(&["run", "--once"], tmp.path());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("veer.yaml:3: `source.interval`"),
        "{stderr}"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = veer(&["validate"], &empty);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("nothing to validate"));

    let out = veer(
        &["run", "--once", "--repo", "/x", "--schedule", "*/5 * * * *"],
        &empty,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("seconds field"));
}

#[test]
fn repo_flag_and_run_once_against_a_git_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "mesh");
    remote.write("prod/svc.yaml", &service("ratings"));
    remote.write("prod/README.md", "not a manifest");
    let good = remote.commit_and_push("add ratings");
    let daemon = GitDaemon::start(&remote.base);
    let url = daemon.url("mesh");
    let cache = tmp.path().join("cache");
    let cache = cache.to_str().unwrap();

    let out = veer(
        &[
            "validate",
            "--repo",
            &url,
            "--path",
            "prod",
            "--cache-dir",
            cache,
        ],
        tmp.path(),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("revision {}", &good[..12])),
        "{stdout}"
    );
    assert!(stdout.contains("add ratings"), "{stdout}");

    // A bad commit: `run --once` rejects it (exit 1), logging JSON lines on stderr. `run`
    // reconciles, so it needs a cluster: the embedded one, served from this process.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let cluster = runtime.block_on(support::devcluster::start());
    let (_kube_dir, kubeconfig) = support::devcluster::kubeconfig(&cluster);
    remote.write("prod/vs.yaml", BAD_VS);
    remote.commit_and_push("typo");
    let out = veer(
        &[
            "run",
            "--once",
            "--repo",
            &url,
            "--path",
            "prod",
            "--cache-dir",
            cache,
            "--log-format",
            "json",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8 path"),
        ],
        tmp.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("revision rejected"))),
        "{stderr}"
    );
    assert!(stderr.contains("unknown-field"), "{stderr}");
}

/// `--strict` and `validation:` in veer.yaml: a file with only warnings passes, fails under
/// `--strict` (or `validation.strict`), and one check can be raised, kept or turned off.
#[test]
fn strict_and_severities_decide_the_exit_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let warned =
        std::fs::read_to_string(root.join("tests/fixtures/valid/dr-subset-without-labels.yaml"))
            .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("dr.yaml"), &warned).unwrap();
    let run = |args: &[&str], config: &str| {
        std::fs::write(tmp.path().join("veer.yaml"), config).unwrap();
        let out = veer(args, tmp.path());
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    let (code, stdout, _) = run(&["validate", "dr.yaml"], "");
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("warning[dr-subset-labels]"), "{stdout}");
    let (code, stdout, _) = run(&["validate", "dr.yaml", "--strict"], "");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("error[dr-subset-labels]"), "{stdout}");

    let strict = "validation:\n  strict: true\n";
    assert_eq!(run(&["validate", "dr.yaml"], strict).0, Some(1));
    assert_eq!(
        run(&["validate", "dr.yaml", "--strict=false"], strict).0,
        Some(0)
    );
    let raised = "validation:\n  severity:\n    dr-subset-labels: error\n";
    assert_eq!(run(&["validate", "dr.yaml"], raised).0, Some(1));
    let off = "validation:\n  severity:\n    dr-subset-labels: off\n";
    let (code, stdout, _) = run(&["validate", "dr.yaml"], off);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(!stdout.contains("dr-subset-labels"), "{stdout}");

    let typo = "validation:\n  severity:\n    dr-subset-lables: off\n";
    let (code, _, stderr) = run(&["validate", "dr.yaml"], typo);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("veer.yaml:3: `validation.severity.dr-subset-lables`")
            && stderr.contains("did you mean `dr-subset-labels`?"),
        "{stderr}"
    );
}
