//! The status page: golden HTML for a busy and a starting board (`UPDATE_GOLDEN=1` rewrites
//! `tests/fixtures/status/*.html`), and the live page in headless Chromium (DOM asserted,
//! screenshot saved under `target/test-artifacts/`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use veer::analysis::Judgement;
use veer::controller::Pass;
use veer::rollout::state::Phase;
use veer::server::{
    CheckMark, RolloutStatus, Server, ServerState, StatusBoard, StatusSnapshot, TrackedSource,
    WeightSample, render_status, trigger_channel,
};
use veer::source::{GitRef, SourceSpec};
use veer::sync::state::{ObjectRecord, RejectedRecord, RevisionRecord, SyncState};
use veer_testkit::key;

use crate::helpers::{COMMIT, REPO, start};

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
