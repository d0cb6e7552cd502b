//! Rollout webhooks against real HTTP receivers on 127.0.0.1 (axum): 2xx passes, 500 and 403
//! fail with the status and the answer, a silent receiver fails at the webhook's timeout, a
//! closed port fails at connect; the JSON payload is asserted field by field; only webhooks
//! of the asked kind are called, results in the policy's order.

#[path = "support/receiver.rs"]
mod receiver;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use receiver::{Receiver, Reply};
use veer::gate::{GateContext, WebhookGate};
use veer::manifest::rollout_policy::Webhook;
use veer::rollout::{AnalysisVerdict, Check, Phase, ThresholdRange, WebhookKind, WebhookResult};

const WAIT: Duration = Duration::from_secs(10);

fn webhook(name: &str, kind: WebhookKind, url: String, timeout: Option<&str>) -> Webhook {
    Webhook {
        name: name.into(),
        kind,
        url,
        timeout: timeout.map(str::to_string),
        metadata: BTreeMap::new(),
    }
}

fn context(phase: Phase) -> GateContext<'static> {
    GateContext {
        name: "reviews",
        namespace: "shop",
        phase,
        checks: None,
    }
}

fn ok() -> Reply {
    Reply::Ok("ok".into())
}

fn status(code: u16, body: &str) -> Reply {
    Reply::Status {
        code,
        retry_after: None,
        body: body.into(),
    }
}

#[tokio::test]
async fn only_the_asked_kind_is_called_and_2xx_passes() {
    let rx = Receiver::start(ok()).await;
    let hooks = vec![
        webhook("load-test", WebhookKind::Rollout, rx.url("/load"), None),
        webhook("smoke", WebhookKind::PreRollout, rx.url("/smoke"), None),
        webhook(
            "acceptance",
            WebhookKind::Rollout,
            rx.url("/acceptance"),
            Some("5s"),
        ),
    ];
    let gate = WebhookGate::new().unwrap();
    let report = gate
        .run(
            7,
            WebhookKind::Rollout,
            &hooks,
            &context(Phase::Progressing),
        )
        .await;
    assert_eq!(report.id, 7);
    assert_eq!(
        report.results,
        vec![
            WebhookResult {
                name: "load-test".into(),
                passed: true,
                message: String::new()
            },
            WebhookResult {
                name: "acceptance".into(),
                passed: true,
                message: String::new()
            },
        ]
    );
    let mut paths: Vec<String> = rx.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(
        paths,
        vec!["/acceptance", "/load"],
        "the pre-rollout hook is not called"
    );

    // No webhook of a kind: an empty report, and no request.
    let report = gate
        .run(
            8,
            WebhookKind::Rollback,
            &hooks,
            &context(Phase::RollingBack),
        )
        .await;
    assert!(report.results.is_empty());
    assert_eq!(rx.requests().len(), 2);
}

#[tokio::test]
async fn payload_carries_rollout_phase_kind_metadata_and_checks() {
    let rx = Receiver::start(ok()).await;
    let mut hook = webhook("notify-qa", WebhookKind::Rollback, rx.url("/hook"), None);
    hook.metadata = BTreeMap::from([
        ("team".to_string(), "reviews".to_string()),
        ("cmd".to_string(), "page".to_string()),
    ]);
    let checks = vec![Check {
        metric: "request-success-rate".into(),
        query: "sum(rate(istio_requests_total[1m]))".into(),
        value: Some(91.5),
        threshold: ThresholdRange::new(Some(99.0), None).unwrap(),
        requests: Some(1200.0),
        verdict: AnalysisVerdict::Fail {
            value: 91.5,
            min: Some(99.0),
            max: None,
        },
        baseline: None,
    }];
    let ctx = GateContext {
        checks: Some(&checks),
        ..context(Phase::RollingBack)
    };
    let gate = WebhookGate::new().unwrap();
    let report = gate
        .run(1, WebhookKind::Rollback, std::slice::from_ref(&hook), &ctx)
        .await;
    assert!(report.results[0].passed, "{:?}", report.results);

    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/hook");
    assert_eq!(
        got[0].header("content-type").as_deref(),
        Some("application/json")
    );
    let body = got[0].json();
    assert_eq!(
        body,
        serde_json::json!({
            "name": "reviews",
            "namespace": "shop",
            "phase": "RollingBack",
            "kind": "rollback",
            "metadata": {"cmd": "page", "team": "reviews"},
            "checks": [serde_json::to_value(&checks[0]).unwrap()],
        })
    );
    assert_eq!(body["checks"][0]["metric"], "request-success-rate");
    assert_eq!(body["checks"][0]["value"], 91.5);

    // Without checks, the field is absent (not null).
    gate.run(
        2,
        WebhookKind::Rollback,
        std::slice::from_ref(&hook),
        &context(Phase::RollingBack),
    )
    .await;
    let got = rx.wait_for(2, WAIT).await;
    let body = got[1].json();
    assert!(body.get("checks").is_none(), "{body}");
    assert_eq!(body["kind"], "rollback");
}

#[tokio::test]
async fn server_error_fails_with_status_and_answer() {
    let rx = Receiver::start(status(500, "load test failed: p99 812ms")).await;
    let other = Receiver::start(ok()).await;
    let hooks = vec![
        webhook("load-test", WebhookKind::Rollout, rx.url("/t"), None),
        webhook("smoke", WebhookKind::Rollout, other.url("/s"), None),
    ];
    let report = WebhookGate::new()
        .unwrap()
        .run(
            3,
            WebhookKind::Rollout,
            &hooks,
            &context(Phase::Progressing),
        )
        .await;
    let [failed, passed] = &report.results[..] else {
        panic!("two results expected: {report:?}");
    };
    assert_eq!(failed.name, "load-test");
    assert!(!failed.passed);
    assert_eq!(
        failed.message,
        "answered HTTP 500 Internal Server Error: load test failed: p99 812ms"
    );
    assert!(passed.passed, "one failure does not fail the others");
}

#[tokio::test]
async fn silent_receiver_fails_at_the_webhooks_timeout() {
    let rx = Receiver::start(Reply::Hold).await;
    let hooks = vec![webhook(
        "slow",
        WebhookKind::PreRollout,
        rx.url("/slow?token=abc123"),
        Some("300ms"),
    )];
    let started = Instant::now();
    let report = WebhookGate::new()
        .unwrap()
        .run(
            4,
            WebhookKind::PreRollout,
            &hooks,
            &context(Phase::PreRollout),
        )
        .await;
    let took = started.elapsed();
    let result = &report.results[0];
    assert!(!result.passed);
    assert_eq!(result.message, "no answer within 300ms");
    assert!(
        took >= Duration::from_millis(300) && took < WAIT,
        "took {took:?}"
    );
    assert_eq!(rx.requests().len(), 1, "the request did arrive");
    rx.release();
}

#[tokio::test]
async fn closed_port_fails_without_echoing_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hooks = vec![webhook(
        "gone",
        WebhookKind::PostRollout,
        format!("http://127.0.0.1:{port}/hook?token=s3cret-token"),
        Some("2s"),
    )];
    let report = WebhookGate::new()
        .unwrap()
        .run(
            5,
            WebhookKind::PostRollout,
            &hooks,
            &context(Phase::Succeeded),
        )
        .await;
    let result = &report.results[0];
    assert!(!result.passed);
    assert!(
        result.message.starts_with("could not connect"),
        "{}",
        result.message
    );
    assert!(
        !result.message.contains("s3cret-token"),
        "{}",
        result.message
    );

    // An unusable timeout fails the webhook without calling it.
    let bad = vec![webhook(
        "bad",
        WebhookKind::PostRollout,
        format!("http://127.0.0.1:{port}/"),
        Some("soon"),
    )];
    let report = WebhookGate::new()
        .unwrap()
        .run(
            6,
            WebhookKind::PostRollout,
            &bad,
            &context(Phase::Succeeded),
        )
        .await;
    assert!(!report.results[0].passed);
    assert!(
        report.results[0].message.contains("timeout is not usable"),
        "{}",
        report.results[0].message
    );
}

#[tokio::test]
async fn confirm_promotion_gate_opens_when_the_receiver_approves() {
    // A human approval service: 403 until someone approves, then 200.
    let rx = Receiver::start(ok()).await;
    rx.script([
        status(403, "waiting for approval"),
        status(403, "waiting for approval"),
    ]);
    let hooks = vec![webhook(
        "approval",
        WebhookKind::ConfirmPromotion,
        rx.url("/approve"),
        Some("2s"),
    )];
    let gate = WebhookGate::new().unwrap();
    let ctx = context(Phase::AwaitingPromotion);
    for id in [10, 11] {
        let report = gate
            .run(id, WebhookKind::ConfirmPromotion, &hooks, &ctx)
            .await;
        assert_eq!(report.id, id);
        assert!(!report.results[0].passed);
        assert_eq!(
            report.results[0].message,
            "answered HTTP 403 Forbidden: waiting for approval"
        );
    }
    let report = gate
        .run(12, WebhookKind::ConfirmPromotion, &hooks, &ctx)
        .await;
    assert!(report.results[0].passed, "{report:?}");
    let got = rx.wait_for(3, WAIT).await;
    assert!(got.iter().all(
        |r| r.json()["kind"] == "confirm-promotion" && r.json()["phase"] == "AwaitingPromotion"
    ));
}
