//! Notifications: telling people what veer did, through Slack and generic JSON webhooks,
//! without ever slowing a reconcile.
//!
//! - [`event`]: the closed [`Event`] enum, severities, dedup keys, plain-text rendering (pure,
//!   in `veer-core` as `notice`, where the decisions that raise events can build them).
//! - [`slack`]: Block Kit messages (pure) and the Slack notifier (incoming webhook, or bot
//!   token with one thread per rollout).
//! - [`webhook`]: the JSON payload (pure), HMAC-SHA256 signing, and the webhook notifier.
//! - [`delivery`]: retry policy and `Retry-After` (pure), one classified HTTP POST.
//!
//! [`Notifications::send`] is all a caller needs: it drops duplicates (same
//! [`DedupKey`] within the window), applies each notifier's filter, and puts the event on
//! that notifier's bounded queue without waiting; a full queue drops the event and counts it.
//! One worker task per notifier delivers in order, retrying with capped exponential backoff
//! (honouring `Retry-After`), and gives up after `max_attempts`, counting sent / failed /
//! dropped in [`Metrics`]. Secrets (webhook URL, bot token, HMAC key) are read from their
//! [`SecretSource`] at each delivery and never appear in logs, `Debug` or errors.
//!
//! Dedup state lives in memory: after a restart an event may be sent once more.

pub mod delivery;
pub use veer_core::notice as event;
pub mod slack;
pub mod webhook;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::metrics::Metrics;
use crate::secret::SecretSource;

pub use delivery::{RetryPolicy, parse_retry_after};
pub use event::{
    CommitInfo, DedupKey, Event, EventKind, FailingMetric, MAX_LISTED, Problem, Severity,
    commit_url,
};

pub const DEFAULT_QUEUE_SIZE: usize = 256;
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(3600);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api/";

/// Why one delivery attempt failed. Messages never contain a URL or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// 429, 408 or 5xx: worth retrying.
    #[error("the receiver answered HTTP {status}{}: {body}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    /// Could not connect, timed out, connection reset: worth retrying.
    #[error("{message}; check that the receiver is reachable")]
    Transport { message: String },
    /// The receiver refused the message (other 4xx, Slack `ok: false`): retrying will not help.
    #[error(
        "the receiver refused the message{}: {message}; check the notifier's URL, token and channel",
        status.map(|s| format!(" with HTTP {s}")).unwrap_or_default()
    )]
    Rejected {
        status: Option<u16>,
        message: String,
    },
    /// A secret could not be read or a setting is unusable. Retried: a secret may be mounted
    /// late or rotated.
    #[error("{message}")]
    Config { message: String },
}

impl DeliveryError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            DeliveryError::Status { .. } => "status",
            DeliveryError::Transport { .. } => "transport",
            DeliveryError::Rejected { .. } => "rejected",
            DeliveryError::Config { .. } => "config",
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::Status { .. }
            | DeliveryError::Transport { .. }
            | DeliveryError::Config { .. } => true,
            DeliveryError::Rejected { .. } => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Status { retry_after, .. } => *retry_after,
            DeliveryError::Transport { .. }
            | DeliveryError::Rejected { .. }
            | DeliveryError::Config { .. } => None,
        }
    }
}

/// Why notifications could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot build the HTTP client for notifications: {message}")]
    Client { message: String },
    #[error("cannot read the secret for {notifier}: {message}")]
    Secret { notifier: String, message: String },
}

impl NotifyError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            NotifyError::Client { .. } => "client",
            NotifyError::Secret { .. } => "secret",
        }
    }
}

/// Which events a notifier gets: listed kinds at or above a severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub events: BTreeSet<EventKind>,
    pub min_severity: Severity,
}

impl Default for Filter {
    /// Every kind that is on by default (all but step advances), every severity.
    fn default() -> Self {
        Filter {
            events: EventKind::ALL
                .into_iter()
                .filter(|k| k.on_by_default())
                .collect(),
            min_severity: Severity::Info,
        }
    }
}

impl Filter {
    pub fn accepts(&self, event: &Event) -> bool {
        self.events.contains(&event.kind()) && event.severity() >= self.min_severity
    }
}

/// How the Slack notifier posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackTarget {
    /// An incoming webhook; the URL is the secret.
    Webhook { url: SecretSource },
    /// A bot token and `chat.postMessage` (needs a channel); one thread per rollout.
    Bot {
        token: SecretSource,
        /// Base of the Web API, [`DEFAULT_SLACK_API_URL`] unless testing.
        api_url: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    pub target: SlackTarget,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub filter: Filter,
    /// `{commit}` / `{short}` placeholders, e.g. `https://github.com/org/repo/commit/{commit}`.
    pub commit_url_template: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Not a secret: put credentials in `secret` (signature), not in the URL.
    pub url: reqwest::Url,
    /// Key of the `X-Veer-Signature` HMAC; unsigned when absent.
    pub secret: Option<SecretSource>,
    pub filter: Filter,
}

/// The `notify:` section, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub slack: Option<SlackConfig>,
    pub webhooks: Vec<WebhookConfig>,
    /// Events each notifier may have waiting; more are dropped and counted.
    pub queue_size: usize,
    pub retry: RetryPolicy,
    /// An event with the same dedup key as one sent within this window is dropped.
    pub dedup_window: Duration,
    /// Bound on one delivery attempt, connection included.
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            slack: None,
            webhooks: Vec::new(),
            queue_size: DEFAULT_QUEUE_SIZE,
            retry: RetryPolicy::default(),
            dedup_window: DEFAULT_DEDUP_WINDOW,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Something that can deliver an event somewhere. One delivery attempt per call; retries,
/// queueing and filtering are [`Notifications`]' job. Implementations must keep secrets out
/// of their `Debug` and their errors.
pub trait Notifier: Send + Sync + std::fmt::Debug {
    fn deliver<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// What [`Notifications::send`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The same dedup key was sent within the window: nothing queued.
    pub duplicate: bool,
    /// Notifiers whose queue took it.
    pub queued: usize,
    /// Notifiers whose queue was full: dropped (and counted).
    pub dropped: usize,
}

#[derive(Debug)]
struct Route {
    name: String,
    filter: Filter,
    queue: mpsc::Sender<Arc<Event>>,
}

/// The notification front door. Cheap to call from a reconcile: [`Notifications::send`] never
/// waits for the network.
#[derive(Debug)]
pub struct Notifications {
    routes: Vec<Route>,
    workers: Vec<JoinHandle<()>>,
    seen: Mutex<HashMap<DedupKey, Instant>>,
    dedup_window: Duration,
    metrics: Arc<Metrics>,
}

impl Notifications {
    /// No notifiers: `send` only deduplicates and returns.
    pub fn disabled(metrics: Arc<Metrics>) -> Self {
        Notifications {
            routes: Vec::new(),
            workers: Vec::new(),
            seen: Mutex::new(HashMap::new()),
            dedup_window: DEFAULT_DEDUP_WINDOW,
            metrics,
        }
    }

    /// Build the configured notifiers and start their workers (needs a tokio runtime).
    /// Secrets are read once here so a missing one fails at start-up, and again at each
    /// delivery so a rotated one is picked up. Notifiers are named `slack` and `webhook-N`
    /// (N from 0, in configuration order) in metrics and logs.
    pub fn start(config: &NotifyConfig, metrics: Arc<Metrics>) -> Result<Self, NotifyError> {
        crate::http_client::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("veer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Client {
                message: e.without_url().to_string(),
            })?;
        let mut notifiers: Vec<(String, Filter, Arc<dyn Notifier>)> = Vec::new();
        if let Some(s) = &config.slack {
            let source = match &s.target {
                SlackTarget::Webhook { url } => url,
                SlackTarget::Bot { token, .. } => token,
            };
            check_secret("slack", source)?;
            notifiers.push((
                "slack".to_string(),
                s.filter.clone(),
                Arc::new(slack::Slack::new(s, client.clone())),
            ));
        }
        for (i, w) in config.webhooks.iter().enumerate() {
            let name = format!("webhook-{i}");
            if let Some(secret) = &w.secret {
                check_secret(&name, secret)?;
            }
            notifiers.push((
                name,
                w.filter.clone(),
                Arc::new(webhook::Webhook::new(w, client.clone())),
            ));
        }
        Ok(Self::with_notifiers(
            notifiers,
            config.queue_size,
            config.retry,
            config.dedup_window,
            metrics,
        ))
    }

    /// Start workers for the given notifiers (name, filter, notifier). For custom notifiers
    /// and tests; [`Notifications::start`] builds the configured ones.
    pub fn with_notifiers(
        notifiers: Vec<(String, Filter, Arc<dyn Notifier>)>,
        queue_size: usize,
        retry: RetryPolicy,
        dedup_window: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut routes = Vec::new();
        let mut workers = Vec::new();
        for (name, filter, notifier) in notifiers {
            metrics.register_notifier(&name);
            let (tx, rx) = mpsc::channel(queue_size.max(1));
            workers.push(tokio::spawn(work(
                name.clone(),
                notifier,
                rx,
                retry,
                metrics.clone(),
            )));
            routes.push(Route {
                name,
                filter,
                queue: tx,
            });
        }
        Notifications {
            routes,
            workers,
            seen: Mutex::new(HashMap::new()),
            dedup_window,
            metrics,
        }
    }

    /// Queue an event for every notifier whose filter accepts it, and return at once.
    pub fn send(&self, event: Event) -> Sent {
        let now = Instant::now();
        let key = event.dedup_key();
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let window = self.dedup_window;
            seen.retain(|_, at| now.saturating_duration_since(*at) < window);
            if seen.contains_key(&key) {
                self.metrics.record_notification_duplicate();
                debug!(kind = %event.kind(), object = %key.object, revision = %key.revision, "duplicate notification dropped");
                return Sent {
                    duplicate: true,
                    queued: 0,
                    dropped: 0,
                };
            }
            seen.insert(key.clone(), now);
        }
        let event = Arc::new(event);
        let mut sent = Sent {
            duplicate: false,
            queued: 0,
            dropped: 0,
        };
        for route in self.routes.iter().filter(|r| r.filter.accepts(&event)) {
            match route.queue.try_send(event.clone()) {
                Ok(()) => sent.queued += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    sent.dropped += 1;
                    self.metrics.record_notification_dropped(&route.name);
                    warn!(notifier = %route.name, kind = %event.kind(), "notification queue full; event dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    sent.dropped += 1;
                    self.metrics.record_notification_dropped(&route.name);
                    warn!(notifier = %route.name, kind = %event.kind(), "notification worker stopped; event dropped");
                }
            }
        }
        if sent.queued == 0 && sent.dropped > 0 {
            // Nobody took it: let the same event through when it comes again.
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
        }
        sent
    }

    /// Stop taking events and let the workers finish what is queued, for at most `within`;
    /// whatever is left then is abandoned.
    pub async fn shutdown(self, within: Duration) {
        let Notifications {
            routes, workers, ..
        } = self;
        drop(routes);
        let all = futures::future::join_all(workers);
        if tokio::time::timeout(within, all).await.is_err() {
            warn!("notifications still queued at shutdown were abandoned");
        }
    }
}

fn check_secret(notifier: &str, source: &SecretSource) -> Result<(), NotifyError> {
    source.read().map(|_| ()).map_err(|e| NotifyError::Secret {
        notifier: notifier.to_string(),
        message: e.to_string(),
    })
}

/// One notifier's worker: deliver each queued event in order, with retries.
async fn work(
    name: String,
    notifier: Arc<dyn Notifier>,
    mut queue: mpsc::Receiver<Arc<Event>>,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
) {
    while let Some(event) = queue.recv().await {
        let mut attempt = 1;
        loop {
            match notifier.deliver(&event).await {
                Ok(()) => {
                    metrics.record_notification_sent(&name);
                    debug!(notifier = %name, kind = %event.kind(), attempt, "notification sent");
                    break;
                }
                Err(error) => match retry.next_delay(attempt, &error) {
                    Some(delay) => {
                        warn!(notifier = %name, kind = %event.kind(), attempt, reason = error.metric_label(), retry_in = ?delay, "notification not delivered: {error}");
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    None => {
                        metrics.record_notification_failed(&name);
                        warn!(notifier = %name, kind = %event.kind(), attempt, reason = error.metric_label(), "notification given up: {error}");
                        break;
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_filter_skips_step_advances_and_min_severity_filters() {
        let step = Event::StepAdvanced {
            rollout: "a/b".into(),
            commit: "c".into(),
            step: 1,
            steps: 3,
            weight: 10,
        };
        let promoted = Event::RolloutPromoted {
            rollout: "a/b".into(),
            commit: "c".into(),
        };
        let rolled_back = Event::RolledBack {
            rollout: "a/b".into(),
            commit: "c".into(),
            reason: "r".into(),
            failing: None,
        };
        let f = Filter::default();
        assert!(!f.accepts(&step));
        assert!(f.accepts(&promoted));
        let errors_only = Filter {
            min_severity: Severity::Error,
            ..Filter::default()
        };
        assert!(!errors_only.accepts(&promoted));
        assert!(errors_only.accepts(&rolled_back));
    }

    #[test]
    fn delivery_errors_say_what_to_do_and_classify() {
        let e = DeliveryError::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
            body: "slow down".into(),
        };
        assert_eq!(
            e.to_string(),
            "the receiver answered HTTP 429 (retry after 3s): slow down"
        );
        assert!(e.is_retryable());
        let r = DeliveryError::Rejected {
            status: Some(404),
            message: "no_service".into(),
        };
        assert!(!r.is_retryable());
        assert!(r.to_string().contains("check the notifier's URL"));
    }
}
