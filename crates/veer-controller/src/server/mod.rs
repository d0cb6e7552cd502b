//! veer's HTTP server (axum): `/healthz`, `/readyz`, `/metrics`, `POST /hooks/git` and the
//! status page `/`. A thin edge: what it shows comes from the [`StatusBoard`] the controller
//! keeps and from [`Metrics`]; the decisions (hook authentication and matching, page
//! rendering) are the pure functions of [`hooks`] and [`page`].
//!
//! A genuine push for the tracked repository and ref sends a [`Trigger`] to the reconcile
//! loop. The channel holds one: pushes arriving while a reconcile is already queued coalesce
//! into it, since one pass fetches whatever is newest.
//!
//! The edge is bounded against its clients: timeouts and the connection cap are the
//! [`listener`]'s, the descriptor budget that sizes the cap is [`budget`]'s, and request
//! bodies are bounded per route here (the hook takes at most [`MAX_HOOK_BYTES`], every other
//! route none at all).

pub mod board;
pub mod budget;
pub mod hooks;
pub mod listener;
pub mod page;
pub mod readiness;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::metrics::{self, Metrics};
use crate::secret::SecretSource;
use crate::source::SourceSpec;

pub use board::{
    CheckMark, ObjectHealth, ObjectStatus, PassStatus, RejectedStatus, RevisionStatus,
    RolloutStatus, StatusBoard, StatusSnapshot, TrackedSource, WeightSample,
};
pub use hooks::{GitHost, HookRejection, Push};
pub use listener::Limits;
pub use page::render_status;
pub use readiness::{ApiOutage, Readiness};

/// Largest hook body accepted (GitHub caps payloads at 25 MB, but a push of a manifests
/// repository is a few KiB; anything this big is not for us). Larger: 413.
pub const MAX_HOOK_BYTES: usize = 1024 * 1024;

/// A request for an immediate reconcile, from a git host's push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub host: GitHost,
    pub reference: String,
    /// The pushed commit, when the payload says.
    pub commit: Option<String>,
}

/// The channel the reconcile loop listens on (capacity one: see the module header).
pub fn trigger_channel() -> (mpsc::Sender<Trigger>, mpsc::Receiver<Trigger>) {
    mpsc::channel(1)
}

/// What the handlers share.
#[derive(Clone)]
pub struct ServerState {
    pub metrics: Arc<Metrics>,
    pub board: StatusBoard,
    pub trigger: mpsc::Sender<Trigger>,
    /// Verifies git hooks; `None`: every hook is refused (401).
    pub webhook_secret: Option<SecretSource>,
    /// What veer follows: a hook about anything else is ignored (202).
    pub source: Option<SourceSpec>,
}

impl ServerState {
    /// The state `veer run` serves: the configured webhook secret and source, the shared
    /// metrics and board, and the sending end of the loop's trigger channel.
    pub fn from_config(
        config: &crate::config::Config,
        metrics: Arc<Metrics>,
        board: StatusBoard,
        trigger: mpsc::Sender<Trigger>,
    ) -> Self {
        if let Some(source) = &config.source {
            board.set_source(TrackedSource::from(&source.spec));
        }
        board.set_not_ready_after_api_outage(config.server.not_ready_after_api_outage);
        ServerState {
            metrics,
            board,
            trigger,
            webhook_secret: config.server.webhook_secret.clone(),
            source: config.source.as_ref().map(|s| s.spec.clone()),
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot listen on {addr}: {message}; choose another address with --listen (VEER_LISTEN) or server.listen"
    )]
    Bind { addr: SocketAddr, message: String },
    #[error("the HTTP server on {addr} stopped: {message}")]
    Serve { addr: SocketAddr, message: String },
}

impl ServerError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ServerError::Bind { .. } => "bind",
            ServerError::Serve { .. } => "serve",
        }
    }
}

/// The routes, without a listener (also for tests that drive it directly).
pub fn router(state: ServerState) -> Router {
    let reads = Router::new()
        .route("/", get(status_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route_layer(middleware::from_fn(refuse_bodies));
    let hooks = Router::new()
        .route("/hooks/git", post(git_hook))
        .layer(DefaultBodyLimit::max(MAX_HOOK_BYTES));
    reads.merge(hooks).with_state(state)
}

/// The read-only routes take no body: one announced (a length above zero, or chunked) is
/// refused with 413 before anything reads it.
async fn refuse_bodies(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim() != "0");
    if length.unwrap_or(false) || headers.contains_key(header::TRANSFER_ENCODING) {
        let mut response = text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "this endpoint takes no request body",
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    next.run(request).await
}

/// A running server; stops on [`Server::shutdown`] (or when dropped, with the runtime).
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), std::io::Error>>,
}

impl Server {
    /// Bind `addr` (port 0: any free port) and serve in a task, with the default limits.
    pub async fn start(addr: SocketAddr, state: ServerState) -> Result<Server, ServerError> {
        Server::start_with(addr, state, Limits::default()).await
    }

    /// Bind `addr` and serve within `limits` (see [`listener`]).
    pub async fn start_with(
        addr: SocketAddr,
        state: ServerState,
        limits: Limits,
    ) -> Result<Server, ServerError> {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| ServerError::Bind {
                    addr,
                    message: e.to_string(),
                })?;
        let addr = listener.local_addr().map_err(|e| ServerError::Bind {
            addr,
            message: e.to_string(),
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state);
        let task = tokio::spawn(async move {
            listener::serve(listener, app, limits, stopped).await;
            Ok(())
        });
        info!(
            %addr,
            max_connections = limits.max_connections,
            header_read_timeout = ?limits.header_read_timeout,
            request_timeout = ?limits.request_timeout,
            "HTTP server listening (/, /healthz, /readyz, /metrics, /hooks/git)"
        );
        Ok(Server {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, let requests in flight finish.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let addr = self.addr;
        match (&mut self.task).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Serve {
                addr,
                message: e.to_string(),
            }),
            Err(e) => Err(ServerError::Serve {
                addr,
                message: e.to_string(),
            }),
        }
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok")
}

async fn readyz(State(state): State<ServerState>) -> Response {
    match state.board.readiness().check() {
        Ok(()) => text(StatusCode::OK, "ready"),
        Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
    }
}

async fn metrics_text(State(state): State<ServerState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn status_page(State(state): State<ServerState>) -> Response {
    let html = render_status(&state.board.snapshot(chrono::Utc::now()));
    let mut response = (StatusCode::OK, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // No script at all: what the page prints can never run, whatever escaping missed.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn git_hook(
    State(state): State<ServerState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer
        .map(|Extension(ConnectInfo(addr))| addr.to_string())
        .unwrap_or_else(|| "unknown".to_string());
    // Read each time, so a rotated secret is picked up; never logged.
    let secret = match &state.webhook_secret {
        None => Err(HookRejection::NotConfigured),
        Some(source) => match source.read() {
            Ok(secret) => Ok(secret),
            Err(e) => {
                warn!(%peer, error = %e, "git webhook refused: cannot read server.webhookSecret");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "veer cannot read its webhook secret; see its log",
                );
            }
        },
    };
    let host =
        secret.and_then(|secret| hooks::authenticate(&headers, &body, secret.expose().as_bytes()));
    let host = match host {
        Ok(host) => host,
        Err(rejection) => {
            // Logged without the body: it is unauthenticated input.
            warn!(%peer, reason = rejection.metric_label(), bytes = body.len(), "git webhook rejected: {rejection}");
            return text(StatusCode::UNAUTHORIZED, rejection.to_string());
        }
    };
    if let Err(why) = hooks::is_push(host, &headers) {
        info!(%peer, %host, "git webhook ignored: {why}");
        return text(StatusCode::ACCEPTED, format!("ignored: {why}"));
    }
    let push = match hooks::read_push(host, &body) {
        Ok(push) => push,
        Err(why) => {
            warn!(%peer, %host, "git webhook refused: {why}");
            return text(StatusCode::BAD_REQUEST, why.to_string());
        }
    };
    let Some(source) = &state.source else {
        return text(StatusCode::ACCEPTED, "ignored: veer follows no repository");
    };
    if let Err(why) = hooks::concerns(&push, source) {
        info!(%peer, %host, "git webhook ignored: {why}");
        return text(StatusCode::ACCEPTED, format!("ignored: {why}"));
    }
    let trigger = Trigger {
        host,
        reference: push.reference.clone(),
        commit: push.after.clone(),
    };
    match state.trigger.try_send(trigger) {
        Ok(()) => {
            info!(%peer, %host, reference = %push.reference, commit = ?push.after, "git push: reconcile triggered");
            text(StatusCode::OK, "reconcile triggered")
        }
        Err(mpsc::error::TrySendError::Full(_)) => text(
            StatusCode::OK,
            "a reconcile is already queued; it will fetch this push",
        ),
        Err(mpsc::error::TrySendError::Closed(_)) => {
            warn!(%peer, %host, "git push received but the reconcile loop is not listening");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the reconcile loop is not running",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, resolve};

    #[test]
    fn state_from_config_carries_the_secret_and_the_source() {
        let config = resolve(
            Some((
                "veer.yaml",
                "source:\n  url: https://h/org/mesh.git\n  ref: prod\nserver:\n  webhookSecret: {env: HOOK}\n",
            )),
            &Overrides::default(),
        )
        .unwrap();
        let board = StatusBoard::new();
        let state = ServerState::from_config(
            &config,
            Arc::new(Metrics::new()),
            board.clone(),
            trigger_channel().0,
        );
        // The outage allowance comes from the configuration (60 s by default).
        let contact = crate::cluster::SharedContact::default();
        board.set_contact(contact.clone());
        board.set_watches_up(true);
        board.set_revision_loaded(true);
        let t0 = chrono::Utc::now();
        contact.failed(t0);
        assert!(
            board
                .readiness_at(t0 + chrono::Duration::seconds(60))
                .check()
                .is_ok()
        );
        assert!(
            board
                .readiness_at(t0 + chrono::Duration::seconds(61))
                .check()
                .is_err()
        );
        assert_eq!(state.webhook_secret, Some(SecretSource::Env("HOOK".into())));
        assert_eq!(
            state.source.map(|s| s.url.text),
            Some("https://h/org/mesh.git".to_string())
        );
        let shown = board.snapshot(chrono::Utc::now()).source.unwrap();
        assert_eq!(shown.reference, "branch prod");
    }
}
