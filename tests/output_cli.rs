//! Output that respects where it goes, as a user sees it: the real binary on a terminal (a pty
//! from util-linux `script`) and redirected to pipes and files, against the embedded API
//! server. Logs are coloured only on a terminal or with `--color always`; `veer sync` names
//! each object once; `veer run --once` ends with a result line; an unreachable cluster is named
//! as the first thing to check.
//!
//! Owns the golden transcripts `tests/fixtures/output/*.txt` (timestamps, commits and paths
//! masked, escape codes written `\e`); `UPDATE_GOLDEN=1 cargo test --test output_cli` rewrites
//! them.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};

use support::backend::TestCluster;
use support::repo::{Repo, show};

const ESC: &str = "\x1b[";

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: shop\ndata:\n  mode: {value}\n"
    )
}

/// The objects of [`repository`], as result and log lines name them.
const OBJECTS: [&str; 3] = [
    "Namespace shop",
    "ConfigMap shop/settings",
    "ConfigMap shop/features",
];

/// A repository of a namespace and two ConfigMaps; the commit.
fn repository() -> (Repo, String) {
    let repo = Repo::new("veer");
    repo.write("ns.yaml", NAMESPACE);
    repo.write("settings.yaml", &config_map("settings", "fast"));
    repo.write("features.yaml", &config_map("features", "all"));
    let commit = repo.commit("first");
    (repo, commit)
}

/// veer as [`Repo`] runs it, without the colour and log settings of the test's environment.
fn command(repo: &Repo, cluster: &TestCluster, args: &[&str]) -> tokio::process::Command {
    let mut command = repo.command(cluster, args);
    for name in [
        "NO_COLOR",
        "VEER_COLOR",
        "VEER_LOG_LEVEL",
        "VEER_LOG_FORMAT",
    ] {
        command.env_remove(name);
    }
    command
}

async fn redirected(mut command: tokio::process::Command) -> Output {
    command.stdin(Stdio::null());
    command.output().await.expect("veer runs")
}

/// `command` on a terminal: run under `script`, which gives it a pty for stdout and stderr
/// (`shell_tail`, e.g. `2>FILE`, redirects part of it). The transcript is the stdout of the
/// result, with the pty's `\r\n` as `\n`.
async fn on_terminal(command: tokio::process::Command, shell_tail: &str) -> Output {
    let std = command.as_std();
    let mut line: Vec<String> = std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|a| quote(&a.to_string_lossy()))
        .collect();
    line.push(shell_tail.to_string());
    let mut script = tokio::process::Command::new("script");
    script
        .args(["-qfec", &line.join(" "), "/dev/null"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (name, value) in std.get_envs() {
        match value {
            Some(v) => script.env(name, v),
            None => script.env_remove(name),
        };
    }
    if let Some(dir) = std.get_current_dir() {
        script.current_dir(dir);
    }
    let mut out = script.output().await.unwrap_or_else(|e| {
        panic!(
            "cannot run `script` for a pty: {e}; install util-linux (`apt-get install util-linux`)"
        )
    });
    out.stdout = text(&out.stdout).replace("\r\n", "\n").into_bytes();
    out
}

/// A word for `sh -c`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines of `text` that name `object` (followed by `:`, a space, `"` or the line's end, so
/// `Namespace shop` does not count `Namespace shop-2`).
fn lines_naming<'t>(text: &'t str, object: &str) -> Vec<&'t str> {
    text.lines()
        .filter(|line| {
            line.match_indices(object).any(|(at, _)| {
                matches!(
                    line[at + object.len()..].chars().next(),
                    None | Some(':' | ' ' | '"')
                )
            })
        })
        .collect()
}

/// Mask what changes from run to run: timestamps, the commits, temporary paths; and show
/// escape codes as `\e`.
fn normalise(text: &str, commits: &[&str], paths: &[&Path]) -> String {
    let mut out = text.replace('\x1b', r"\e");
    for commit in commits {
        out = out
            .replace(commit, "<commit>")
            .replace(&commit[..12], "<commit>");
    }
    for path in paths {
        out = out.replace(&path.display().to_string(), "<dir>");
    }
    out.lines().map(mask_time).collect::<Vec<_>>().join("\n") + "\n"
}

/// A line with its RFC 3339 timestamp (`2026-01-02T03:04:05.123456Z`) as `<time>`.
fn mask_time(line: &str) -> String {
    let bytes = line.as_bytes();
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    for start in 0..bytes.len() {
        let shaped = (0..4).all(|i| digit(start + i))
            && bytes.get(start + 4) == Some(&b'-')
            && bytes.get(start + 10) == Some(&b'T');
        if shaped && let Some(len) = line[start..].find('Z').filter(|&n| n < 40) {
            return format!("{}<time>{}", &line[..start], &line[start + len + 1..]);
        }
    }
    line.to_string()
}

/// Compare `actual` with `tests/fixtures/output/<name>` (`UPDATE_GOLDEN=1` rewrites it).
fn golden(name: &str, actual: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/output");
    veer_testkit::golden(&dir.join(name), actual);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_names_each_object_once_on_a_terminal_and_in_a_file() {
    let cluster = TestCluster::embedded().await;
    let (repo, first) = repository();

    // On a terminal: logs and results on one screen, coloured; each object on one line.
    let out = on_terminal(command(&repo, &cluster, &["sync"]), "").await;
    let screen = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for object in OBJECTS {
        assert_eq!(
            lines_naming(&screen, object),
            vec![format!("{object}: created")],
            "{screen}"
        );
    }
    assert!(screen.contains(ESC), "a terminal gets colour: {screen}");
    golden(
        "sync-terminal.txt",
        &normalise(&screen, &[&first], &[&repo.remote.bare]),
    );

    // Redirected: plain text; still one line per object across both streams.
    repo.write("settings.yaml", &config_map("settings", "slow"));
    repo.write("features.yaml", &config_map("features", "none"));
    let second = repo.commit("second");
    let out = redirected(command(&repo, &cluster, &["sync"])).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stderr.contains(" INFO "), "the log is there: {stderr}");
    assert!(
        !stdout.contains(ESC) && !stderr.contains(ESC),
        "{}",
        show(&out)
    );
    let both = format!("{stdout}{stderr}");
    for object in &OBJECTS[1..] {
        assert_eq!(
            lines_naming(&both, object),
            vec![format!("{object}: updated")],
            "{both}"
        );
    }
    assert!(lines_naming(&both, OBJECTS[0]).is_empty(), "{both}");
    golden(
        "sync-redirected.txt",
        &normalise(
            &format!("{stdout}--- stderr\n{stderr}"),
            &[&first, &second],
            &[&repo.remote.bare],
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_coloured_only_on_a_terminal_or_when_asked() {
    let cluster = TestCluster::embedded().await;
    let (repo, _) = repository();
    // `veer diff` logs at info (its watches) and prints a diff that can be coloured.
    let diff = |args: &[&str]| {
        let mut all = vec!["diff"];
        all.extend_from_slice(args);
        command(&repo, &cluster, &all)
    };

    // Pipes: no escape code, in the log or in the diff.
    let out = redirected(diff(&[])).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(" INFO "), "{stderr}");
    assert!(!stderr.contains(ESC), "a piped log is plain: {stderr}");
    assert!(!text(&out.stdout).contains(ESC), "{}", show(&out));

    // Asked for, by flag or by environment: colour in both, even in a pipe.
    let mut by_env = diff(&[]);
    by_env.env("VEER_COLOR", "always");
    for out in [
        redirected(diff(&["--color", "always"])).await,
        redirected(by_env).await,
    ] {
        assert!(
            text(&out.stderr).contains("\x1b[32m INFO"),
            "{}",
            show(&out)
        );
        assert!(text(&out.stdout).contains("\x1b[32m+"), "{}", show(&out));
    }

    // A terminal: colour, unless `--color never` or NO_COLOR says otherwise.
    let out = on_terminal(diff(&[]), "").await;
    assert!(
        text(&out.stdout).contains("\x1b[32m INFO"),
        "{}",
        show(&out)
    );
    let out = on_terminal(diff(&["--color", "never"]), "").await;
    assert!(!text(&out.stdout).contains(ESC), "{}", show(&out));
    let mut no_color = diff(&[]);
    no_color.env("NO_COLOR", "1");
    let out = on_terminal(no_color, "").await;
    assert!(!text(&out.stdout).contains(ESC), "{}", show(&out));

    // On a terminal with the log sent to a file: the file is plain, the diff coloured.
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("veer.log");
    let out = on_terminal(
        diff(&[]),
        &format!("2>{}", quote(&log.display().to_string())),
    )
    .await;
    let logged = std::fs::read_to_string(&log).expect("the log file");
    assert!(logged.contains(" INFO "), "{logged}");
    assert!(!logged.contains(ESC), "a log file is plain: {logged}");
    assert!(text(&out.stdout).contains("\x1b[32m+"), "{}", show(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_ends_with_a_result_line() {
    let cluster = TestCluster::embedded().await;
    let (repo, first) = repository();
    let short = &first[..12];
    let once = || command(&repo, &cluster, &["run", "--once"]);

    let out = redirected(once()).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        text(&out.stdout),
        format!("revision {short}: 3 created, 0 updated, 0 pruned, 0 unchanged, 0 failed\n"),
        "{}",
        show(&out)
    );
    // The log keeps each object (it is the daemon's record); stdout has the outcome only.
    assert!(
        text(&out.stderr).contains("object=ConfigMap shop/settings"),
        "{}",
        show(&out)
    );

    let out = redirected(once()).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        text(&out.stdout),
        format!("revision {short}: in sync, nothing to do\n")
    );

    // On a terminal too, as the last line.
    repo.remove("features.yaml");
    let second = repo.commit("drop features");
    let out = on_terminal(once(), "").await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let screen = text(&out.stdout);
    assert_eq!(
        screen.lines().last(),
        Some(
            format!(
                "revision {}: 0 created, 0 updated, 1 pruned, 2 unchanged, 0 failed",
                &second[..12]
            )
            .as_str()
        ),
        "{screen}"
    );

    // A rejected revision: exit 1, and the line says so.
    repo.write(
        "settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [broken\n",
    );
    let third = repo.commit("broken");
    let out = redirected(once()).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(
        text(&out.stdout),
        format!(
            "revision {} is INVALID (1 errors): nothing applied\n",
            &third[..12]
        ),
        "{}",
        show(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_named_as_the_first_thing_to_check() {
    let (repo, _) = repository();
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = dir.path().join("dead.kubeconfig");
    std::fs::write(
        &dead,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:{}\n\
             contexts:\n- name: gone\n  context: {{cluster: gone, user: me}}\ncurrent-context: gone\n\
             users:\n- name: me\n  user: {{}}\n",
            support::free_port()
        ),
    )
    .expect("write the kubeconfig");
    for args in [&["diff"][..], &["sync"], &["run", "--once"], &["status"]] {
        let out = repo.veer_as(&dead, args).await;
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", show(&out));
        let stderr = text(&out.stderr);
        let error = stderr
            .lines()
            .find_map(|l| l.strip_prefix("veer: "))
            .unwrap_or_else(|| panic!("{args:?}: no error line: {stderr}"));
        // The hints follow the first `; `: reachability first, not RBAC.
        let (_, hints) = error
            .split_once("; ")
            .unwrap_or_else(|| panic!("{args:?}: no hint: {error}"));
        assert!(
            hints.starts_with("the API server did not answer: check that it is up and reachable"),
            "{args:?}: {error}"
        );
        assert!(
            !hints.contains("RBAC") && !hints.contains("grant"),
            "{args:?}: {error}"
        );
    }
}
