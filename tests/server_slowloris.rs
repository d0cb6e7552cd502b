//! `veer run` against clients that never finish and an API server that goes away: the real
//! binary against the embedded API server and a real `git daemon`, all on loopback.
//!
//! - Thousands of half-open requests (a request line and part of the headers, then
//!   silence) while a commit lands: `/healthz` answers within a second, the commit is
//!   applied, veer closes every such connection within `headerReadTimeout`, and its open
//!   descriptors stay inside the budget it logs at start. veer runs under an open-files limit
//!   of 512 (hard 1024), far below the 3,000 connections: without the cap it would run out.
//! - `/readyz` turns 503, naming how long and since when, once the API server has been gone
//!   longer than `server.notReadyAfterApiOutage`, and 200 again when it is back.

mod support;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use support::devcluster as dev;
use support::{GitDaemon, Remote, eventually};
use veer::devcluster::{DevCluster, DevClusterOptions};

/// A request line and part of the headers; the blank line never comes.
const HALF_A_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: veer\r\nX-Slow: ";
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(4);
const MAX_CONNECTIONS: usize = 48;

fn manifests(mode: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  mode: {mode}\n"
    )
}

async fn mode(client: &kube::Client) -> Option<String> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "shop");
    cms.get("settings").await.ok()?.data?.get("mode").cloned()
}

/// One `veer run`, its log in a file; killed when dropped.
struct Veer {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Drop for Veer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Veer {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Descriptors open in the process now.
    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// `veer run` under an open-files limit of `soft` (hard `hard`), logging JSON to a file.
fn spawn_veer(dir: &Path, config: &Path, kubeconfig: &Path, soft: u64, hard: u64) -> Veer {
    let listen = format!("127.0.0.1:{}", support::free_port());
    let log = dir.join(format!("veer-{}.log", listen.replace([':', '.'], "-")));
    let mut command = Command::new(env!("CARGO_BIN_EXE_veer"));
    command
        .current_dir(dir)
        .arg("--config")
        .arg(config)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["run", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit is async-signal-safe and touches only the child's limits.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("veer starts");
    Veer {
        child,
        base: format!("http://{listen}"),
        log,
    }
}

/// A client without a connection pool: every request opens its own connection.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

struct Setup {
    tmp: tempfile::TempDir,
    remote: Remote,
    _daemon: GitDaemon,
    config: PathBuf,
    kubeconfig: PathBuf,
    _kube_dir: tempfile::TempDir,
}

fn setup(cluster: &veer::devcluster::RunningCluster, server: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "mesh");
    remote.write("prod/app.yaml", &manifests("blue"));
    remote.commit_and_push("blue");
    let daemon = GitDaemon::start(&remote.base);
    let config = tmp.path().join("veer.yaml");
    std::fs::write(
        &config,
        format!(
            "source:\n  url: {url}\n  path: prod\n  interval: 1s\ncacheDir: {cache}\nlog:\n  format: json\nserver:\n{server}",
            url = daemon.url("mesh"),
            cache = tmp.path().join("cache").display(),
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
    }
}

/// The descriptor budget veer logged at start: (soft limit, raised from, HTTP connections).
fn logged_budget(log: &str) -> Option<(u64, Option<u64>, usize)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["target"] == "veer_controller::server::budget")
        .map(|l| {
            let f = &l["fields"];
            (
                f["soft_limit"].as_u64().unwrap_or(0),
                f["raised_from"].as_u64(),
                f["max_connections"].as_u64().unwrap_or(0) as usize,
            )
        })
}

/// Open `n` connections to `addr` that send half a request head and wait, `batch` at a time
/// with `pause` between batches. Each task ends with how long its connection stayed open
/// until veer closed it, or `None` when it was still open after `patience`.
async fn slow_clients(
    addr: SocketAddr,
    n: usize,
    batch: usize,
    pause: Duration,
    patience: Duration,
) -> Vec<JoinHandle<Option<Duration>>> {
    let mut all = Vec::with_capacity(n);
    let mut opened = 0;
    while opened < n {
        let mut connected = Vec::new();
        for _ in 0..batch.min(n - opened) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            all.push(tokio::spawn(async move {
                let started = Instant::now();
                let mut stream = match TcpStream::connect(addr).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return None;
                    }
                };
                // veer may close it before this lands: that is fine, the read sees it.
                let _ = stream.write_all(HALF_A_HEAD).await;
                let _ = tx.send(Ok(()));
                let mut buf = [0u8; 512];
                let closed = tokio::time::timeout(patience, async {
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                    }
                })
                .await;
                closed.ok().map(|()| started.elapsed())
            }));
            connected.push(rx);
        }
        for rx in connected {
            if let Ok(Err(e)) = rx.await {
                panic!("a slow client could not connect to veer on loopback: {e}");
            }
        }
        opened += batch;
        tokio::time::sleep(pause).await;
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_slow_clients_stop_neither_health_nor_the_next_commit() {
    veer::http_client::install_crypto_provider();
    let cluster = dev::start().await;
    let client = dev::client(&cluster);
    let s = setup(
        &cluster,
        &format!(
            "  maxConnections: {MAX_CONNECTIONS}\n  headerReadTimeout: {}s\n  requestTimeout: 5s\n",
            HEADER_READ_TIMEOUT.as_secs()
        ),
    );
    let veer = spawn_veer(s.tmp.path(), &s.config, &s.kubeconfig, 512, 1024);
    let http = fresh_client();
    eventually("readyz", Duration::from_secs(30), || async {
        get(&http, &format!("{}/readyz", veer.base))
            .await
            .filter(|(c, _)| *c == 200)
    })
    .await;
    assert_eq!(mode(&client).await.as_deref(), Some("blue"));

    // The budget: the soft limit raised to the hard one, the cap as configured (48 is
    // well inside (1024 - 256) / 2).
    let (soft, raised_from, cap) = logged_budget(&veer.log()).expect("veer logs its budget");
    assert_eq!((soft, raised_from, cap), (1024, Some(512), MAX_CONNECTIONS));
    let baseline = veer.open_files();
    assert!(baseline > 0, "/proc/<pid>/fd is readable");

    // Count veer's descriptors all along.
    let most = Arc::new(AtomicUsize::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (most, sampling) = (most.clone(), sampling.clone());
        let fd_dir = format!("/proc/{}/fd", veer.child.id());
        async move {
            while sampling.load(Ordering::Relaxed) {
                let n = std::fs::read_dir(&fd_dir).map(|d| d.count()).unwrap_or(0);
                most.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    // 2,000 slow clients at once, then 1,000 more trickling in while the commit lands.
    let addr: SocketAddr = veer.base.trim_start_matches("http://").parse().unwrap();
    let patience = HEADER_READ_TIMEOUT + Duration::from_secs(20);
    let burst_started = Instant::now();
    let mut clients = slow_clients(addr, 2000, 200, Duration::ZERO, patience).await;
    eprintln!(
        "2000 slow clients connected in {:?}",
        burst_started.elapsed()
    );
    let trickle = tokio::spawn(slow_clients(
        addr,
        1000,
        10,
        Duration::from_millis(100),
        patience,
    ));

    // Liveness while they are all there: each probe on a new connection, under a second.
    for _ in 0..5 {
        let started = Instant::now();
        let answer = get(&http, &format!("{}/healthz", veer.base)).await;
        let took = started.elapsed();
        assert_eq!(answer, Some((200, "ok\n".to_string())));
        assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A new commit is fetched and applied meanwhile.
    s.remote.write("prod/app.yaml", &manifests("green"));
    let pushed = Instant::now();
    s.remote.commit_and_push("green");
    eventually("green applied", Duration::from_secs(30), || async {
        mode(&client).await.filter(|m| m == "green")
    })
    .await;
    eprintln!("green applied {:?} after the push", pushed.elapsed());
    assert!(
        !trickle.is_finished(),
        "the commit landed while slow clients were still arriving"
    );
    let started = Instant::now();
    assert_eq!(
        get(&http, &format!("{}/healthz", veer.base)).await,
        Some((200, "ok\n".to_string()))
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    // Every slow client is closed by veer: at once to make room, or by the header-read
    // timeout; none outlives the timeout by more than a little.
    clients.extend(trickle.await.unwrap());
    let mut lifetimes = Vec::with_capacity(clients.len());
    for c in clients {
        lifetimes.push(c.await.unwrap());
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    let still_open = lifetimes.iter().filter(|l| l.is_none()).count();
    assert_eq!(
        still_open,
        0,
        "connections veer never closed (of {})",
        lifetimes.len()
    );
    let lifetimes: Vec<Duration> = lifetimes.into_iter().flatten().collect();
    let longest = lifetimes.iter().max().copied().unwrap_or_default();
    let timed_out = lifetimes
        .iter()
        .filter(|l| **l >= HEADER_READ_TIMEOUT - Duration::from_millis(500))
        .count();
    eprintln!(
        "{} slow clients: {} closed by the header-read timeout, the rest to make room; longest open {longest:?}",
        lifetimes.len(),
        timed_out
    );
    assert_eq!(lifetimes.len(), 3000);
    assert!(timed_out >= 1, "the header-read timeout closed none");
    assert!(
        longest < HEADER_READ_TIMEOUT + Duration::from_secs(2),
        "a slow client stayed {longest:?}"
    );

    // Descriptors: the HTTP side never took more than its cap (one more for the socket being
    // accepted, a few for the probes' and git's comings and goings), and the reserve stayed.
    let most = most.load(Ordering::Relaxed);
    eprintln!("open descriptors: {baseline} before, at most {most} during; cap {cap} of {soft}");
    assert!(
        most <= baseline + cap + 16,
        "{most} open descriptors, {baseline} before, cap {cap}"
    );
    assert!(most + 256 <= soft as usize, "{most} of {soft}");
    let log = veer.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(!log.contains("cannot accept"), "{log}");
    drop(veer);
    let _ = cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_not_ready_while_the_api_server_is_gone_and_ready_when_it_is_back() {
    veer::http_client::install_crypto_provider();
    let state = tempfile::tempdir().unwrap();
    let options = DevClusterOptions {
        port: support::free_port(),
        state_file: Some(state.path().join("cluster.json")),
        ..DevClusterOptions::default()
    };
    let cluster = dev::start_with(options.clone()).await;
    let client = dev::client(&cluster);
    let s = setup(&cluster, "  notReadyAfterApiOutage: 2s\n");
    let veer = spawn_veer(s.tmp.path(), &s.config, &s.kubeconfig, 1024, 1024);
    let http = fresh_client();
    let readyz = format!("{}/readyz", veer.base);
    eventually("readyz", Duration::from_secs(30), || async {
        get(&http, &readyz).await.filter(|(c, _)| *c == 200)
    })
    .await;
    assert_eq!(mode(&client).await.as_deref(), Some("blue"));

    // The API server goes away: it stops accepting at once and its watches end. Not awaited:
    // a watch that starts on a kept-alive connection as it stops can outlive the stop (the dev
    // cluster's closing signal is sent before it subscribes), which changes nothing here.
    let stopped = Instant::now();
    let stopping = tokio::spawn(cluster.shutdown());
    let (_, why) = eventually("readyz 503", Duration::from_secs(20), || async {
        get(&http, &readyz).await.filter(|(c, _)| *c == 503)
    })
    .await;
    let took = stopped.elapsed();
    eprintln!("not ready {took:?} after the API server stopped: {why}");
    assert!(
        why.starts_with("not ready: the Kubernetes API has been unreachable for "),
        "{why}"
    );
    assert!(why.contains(" (since "), "{why}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    // Still alive: only readiness changes.
    assert_eq!(
        get(&http, &format!("{}/healthz", veer.base)).await,
        Some((200, "ok\n".to_string()))
    );

    // Back on the same port, with the same objects (the state file is written as it stops):
    // ready again.
    let cluster = DevCluster::start(options)
        .await
        .expect("the dev cluster restarts");
    let back = Instant::now();
    eventually("readyz 200 again", Duration::from_secs(30), || async {
        get(&http, &readyz).await.filter(|(c, _)| *c == 200)
    })
    .await;
    eprintln!("ready {:?} after the API server came back", back.elapsed());
    assert_eq!(mode(&dev::client(&cluster)).await.as_deref(), Some("blue"));
    drop(veer);
    stopping.abort();
    let _ = cluster.shutdown().await;
}
