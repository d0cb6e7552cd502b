//! `revert: git` against real remotes: a plain path, `git daemon --enable=receive-pack`, smart
//! HTTP through `git http-backend` (with Basic auth) and OpenSSH. Every result is checked with
//! the `git` CLI on the remote: the revert lands on the branch, undoes exactly the offending
//! change and keeps later commits; conflicts, tags and races are refused or retried.

mod support;

use support::{GitDaemon, HttpGit, Remote, SshServer, service};
use veer::source::{
    Auth, CommitId, FailedCheck, GitRef, GitSource, RevertAuthor, RevertError, RevertRequest,
    Reverted, SecretSource, SourceSpec, revert,
};

fn vs(stable: u32, canary: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n\
         spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, subset: v1}}\n      \
         weight: {stable}\n    - destination: {{host: reviews, subset: v2}}\n      weight: {canary}\n"
    )
}

/// `base` (reviews on v1), `offending` (all traffic to v2), `later` (an unrelated service).
struct History {
    remote: Remote,
    base: String,
    offending: String,
    later: String,
}

fn history(root: &std::path::Path) -> History {
    let remote = Remote::new(root, "app");
    remote.write("vs.yaml", &vs(100, 0));
    remote.write("svc.yaml", &service("reviews"));
    let base = remote.commit_and_push("reviews on v1");
    remote.write("vs.yaml", &vs(0, 100));
    let offending = remote.commit_and_push("reviews: send all traffic to v2");
    remote.write("ratings.yaml", &service("ratings"));
    let later = remote.commit_and_push("add ratings");
    History {
        remote,
        base,
        offending,
        later,
    }
}

fn request(commit: &str) -> RevertRequest {
    RevertRequest {
        commit: CommitId(commit.to_string()),
        rollout: "shop/reviews".into(),
        reason: "2 failed checks (threshold 2)".into(),
        failed_check: Some(FailedCheck {
            metric: "request-success-rate".into(),
            value: "91.3".into(),
            threshold: "min 99".into(),
        }),
        author: RevertAuthor::parse("veer bot <veer@example.com>").unwrap(),
        now: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    }
}

fn source(spec: SourceSpec, root: &std::path::Path) -> GitSource {
    GitSource::open(spec, &root.join("cache")).unwrap()
}

fn main_branch(url: &str) -> SourceSpec {
    SourceSpec::new(url, GitRef::Branch("main".into())).unwrap()
}

/// The revert is the remote's new tip, on top of `later`, and differs from `later` exactly by
/// `vs.yaml` going back to its `base` content.
fn assert_reverted(h: &History, reverted: &Reverted) {
    let Reverted::Pushed { commit } = reverted else {
        panic!("expected a pushed revert, got {reverted:?}");
    };
    let r = &h.remote;
    assert_eq!(
        r.remote_tip("main"),
        commit.0,
        "the revert is the branch tip"
    );
    r.git(&["fetch", "-q", "origin"]);
    let at = |what: &str| r.git(&["rev-parse", what]);
    assert_eq!(at(&format!("{}^", commit.0)), h.later, "parent is the tip");
    assert_eq!(
        r.git(&["diff", "--name-only", &h.later, &commit.0]),
        "vs.yaml"
    );
    assert_eq!(
        r.git(&["show", &format!("{}:vs.yaml", commit.0)]),
        vs(100, 0).trim_end()
    );
    assert_eq!(
        r.git(&["diff", &h.base, &commit.0, "--", "vs.yaml", "svc.yaml"]),
        "",
        "the offending change is undone exactly"
    );
    assert_eq!(
        r.git(&["show", &format!("{}:ratings.yaml", commit.0)]),
        service("ratings").trim_end(),
        "the later commit is kept"
    );
    assert_eq!(
        r.git(&["show", "-s", "--format=%an <%ae>|%cn <%ce>|%at", &commit.0]),
        "veer bot <veer@example.com>|veer bot <veer@example.com>|1800000000"
    );
    let message = r.git(&["show", "-s", "--format=%B", &commit.0]);
    assert!(
        message.starts_with("Revert \"reviews: send all traffic to v2\"\n\n"),
        "{message}"
    );
    assert!(
        message.contains(&format!("This reverts commit {}.", h.offending)),
        "{message}"
    );
    assert!(
        message.contains("request-success-rate was 91.3 (threshold min 99)"),
        "{message}"
    );
}

#[test]
fn local_path_revert_lands_and_a_second_call_finds_it_done() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    let src = source(main_branch(h.remote.bare.to_str().unwrap()), tmp.path());

    let reverted = revert(&src, &request(&h.offending)).unwrap();
    assert_reverted(&h, &reverted);

    // A restarted veer asking again pushes nothing: the tip already undoes the change.
    let again = revert(&src, &request(&h.offending)).unwrap();
    assert_eq!(
        again,
        Reverted::AlreadyReverted {
            tip: reverted.commit().clone()
        }
    );
    assert_eq!(h.remote.remote_tip("main"), reverted.commit().0);
}

#[test]
fn git_daemon_push_revert_lands() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    let daemon = GitDaemon::start_with_push(&h.remote.base);
    let src = source(main_branch(&daemon.url("app")), tmp.path());
    let reverted = revert(&src, &request(&h.offending)).unwrap();
    assert_reverted(&h, &reverted);
}

#[test]
fn http_push_with_basic_auth_revert_lands() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    h.remote.allow_http_push();
    let server = HttpGit::start(&h.remote.base, Some(("robot", "s3cret-pass")));
    let password = tmp.path().join("password");
    std::fs::write(&password, "s3cret-pass\n").unwrap();
    let spec = main_branch(&server.url("app"))
        .with_auth(Auth::Basic {
            username: "robot".into(),
            password: SecretSource::File(password),
        })
        .unwrap();
    let reverted = revert(&source(spec, tmp.path()), &request(&h.offending)).unwrap();
    assert_reverted(&h, &reverted);
}

#[test]
fn http_server_refusing_pushes_is_a_push_error() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    // `git http-backend` refuses anonymous pushes unless told otherwise.
    let server = HttpGit::start(&h.remote.base, None);
    let src = source(main_branch(&server.url("app")), tmp.path());
    let err = revert(&src, &request(&h.offending)).unwrap_err();
    assert!(matches!(err, RevertError::Push { .. }), "{err:?}");
    assert_eq!(err.metric_label(), "push");
    assert!(err.to_string().contains("403"), "{err}");
    assert!(err.to_string().contains("branch main"), "{err}");
    assert_eq!(h.remote.remote_tip("main"), h.later);
}

#[test]
fn ssh_push_revert_lands() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    let server = SshServer::start(&tmp.path().join("ssh"));
    let spec = main_branch(&server.url(&h.remote.bare))
        .with_auth(Auth::SshKey {
            private_key: server.client_key.clone(),
            passphrase: None,
            known_hosts: server.known_hosts.clone(),
        })
        .unwrap();
    let reverted = revert(&source(spec, tmp.path()), &request(&h.offending)).unwrap();
    assert_reverted(&h, &reverted);
}

#[test]
fn conflicting_revert_is_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    // A later commit changes the very lines the offending commit changed.
    h.remote.write("vs.yaml", &vs(10, 90));
    let tip = h.remote.commit_and_push("reviews: 90% to v2");
    let src = source(main_branch(h.remote.bare.to_str().unwrap()), tmp.path());

    let err = revert(&src, &request(&h.offending)).unwrap_err();
    let RevertError::Conflict { files, commit, .. } = &err else {
        panic!("expected a conflict, got {err:?}");
    };
    assert_eq!(files, &vec!["vs.yaml".to_string()]);
    assert_eq!(commit, &h.offending);
    assert_eq!(err.metric_label(), "conflict");
    assert!(err.to_string().contains("vs.yaml"), "{err}");
    assert_eq!(h.remote.remote_tip("main"), tip, "nothing was pushed");
}

#[test]
fn tag_or_commit_tracking_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    h.remote.git(&["tag", "v1", &h.later]);
    h.remote.git(&["push", "-q", "origin", "v1"]);
    let url = h.remote.bare.to_str().unwrap();
    for reference in [GitRef::Tag("v1".into()), GitRef::commit(&h.later).unwrap()] {
        let spec = SourceSpec::new(url, reference.clone()).unwrap();
        let err = revert(&source(spec, tmp.path()), &request(&h.offending)).unwrap_err();
        assert_eq!(err.metric_label(), "not-a-branch", "{reference}: {err}");
        assert!(err.to_string().contains("not a branch"), "{err}");
    }
    assert_eq!(h.remote.remote_tip("main"), h.later);
}

#[test]
fn commit_not_on_the_branch_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    h.remote.git(&["checkout", "-q", "-b", "feature"]);
    h.remote.write("feature.yaml", &service("feature"));
    let elsewhere = h.remote.commit("feature only");
    h.remote.git(&["push", "-q", "origin", "feature"]);
    let src = source(main_branch(h.remote.bare.to_str().unwrap()), tmp.path());
    let err = revert(&src, &request(&elsewhere)).unwrap_err();
    assert_eq!(err.metric_label(), "not-on-branch", "{err}");
    assert_eq!(h.remote.remote_tip("main"), h.later);
}

/// An `update` hook that, on its first call, moves `main` to the `racer` branch (someone
/// pushed meanwhile) and declines; later calls do what `then` says. Counts its calls.
fn racing_hook(h: &History, then: &str) {
    h.remote.git(&["checkout", "-q", "-b", "racer"]);
    h.remote.write("details.yaml", &service("details"));
    h.remote.commit("add details");
    h.remote.git(&["push", "-q", "origin", "racer"]);
    h.remote.git(&["checkout", "-q", "main"]);
    h.remote.update_hook(&format!(
        "n=$(cat \"$GIT_DIR/calls\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$GIT_DIR/calls\"\n\
         if [ $n -eq 1 ]; then git update-ref refs/heads/main refs/heads/racer; echo 'someone pushed' >&2; exit 1; fi\n\
         {then}"
    ));
}

fn hook_calls(h: &History) -> String {
    std::fs::read_to_string(h.remote.bare.join("calls"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn rejected_push_is_retried_once_on_the_new_tip() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    racing_hook(&h, "exit 0");
    let racer = h.remote.remote_tip("racer");
    let daemon = GitDaemon::start_with_push(&h.remote.base);
    let src = source(main_branch(&daemon.url("app")), tmp.path());

    let reverted = revert(&src, &request(&h.offending)).unwrap();
    let Reverted::Pushed { commit } = &reverted else {
        panic!("expected a pushed revert, got {reverted:?}");
    };
    assert_eq!(hook_calls(&h), "2");
    assert_eq!(h.remote.remote_tip("main"), commit.0);
    h.remote.git(&["fetch", "-q", "origin"]);
    assert_eq!(
        h.remote.git(&["rev-parse", &format!("{}^", commit.0)]),
        racer,
        "the retry is built on the new tip"
    );
    assert_eq!(
        h.remote.git(&["diff", "--name-only", &racer, &commit.0]),
        "vs.yaml"
    );
}

#[test]
fn push_rejected_twice_gives_up() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    racing_hook(&h, "echo 'still racing' >&2; exit 1");
    let racer = h.remote.remote_tip("racer");
    h.remote.allow_http_push();
    let server = HttpGit::start(&h.remote.base, None);
    let src = source(main_branch(&server.url("app")), tmp.path());

    let err = revert(&src, &request(&h.offending)).unwrap_err();
    assert_eq!(err.metric_label(), "rejected", "{err}");
    assert!(err.to_string().contains("rejected twice"), "{err}");
    assert_eq!(hook_calls(&h), "2", "one retry, no more");
    assert_eq!(h.remote.remote_tip("main"), racer);
}

/// A remote that is someone's working repository, with `main` checked out: the push is
/// refused, and the error says why (not "check the credentials", not "someone keeps pushing"),
/// by path, by file:// URL and through `git daemon` (where `git receive-pack` refuses it).
#[test]
fn non_bare_remote_is_named_as_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let h = history(tmp.path());
    let work = &h.remote.work;
    let daemon = GitDaemon::start_with_push(work.parent().unwrap());
    let urls = [
        work.display().to_string(),
        format!("file://{}", work.display()),
        format!("git://127.0.0.1:{}/app", daemon.port),
    ];
    for (i, url) in urls.iter().enumerate() {
        let cache = tmp.path().join(format!("cache-{i}"));
        let src = GitSource::open(main_branch(url), &cache).unwrap();
        let err = revert(&src, &request(&h.offending)).unwrap_err();
        assert_eq!(err.metric_label(), "non-bare-remote", "{url}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("the remote {url} refused the push"))
                && text.contains("non-bare repository")
                && text.contains("bare repository (`git clone --bare`)"),
            "{text}"
        );
        assert!(!text.contains("credentials"), "{text}");
        assert_eq!(h.remote.git(&["rev-parse", "main"]), h.later, "{url}");
    }
    // Through a daemon, the remote's own reason is kept.
    let src = GitSource::open(main_branch(&urls[2]), &tmp.path().join("cache-2")).unwrap();
    let err = revert(&src, &request(&h.offending)).unwrap_err();
    assert!(
        err.to_string().contains("branch is currently checked out"),
        "{err}"
    );
}
