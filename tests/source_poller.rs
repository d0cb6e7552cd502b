//! The poller on a paused tokio clock, against a real `git daemon`: new commits are loaded,
//! idle polls only compare, and a dead server keeps the last good revision.

mod support;

use std::time::Duration;

use support::{GitDaemon, Remote, service};
use veer::source::{CommitId, GitRef, GitSource, PollOutcome, Poller, Schedule, SourceSpec};

#[tokio::test(start_paused = true)]
async fn poller_loads_changes_and_keeps_last_good_on_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write("svc.yaml", &service("reviews"));
    let first = remote.commit_and_push("first");
    let mut daemon = GitDaemon::start(&remote.base);

    let spec = SourceSpec::new(&daemon.url("app"), GitRef::Branch("main".into())).unwrap();
    let source = GitSource::open(spec, &tmp.path().join("cache")).unwrap();
    let mut poller = Poller::new(
        source,
        Schedule::parse("30s").unwrap(),
        Duration::from_secs(20),
    );

    let PollOutcome::Updated(rev) = poller.poll_once().await else {
        panic!("first poll should load: {:?}", poller.last_error());
    };
    assert_eq!(rev.revision.commit, CommitId(first.clone()));
    assert_eq!(rev.set.manifests.len(), 1);

    // The schedule drives the wait, on tokio's clock.
    let before = tokio::time::Instant::now();
    poller.next_tick().await;
    assert_eq!(before.elapsed(), Duration::from_secs(30));

    assert_eq!(
        poller.poll_once().await,
        PollOutcome::Unchanged {
            commit: CommitId(first.clone())
        }
    );

    remote.write("svc2.yaml", &service("ratings"));
    let second = remote.commit_and_push("second");
    match poller.poll_once().await {
        PollOutcome::Updated(rev) => {
            assert_eq!(rev.revision.commit, CommitId(second.clone()));
            assert_eq!(rev.changed_files, vec!["svc2.yaml"]);
            assert_eq!(rev.parsed_files, 1);
        }
        other => panic!("expected an update, got {other:?}"),
    }

    // The server goes away: the poll fails, the poller survives with the last good revision.
    daemon.stop();
    match poller.poll_once().await {
        PollOutcome::Failed { error, kept } => {
            assert_eq!(kept, Some(CommitId(second.clone())));
            assert_eq!(error.metric_label(), "fetch", "{error}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        poller.last_good().map(|r| r.revision.commit.clone()),
        Some(CommitId(second.clone()))
    );
    assert!(poller.last_error().is_some());

    // It comes back: polling resumes, nothing to load.
    let daemon = GitDaemon::start(&remote.base);
    let spec = SourceSpec::new(&daemon.url("app"), GitRef::Branch("main".into())).unwrap();
    let source = GitSource::open(spec, &tmp.path().join("cache")).unwrap();
    let mut poller = Poller::new(
        source,
        Schedule::parse("1m").unwrap(),
        Duration::from_secs(20),
    );
    match poller.poll_once().await {
        PollOutcome::Updated(rev) => {
            assert_eq!(rev.revision.commit, CommitId(second));
            // A fresh poller has an empty parse cache, but the clone is reused.
            assert_eq!(rev.parsed_files, 2);
        }
        other => panic!("expected a load, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn cron_schedule_waits_until_the_next_second_mark() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.commit_and_push("empty");
    let spec =
        SourceSpec::new(remote.bare.to_str().unwrap(), GitRef::Branch("main".into())).unwrap();
    let source = GitSource::open(spec, &tmp.path().join("cache")).unwrap();
    let poller = Poller::new(
        source,
        Schedule::parse("*/10 * * * * *").unwrap(),
        Duration::from_secs(5),
    );
    let before = tokio::time::Instant::now();
    poller.next_tick().await;
    let waited = before.elapsed();
    assert!(
        waited > Duration::ZERO && waited <= Duration::from_secs(10),
        "{waited:?}"
    );
}

/// A server that accepts connections and never answers: the poll times out, the next one
/// reports the stuck fetch as busy instead of piling up threads, and once the server goes away
/// polling recovers.
#[tokio::test]
async fn silent_server_times_out_then_reports_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "git://127.0.0.1:{}/app.git",
        listener.local_addr().unwrap().port()
    );
    let spec = SourceSpec::new(&url, GitRef::Branch("main".into())).unwrap();
    let source = GitSource::open(spec, &tmp.path().join("cache")).unwrap();
    let mut poller = Poller::new(
        source,
        Schedule::parse("30s").unwrap(),
        Duration::from_millis(500),
    );
    let label = |o: PollOutcome| match o {
        PollOutcome::Failed { error, kept } => {
            assert_eq!(kept, None);
            error.metric_label()
        }
        other => panic!("expected a failure, got {other:?}"),
    };
    assert_eq!(label(poller.poll_once().await), "timeout");
    assert_eq!(label(poller.poll_once().await), "busy");
    // Closing the listener resets the pending connection, which ends the stuck fetch.
    drop(listener);
    let mut last = "busy";
    for _ in 0..50 {
        last = label(poller.poll_once().await);
        if last != "busy" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, "fetch");
}
