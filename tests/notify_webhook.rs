//! The generic JSON webhook against real HTTP receivers on 127.0.0.1: the HMAC-SHA256
//! signature verifies over the exact body bytes (checked here with the `hmac` crate directly,
//! not with veer's own code), unsigned without a secret, and per-notifier filters.

#[path = "support/receiver.rs"]
mod receiver;

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use receiver::{Receiver, Reply};
use sha2::Sha256;
use veer::metrics::Metrics;
use veer::notify::{
    Event, EventKind, Filter, Notifications, NotifyConfig, Severity, WebhookConfig,
};
use veer::secret::SecretSource;

const WAIT: Duration = Duration::from_secs(10);

fn rolled_back() -> Event {
    Event::RolledBack {
        rollout: "shop/reviews".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        reason: "p99 latency above 500 ms".into(),
        failing: None,
    }
}

fn promoted() -> Event {
    Event::RolloutPromoted {
        rollout: "shop/ratings".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
    }
}

fn expected_signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[tokio::test]
async fn signed_and_unsigned_webhooks_with_filters() {
    let signed = Receiver::start(Reply::Ok("".into())).await;
    let errors_only = Receiver::start(Reply::Ok("".into())).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "shared-key\n").unwrap();
    let config = NotifyConfig {
        webhooks: vec![
            WebhookConfig {
                url: signed.url("/veer").parse().unwrap(),
                secret: Some(SecretSource::File(key_file)),
                filter: Filter::default(),
            },
            WebhookConfig {
                url: errors_only.url("/alerts").parse().unwrap(),
                secret: None,
                filter: Filter {
                    events: EventKind::ALL.into_iter().collect(),
                    min_severity: Severity::Error,
                },
            },
        ],
        ..NotifyConfig::default()
    };
    let metrics = Arc::new(Metrics::new());
    let n = Notifications::start(&config, metrics.clone()).unwrap();
    let sent = n.send(rolled_back());
    assert_eq!(sent.queued, 2);
    let sent = n.send(promoted());
    assert_eq!(
        sent.queued, 1,
        "the errors-only webhook does not take an info event"
    );
    n.shutdown(WAIT).await;

    let got = signed.requests();
    assert_eq!(got.len(), 2);
    for q in &got {
        let header = q.header("x-veer-signature").expect("signature header");
        // The trailing newline of the key file is not part of the key.
        assert_eq!(header, expected_signature(b"shared-key", &q.body));
        assert_ne!(header, expected_signature(b"shared-key\n", &q.body));
        assert!(veer::notify::webhook::verify(
            b"shared-key",
            &q.body,
            &header
        ));
    }
    let body = got[0].json();
    assert_eq!(
        got[0].header("x-veer-event").as_deref(),
        Some("rolled-back")
    );
    assert_eq!(body["kind"], "rolled-back");
    assert_eq!(body["severity"], "error");
    assert_eq!(body["event"]["reason"], "p99 latency above 500 ms");
    assert_eq!(body["dedupKey"]["object"], "shop/reviews");
    assert_eq!(body["dedupKey"]["transition"], "rolled-back");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("Rollout of shop/reviews rolled back from 0123456789ab")
    );
    assert_eq!(got[1].json()["kind"], "rollout-promoted");

    let alerts = errors_only.requests();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].header("x-veer-signature"), None);
    assert_eq!(alerts[0].json()["kind"], "rolled-back");
    assert_eq!(metrics.notification_counts("webhook-0"), (2, 0, 0));
    assert_eq!(metrics.notification_counts("webhook-1"), (1, 0, 0));
}
