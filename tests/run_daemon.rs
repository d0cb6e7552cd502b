//! `veer run` as it runs in a cluster: the real binary against the embedded API server and a
//! real `git daemon`, with its HTTP server (readiness, metrics, status page, a signed push
//! webhook that triggers a reconcile before the next poll), notifications delivered to a real
//! receiver, and two replicas under leader election (only the leader writes; the standby
//! takes over when the leader is killed).

mod support;

#[path = "support/receiver.rs"]
mod receiver;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use receiver::{Receiver, Reply};
use support::devcluster as dev;
use support::{GitDaemon, Remote, eventually};

const HOOK_SECRET: &str = "s3cret-hook-key";

fn manifests(mode: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  mode: {mode}\n"
    )
}

/// One `veer run` process; killed when dropped.
struct Veer {
    child: Child,
    listen: String,
}

impl Drop for Veer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_veer(dir: &Path, config: &Path, kubeconfig: &Path, extra: &[&str]) -> Veer {
    let port = support::free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join(format!("veer-{port}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_veer"))
        .current_dir(dir)
        .env("VEER_TEST_HOOK_SECRET", HOOK_SECRET)
        .arg("--config")
        .arg(config)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["run", "--listen", &listen])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("veer starts");
    Veer { child, listen }
}

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

async fn mode(client: &kube::Client) -> Option<String> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    cms.get("settings").await.ok()?.data?.get("mode").cloned()
}

struct Setup {
    tmp: tempfile::TempDir,
    remote: Remote,
    _daemon: GitDaemon,
    config: PathBuf,
    kubeconfig: PathBuf,
    _kube_dir: tempfile::TempDir,
    url: String,
}

fn setup(cluster: &veer::devcluster::RunningCluster, receiver: &Receiver) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "mesh");
    remote.write("prod/app.yaml", &manifests("blue"));
    remote.commit_and_push("blue");
    let daemon = GitDaemon::start(&remote.base);
    let url = daemon.url("mesh");
    let config = tmp.path().join("veer.yaml");
    // A poll interval of an hour: anything after the first pass must come from the webhook.
    std::fs::write(
        &config,
        format!(
            "source:\n  url: {url}\n  path: prod\n  interval: 1h\ncacheDir: {cache}\nserver:\n  webhookSecret: {{env: VEER_TEST_HOOK_SECRET}}\nnotify:\n  webhooks:\n  - url: {hook}\n",
            cache = tmp.path().join("cache").display(),
            hook = receiver.url("/veer"),
        ),
    )
    .unwrap();
    let (kube_dir, kubeconfig) = dev::kubeconfig(cluster);
    Setup {
        tmp,
        remote,
        _daemon: daemon,
        config,
        kubeconfig,
        _kube_dir: kube_dir,
        url,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_readiness_metrics_page_hooks_and_notifies() {
    veer::http_client::install_crypto_provider();
    let cluster = dev::start().await;
    let client = dev::client(&cluster);
    let receiver = Receiver::start(Reply::Ok("ok".into())).await;
    let s = setup(&cluster, &receiver);
    let veer = spawn_veer(s.tmp.path(), &s.config, &s.kubeconfig, &[]);
    let base = format!("http://{}", veer.listen);

    // Ready once the first revision is reconciled.
    eventually("readyz", Duration::from_secs(30), || async {
        get(&format!("{base}/readyz"))
            .await
            .filter(|(c, _)| *c == 200)
    })
    .await;
    assert_eq!(mode(&client).await.as_deref(), Some("blue"));
    let (code, metrics) = get(&format!("{base}/metrics")).await.unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("veer_sync_results_total{outcome=\"synced\"} 1"),
        "{metrics}"
    );
    // Each poll's fetch is timed (it was declared and never observed before issue 14's bench).
    let fetches = metrics
        .lines()
        .find_map(|l| l.strip_prefix("veer_git_fetch_duration_seconds_count "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(fetches.is_some_and(|n| n >= 1), "{metrics}");
    let head = s.remote.git(&["rev-parse", "HEAD"]);
    let (_, page) = get(&format!("{base}/")).await.unwrap();
    assert!(page.contains(&head[..12]), "the page names the revision");

    // The revision-applied notification reached the receiver.
    let sent = receiver.wait_for(1, Duration::from_secs(10)).await;
    let event = sent[0].json();
    assert_eq!(event["kind"], "revision-applied", "{event}");
    assert_eq!(
        event["event"]["revision"]["commit"],
        head.as_str(),
        "{event}"
    );
    assert_eq!(event["event"]["created"], 2, "{event}");

    // A new commit, then a signed GitHub push webhook: applied long before the 1 h poll.
    s.remote.write("prod/app.yaml", &manifests("green"));
    let green = s.remote.commit_and_push("green");
    let body = serde_json::json!({
        "ref": "refs/heads/main",
        "after": green,
        "repository": {"clone_url": s.url},
    })
    .to_string();
    let forged = reqwest::Client::new()
        .post(format!("{base}/hooks/git"))
        .header("x-github-event", "push")
        .header("x-hub-signature-256", "sha256=00")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let signed = reqwest::Client::new()
        .post(format!("{base}/hooks/git"))
        .header("x-github-event", "push")
        .header(
            "x-hub-signature-256",
            veer::notify::webhook::sign(HOOK_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 200);
    eventually(
        "green applied after the webhook",
        Duration::from_secs(20),
        || async { mode(&client).await.filter(|m| m == "green") },
    )
    .await;
    // The page's "Last diff" shows what that pass changed.
    let diff = eventually(
        "the page shows the last diff",
        Duration::from_secs(10),
        || async {
            let (_, page) = get(&format!("{base}/")).await?;
            let diff = page.split("<section id=\"diff\">").nth(1)?.to_string();
            diff.contains("green").then_some(diff)
        },
    )
    .await;
    assert!(diff.contains("blue") && diff.contains("settings"), "{diff}");
    drop(veer);
    let _ = cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leader_and_the_standby_takes_over() {
    veer::http_client::install_crypto_provider();
    let cluster = dev::start().await;
    let client = dev::client(&cluster);
    let receiver = Receiver::start(Reply::Ok("ok".into())).await;
    let s = setup(&cluster, &receiver);
    let election = [
        "--leader-elect",
        "--leader-election-namespace",
        "default",
        "--leader-election-lease-duration",
        "3s",
        "--leader-election-renew-period",
        "1s",
    ];
    let mut a = Some(spawn_veer(
        s.tmp.path(),
        &s.config,
        &s.kubeconfig,
        &election,
    ));
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let holder = || async {
        leases
            .get("veer-leader")
            .await
            .ok()
            .and_then(|l| l.spec?.holder_identity)
    };
    let first = eventually("a leader", Duration::from_secs(30), holder).await;
    eventually(
        "blue applied by the leader",
        Duration::from_secs(30),
        || async { mode(&client).await.filter(|m| m == "blue") },
    )
    .await;
    let b = spawn_veer(s.tmp.path(), &s.config, &s.kubeconfig, &election);
    // The standby serves /healthz but never becomes ready to write while a leads.
    eventually("the standby's health", Duration::from_secs(10), || async {
        get(&format!("http://{}/healthz", b.listen))
            .await
            .filter(|(c, _)| *c == 200)
    })
    .await;
    // A new commit now: the leader polls hourly and the standby must not write.
    s.remote.write("prod/app.yaml", &manifests("green"));
    s.remote.commit_and_push("green");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        holder().await,
        Some(first.clone()),
        "one leader while it renews"
    );
    assert_eq!(
        mode(&client).await.as_deref(),
        Some("blue"),
        "the standby wrote nothing"
    );

    // Kill the leader (no clean release): b takes over within seconds and applies a commit.
    drop(a.take());
    let killed = Instant::now();
    let second = eventually("a new leader", Duration::from_secs(20), || async {
        holder().await.filter(|h| *h != first)
    })
    .await;
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "took over in {:?}",
        killed.elapsed()
    );
    assert_ne!(second, first);
    // The new leader's first pass fetches the new commit.
    eventually(
        "green applied by the new leader",
        Duration::from_secs(30),
        || async { mode(&client).await.filter(|m| m == "green") },
    )
    .await;
    drop(b);
    let _ = cluster.shutdown().await;
}
