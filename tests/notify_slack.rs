//! Slack against a real HTTP receiver on 127.0.0.1: the incoming-webhook payload (Block Kit
//! blocks, plain-text fallback, severity colours, channel and username overrides) and bot
//! mode (`chat.postMessage` with the token, one thread per rollout, `ok: false` not retried).

#[path = "support/receiver.rs"]
mod receiver;

use std::sync::Arc;
use std::time::Duration;

use receiver::{Receiver, Recorded, Reply};
use veer::metrics::Metrics;
use veer::notify::{
    CommitInfo, Event, EventKind, FailingMetric, Filter, Notifications, NotifyConfig, Severity,
    SlackConfig, SlackTarget,
};
use veer::secret::SecretSource;

const WAIT: Duration = Duration::from_secs(10);
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn config(target: SlackTarget, filter: Filter) -> NotifyConfig {
    NotifyConfig {
        slack: Some(SlackConfig {
            target,
            channel: Some("#mesh-prod".into()),
            username: Some("veer-bot".into()),
            filter,
            commit_url_template: Some("https://github.com/org/mesh/commit/{commit}".into()),
        }),
        ..NotifyConfig::default()
    }
}

fn secret_file(dir: &tempfile::TempDir, name: &str, value: &str) -> SecretSource {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    SecretSource::File(path)
}

fn everything() -> Filter {
    Filter {
        events: EventKind::ALL.into_iter().collect(),
        min_severity: Severity::Info,
    }
}

fn started(rollout: &str) -> Event {
    Event::RolloutStarted {
        rollout: rollout.into(),
        commit: COMMIT.into(),
        weight: 10,
        phase: None,
    }
}

fn blocks_text(m: &serde_json::Value) -> String {
    m["attachments"][0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b["text"]["text"]
                .as_str()
                .or(b["elements"][0]["text"].as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn incoming_webhook_gets_blocks_fallback_colour_and_overrides() {
    let r = Receiver::start(Reply::Ok("ok".into())).await;
    let dir = tempfile::tempdir().unwrap();
    let url = secret_file(&dir, "url", &r.url("/services/T1/B1/abcdefgh"));
    let metrics = Arc::new(Metrics::new());
    let n = Notifications::start(
        &config(SlackTarget::Webhook { url }, Filter::default()),
        metrics.clone(),
    )
    .unwrap();
    n.send(Event::RevisionApplied {
        revision: CommitInfo {
            commit: COMMIT.into(),
            author: "Ada <ada@example.com>".into(),
            summary: "reviews: 10% to v2".into(),
        },
        created: 2,
        updated: 1,
        pruned: 3,
    });
    n.send(Event::RolledBack {
        rollout: "shop/reviews".into(),
        commit: COMMIT.into(),
        reason: "analysis failed at step 2".into(),
        failing: Some(FailingMetric {
            name: "success-rate".into(),
            query: "sum(rate(istio_requests_total{response_code!~\"5..\"}[1m]))".into(),
            value: Some(0.912),
            threshold: ">= 0.99".into(),
            baseline: None,
        }),
    });
    n.send(Event::DriftDetected {
        commit: COMMIT.into(),
        objects: vec!["VirtualService shop/reviews".into()],
    });
    n.shutdown(WAIT).await;
    let got: Vec<Recorded> = r.requests();
    assert_eq!(got.len(), 3);
    for q in &got {
        assert_eq!(q.method, "POST");
        assert_eq!(q.path, "/services/T1/B1/abcdefgh");
        assert!(
            q.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
    }

    let applied = got[0].json();
    assert_eq!(
        applied["text"],
        "Applied 0123456789ab (2 created, 1 updated, 3 pruned)"
    );
    assert_eq!(applied["channel"], "#mesh-prod");
    assert_eq!(applied["username"], "veer-bot");
    assert_eq!(applied["attachments"][0]["color"], "#2eb886");
    assert_eq!(
        applied["attachments"][0]["fallback"],
        "Applied 0123456789ab (2 created, 1 updated, 3 pruned)\n0123456789ab by Ada <ada@example.com>: reviews: 10% to v2"
    );
    let blocks = applied["attachments"][0]["blocks"].as_array().unwrap();
    assert_eq!(
        blocks.iter().map(|b| b["type"].clone()).collect::<Vec<_>>(),
        vec!["section", "section", "context"]
    );
    assert!(
        blocks_text(&applied).contains(&format!(
            "commit <https://github.com/org/mesh/commit/{COMMIT}|0123456789ab>"
        )),
        "{applied:#}"
    );

    let rolled_back = got[1].json();
    assert_eq!(rolled_back["attachments"][0]["color"], "#a30200");
    let text = blocks_text(&rolled_back);
    assert!(text.contains("metric: success-rate"), "{text}");
    assert!(
        text.contains("query: sum(rate(istio_requests_total{response_code!~\"5..\"}[1m]))"),
        "{text}"
    );
    assert!(
        text.contains("value: 0.912 (threshold &gt;= 0.99)"),
        "{text}"
    );
    assert!(text.contains("rollout shop/reviews"), "{text}");
    assert_eq!(got[2].json()["attachments"][0]["color"], "#daa038");
    assert_eq!(metrics.notification_counts("slack"), (3, 0, 0));
}

#[tokio::test]
async fn bot_token_posts_one_thread_per_rollout() {
    let r = Receiver::start(Reply::SlackOk).await;
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(&dir, "token", "xoxb-test-token");
    let metrics = Arc::new(Metrics::new());
    let n = Notifications::start(
        &config(
            SlackTarget::Bot {
                token,
                api_url: r.url("/api/"),
            },
            everything(),
        ),
        metrics.clone(),
    )
    .unwrap();
    n.send(started("shop/reviews"));
    n.send(Event::StepAdvanced {
        rollout: "shop/reviews".into(),
        commit: COMMIT.into(),
        step: 2,
        steps: 4,
        weight: 25,
    });
    n.send(started("shop/ratings"));
    n.send(Event::RolloutPromoted {
        rollout: "shop/ratings".into(),
        commit: COMMIT.into(),
    });
    n.send(Event::RolloutPromoted {
        rollout: "shop/reviews".into(),
        commit: COMMIT.into(),
    });
    n.send(Event::SyncFailed {
        commit: COMMIT.into(),
        message: "1 object failed".into(),
        objects: vec!["Service shop/x".into()],
    });
    n.shutdown(WAIT).await;
    let got = r.requests();
    assert_eq!(got.len(), 6);
    for q in &got {
        assert_eq!(q.path, "/api/chat.postMessage");
        assert_eq!(
            q.header("authorization").as_deref(),
            Some("Bearer xoxb-test-token")
        );
        assert_eq!(q.json()["channel"], "#mesh-prod");
    }
    let threads: Vec<Option<String>> = got
        .iter()
        .map(|q| q.json()["thread_ts"].as_str().map(String::from))
        .collect();
    // ts are handed out 1, 2, 3, … by the receiver, in arrival order.
    let ts = |n: u32| Some(format!("1700000000.{n:06}"));
    assert_eq!(
        threads,
        vec![None, ts(1), None, ts(3), ts(1), None],
        "reviews threads under its first post, ratings under its own, sync failures top-level"
    );
    assert_eq!(metrics.notification_counts("slack"), (6, 0, 0));
}

#[tokio::test]
async fn slack_api_errors_are_not_retried_but_rate_limits_are() {
    let r = Receiver::start(Reply::SlackOk).await;
    r.script([
        Reply::Json(serde_json::json!({"ok": false, "error": "channel_not_found"})),
        Reply::Json(serde_json::json!({"ok": false, "error": "ratelimited"})),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        SlackTarget::Bot {
            token: secret_file(&dir, "token", "xoxb-t"),
            api_url: r.url("/api/"),
        },
        Filter::default(),
    );
    cfg.retry.initial_backoff = Duration::from_millis(10);
    let metrics = Arc::new(Metrics::new());
    let n = Notifications::start(&cfg, metrics.clone()).unwrap();
    n.send(started("shop/reviews"));
    n.send(started("shop/ratings"));
    n.shutdown(WAIT).await;
    let rollouts: Vec<String> = r
        .requests()
        .iter()
        .map(|q| q.json()["text"].as_str().unwrap().to_string())
        .collect();
    // reviews: refused once, given up; ratings: rate-limited once, then delivered.
    assert_eq!(rollouts.len(), 3, "{rollouts:#?}");
    assert!(rollouts[0].contains("shop/reviews"));
    assert!(rollouts[1].contains("shop/ratings") && rollouts[2].contains("shop/ratings"));
    assert_eq!(metrics.notification_counts("slack"), (1, 1, 0));
}
