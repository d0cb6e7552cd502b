//! The listener: accepts TCP connections and serves HTTP/1.1 on each with hyper, within
//! limits no client can stretch:
//!
//! - a request's line and headers must arrive within `headerReadTimeout` (also the longest a
//!   kept-alive connection may sit idle between requests); at most [`MAX_HEAD_BYTES`] (431);
//! - a request, body included, is answered within `requestTimeout` (408 after), and a client
//!   that leaves its answer unread that long is cut off;
//! - at most `maxConnections` connections are open at once, each holding a slot of a
//!   semaphore (one descriptor each: the unit of [`super::budget`]).
//!
//! At the cap, neither plain answer keeps `/healthz` alive: not accepting until a slot frees
//! leaves the liveness probe queued in the kernel behind every slow client, and accepting and
//! closing at once refuses it. So a new connection takes the slot of the oldest *idle*
//! connection (no request in service and no answer waiting to be read: a slow client still
//! sending its headers, or a kept-alive connection between requests), which is closed to make
//! room; a slow client holds a slot only until `maxConnections` newer connections arrive.
//! Only when no connection is idle is the new one closed at once: the server is then really
//! busy, and every connection in a request ends within `requestTimeout`.
//!
//! Stopping: the listener closes, idle connections are dropped, connections in a request
//! finish it (hyper's graceful shutdown) and close; [`serve`] returns when all are closed.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::time::Instant;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::config::ServerConfig;

/// Largest request line plus headers (a git host's push sends a few KiB). Larger: 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest read buffer of one connection (hyper's minimum is 8 KiB).
const MAX_BUF_BYTES: usize = 64 * 1024;
/// How long the accept loop waits for an evicted connection to give its slot back.
const EVICTION_WAIT: Duration = Duration::from_millis(500);
/// After an accept error other than a dead connection (out of descriptors, of memory).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);
/// The semaphore's own ceiling, and `acquire_many`'s (u32).
const MAX_CAP: usize = 1 << 20;

/// What one server allows its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (at least 1).
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_config(&ServerConfig::default())
    }
}

impl Limits {
    /// As configured, before the descriptor budget (see [`super::budget::at_start`]).
    pub fn from_config(server: &ServerConfig) -> Self {
        Limits {
            max_connections: server.max_connections,
            header_read_timeout: server.header_read_timeout,
            request_timeout: server.request_timeout,
        }
    }

    fn cap(&self) -> usize {
        self.max_connections.clamp(1, MAX_CAP)
    }
}

/// Where a connection stands, for eviction and shutdown.
const IDLE: u8 = 0;
/// A request in service, or its answer being written: never evicted.
const BUSY: u8 = 1;
/// Evicted or stopping: its task drops the connection.
const CLOSING: u8 = 2;

#[derive(Default)]
struct Slot {
    state: AtomicU8,
    close: Notify,
    /// Since when a write to the client has been waiting for it to read.
    blocked_since: Mutex<Option<Instant>>,
}

impl Slot {
    fn claim(&self, from: u8, to: u8) -> bool {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn blocked_since(&self) -> MutexGuard<'_, Option<Instant>> {
        // An instant, written whole.
        self.blocked_since.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A write to the client was attempted: `blocked` when it could not proceed.
    fn wrote(&self, blocked: bool) {
        let mut since = self.blocked_since();
        match (blocked, since.is_some()) {
            (true, false) => *since = Some(Instant::now()),
            (false, true) => *since = None,
            (true, true) | (false, false) => {}
        }
    }

    /// Closable to make room: no request in service, no answer waiting to be read.
    fn evict(&self) -> bool {
        self.blocked_since().is_none() && self.claim(IDLE, CLOSING)
    }
}

/// The connection's socket, noting in its slot when the client stops taking what it is sent
/// (hyper buffers a whole answer, so only the socket knows it is not written yet).
struct Watched {
    io: TokioIo<TcpStream>,
    slot: Arc<Slot>,
}

impl hyper::rt::Read for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.slot.wrote(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.slot.wrote(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.slot.wrote(polled.is_pending());
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The open connections, oldest first, and the semaphore that caps them.
struct Slots {
    permits: Arc<Semaphore>,
    cap: usize,
    open: Mutex<BTreeMap<u64, Arc<Slot>>>,
    next: AtomicU64,
}

/// A connection's hold on its slot; gives it back when dropped.
struct Admitted {
    slots: Arc<Slots>,
    id: u64,
    slot: Arc<Slot>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        // Unlisted first, then the permit (a field) is released.
        self.slots.lock().remove(&self.id);
    }
}

impl Slots {
    fn new(cap: usize) -> Arc<Self> {
        Arc::new(Slots {
            permits: Arc::new(Semaphore::new(cap)),
            cap,
            open: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Slot>>> {
        // Entries go in and out whole: a poisoned map is still a consistent one.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection: a free one; else the oldest idle connection's, closed to
    /// make room; else none (every connection is in a request: the caller closes the new one).
    async fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !self.evict_oldest_idle() {
                    return None;
                }
                let freed = self.permits.clone().acquire_owned();
                match tokio::time::timeout(EVICTION_WAIT, freed).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) | Err(_) => return None,
                }
            }
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        self.lock().insert(id, slot.clone());
        Some(Admitted {
            slots: self.clone(),
            id,
            slot,
            _permit: permit,
        })
    }

    /// Tell the oldest idle connection to close; `false` when none is idle.
    fn evict_oldest_idle(&self) -> bool {
        let open = self.lock();
        for slot in open.values() {
            if slot.evict() {
                slot.close.notify_one();
                return true;
            }
        }
        false
    }

    /// Until every connection has closed.
    async fn all_closed(&self) {
        let all = u32::try_from(self.cap).unwrap_or(u32::MAX);
        // The semaphore is never closed, so this only waits.
        let _ = self.permits.acquire_many(all).await;
    }
}

/// A request in service: the slot is busy until the answer's body is dropped (written).
struct Busy(Arc<Slot>);

impl Busy {
    /// The slot, busy from now on; `None` when it is closing.
    fn claim(slot: &Arc<Slot>) -> Option<Busy> {
        slot.claim(IDLE, BUSY).then(|| Busy(slot.clone()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.claim(BUSY, IDLE);
    }
}

/// An answer's body that keeps its connection busy while hyper writes it.
struct Tracked {
    inner: Body,
    _busy: Option<Busy>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A short plain-text answer that also closes the connection.
fn closing_answer(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Body::from(text + "\n"));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serve `app` on `listener` within `limits` until `stop` fires (or its sender is dropped);
/// returns once every connection has closed.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: oneshot::Receiver<()>,
) {
    let slots = Slots::new(limits.cap());
    let (closing, closed) = watch::channel(false);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_BUF_BYTES);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let Some(admitted) = slots.admit().await else {
            debug!(%peer, "connection closed at once: every connection is in a request");
            continue;
        };
        tokio::spawn(connection(
            &http,
            stream,
            peer,
            app.clone(),
            admitted,
            limits.request_timeout,
            closed.clone(),
        ));
    }
    drop(listener);
    closing.send_replace(true);
    slots.all_closed().await;
}

async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    // A connection that died in the queue is its client's business.
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    // Out of descriptors or memory: wait for some to free rather than spin.
    warn!(%error, "cannot accept an HTTP connection; trying again shortly");
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// One connection, from its first byte until it closes, is evicted or the server stops.
fn connection(
    http: &http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    admitted: Admitted,
    request_timeout: Duration,
    mut closed: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let slot = admitted.slot.clone();
    let service_slot = slot.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let app = app.clone();
        let busy = Busy::claim(&service_slot);
        async move {
            let Some(busy) = busy else {
                // Evicted or stopping as this request arrived.
                let answer = closing_answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server is closing this connection; try again".into(),
                );
                return Ok::<_, Infallible>(answer.map(|inner| Tracked { inner, _busy: None }));
            };
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = match tokio::time::timeout(
                request_timeout,
                app.oneshot(request.map(Body::new)),
            )
            .await
            {
                Ok(Ok(answer)) => answer,
                Ok(Err(never)) => match never {},
                Err(_) => {
                    debug!(%peer, "request timed out");
                    closing_answer(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "the request took longer than {request_timeout:?} (server.requestTimeout)"
                        ),
                    )
                }
            };
            Ok(answer.map(|inner| Tracked {
                inner,
                _busy: Some(busy),
            }))
        }
    });
    let io = Watched {
        io: TokioIo::new(stream),
        slot: slot.clone(),
    };
    let conn = http.serve_connection(io, service);
    async move {
        let _admitted = admitted;
        let mut conn = std::pin::pin!(conn);
        let mut stopping = false;
        let mut check = tokio::time::interval((request_timeout / 4).max(Duration::from_millis(10)));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ended = conn.as_mut() => {
                    if let Err(error) = ended {
                        debug!(%peer, %error, "HTTP connection ended");
                    }
                    return;
                }
                () = slot.close.notified() => {
                    debug!(%peer, "idle HTTP connection closed to make room for a new one");
                    return;
                }
                _ = check.tick() => {
                    let since = *slot.blocked_since();
                    if since.is_some_and(|s| s.elapsed() >= request_timeout) {
                        debug!(%peer, "HTTP connection closed: the client does not read its answer");
                        return;
                    }
                }
                _ = closed.changed(), if !stopping => {
                    stopping = true;
                    // Nothing in flight: close now. A request in service: finish, then close.
                    if slot.claim(IDLE, CLOSING) {
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_server_evicts_the_oldest_idle_connection_never_a_busy_one() {
        let slots = Slots::new(2);
        let a = slots.admit().await.unwrap();
        let b = slots.admit().await.unwrap();
        // a is in a request; b is idle (a slow client): a third connection takes b's slot.
        assert!(a.slot.claim(IDLE, BUSY));
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.admit().await }
        });
        tokio::task::yield_now().await;
        assert_eq!(b.slot.state.load(Ordering::Acquire), CLOSING);
        // b's task sees the notice and drops its connection.
        b.slot.close.notified().await;
        drop(b);
        let c = waiting.await.unwrap().unwrap();
        assert_eq!(c.id, 2);
        assert_eq!(slots.lock().keys().copied().collect::<Vec<_>>(), vec![0, 2]);
    }

    #[tokio::test]
    async fn a_server_whose_connections_are_all_in_a_request_refuses_at_once() {
        let slots = Slots::new(1);
        let a = slots.admit().await.unwrap();
        let busy = Busy::claim(&a.slot).unwrap();
        assert!(slots.admit().await.is_none());
        // The request ends, but its answer waits for the client to read it: not evicted.
        drop(busy);
        a.slot.wrote(true);
        assert!(slots.admit().await.is_none());
        // Read: the connection is idle again, and may be evicted.
        a.slot.wrote(false);
        assert_eq!(a.slot.state.load(Ordering::Acquire), IDLE);
        let admit = tokio::spawn({
            let slots = slots.clone();
            async move { slots.admit().await.is_some() }
        });
        a.slot.close.notified().await;
        drop(a);
        assert!(admit.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn an_evicted_connection_that_does_not_let_go_costs_the_newcomer_its_place() {
        let slots = Slots::new(1);
        let _stuck = slots.admit().await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(slots.admit().await.is_none());
        assert_eq!(started.elapsed(), EVICTION_WAIT);
    }

    #[tokio::test]
    async fn stopping_waits_for_every_connection() {
        let slots = Slots::new(3);
        let a = slots.admit().await.unwrap();
        let all = tokio::spawn({
            let slots = slots.clone();
            async move { slots.all_closed().await }
        });
        tokio::task::yield_now().await;
        assert!(!all.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), all)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn limits_follow_the_configuration_and_the_cap_is_at_least_one() {
        let limits = Limits::default();
        assert_eq!(limits.max_connections, 512);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(limits.request_timeout, Duration::from_secs(30));
        let zero = Limits {
            max_connections: 0,
            ..limits
        };
        assert_eq!(zero.cap(), 1);
    }
}
