//! The listener against hostile and slow clients over raw TCP: header-read and request
//! timeouts, oversize heads, bodies on routes that take none, the connection cap, clients that
//! never read their answer, and graceful shutdown.

use std::time::{Duration, Instant};

use chrono::Utc;

use veer::controller::Pass;
use veer::notify::webhook::sign;
use veer::server::Limits;
use veer::sync::state::{ObjectRecord, SyncState};
use veer_testkit::key;

use crate::helpers::{COMMIT, REPO, Running, SECRET, get, push_body, start, start_with};

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
