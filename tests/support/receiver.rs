//! A real HTTP receiver on 127.0.0.1 for the notification tests: it records every request
//! (method, path, headers, body, arrival time on tokio's clock) and answers from a script:
//! plain 200s, a status with `Retry-After`, Slack Web API replies with fresh `ts` values, or a
//! hold until the test releases it (a slow receiver that cannot make a test flaky).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio::time::Instant;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this body (Slack's incoming webhooks answer `ok`).
    Ok(String),
    /// This status, with `Retry-After` when given, and a body.
    Status {
        code: u16,
        retry_after: Option<String>,
        body: String,
    },
    /// 200 `{"ok": true, "ts": ...}` with a new `ts` each time, like `chat.postMessage`.
    SlackOk,
    /// 200 with this JSON.
    Json(serde_json::Value),
    /// Wait until [`Receiver::release`], then answer 200 `ok`.
    Hold,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_string())
    }
}

struct State {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    answered: Mutex<usize>,
    released: watch::Sender<bool>,
    next_ts: Mutex<u64>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Start on an ephemeral loopback port; answers `default` when the script is empty.
    pub async fn start(default: Reply) -> Receiver {
        let (released, _) = watch::channel(false);
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            answered: Mutex::new(0),
            released,
            next_ts: Mutex::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let app_state = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = app_state.clone();
                async move { handle(state, method, uri, headers, body).await }
            },
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver serves");
        });
        Receiver { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Answers for the next requests, in order; then the default again.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// Let held requests (and later ones) answer.
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Requests that got their answer.
    pub fn answered(&self) -> usize {
        *self.state.answered.lock().unwrap()
    }

    /// Wait (bounded, on tokio's clock) until at least `n` requests have arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} request(s) within {within:?}, wanted {n}: {:#?}",
                got.len(),
                got.iter().map(|r| &r.path).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn handle(
    state: Arc<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    let reply = {
        let next = state.script.lock().unwrap().pop_front();
        next.unwrap_or_else(|| state.default.lock().unwrap().clone())
    };
    let response = match reply {
        Reply::Ok(body) => (StatusCode::OK, body).into_response(),
        Reply::Status {
            code,
            retry_after,
            body,
        } => {
            let mut r = (StatusCode::from_u16(code).unwrap(), body).into_response();
            if let Some(after) = retry_after {
                r.headers_mut()
                    .insert("retry-after", after.parse().unwrap());
            }
            r
        }
        Reply::SlackOk => {
            let ts = {
                let mut n = state.next_ts.lock().unwrap();
                *n += 1;
                format!("1700000000.{:06}", *n)
            };
            axum::Json(serde_json::json!({"ok": true, "channel": "C0MESH", "ts": ts}))
                .into_response()
        }
        Reply::Json(v) => axum::Json(v).into_response(),
        Reply::Hold => {
            let mut released = state.released.subscribe();
            // Ends when released (or the receiver is dropped).
            let _ = released.wait_for(|r| *r).await;
            (StatusCode::OK, "ok").into_response()
        }
    };
    *state.answered.lock().unwrap() += 1;
    response
}
