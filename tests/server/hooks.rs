//! Git push hooks from GitHub, GitLab and Gitea: genuine ones trigger a reconcile (coalesced
//! while one is queued); forged, unsigned, tampered, oversize and secret-less ones are
//! refused; other repositories, branches and events are ignored.

use std::time::Duration;

use veer::notify::webhook::sign;

use crate::helpers::{COMMIT, REPO, Running, SECRET, push_body, start};

fn gitlab_body(repo: &str, reference: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "object_kind": "push",
        "ref": reference,
        "after": COMMIT,
        "project": {"git_http_url": repo, "git_ssh_url": "git@git.example.com:platform/mesh.git"},
        "repository": {"url": "git@git.example.com:platform/mesh.git"},
    }))
    .unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Host {
    GitHub,
    GitLab,
    Gitea,
}

/// A request as `host` sends it: its event header, and its signature made with `secret`
/// (`None`: unsigned).
fn hook(r: &Running, host: Host, body: Vec<u8>, secret: Option<&str>) -> reqwest::RequestBuilder {
    let mut request = r
        .client
        .post(format!("{}/hooks/git", r.url))
        .header("content-type", "application/json");
    request = match host {
        Host::GitHub => request.header("X-GitHub-Event", "push"),
        Host::GitLab => request.header("X-Gitlab-Event", "Push Hook"),
        Host::Gitea => request.header("X-Gitea-Event", "push"),
    };
    if let Some(secret) = secret {
        let sig = sign(secret.as_bytes(), &body);
        request = match host {
            Host::GitHub => request.header("X-Hub-Signature-256", sig),
            Host::GitLab => request.header("X-Gitlab-Token", secret),
            Host::Gitea => request.header("X-Gitea-Signature", sig.trim_start_matches("sha256=")),
        };
    }
    request.body(body)
}

async fn send(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn body_for(host: Host, repo: &str, reference: &str) -> Vec<u8> {
    match host {
        Host::GitHub | Host::Gitea => push_body(repo, reference),
        Host::GitLab => gitlab_body(repo, reference),
    }
}

#[tokio::test]
async fn each_git_host_triggers_a_reconcile_and_forgeries_are_refused() {
    let mut r = start(true).await;
    for host in [Host::GitHub, Host::GitLab, Host::Gitea] {
        let ok = hook(
            &r,
            host,
            body_for(host, REPO, "refs/heads/main"),
            Some(SECRET),
        );
        assert_eq!(
            send(ok).await,
            (200, "reconcile triggered\n".into()),
            "{host:?}"
        );
        let trigger = tokio::time::timeout(Duration::from_secs(5), r.triggers.recv())
            .await
            .expect("a trigger within 5s")
            .expect("the channel is open");
        assert_eq!(trigger.reference, "refs/heads/main");
        assert_eq!(trigger.commit.as_deref(), Some(COMMIT));
        assert_eq!(format!("{host:?}").to_lowercase(), trigger.host.as_str());

        let forged = hook(
            &r,
            host,
            body_for(host, REPO, "refs/heads/main"),
            Some("guess"),
        );
        let (status, body) = send(forged).await;
        assert_eq!(status, 401, "{host:?}: {body}");
        assert!(body.contains("does not match"), "{body}");
        let unsigned = hook(&r, host, body_for(host, REPO, "refs/heads/main"), None);
        let (status, body) = send(unsigned).await;
        assert_eq!(status, 401, "{host:?}: {body}");
        assert!(body.contains("no signature"), "{body}");
        // A body altered after signing is forged too.
        let sig = sign(SECRET.as_bytes(), &push_body(REPO, "refs/heads/main"));
        let tampered = r
            .client
            .post(format!("{}/hooks/git", r.url))
            .header("X-GitHub-Event", "push")
            .header("X-Hub-Signature-256", sig)
            .body(push_body(REPO, "refs/heads/prod"));
        assert_eq!(send(tampered).await.0, 401);
        assert!(
            r.triggers.try_recv().is_err(),
            "{host:?}: no trigger from a refused hook"
        );
    }
    r.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_repositories_branches_and_events_are_ignored() {
    let mut r = start(true).await;
    let cases = [
        (
            body_for(
                Host::GitHub,
                "https://git.example.com/platform/other.git",
                "refs/heads/main",
            ),
            "is not the tracked https://git.example.com/platform/mesh.git",
        ),
        (
            body_for(Host::GitHub, REPO, "refs/heads/feature"),
            "ref refs/heads/feature is not the tracked refs/heads/main",
        ),
        (
            body_for(Host::GitHub, REPO, "refs/tags/main"),
            "is not the tracked refs/heads/main",
        ),
    ];
    for (body, want) in cases {
        let (status, text) = send(hook(&r, Host::GitHub, body, Some(SECRET))).await;
        assert_eq!(status, 202, "{text}");
        assert!(
            text.starts_with("ignored: ") && text.contains(want),
            "{text}"
        );
    }
    let body = push_body(REPO, "refs/heads/main");
    let ping = r
        .client
        .post(format!("{}/hooks/git", r.url))
        .header("X-GitHub-Event", "ping")
        .header("X-Hub-Signature-256", sign(SECRET.as_bytes(), &body))
        .body(body);
    let (status, text) = send(ping).await;
    assert_eq!(
        (status, text.contains("`ping` is not a push")),
        (202, true),
        "{text}"
    );
    // The same URL in its SSH form is the same repository.
    let ssh = body_for(
        Host::GitHub,
        "git@git.example.com:platform/mesh.git",
        "refs/heads/main",
    );
    assert_eq!(send(hook(&r, Host::GitHub, ssh, Some(SECRET))).await.0, 200);
    assert!(r.triggers.try_recv().is_ok());
    assert!(
        r.triggers.try_recv().is_err(),
        "ignored hooks trigger nothing"
    );
}

#[tokio::test]
async fn pushes_coalesce_while_a_reconcile_is_queued() {
    let mut r = start(true).await;
    for _ in 0..3 {
        let body = push_body(REPO, "refs/heads/main");
        assert_eq!(
            send(hook(&r, Host::GitHub, body, Some(SECRET))).await.0,
            200
        );
    }
    assert!(r.triggers.try_recv().is_ok());
    assert!(
        r.triggers.try_recv().is_err(),
        "one queued reconcile covers them all"
    );
}

#[tokio::test]
async fn oversize_bodies_get_413_and_hooks_without_a_secret_401() {
    let r = start(true).await;
    let mut big = push_body(REPO, "refs/heads/main");
    big.resize(veer::server::MAX_HOOK_BYTES + 1, b' ');
    let (status, _) = send(hook(&r, Host::GitHub, big, Some(SECRET))).await;
    assert_eq!(status, 413);

    let r = start(false).await;
    let (status, text) = send(hook(
        &r,
        Host::GitHub,
        push_body(REPO, "refs/heads/main"),
        Some(SECRET),
    ))
    .await;
    assert_eq!(status, 401);
    assert!(text.contains("set server.webhookSecret"), "{text}");
}
