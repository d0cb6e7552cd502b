//! Delivery against a real HTTP receiver on 127.0.0.1: `Retry-After` honoured, 500s retried
//! then given up and counted, a slow receiver never slows `send`, a full queue drops and
//! counts, duplicates dropped by key, secrets kept out of logs, `Debug` and errors.
//!
//! Timing tests run on tokio's paused clock: waits of minutes take no real time, and the
//! receiver stamps arrivals on the same clock.

#[path = "support/receiver.rs"]
mod receiver;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use receiver::{Receiver, Reply};
use veer::metrics::Metrics;
use veer::notify::{
    DeliveryError, Event, Filter, Notifications, Notifier, NotifyConfig, RetryPolicy, SlackConfig,
    SlackTarget, WebhookConfig,
};
use veer::secret::SecretSource;

const WAIT: Duration = Duration::from_secs(10);

fn promoted(rollout: &str) -> Event {
    Event::RolloutPromoted {
        rollout: rollout.to_string(),
        commit: "0123456789abcdef0123456789abcdef01234567".to_string(),
    }
}

fn rolled_back(rollout: &str, reason: &str) -> Event {
    Event::RolledBack {
        rollout: rollout.to_string(),
        commit: "0123456789abcdef0123456789abcdef01234567".to_string(),
        reason: reason.to_string(),
        failing: None,
    }
}

fn retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(600),
    }
}

fn webhook(receiver: &Receiver, retry: RetryPolicy, queue_size: usize) -> NotifyConfig {
    NotifyConfig {
        webhooks: vec![WebhookConfig {
            url: receiver.url("/hook").parse().unwrap(),
            secret: None,
            filter: Filter::default(),
        }],
        retry,
        queue_size,
        ..NotifyConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_a_429_is_honoured() {
    let r = Receiver::start(Reply::Ok("ok".into())).await;
    r.script([Reply::Status {
        code: 429,
        retry_after: Some("120".into()),
        body: "slow down".into(),
    }]);
    let metrics = Arc::new(Metrics::new());
    let n = Notifications::start(&webhook(&r, retry(5), 8), metrics.clone()).unwrap();
    n.send(promoted("shop/reviews"));
    let got = r.wait_for(2, Duration::from_secs(600)).await;
    let gap = got[1].at - got[0].at;
    // Our own backoff would have waited 1 s; the receiver asked for 120 s.
    assert!(
        gap >= Duration::from_secs(120) && gap < Duration::from_secs(121),
        "retried after {gap:?}"
    );
    n.shutdown(WAIT).await;
    assert_eq!(metrics.notification_counts("webhook-0"), (1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_backoff_then_given_up_and_counted() {
    let r = Receiver::start(Reply::Status {
        code: 500,
        retry_after: None,
        body: "boom".into(),
    })
    .await;
    let metrics = Arc::new(Metrics::new());
    let n = Notifications::start(&webhook(&r, retry(4), 8), metrics.clone()).unwrap();
    n.send(promoted("shop/reviews"));
    n.shutdown(Duration::from_secs(600)).await;
    let got = r.requests();
    assert_eq!(got.len(), 4, "max_attempts is 4");
    let gaps: Vec<u64> = got
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs())
        .collect();
    assert_eq!(gaps, vec![1, 2, 4], "exponential backoff from 1 s");
    assert_eq!(metrics.notification_counts("webhook-0"), (0, 1, 0));
    let text = metrics.encode();
    assert!(
        text.contains("veer_notifications_failed_total{notifier=\"webhook-0\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn a_slow_receiver_does_not_slow_send_and_a_full_queue_drops_and_counts() {
    let r = Receiver::start(Reply::Hold).await;
    let metrics = Arc::new(Metrics::new());
    let n = Notifications::start(&webhook(&r, retry(1), 2), metrics.clone()).unwrap();
    n.send(promoted("shop/a"));
    // The first delivery is now in flight and held by the receiver.
    r.wait_for(1, WAIT).await;
    let outcomes: Vec<_> = ["shop/b", "shop/c", "shop/d"]
        .into_iter()
        .map(|rollout| n.send(promoted(rollout)))
        .collect();
    // Returned while the receiver still holds the first delivery: send does not wait for it.
    assert_eq!(
        r.answered(),
        0,
        "the first delivery must still be in flight"
    );
    assert_eq!(
        outcomes.iter().map(|s| s.queued).collect::<Vec<_>>(),
        vec![1, 1, 0]
    );
    assert_eq!(outcomes[2].dropped, 1, "queue of 2 was full");
    // Dropped, so not remembered: the same event is not a duplicate later.
    assert!(!n.send(promoted("shop/d")).duplicate);
    assert_eq!(metrics.notification_counts("webhook-0").2, 2);
    r.release();
    n.shutdown(WAIT).await;
    let rollouts: Vec<String> = r
        .requests()
        .iter()
        .map(|q| q.json()["event"]["rollout"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rollouts, vec!["shop/a", "shop/b", "shop/c"]);
    assert_eq!(metrics.notification_counts("webhook-0"), (3, 0, 2));
    let text = metrics.encode();
    for line in [
        "veer_notifications_sent_total{notifier=\"webhook-0\"} 3",
        "veer_notifications_dropped_total{notifier=\"webhook-0\"} 2",
        "veer_notifications_failed_total{notifier=\"webhook-0\"} 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn duplicates_are_dropped_by_key_not_by_text() {
    let r = Receiver::start(Reply::Ok("ok".into())).await;
    let metrics = Arc::new(Metrics::new());
    let n = Notifications::start(&webhook(&r, retry(1), 8), metrics.clone()).unwrap();
    assert!(
        !n.send(rolled_back("shop/reviews", "success rate 0.91"))
            .duplicate
    );
    // Same (object, revision, transition), other words: a duplicate.
    assert!(
        n.send(rolled_back("shop/reviews", "success rate 0.90"))
            .duplicate
    );
    // Same words, another rollout: news.
    assert!(
        !n.send(rolled_back("shop/ratings", "success rate 0.91"))
            .duplicate
    );
    n.shutdown(WAIT).await;
    let got: Vec<(String, String)> = r
        .requests()
        .iter()
        .map(|q| {
            let e = q.json()["event"].clone();
            (
                e["rollout"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("shop/reviews".into(), "success rate 0.91".into()),
            ("shop/ratings".into(), "success rate 0.91".into())
        ]
    );
    assert_eq!(metrics.notification_duplicates(), 1);
}

/// Records deliveries in memory: for the dedup window, which needs no network.
#[derive(Debug, Default)]
struct Memory(Mutex<Vec<Event>>);

impl Notifier for Memory {
    fn deliver<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.0.lock().unwrap().push(event.clone());
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(start_paused = true)]
async fn a_duplicate_is_news_again_after_the_window() {
    let memory = Arc::new(Memory::default());
    let n = Notifications::with_notifiers(
        vec![("memory".into(), Filter::default(), memory.clone())],
        8,
        retry(1),
        Duration::from_secs(600),
        Arc::new(Metrics::new()),
    );
    assert!(!n.send(promoted("shop/reviews")).duplicate);
    tokio::time::advance(Duration::from_secs(599)).await;
    assert!(n.send(promoted("shop/reviews")).duplicate);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!n.send(promoted("shop/reviews")).duplicate);
    n.shutdown(WAIT).await;
    assert_eq!(memory.0.lock().unwrap().len(), 2);
}

/// A `tracing` writer into a shared buffer, to read what veer logged.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(start_paused = true)]
async fn secrets_stay_out_of_logs_debug_and_errors() {
    const SECRET_PATH: &str = "T0001/B0001/SuperSecretXyz";
    const TOKEN: &str = "xoxb-SuperSecretToken";
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // The receiver echoes the secret URL back in its error body, as some proxies do.
    let r = Receiver::start(Reply::Status {
        code: 404,
        retry_after: None,
        body: format!("no_service at /services/{SECRET_PATH}"),
    })
    .await;
    // A Web API that refuses the token and quotes it.
    let api = Receiver::start(Reply::Json(serde_json::json!({
        "ok": false,
        "error": format!("invalid_auth:{TOKEN}"),
    })))
    .await;
    // A closed port, for a transport error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("slack-url");
    std::fs::File::create(&url_file)
        .unwrap()
        .write_all(format!("{}\n", r.url(&format!("/services/{SECRET_PATH}"))).as_bytes())
        .unwrap();
    let token_file = dir.path().join("slack-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let hmac_file = dir.path().join("hmac");
    std::fs::write(&hmac_file, "HmacSuperSecret").unwrap();

    let slack = NotifyConfig {
        slack: Some(SlackConfig {
            target: SlackTarget::Webhook {
                url: SecretSource::File(url_file.clone()),
            },
            channel: None,
            username: None,
            filter: Filter::default(),
            commit_url_template: None,
        }),
        webhooks: vec![WebhookConfig {
            url: format!("http://{closed}/hook").parse().unwrap(),
            secret: Some(SecretSource::File(hmac_file)),
            filter: Filter::default(),
        }],
        retry: retry(2),
        ..NotifyConfig::default()
    };
    let bot = NotifyConfig {
        slack: Some(SlackConfig {
            target: SlackTarget::Bot {
                token: SecretSource::File(token_file),
                api_url: api.url("/api/"),
            },
            channel: Some("#mesh".into()),
            username: None,
            filter: Filter::default(),
            commit_url_template: None,
        }),
        ..slack.clone()
    };
    let metrics = Arc::new(Metrics::new());
    let mut debug = format!("{slack:?}{bot:?}");
    for config in [&slack, &bot] {
        let n = Notifications::start(config, metrics.clone()).unwrap();
        debug.push_str(&format!("{n:?}"));
        n.send(promoted("shop/reviews"));
        n.shutdown(Duration::from_secs(600)).await;
    }
    // A missing secret fails at start-up, naming where it was looked for.
    let missing = NotifyConfig {
        slack: Some(SlackConfig {
            target: SlackTarget::Webhook {
                url: SecretSource::File(dir.path().join("absent")),
            },
            ..slack.slack.clone().unwrap()
        }),
        ..NotifyConfig::default()
    };
    let err = Notifications::start(&missing, metrics.clone()).unwrap_err();
    assert!(err.to_string().contains("absent"), "{err}");

    let text = logs.text();
    assert!(text.contains("could not connect"), "{text}");
    assert!(text.contains("HTTP 404"), "{text}");
    assert!(text.contains("no_service at ***"), "{text}");
    assert!(
        text.contains("chat.postMessage: invalid_auth:***"),
        "{text}"
    );
    for secret in ["SuperSecret", TOKEN, "HmacSuperSecret"] {
        assert!(!text.contains(secret), "{secret} in logs:\n{text}");
        assert!(!debug.contains(secret), "{secret} in Debug:\n{debug}");
        assert!(!err.to_string().contains(secret));
    }
    // What the receiver got did carry the token, so the test would see a leak.
    assert!(
        api.requests()
            .iter()
            .any(|q| q.header("authorization").as_deref() == Some(&format!("Bearer {TOKEN}")))
    );
}
