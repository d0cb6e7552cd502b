//! `veer diff`, `veer sync`, `veer status` and `veer run --once` as a user runs them: the real
//! binary, a real `git daemon` remote, and the embedded API server (in this process) through
//! a kubeconfig.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::Value;

use support::devcluster as dev;
use support::{GitDaemon, Remote};

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";

fn config_map(name: &str, namespace: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  mode: {value}\n"
    )
}

const BAD_VS: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
      wieght: 100
";

struct Env {
    _tmp: tempfile::TempDir,
    remote: Remote,
    _daemon: GitDaemon,
    url: String,
    cache: PathBuf,
    kubeconfig: PathBuf,
    _kube_dir: tempfile::TempDir,
}

impl Env {
    fn new(cluster: &veer::devcluster::RunningCluster) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let remote = Remote::new(tmp.path(), "mesh");
        let daemon = GitDaemon::start(&remote.base);
        let url = daemon.url("mesh");
        let cache = tmp.path().join("cache");
        let (kube_dir, kubeconfig) = dev::kubeconfig(cluster);
        Env {
            _tmp: tmp,
            remote,
            _daemon: daemon,
            url,
            cache,
            kubeconfig,
            _kube_dir: kube_dir,
        }
    }

    /// Run veer with the repository and kubeconfig flags added after the command.
    async fn veer(&self, args: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let needs_source = matches!(args[0], "diff" | "sync" | "run");
        if needs_source {
            all.extend([
                "--repo".into(),
                self.url.clone(),
                "--cache-dir".into(),
                self.cache.display().to_string(),
            ]);
        }
        all.extend(["--kubeconfig".into(), self.kubeconfig.display().to_string()]);
        run(&all, &[]).await
    }
}

async fn run(args: &[String], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .env_remove("VEER_CONFIG")
        .env_remove("VEER_REPO")
        .env_remove("KUBECONFIG")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run veer")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    )
}

async fn mode_of(
    cluster: &veer::devcluster::RunningCluster,
    namespace: &str,
    name: &str,
) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(dev::client(cluster), namespace);
    api.get_opt(name)
        .await
        .expect("get")
        .and_then(|cm| cm.data)
        .and_then(|d| d.get("mode").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_sync_status_and_run_end_to_end() {
    let cluster = dev::start().await;
    let env = Env::new(&cluster);
    env.remote.write("ns.yaml", NAMESPACE);
    env.remote
        .write("cm.yaml", &config_map("settings", "shop", "fast"));
    env.remote
        .write("old.yaml", &config_map("old", "shop", "x"));
    let first = env.remote.commit_and_push("first");

    // diff: differences, exit 2; no colour when stdout is not a terminal.
    let out = env.veer(&["diff"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stdout.contains(&format!("revision {}", &first[..12])),
        "{stdout}"
    );
    assert!(
        stdout.contains("# ConfigMap shop/settings: create"),
        "{stdout}"
    );
    assert!(stdout.contains("+  mode: fast"), "{stdout}");
    assert!(
        stdout.contains("3 to create, 0 to update, 0 to prune"),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'), "{stdout}");
    let out = env.veer(&["diff", "--color", "always"]).await;
    assert!(text(&out.stdout).contains("\x1b[32m+"), "{}", show(&out));
    let out = env.veer(&["diff", "--output", "json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["hasChanges"], true);
    assert_eq!(json["summary"]["create"], 3);

    // sync --dry-run: the plan, exit 2, nothing written.
    let writes = cluster.request_counts().writes;
    let out = env.veer(&["sync", "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stdout).contains("3 to create"), "{}", show(&out));
    assert_eq!(cluster.request_counts().writes, writes, "a dry run wrote");
    assert_eq!(mode_of(&cluster, "shop", "settings").await, None);

    // sync: per-object results and the summary, exit 0; then diff finds nothing.
    let out = env.veer(&["sync"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout.contains("ConfigMap shop/settings: created"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 created, 0 updated, 0 pruned, 0 unchanged, 0 failed"),
        "{stdout}"
    );
    assert_eq!(
        mode_of(&cluster, "shop", "settings").await.as_deref(),
        Some("fast")
    );
    let out = env.veer(&["diff"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(text(&out.stdout).contains("0 to create, 0 to update, 0 to prune"));
    let out = env.veer(&["sync"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("in sync, nothing to do"),
        "{}",
        show(&out)
    );

    // status, human and JSON.
    let out = env.veer(&["status"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout.contains(&format!("revision   {first} (first)")),
        "{stdout}"
    );
    assert!(stdout.contains("outcome    applied"), "{stdout}");
    assert!(stdout.contains("objects    3 in inventory"), "{stdout}");
    let out = env.veer(&["status", "-o", "json"]).await;
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["state"]["revision"]["commit"], first.as_str());
    assert_eq!(json["state"]["format"], 1);

    // A change with a removal: --prune=false keeps the object, a plain sync prunes it.
    env.remote
        .write("cm.yaml", &config_map("settings", "shop", "slow"));
    env.remote.remove("old.yaml");
    env.remote.commit_and_push("second");
    let out = env.veer(&["sync", "--prune=false"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout.contains("ConfigMap shop/settings: updated"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ConfigMap shop/old: prune skipped (prune is disabled)"),
        "{stdout}"
    );
    assert!(mode_of(&cluster, "shop", "old").await.is_some());
    let out = env.veer(&["sync"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("ConfigMap shop/old: pruned"),
        "{}",
        show(&out)
    );
    assert_eq!(mode_of(&cluster, "shop", "old").await, None);

    // An invalid commit: exit 1, nothing applied, recorded as rejected.
    env.remote
        .write("cm.yaml", &config_map("settings", "shop", "broken"));
    env.remote.write("vs.yaml", BAD_VS);
    let bad = env.remote.commit_and_push("typo");
    let out = env.veer(&["sync"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("unknown-field"),
        "{}",
        show(&out)
    );
    assert_eq!(
        mode_of(&cluster, "shop", "settings").await.as_deref(),
        Some("slow")
    );
    let out = env.veer(&["run", "--once", "--log-format", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("revision rejected"),
        "{}",
        show(&out)
    );
    let out = env.veer(&["status"]).await;
    assert!(
        text(&out.stdout).contains(&format!("rejected   {bad} (typo): 1 errors")),
        "{}",
        show(&out)
    );

    // Fixed: `run --once` applies it, exit 0, and the rejection is gone from status.
    env.remote.remove("vs.yaml");
    env.remote.commit_and_push("fix");
    let out = env.veer(&["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        mode_of(&cluster, "shop", "settings").await.as_deref(),
        Some("broken")
    );
    let out = env.veer(&["status"]).await;
    assert!(!text(&out.stdout).contains("rejected"), "{}", show(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_the_server_refuses_applies_nothing_and_shows_in_status() {
    let cluster = dev::start().await;
    let env = Env::new(&cluster);
    env.remote.write("ns.yaml", NAMESPACE);
    env.remote
        .write("cm.yaml", &config_map("settings", "shop", "fast"));
    // Its namespace exists nowhere: the server's dry run refuses it, so nothing is written.
    env.remote
        .write("lost.yaml", &config_map("lost", "nowhere", "x"));
    env.remote.commit_and_push("partly broken");
    // Flags through their VEER_* variables this time.
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let out = run(
        &["sync".to_string()],
        &[
            ("VEER_REPO", env.url.as_str()),
            ("VEER_CACHE_DIR", cache.to_str().expect("utf-8")),
            ("VEER_KUBECONFIG", env.kubeconfig.to_str().expect("utf-8")),
            ("VEER_STATE_NAMESPACE", "gitops"),
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout.contains("error[server-not-found] lost.yaml:4:3: ConfigMap nowhere/lost: the API server refused to apply it in a dry run (404)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "was REFUSED by the API server's dry run (1 object): nothing from it was written"
        ),
        "{stdout}"
    );
    assert_eq!(mode_of(&cluster, "shop", "settings").await, None);

    let out = env.veer(&["status", "--state-namespace", "gitops"]).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("partly broken): 1 errors"), "{stdout}");
    // Nothing recorded in the default namespace.
    let out = env.veer(&["status"]).await;
    assert!(
        text(&out.stdout).contains("has recorded nothing in veer/veer-state"),
        "{}",
        show(&out)
    );

    // A cluster that is not there: exit 3 with the reason.
    let dead = tmp.path().join("dead.kubeconfig");
    std::fs::write(
        &dead,
        std::fs::read_to_string(&env.kubeconfig)
            .expect("kubeconfig")
            .replace(
                &cluster.url(),
                &format!("http://127.0.0.1:{}", support::free_port()),
            ),
    )
    .expect("write");
    let out = run(
        &[
            "status".to_string(),
            "--kubeconfig".to_string(),
            dead.display().to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("cannot read veer's state"),
        "{}",
        show(&out)
    );
}

/// A VirtualService of `name` bound to `policy`, `v2`% on v2.
fn bound_vs(name: &str, policy: &str, v2: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {name}
  namespace: shop
  annotations:
    veer.io/rollout-policy: {policy}
spec:
  hosts: [{name}]
  http:
  - route:
    - destination: {{host: {name}, subset: v1}}
      weight: {v1}
    - destination: {{host: {name}, subset: v2}}
      weight: {v2}
",
        v1 = 100 - v2
    )
}

fn step_policy(name: &str, steps: &str) -> String {
    format!(
        "apiVersion: veer.io/v1alpha1\nkind: RolloutPolicy\nmetadata:\n  name: {name}\nspec:\n  interval: 1m\n  stepWeights: {steps}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_of_the_repository_and_of_the_policies_directory_are_both_honoured() {
    let cluster = dev::start().await;
    let env = Env::new(&cluster);
    // The directory has its own policy, and one of the repository's name that loses to it.
    let dir = env._tmp.path().join("policies");
    std::fs::create_dir_all(&dir).expect("create the policies directory");
    std::fs::write(dir.join("team.yaml"), step_policy("team-canary", "[30]")).unwrap();
    std::fs::write(
        dir.join("shadowed.yaml"),
        step_policy("repo-canary", "[90]"),
    )
    .unwrap();
    let config = env._tmp.path().join("veer.yaml");
    std::fs::write(
        &config,
        format!("rollouts:\n  policiesDir: {}\n", dir.display()),
    )
    .unwrap();
    let with_config = |args: &[&str]| {
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        all.into_iter().map(String::from).collect::<Vec<_>>()
    };

    env.remote.write("ns.yaml", NAMESPACE);
    for name in ["reviews", "ratings"] {
        env.remote.write(
            &format!("{name}-rule.yaml"),
            &format!(
                "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  host: {name}\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n"
            ),
        );
    }
    env.remote
        .write("policy.yaml", &step_policy("repo-canary", "[10]"));
    env.remote
        .write("reviews.yaml", &bound_vs("reviews", "repo-canary", 0));
    env.remote
        .write("ratings.yaml", &bound_vs("ratings", "team-canary", 0));
    env.remote.commit_and_push("two services, two policies");

    // Validation knows the directory's policies: the annotation naming one is no error.
    let out = run(
        &with_config(&["validate", env.remote.work.to_str().unwrap()]),
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = run(
        &["validate".into(), env.remote.work.display().to_string()],
        &[],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "without it, it is: {}",
        show(&out)
    );
    assert!(
        text(&out.stdout).contains("rp-unknown-policy"),
        "{}",
        show(&out)
    );

    // `sync` validates before its controller starts; `run` validates in the controller.
    let one_pass = |command: &[&str]| {
        let mut all = with_config(command);
        all.extend([
            "--repo".into(),
            env.url.clone(),
            "--cache-dir".into(),
            env.cache.display().to_string(),
            "--kubeconfig".into(),
            env.kubeconfig.display().to_string(),
        ]);
        all
    };
    let out = run(&one_pass(&["sync"]), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    // Both move to v2: each rollout runs under its own policy.
    env.remote
        .write("reviews.yaml", &bound_vs("reviews", "repo-canary", 100));
    env.remote
        .write("ratings.yaml", &bound_vs("ratings", "team-canary", 100));
    env.remote.commit_and_push("both to v2");
    let out = run(&one_pass(&["run", "--once"]), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let client = dev::client(&cluster);
    for (name, policy, steps) in [
        ("reviews", "repo-canary", vec![10]),
        ("ratings", "team-canary", vec![30]),
    ] {
        let id = veer::ids::RolloutId {
            namespace: "shop".into(),
            name: name.into(),
        };
        let (state, _, bound) = veer::controller::rollouts::read_rollout(&client, "veer", &id)
            .await
            .expect("read the rollout")
            .unwrap_or_else(|| panic!("no rollout of {name}: {}", show(&out)));
        assert_eq!(bound, policy, "{name}");
        assert_eq!(state.steps, steps, "{name} follows {policy}");
    }
}
