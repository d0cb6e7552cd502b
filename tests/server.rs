//! veer's HTTP server over real HTTP on 127.0.0.1 ephemeral ports: readiness, `/metrics`
//! (also scraped by a real Prometheus), git push hooks from GitHub, GitLab and Gitea (genuine,
//! forged, unsigned, for another repository or branch, oversize), and the status page: golden
//! HTML (`UPDATE_GOLDEN=1` rewrites `tests/fixtures/status/*.html`) and headless Chromium
//! (screenshot saved under `target/test-artifacts/`, DOM asserted).

#[path = "support/prometheus.rs"]
mod prometheus_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::mpsc;

use prometheus_support::PrometheusServer;
use veer::analysis::{Judgement, MetricsProvider, Prometheus, PrometheusConfig};
use veer::controller::Pass;
use veer::metrics::Metrics;
use veer::notify::webhook::sign;
use veer::pass::PassOutcome;
use veer::rollout::state::Phase;
use veer::secret::SecretSource;
use veer::server::{
    CheckMark, Limits, RolloutStatus, Server, ServerState, StatusBoard, StatusSnapshot,
    TrackedSource, Trigger, WeightSample, render_status, trigger_channel,
};
use veer::source::{GitRef, SourceSpec};
use veer::sync::state::{ObjectRecord, RejectedRecord, RevisionRecord, SyncState};
use veer_testkit::key;

const SECRET: &str = "hook-s3cret";
const REPO: &str = "https://git.example.com/platform/mesh.git";
const COMMIT: &str = "4f9c2d1e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d";

struct Running {
    server: Server,
    url: String,
    board: StatusBoard,
    metrics: Arc<Metrics>,
    triggers: mpsc::Receiver<Trigger>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(with_secret: bool) -> Running {
    start_with(with_secret, Limits::default()).await
}

async fn start_with(with_secret: bool, limits: Limits) -> Running {
    veer::http_client::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let (trigger, triggers) = trigger_channel();
    let board = StatusBoard::new();
    let metrics = Arc::new(Metrics::new());
    let source = SourceSpec::new(REPO, GitRef::Branch("main".into())).unwrap();
    board.set_source(TrackedSource::from(&source));
    let state = ServerState {
        metrics: metrics.clone(),
        board: board.clone(),
        trigger,
        webhook_secret: with_secret.then_some(SecretSource::File(secret_file)),
        source: Some(source),
    };
    let server = Server::start_with("127.0.0.1:0".parse().unwrap(), state, limits)
        .await
        .unwrap();
    let url = format!("http://{}", server.local_addr());
    Running {
        server,
        url,
        board,
        metrics,
        triggers,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

async fn get(r: &Running, path: &str) -> (u16, String, String) {
    let response = r
        .client
        .get(format!("{}{path}", r.url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn health_and_readiness_flip_when_the_controller_says() {
    let r = start(true).await;
    assert_eq!(get(&r, "/healthz").await.0, 200);
    let (status, _, body) = get(&r, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("no revision loaded yet"), "{body}");
    assert!(body.contains("cluster watches not up yet"), "{body}");
    r.board.set_watches_up(true);
    let (status, _, body) = get(&r, "/readyz").await;
    assert_eq!(
        (status, body.trim()),
        (503, "not ready: no revision loaded yet")
    );
    // A pass that reconciled a revision marks it loaded.
    r.board.record_pass(
        &Pass::InSync {
            commit: COMMIT.into(),
        },
        &SyncState::default(),
        Utc::now(),
    );
    assert_eq!(
        get(&r, "/readyz").await,
        (200, "text/plain; charset=utf-8".into(), "ready\n".into())
    );
    r.board.set_watches_up(false);
    assert_eq!(get(&r, "/readyz").await.0, 503);
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_text_format() {
    let r = start(true).await;
    r.metrics.record_sync(PassOutcome::Synced);
    r.metrics.set_rollout_weight("shop/reviews", 40.0);
    let (status, content_type, body) = get(&r, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, veer::metrics::CONTENT_TYPE);
    assert!(
        body.contains("veer_sync_results_total{outcome=\"synced\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("veer_rollout_weight{rollout=\"shop/reviews\"} 40.0"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE veer_sync_results_total counter"),
        "{body}"
    );
}

fn push_body(repo: &str, reference: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ref": reference,
        "before": "0".repeat(40),
        "after": COMMIT,
        "repository": {
            "full_name": "platform/mesh",
            "clone_url": repo,
            "html_url": repo.trim_end_matches(".git"),
        },
        "commits": [{"id": COMMIT, "message": "shift reviews to v2"}],
    }))
    .unwrap()
}

fn gitlab_body(repo: &str, reference: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "object_kind": "push",
        "ref": reference,
        "after": COMMIT,
        "project": {"git_http_url": repo, "git_ssh_url": "git@git.example.com:platform/mesh.git"},
        "repository": {"url": "git@git.example.com:platform/mesh.git"},
    }))
    .unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Host {
    GitHub,
    GitLab,
    Gitea,
}

/// A request as `host` sends it: its event header, and its signature made with `secret`
/// (`None`: unsigned).
fn hook(r: &Running, host: Host, body: Vec<u8>, secret: Option<&str>) -> reqwest::RequestBuilder {
    let mut request = r
        .client
        .post(format!("{}/hooks/git", r.url))
        .header("content-type", "application/json");
    request = match host {
        Host::GitHub => request.header("X-GitHub-Event", "push"),
        Host::GitLab => request.header("X-Gitlab-Event", "Push Hook"),
        Host::Gitea => request.header("X-Gitea-Event", "push"),
    };
    if let Some(secret) = secret {
        let sig = sign(secret.as_bytes(), &body);
        request = match host {
            Host::GitHub => request.header("X-Hub-Signature-256", sig),
            Host::GitLab => request.header("X-Gitlab-Token", secret),
            Host::Gitea => request.header("X-Gitea-Signature", sig.trim_start_matches("sha256=")),
        };
    }
    request.body(body)
}

async fn send(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn body_for(host: Host, repo: &str, reference: &str) -> Vec<u8> {
    match host {
        Host::GitHub | Host::Gitea => push_body(repo, reference),
        Host::GitLab => gitlab_body(repo, reference),
    }
}

#[tokio::test]
async fn each_git_host_triggers_a_reconcile_and_forgeries_are_refused() {
    let mut r = start(true).await;
    for host in [Host::GitHub, Host::GitLab, Host::Gitea] {
        let ok = hook(
            &r,
            host,
            body_for(host, REPO, "refs/heads/main"),
            Some(SECRET),
        );
        assert_eq!(
            send(ok).await,
            (200, "reconcile triggered\n".into()),
            "{host:?}"
        );
        let trigger = tokio::time::timeout(Duration::from_secs(5), r.triggers.recv())
            .await
            .expect("a trigger within 5s")
            .expect("the channel is open");
        assert_eq!(trigger.reference, "refs/heads/main");
        assert_eq!(trigger.commit.as_deref(), Some(COMMIT));
        assert_eq!(format!("{host:?}").to_lowercase(), trigger.host.as_str());

        let forged = hook(
            &r,
            host,
            body_for(host, REPO, "refs/heads/main"),
            Some("guess"),
        );
        let (status, body) = send(forged).await;
        assert_eq!(status, 401, "{host:?}: {body}");
        assert!(body.contains("does not match"), "{body}");
        let unsigned = hook(&r, host, body_for(host, REPO, "refs/heads/main"), None);
        let (status, body) = send(unsigned).await;
        assert_eq!(status, 401, "{host:?}: {body}");
        assert!(body.contains("no signature"), "{body}");
        // A body altered after signing is forged too.
        let sig = sign(SECRET.as_bytes(), &push_body(REPO, "refs/heads/main"));
        let tampered = r
            .client
            .post(format!("{}/hooks/git", r.url))
            .header("X-GitHub-Event", "push")
            .header("X-Hub-Signature-256", sig)
            .body(push_body(REPO, "refs/heads/prod"));
        assert_eq!(send(tampered).await.0, 401);
        assert!(
            r.triggers.try_recv().is_err(),
            "{host:?}: no trigger from a refused hook"
        );
    }
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_repositories_branches_and_events_are_ignored() {
    let mut r = start(true).await;
    let cases = [
        (
            body_for(
                Host::GitHub,
                "https://git.example.com/platform/other.git",
                "refs/heads/main",
            ),
            "is not the tracked https://git.example.com/platform/mesh.git",
        ),
        (
            body_for(Host::GitHub, REPO, "refs/heads/feature"),
            "ref refs/heads/feature is not the tracked refs/heads/main",
        ),
        (
            body_for(Host::GitHub, REPO, "refs/tags/main"),
            "is not the tracked refs/heads/main",
        ),
    ];
    for (body, want) in cases {
        let (status, text) = send(hook(&r, Host::GitHub, body, Some(SECRET))).await;
        assert_eq!(status, 202, "{text}");
        assert!(
            text.starts_with("ignored: ") && text.contains(want),
            "{text}"
        );
    }
    let body = push_body(REPO, "refs/heads/main");
    let ping = r
        .client
        .post(format!("{}/hooks/git", r.url))
        .header("X-GitHub-Event", "ping")
        .header("X-Hub-Signature-256", sign(SECRET.as_bytes(), &body))
        .body(body);
    let (status, text) = send(ping).await;
    assert_eq!(
        (status, text.contains("`ping` is not a push")),
        (202, true),
        "{text}"
    );
    // The same URL in its SSH form is the same repository.
    let ssh = body_for(
        Host::GitHub,
        "git@git.example.com:platform/mesh.git",
        "refs/heads/main",
    );
    assert_eq!(send(hook(&r, Host::GitHub, ssh, Some(SECRET))).await.0, 200);
    assert!(r.triggers.try_recv().is_ok());
    assert!(
        r.triggers.try_recv().is_err(),
        "ignored hooks trigger nothing"
    );
}

#[tokio::test]
async fn pushes_coalesce_while_a_reconcile_is_queued() {
    let mut r = start(true).await;
    for _ in 0..3 {
        let body = push_body(REPO, "refs/heads/main");
        assert_eq!(
            send(hook(&r, Host::GitHub, body, Some(SECRET))).await.0,
            200
        );
    }
    assert!(r.triggers.try_recv().is_ok());
    assert!(
        r.triggers.try_recv().is_err(),
        "one queued reconcile covers them all"
    );
}

#[tokio::test]
async fn oversize_bodies_get_413_and_hooks_without_a_secret_401() {
    let r = start(true).await;
    let mut big = push_body(REPO, "refs/heads/main");
    big.resize(veer::server::MAX_HOOK_BYTES + 1, b' ');
    let (status, _) = send(hook(&r, Host::GitHub, big, Some(SECRET))).await;
    assert_eq!(status, 413);

    let r = start(false).await;
    let (status, text) = send(hook(
        &r,
        Host::GitHub,
        push_body(REPO, "refs/heads/main"),
        Some(SECRET),
    ))
    .await;
    assert_eq!(status, 401);
    assert!(text.contains("set server.webhookSecret"), "{text}");
}

/// A raw connection that has sent `bytes` and nothing more.
async fn raw(r: &Running, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(r.server.local_addr())
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Everything the server sends until it closes the connection, and how long that took;
/// `None` when it is still open after `within`.
async fn until_closed(
    stream: &mut tokio::net::TcpStream,
    within: Duration,
) -> Option<(String, Duration)> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| {
        (
            String::from_utf8_lossy(&got).into_owned(),
            started.elapsed(),
        )
    })
}

const HALF_A_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: veer\r\nX-Slow: ";

fn hook_head(length: usize) -> Vec<u8> {
    format!(
        "POST /hooks/git HTTP/1.1\r\nHost: veer\r\nX-GitHub-Event: push\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"ref\":"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_never_finish_and_bodies_that_never_arrive_are_cut_off() {
    let limits = Limits {
        max_connections: 16,
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(1500),
    };
    let r = start_with(true, limits).await;
    // Half a request head: closed by the header-read timeout, without an answer.
    let mut slow_head = raw(&r, HALF_A_HEAD).await;
    // A hook whose body stops after a few bytes: 408 after the request timeout.
    let mut slow_body = raw(&r, &hook_head(4096)).await;
    let (text, took) = until_closed(&mut slow_head, Duration::from_secs(5))
        .await
        .expect("a head that never finishes is closed");
    assert!(text.is_empty(), "{text}");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let (text, took) = until_closed(&mut slow_body, Duration::from_secs(5))
        .await
        .expect("a body that never arrives is cut off");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("server.requestTimeout"), "{text}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // A kept-alive connection idle past the header-read timeout is closed too.
    let mut kept = raw(&r, b"GET /healthz HTTP/1.1\r\nHost: veer\r\n\r\n").await;
    let (text, took) = until_closed(&mut kept, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(took >= Duration::from_millis(800), "{took:?}");
    // A head larger than the server takes: 431.
    let mut huge = raw(&r, b"GET /healthz HTTP/1.1\r\nHost: veer\r\nX-Big: ").await;
    {
        use tokio::io::AsyncWriteExt;
        let _ = huge
            .write_all(&vec![b'a'; veer::server::listener::MAX_HEAD_BYTES + 1])
            .await;
    }
    let (text, _) = until_closed(&mut huge, Duration::from_secs(5))
        .await
        .expect("an oversize head is refused");
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn routes_that_read_nothing_take_no_body() {
    let r = start(true).await;
    for path in ["/", "/healthz", "/readyz", "/metrics"] {
        let response = r
            .client
            .get(format!("{}{path}", r.url))
            .body("x".repeat(100))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 413, "{path}");
        let text = response.text().await.unwrap();
        assert_eq!(text, "this endpoint takes no request body\n", "{path}");
    }
    // Chunked, of unknown length: refused as well, before anything reads it.
    let mut chunked = raw(
        &r,
        b"GET /metrics HTTP/1.1\r\nHost: veer\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    let (text, _) = until_closed(&mut chunked, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    // An empty body is no body.
    let response = r
        .client
        .get(format!("{}/healthz", r.url))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    r.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_slow_clients_make_room_and_requests_in_flight_keep_theirs() {
    let limits = Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(3),
    };
    let r = start_with(true, limits).await;
    // Four slow clients fill the cap; a health check still gets in, closing the oldest.
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(raw(&r, HALF_A_HEAD).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let (status, _, body) = get(&r, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert!(started.elapsed() < Duration::from_secs(1));
    let (_, took) = until_closed(&mut slow[0], Duration::from_secs(2))
        .await
        .expect("the oldest slow client made room");
    assert!(took < Duration::from_secs(2));
    assert!(
        until_closed(&mut slow[3], Duration::from_millis(200))
            .await
            .is_none(),
        "the newest slow client keeps its slot"
    );
    drop(slow);
    r.server.shutdown().await.unwrap();

    // Four requests in flight (hook bodies still arriving) hold every slot: a fifth
    // connection is closed at once, unanswered, and the four get their 408 in time.
    let r = start_with(true, limits).await;
    let mut busy = Vec::new();
    for _ in 0..4 {
        busy.push(raw(&r, &hook_head(1000)).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = raw(&r, b"GET /healthz HTTP/1.1\r\nHost: veer\r\n\r\n").await;
    let (text, took) = until_closed(&mut refused, Duration::from_secs(2))
        .await
        .expect("closed at once");
    assert_eq!(text, "");
    assert!(took < Duration::from_secs(1), "{took:?}");
    for stream in &mut busy {
        let (text, _) = until_closed(stream, Duration::from_secs(6))
            .await
            .expect("the slow upload is cut off");
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
    assert_eq!(get(&r, "/healthz").await.0, 200);
    r.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answer_gives_its_slot_back() {
    let limits = Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(2),
    };
    let r = start_with(true, limits).await;
    // A status page of many MiB: more than the sockets' buffers hold unread.
    let objects = (0..30_000)
        .map(|i| {
            let name = format!("reviews-{i:05}-{}", "x".repeat(150));
            ObjectRecord::new(&key("VirtualService", "shop", &name), None, "unchanged")
        })
        .collect();
    let state = SyncState {
        objects,
        ..SyncState::default()
    };
    let pass = Pass::InSync {
        commit: COMMIT.into(),
    };
    r.board.record_pass(&pass, &state, Utc::now());
    let mut stuck = raw(&r, b"GET / HTTP/1.1\r\nHost: veer\r\n\r\n").await;
    // The only slot waits for a client that does not read its answer: not idle, so others
    // are turned away.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut turned_away = raw(&r, b"GET /healthz HTTP/1.1\r\nHost: veer\r\n\r\n").await;
    let (text, _) = until_closed(&mut turned_away, Duration::from_secs(2))
        .await
        .expect("closed at once");
    assert_eq!(text, "");
    // Once its answer has waited the request timeout for it, the reader is cut off and the
    // slot is back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, _, _) = get(&r, "/healthz").await;
    assert_eq!(status, 200);
    let (text, _) = until_closed(&mut stuck, Duration::from_secs(10))
        .await
        .expect("cut off");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        body.len() < length,
        "{} of {length} bytes: the answer was not cut",
        body.len()
    );
    r.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_drops_idle_connections_and_finishes_requests_in_flight() {
    let limits = Limits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(30),
    };
    let r = start_with(true, limits).await;
    let mut idle = raw(&r, HALF_A_HEAD).await;
    let body = push_body(REPO, "refs/heads/main");
    let mut in_flight = raw(
        &r,
        format!(
            "POST /hooks/git HTTP/1.1\r\nHost: veer\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
            sign(SECRET.as_bytes(), &body),
            body.len()
        )
        .as_bytes(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let stopping = tokio::spawn(r.server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!stopping.is_finished(), "a request in flight is waited for");
    {
        use tokio::io::AsyncWriteExt;
        in_flight.write_all(&body).await.unwrap();
    }
    let (text, _) = until_closed(&mut in_flight, Duration::from_secs(5))
        .await
        .expect("answered, then closed");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("reconcile triggered"), "{text}");
    stopping.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        until_closed(&mut idle, Duration::from_secs(1))
            .await
            .is_some(),
        "the idle connection was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_metrics() {
    let r = start(true).await;
    r.metrics.record_sync(PassOutcome::Synced);
    r.metrics.record_sync(PassOutcome::Synced);
    let target = r.server.local_addr().to_string();
    let prometheus =
        tokio::task::spawn_blocking(move || PrometheusServer::start_job("veer", &[target]))
            .await
            .unwrap();
    let provider = Prometheus::new(PrometheusConfig::new(&prometheus.url())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut up, mut synced) = (None, None);
    while Instant::now() < deadline {
        up = provider.query("up{job=\"veer\"}").await.value();
        synced = provider
            .query("veer_sync_results_total{job=\"veer\",outcome=\"synced\"}")
            .await
            .value();
        if up == Some(1.0) && synced == Some(2.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(up, Some(1.0), "Prometheus never saw veer up");
    assert_eq!(
        synced,
        Some(2.0),
        "Prometheus never read veer_sync_results_total"
    );
}

// ---- the status page ----

const DIFF: &str = "VirtualService shop/reviews: update (drift: changed in the cluster, not in git)\n--- live VirtualService shop/reviews\n+++ git VirtualService shop/reviews\n@@ -9,4 +9,4 @@\n     - destination:\n         host: reviews\n         subset: v1\n-      weight: 100\n+      weight: 60\n1 to create, 1 to update (1 drift), 0 to prune\n";

/// A board as a controller in the middle of a rollout would leave it, with a hostile object
/// name; times relative to `now`.
fn busy_board(now: DateTime<Utc>) -> StatusBoard {
    let board = StatusBoard::new();
    let source = SourceSpec::new(REPO, GitRef::Branch("main".into()))
        .unwrap()
        .with_sub_path("clusters/prod")
        .unwrap();
    board.set_source(TrackedSource::from(&source));
    board.set_watches_up(true);
    let mut failed = ObjectRecord::new(&key("DestinationRule", "shop", "ratings"), None, "failed");
    failed.code = Some(422);
    failed.message = Some("spec.subsets[1].name: Required value".into());
    let state = SyncState {
        revision: Some(RevisionRecord {
            commit: COMMIT.into(),
            summary: "reviews: shift to v2 <canary>".into(),
            author: "Ada Lovelace <ada@example.com>".into(),
        }),
        rejected: Some(RejectedRecord {
            commit: "9".repeat(40),
            summary: "broken".into(),
            errors: 2,
            at: "2026-11-25T09:00:00Z".into(),
        }),
        objects: vec![
            ObjectRecord::new(
                &key("VirtualService", "shop", "reviews"),
                Some("h1".into()),
                "drift-reported",
            ),
            failed,
            ObjectRecord::new(
                &key("Gateway", "shop", "<script>alert(1)</script>"),
                Some("h2".into()),
                "created",
            ),
            ObjectRecord::new(
                &key("VirtualService", "shop", "ratings"),
                Some("h3".into()),
                "unchanged",
            ),
        ],
        drift: vec![key("VirtualService", "shop", "reviews").to_string()],
        ..SyncState::default()
    };
    board.record_pass(
        &Pass::DriftReported {
            commit: COMMIT.into(),
            objects: vec![key("VirtualService", "shop", "reviews")],
        },
        &state,
        now - chrono::Duration::seconds(20),
    );
    board.set_last_diff(Some(DIFF.into()));
    let at = |minutes: i64| now - chrono::Duration::minutes(minutes);
    let check = |minutes: i64, verdict: Judgement, detail: &str| CheckMark {
        at: at(minutes),
        check: detail.split(' ').next().unwrap_or_default().to_string(),
        verdict,
        detail: detail.into(),
    };
    board.put_rollout(RolloutStatus {
        name: "VirtualService shop/reviews spec.http[0]".into(),
        revision: COMMIT.into(),
        phase: Phase::Progressing,
        split: vec![("reviews/v1".into(), 60), ("reviews/v2".into(), 40)],
        target: vec![("reviews/v1".into(), 0), ("reviews/v2".into(), 100)],
        samples: vec![
            WeightSample {
                at: at(30),
                weight: 0,
            },
            WeightSample {
                at: at(26),
                weight: 10,
            },
            WeightSample {
                at: at(18),
                weight: 20,
            },
            WeightSample {
                at: at(8),
                weight: 40,
            },
        ],
        checks: vec![
            check(22, Judgement::Pass, "success-rate = 99.8 (wants >= 99)"),
            check(
                14,
                Judgement::Inconclusive,
                "latency-p99: too few requests (12 < 50)",
            ),
            check(11, Judgement::Pass, "latency-p99 = 180 (wants <= 500)"),
            check(3, Judgement::Pass, "success-rate = 99.6 (wants >= 99)"),
        ],
        failure: None,
        interfered: Some(
            "the route serves reviews/v1:50, reviews/v2:50 where the step set reviews/v1:80, reviews/v2:20 (edited by kubectl-edit); written again at 09:58:12 UTC".into(),
        ),
    });
    board.put_rollout(RolloutStatus {
        name: "VirtualService shop/ratings spec.http[0] (primary)".into(),
        revision: "1".repeat(40),
        phase: Phase::Failed,
        split: vec![("ratings/v1".into(), 100), ("ratings/v2".into(), 0)],
        target: vec![("ratings/v1".into(), 50), ("ratings/v2".into(), 50)],
        samples: vec![
            WeightSample {
                at: at(40),
                weight: 0,
            },
            WeightSample {
                at: at(36),
                weight: 25,
            },
            WeightSample {
                at: at(31),
                weight: 0,
            },
        ],
        checks: vec![
            check(34, Judgement::Fail, "error-rate = 7.5 (wants <= 1)"),
            check(32, Judgement::Fail, "error-rate = 9.1 (wants <= 1)"),
        ],
        failure: Some("2 failed checks (threshold 2)".into()),
        interfered: None,
    });
    board
}

fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
        .single()
        .unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/status")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 and review it",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual)
            .unified_diff()
            .header("golden", "rendered")
            .to_string();
        panic!(
            "{} differs (UPDATE_GOLDEN=1 rewrites it):\n{diff}",
            path.display()
        );
    }
}

#[test]
fn status_page_golden_busy() {
    let html = render_status(&busy_board(fixed_now()).snapshot(fixed_now()));
    assert!(
        !html.contains("<script>"),
        "an object name reached the page unescaped"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("<meta http-equiv=\"refresh\""));
    golden("busy.html", &html);
}

#[test]
fn status_page_golden_starting() {
    let board = StatusBoard::new();
    let html = render_status(&board.snapshot(fixed_now()));
    assert!(html.contains("not ready: no revision loaded yet; cluster watches not up yet"));
    golden("starting.html", &html);
}

#[test]
fn empty_snapshot_renders() {
    let html = render_status(&StatusSnapshot::default());
    assert!(html.contains("none configured"));
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("test-artifacts")
}

async fn chromium(args: &[String]) -> std::process::Output {
    let mut command = tokio::process::Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ])
        .args(args)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("chromium finished within 90s");
    match output {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run `chromium`: {e}; install it with `apt-get install chromium` (or `scripts/install-deps.sh`)"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_in_headless_chromium() {
    let r = start(true).await;
    // The page as the board is now: the server renders with the real clock.
    let busy = busy_board(Utc::now());
    let state = ServerState {
        metrics: r.metrics.clone(),
        board: busy,
        trigger: trigger_channel().0,
        webhook_secret: None,
        source: None,
    };
    let server = Server::start("127.0.0.1:0".parse().unwrap(), state)
        .await
        .unwrap();
    let url = format!("http://{}/", server.local_addr());
    let profile = tempfile::tempdir().unwrap();
    let user_data = format!("--user-data-dir={}", profile.path().display());

    let dom = chromium(&[user_data.clone(), "--dump-dom".into(), url.clone()]).await;
    assert!(
        dom.status.success(),
        "chromium --dump-dom failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    for want in [
        REPO,
        &COMMIT[..12],
        "clusters/prod",
        ">Progressing<",
        ">Failed<",
        "reviews/v2",
        "<strong>40%</strong>",
        "<svg class=\"chart\"",
        "class=\"weight\"",
        "class=\"verdict fail\"",
        "class=\"verdict inconclusive\"",
        "1 drifted",
        "1 failed",
        "spec.subsets[1].name: Required value",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "+      weight: 60",
    ] {
        assert!(
            dom.contains(want),
            "the page in Chromium lacks {want:?}:\n{dom}"
        );
    }
    assert!(!dom.contains("<script"), "a script element reached the DOM");

    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let shot = chromium(&[user_data, format!("--screenshot={}", png.display()), url]).await;
    assert!(
        shot.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes =
        std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        png.display()
    );
    assert!(
        bytes.len() > 20_000,
        "the screenshot is suspiciously small ({} bytes)",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
    server.shutdown().await.unwrap();
}
