//! `make bench`: `veer run` as a user runs it, measured from outside. The real binary
//! follows a git repository of generated manifests (`support/manifests.rs`: 40, 1,000 and
//! 10,000 objects, plus their 50 Namespaces) on disk and syncs it to `veer dev-cluster`, each
//! in its own process, so the CPU and RSS printed are veer's alone (`/proc/PID`). Per size:
//!
//! - cold start: from spawning `veer run` to its first pass done (the
//!   `veer_reconcile_duration_seconds` count on `/metrics`), every object created;
//! - idle polls: a 2 s poll interval, no commit, nothing changed in the cluster: veer's CPU
//!   per poll over [`IDLE_WINDOW`], and its RSS at the end of the window (steady RSS);
//! - one change: a commit that changes one VirtualService's weights, announced by a signed
//!   push webhook (as GitHub sends it) so no poll interval is waited for; commit to applied
//!   is from the webhook to the API server answering with the new weights, and "after the
//!   fetch" leaves out the fetch veer's `veer_git_fetch_duration_seconds` measured;
//! - peak RSS (`VmHWM`) over the whole run.
//!
//! The targets: idle RSS with a small repository under 20 MiB; at 10,000 objects an
//! idle poll under 10 ms of CPU, steady RSS under 100 MiB, peak under 150 MiB and commit to
//! applied under 1 s after the fetch. `VEER_BENCH_DAEMON_SIZES=40 cargo test --bench daemon`
//! runs other sizes in a debug build (its figures are stored apart from release ones);
//! `VEER_BENCH_KEEP=1` keeps each size's directory (veer's log is `veer-run.log`).

#[path = "support/figures.rs"]
mod figures;
#[path = "support/manifests.rs"]
mod manifests;
#[path = "support/processes.rs"]
mod processes;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;

use figures::Figures;
use manifests::{NAMESPACES, manifest_text, namespace};
use processes::{Process, cpu_seconds, dev_cluster, sizes, status_kib, veer_binary};

const HOOK_SECRET: &str = "bench-hook-secret";
/// How long idle polls are watched.
const IDLE_WINDOW: Duration = Duration::from_secs(12);
/// The object the one-change commit edits: a VirtualService (`manifest_text`'s `i % 4 == 1`).
const CHANGED: usize = 1;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .output()
        .expect("git runs (`make deps` installs it)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn object_path(i: usize) -> String {
    format!("mesh/{}/object-{i}.yaml", namespace(i))
}

/// A work tree with `n` objects and their Namespaces committed, pushed to a bare repository;
/// the bare repository's `file://` URL.
fn repository(dir: &Path, n: usize) -> (PathBuf, String) {
    let work = dir.join("work");
    let bare = dir.join("mesh.git");
    std::fs::create_dir_all(&work).expect("a work tree");
    git(dir, &["init", "-q", "--bare", "-b", "main", "mesh.git"]);
    git(&work, &["init", "-q", "-b", "main"]);
    let used = n.div_ceil(4).min(NAMESPACES);
    for t in 0..used {
        let path = work.join(format!("mesh/team-{t}/namespace.yaml"));
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("a directory");
        std::fs::write(
            &path,
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-{t}\n"),
        )
        .expect("write a Namespace");
    }
    for i in 0..n {
        std::fs::write(work.join(object_path(i)), manifest_text(i, 0)).expect("write an object");
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "generated"]);
    let url = format!("file://{}", bare.display());
    git(&work, &["push", "-q", &url, "main"]);
    (work, url)
}

/// The Prometheus text of `/metrics`: `name`'s value (the first sample).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let bare = series.split('{').next()?;
        (bare == name).then(|| value.parse().ok())?
    })
}

async fn scrape(client: &reqwest::Client, listen: &str) -> Option<String> {
    let response = client
        .get(format!("http://{listen}/metrics"))
        .send()
        .await
        .ok()?;
    response.text().await.ok()
}

/// `veer`'s CPU seconds and RSS / peak RSS (MiB) from `/proc/PID`.
fn veer_usage(pid: u32) -> (f64, f64, f64) {
    let status = format!("/proc/{pid}/status");
    let rss = status_kib(&status, "VmRSS:") as f64 / 1024.0;
    let peak = status_kib(&status, "VmHWM:") as f64 / 1024.0;
    (cpu_seconds(pid), rss, peak)
}

async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run(n: usize, fig: &mut Figures) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path();
    let (_cluster, kubeconfig) = dev_cluster(dir);
    let (work, url) = repository(dir, n);
    let config = dir.join("veer.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  url: {url}\n  path: mesh\n  interval: 2s\ncacheDir: {cache}\n\
             server:\n  webhookSecret: {{env: VEER_BENCH_HOOK_SECRET}}\n",
            cache = dir.join("cache").display(),
        ),
    )
    .expect("write veer.yaml");
    let port = veer::demo::prometheus::free_loopback_port().expect("a free port");
    let listen = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let veer = Process::spawn(
        "veer-run",
        dir,
        veer_binary()
            .env("VEER_BENCH_HOOK_SECRET", HOOK_SECRET)
            .arg("--config")
            .arg(&config)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["run", "--listen", &listen]),
    );
    let pid = veer.pid();
    let http = reqwest::Client::new();
    let within = Duration::from_secs(60 + n as u64 / 50);
    wait_until("veer's first pass (see veer-run.log)", within, || async {
        let text = scrape(&http, &listen).await?;
        (metric(&text, "veer_reconcile_duration_seconds_count")? >= 1.0).then_some(())
    })
    .await;
    let cold = started.elapsed();
    let label = if n < 100 {
        format!("{n} objects (small)")
    } else {
        format!("{n} objects")
    };
    let key = |what: &str| format!("{n} objects/{what}");
    println!("\n== veer run, {label} ==");
    println!(
        "cold start (spawn to first pass done, every object created): {}{}",
        manifests::ms(cold),
        fig.ms(&key("cold start"), cold)
    );

    // Idle polls: count them on veer's own fetch counter.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fetches = |text: &str| metric(text, "veer_git_fetch_duration_seconds_count");
    let before = scrape(&http, &listen).await.expect("/metrics answers");
    let (cpu0, _, _) = veer_usage(pid);
    tokio::time::sleep(IDLE_WINDOW).await;
    let after = scrape(&http, &listen).await.expect("/metrics answers");
    let (cpu1, steady, _) = veer_usage(pid);
    let polls = fetches(&after).unwrap_or(0.0) - fetches(&before).unwrap_or(0.0);
    let per_poll = if polls > 0.0 {
        (cpu1 - cpu0) * 1000.0 / polls
    } else {
        f64::NAN
    };
    println!(
        "idle poll (2 s interval, {polls} polls in {}s): {per_poll:.2} ms CPU each{}{}",
        IDLE_WINDOW.as_secs(),
        fig.ratio(&key("idle poll CPU ms"), per_poll),
        if polls < 3.0 {
            "  <-- UNEXPECTED: fewer polls than the interval allows"
        } else {
            ""
        }
    );
    let status = format!("/proc/{pid}/status");
    let anon = status_kib(&status, "RssAnon:") as f64 / 1024.0;
    let file = status_kib(&status, "RssFile:") as f64 / 1024.0;
    println!(
        "steady RSS (after the idle polls): {steady:.1} MiB{} ({anon:.1} MiB anonymous, {file:.1} MiB of mapped files: the binary and its shared libraries)",
        fig.ratio(&key("steady RSS MiB"), steady)
    );

    // One change, announced by a push webhook, right after a poll: the webhook's poll, not
    // the next scheduled one (2 s away), is the one that finds the commit.
    let polled = fetches(&scrape(&http, &listen).await.expect("/metrics answers"));
    wait_until("a scheduled poll", Duration::from_secs(10), || async {
        let now = fetches(&scrape(&http, &listen).await?);
        (now > polled).then_some(())
    })
    .await;
    let changed_ns = namespace(CHANGED);
    std::fs::write(work.join(object_path(CHANGED)), manifest_text(CHANGED, 7))
        .expect("edit the VirtualService");
    git(&work, &["commit", "-q", "-am", "one change"]);
    git(&work, &["push", "-q", &url, "main"]);
    let head = String::from_utf8(
        Command::new("git")
            .current_dir(&work)
            .args(["rev-parse", "HEAD"])
            .output()
            .expect("git rev-parse")
            .stdout,
    )
    .expect("a commit id");
    let client = {
        let file = Kubeconfig::read_from(&kubeconfig).expect("the dev cluster's kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
            .await
            .expect("a client config");
        kube::Client::try_from(config).expect("a kube client")
    };
    let resource = ApiResource {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        api_version: "networking.istio.io/v1".into(),
        kind: "VirtualService".into(),
        plural: "virtualservices".into(),
    };
    let vs: Api<DynamicObject> = Api::namespaced_with(client, &changed_ns, &resource);
    let fetch_sum = |text: &str| metric(text, "veer_git_fetch_duration_seconds_sum");
    // The poll that found the commit: the next one must not have started (see above).
    let first_fetches = fetches(&scrape(&http, &listen).await.expect("/metrics answers"));
    let before = scrape(&http, &listen).await.expect("/metrics answers");
    let (cpu0, _, _) = veer_usage(pid);
    let body = serde_json::json!({
        "ref": "refs/heads/main",
        "after": head.trim(),
        "repository": {"clone_url": url},
    })
    .to_string();
    let sent = Instant::now();
    let answer = http
        .post(format!("http://{listen}/hooks/git"))
        .header("x-github-event", "push")
        .header(
            "x-hub-signature-256",
            veer::notify::webhook::sign(HOOK_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .expect("the webhook answers");
    assert_eq!(
        answer.status().as_u16(),
        200,
        "the signed webhook is accepted"
    );
    let name = format!("svc-{}", CHANGED - 1);
    wait_until(
        "the changed weights applied",
        Duration::from_secs(60),
        || {
            let vs = vs.clone();
            let name = name.clone();
            async move {
                let object = vs.get(&name).await.ok()?;
                let weight = object
                    .data
                    .pointer("/spec/http/0/route/0/weight")?
                    .as_i64()?;
                (weight == 93).then_some(())
            }
        },
    )
    .await;
    let applied = sent.elapsed();
    let (cpu1, _, _) = veer_usage(pid);
    // The pass may still be recording after the write; the fetch is done by then.
    let after = scrape(&http, &listen).await.expect("/metrics answers");
    let fetch = Duration::from_secs_f64(
        (fetch_sum(&after).unwrap_or(0.0) - fetch_sum(&before).unwrap_or(0.0)).max(0.0),
    );
    let after_fetch = applied.saturating_sub(fetch);
    let polls = fetches(&after).unwrap_or(0.0) - first_fetches.unwrap_or(0.0);
    if polls > 1.0 {
        println!(
            "  <-- UNEXPECTED: {polls} polls ran while the change was applied (a scheduled one raced the webhook's)"
        );
    }
    println!(
        "one change (webhook to applied): {}{}; the fetch {}; after the fetch {}{}; CPU {:.0} ms{}",
        manifests::ms(applied),
        fig.ms(&key("commit to applied"), applied),
        manifests::ms(fetch),
        manifests::ms(after_fetch),
        fig.ms(&key("commit to applied after fetch"), after_fetch),
        (cpu1 - cpu0) * 1000.0,
        fig.ratio(&key("one change CPU ms"), (cpu1 - cpu0) * 1000.0),
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, rss, peak) = veer_usage(pid);
    println!(
        "RSS after the change: {rss:.1} MiB{}; peak RSS (whole run): {peak:.1} MiB{}",
        fig.ratio(&key("RSS after change MiB"), rss),
        fig.ratio(&key("peak RSS MiB"), peak),
    );
    drop(veer);
    if std::env::var_os("VEER_BENCH_KEEP").is_some() {
        println!(
            "kept: {} (veer-run.log is veer's log)",
            tmp.keep().display()
        );
    }
}

fn main() {
    veer::http_client::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut fig = Figures::load("daemon");
    for n in sizes("VEER_BENCH_DAEMON_SIZES", &[40, 1_000, 10_000]) {
        runtime.block_on(run(n, &mut fig));
    }
    fig.save();
}
