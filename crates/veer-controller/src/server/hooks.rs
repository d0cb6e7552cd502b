//! Git push webhooks, pure: who sent a request and whether it is genuine ([`authenticate`]:
//! GitHub's `X-Hub-Signature-256` and Gitea's `X-Gitea-Signature`, both HMAC-SHA256 of the
//! body; GitLab's `X-Gitlab-Token`, a shared token), what it says ([`read_push`]), and whether
//! it concerns what veer follows ([`concerns`]). No I/O: the handler in `server` reads the
//! secret and the body and acts on the answers.

use axum::http::HeaderMap;

use crate::notify::webhook;
use crate::source::{GitRef, SourceSpec};

pub const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
pub const GITHUB_EVENT: &str = "x-github-event";
pub const GITEA_SIGNATURE: &str = "x-gitea-signature";
pub const GITEA_EVENT: &str = "x-gitea-event";
pub const GITLAB_TOKEN: &str = "x-gitlab-token";
pub const GITLAB_EVENT: &str = "x-gitlab-event";

/// Which git host sent a hook (by its signature header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitHost {
    GitHub,
    GitLab,
    Gitea,
}

impl GitHost {
    pub fn as_str(self) -> &'static str {
        match self {
            GitHost::GitHub => "github",
            GitHost::GitLab => "gitlab",
            GitHost::Gitea => "gitea",
        }
    }
}

impl std::fmt::Display for GitHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a hook was refused (401). Never carries the body or the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookRejection {
    #[error(
        "no signature: send X-Hub-Signature-256 (GitHub), X-Gitea-Signature (Gitea) or X-Gitlab-Token (GitLab) made with veer's server.webhookSecret"
    )]
    Unsigned,
    #[error(
        "the {host} signature does not match the body under server.webhookSecret; check that the hook's secret is veer's"
    )]
    Forged { host: GitHost },
    #[error(
        "git webhooks are off: set server.webhookSecret ({{file: PATH}} or {{env: NAME}}) to accept them"
    )]
    NotConfigured,
}

impl HookRejection {
    pub fn metric_label(&self) -> &'static str {
        match self {
            HookRejection::Unsigned => "unsigned",
            HookRejection::Forged { .. } => "forged",
            HookRejection::NotConfigured => "not-configured",
        }
    }
}

/// Why a genuine hook is ignored (202 `ignored: …`): it is not a push, or not one of what
/// veer follows. Nothing to fix unless veer should follow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookIgnored {
    /// `header`: the event header read; `event`: its value, `none` when absent.
    #[error("{host} event `{event}` is not a push (header {header})")]
    NotAPush {
        host: GitHost,
        event: String,
        header: &'static str,
    },
    #[error("repository {repo} is not the tracked {tracked}")]
    OtherRepository { repo: String, tracked: String },
    #[error("veer is pinned to commit {commit}; a push cannot change it")]
    PinnedCommit { commit: String },
    #[error("ref {reference} is not the tracked {wanted}")]
    OtherRef { reference: String, wanted: String },
}

/// Why a push payload cannot be read (400): the hook sends something veer does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("the payload has no `ref`")]
    NoRef,
    #[error("the payload names no repository URL")]
    NoRepositoryUrl,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Equal in time independent of where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Check the request's signature (or token) against `secret`. Gitea is checked first: it
/// sends GitHub's header too.
pub fn authenticate(
    headers: &HeaderMap,
    body: &[u8],
    secret: &[u8],
) -> Result<GitHost, HookRejection> {
    if let Some(sig) = header(headers, GITEA_SIGNATURE) {
        // Gitea sends the bare hex digest.
        return if webhook::verify(secret, body, &format!("sha256={sig}")) {
            Ok(GitHost::Gitea)
        } else {
            Err(HookRejection::Forged {
                host: GitHost::Gitea,
            })
        };
    }
    if let Some(sig) = header(headers, GITHUB_SIGNATURE) {
        return if webhook::verify(secret, body, sig) {
            Ok(GitHost::GitHub)
        } else {
            Err(HookRejection::Forged {
                host: GitHost::GitHub,
            })
        };
    }
    if let Some(token) = header(headers, GITLAB_TOKEN) {
        return if constant_time_eq(token.as_bytes(), secret) {
            Ok(GitHost::GitLab)
        } else {
            Err(HookRejection::Forged {
                host: GitHost::GitLab,
            })
        };
    }
    Err(HookRejection::Unsigned)
}

/// Is it a push (branch or tag)? `Err` names the event, for the "ignored" answer.
pub fn is_push(host: GitHost, headers: &HeaderMap) -> Result<(), HookIgnored> {
    let (name, event) = match host {
        GitHost::GitHub => (GITHUB_EVENT, header(headers, GITHUB_EVENT)),
        GitHost::Gitea => (GITEA_EVENT, header(headers, GITEA_EVENT)),
        GitHost::GitLab => (GITLAB_EVENT, header(headers, GITLAB_EVENT)),
    };
    let push = match (host, event) {
        (GitHost::GitHub | GitHost::Gitea, Some(e)) => e.eq_ignore_ascii_case("push"),
        (GitHost::GitLab, Some(e)) => e == "Push Hook" || e == "Tag Push Hook",
        (_, None) => false,
    };
    if push {
        Ok(())
    } else {
        Err(HookIgnored::NotAPush {
            host,
            event: event.unwrap_or("none").to_string(),
            header: name,
        })
    }
}

/// What a push payload says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub host: GitHost,
    /// `refs/heads/main`, `refs/tags/v1`.
    pub reference: String,
    /// The new tip, when given.
    pub after: Option<String>,
    /// Every URL the payload gives for the repository (clone, SSH, web).
    pub repo_urls: Vec<String>,
}

/// Read a push payload (GitHub, Gitea: `repository.*`; GitLab: `project.*` and
/// `repository.*`). `Err` says what is missing.
pub fn read_push(host: GitHost, body: &[u8]) -> Result<Push, PayloadError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| PayloadError::NotJson {
            reason: e.to_string(),
        })?;
    let reference = value
        .get("ref")
        .and_then(|r| r.as_str())
        .ok_or(PayloadError::NoRef)?
        .to_string();
    let after = value
        .get("after")
        .and_then(|a| a.as_str())
        .map(str::to_string);
    const FIELDS: [&str; 10] = [
        "clone_url",
        "html_url",
        "ssh_url",
        "git_url",
        "url",
        "git_http_url",
        "git_ssh_url",
        "web_url",
        "http_url",
        "homepage",
    ];
    let mut repo_urls = Vec::new();
    for object in ["repository", "project"] {
        for field in FIELDS {
            if let Some(url) = value
                .get(object)
                .and_then(|o| o.get(field))
                .and_then(|u| u.as_str())
                && !url.is_empty()
                && !repo_urls.iter().any(|u| u == url)
            {
                repo_urls.push(url.to_string());
            }
        }
    }
    if repo_urls.is_empty() {
        return Err(PayloadError::NoRepositoryUrl);
    }
    Ok(Push {
        host,
        reference,
        after,
        repo_urls,
    })
}

/// A repository URL reduced to `host/path` (lowercase, no scheme, user, port or `.git`), so
/// the HTTPS, SSH and scp-style URLs of one repository compare equal.
pub fn normalize_repo_url(url: &str) -> String {
    let url = url.trim();
    let (host, path) = if let Some((_, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let host = authority.split(':').next().unwrap_or(authority);
        (host, path)
    } else if let Some((authority, path)) = url.split_once(':')
        && !authority.contains('/')
    {
        // scp-style `git@host:org/repo.git`.
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        (host, path)
    } else {
        ("", url)
    };
    let path = path.trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    format!("{host}/{path}").to_lowercase()
}

/// Does `push` concern the repository and ref veer follows? `Err` says why not.
pub fn concerns(push: &Push, source: &SourceSpec) -> Result<(), HookIgnored> {
    let tracked = normalize_repo_url(&source.url.text);
    if !push
        .repo_urls
        .iter()
        .any(|u| normalize_repo_url(u) == tracked)
    {
        return Err(HookIgnored::OtherRepository {
            repo: push
                .repo_urls
                .first()
                .map_or_else(|| "?".to_string(), String::clone),
            tracked: source.url.text.clone(),
        });
    }
    let wanted = match &source.reference {
        GitRef::Branch(b) => format!("refs/heads/{b}"),
        GitRef::Tag(t) => format!("refs/tags/{t}"),
        GitRef::Commit(c) => {
            return Err(HookIgnored::PinnedCommit { commit: c.clone() });
        }
    };
    if push.reference != wanted {
        return Err(HookIgnored::OtherRef {
            reference: push.reference.clone(),
            wanted,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn each_host_signature_is_accepted_and_a_wrong_one_refused() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let secret = b"s3cret";
        let sig = webhook::sign(secret, body);
        let bare = sig.trim_start_matches("sha256=").to_string();
        let cases: Vec<(HeaderMap, Result<GitHost, HookRejection>)> = vec![
            (headers(&[(GITHUB_SIGNATURE, &sig)]), Ok(GitHost::GitHub)),
            (headers(&[(GITEA_SIGNATURE, &bare)]), Ok(GitHost::Gitea)),
            (
                headers(&[(GITEA_SIGNATURE, &bare), (GITHUB_SIGNATURE, &sig)]),
                Ok(GitHost::Gitea),
            ),
            (headers(&[(GITLAB_TOKEN, "s3cret")]), Ok(GitHost::GitLab)),
            (
                headers(&[(GITHUB_SIGNATURE, &webhook::sign(b"other", body))]),
                Err(HookRejection::Forged {
                    host: GitHost::GitHub,
                }),
            ),
            (
                headers(&[(GITHUB_SIGNATURE, &bare)]),
                Err(HookRejection::Forged {
                    host: GitHost::GitHub,
                }),
            ),
            (
                headers(&[(GITEA_SIGNATURE, "zz")]),
                Err(HookRejection::Forged {
                    host: GitHost::Gitea,
                }),
            ),
            (
                headers(&[(GITLAB_TOKEN, "s3cre")]),
                Err(HookRejection::Forged {
                    host: GitHost::GitLab,
                }),
            ),
            (headers(&[]), Err(HookRejection::Unsigned)),
        ];
        for (h, want) in cases {
            assert_eq!(authenticate(&h, body, secret), want, "{h:?}");
        }
        // The signature covers the body: the same signature on another body is forged.
        assert!(authenticate(&headers(&[(GITHUB_SIGNATURE, &sig)]), b"{}", secret).is_err());
    }

    #[test]
    fn only_pushes_count() {
        let cases = [
            (GitHost::GitHub, GITHUB_EVENT, "push", true),
            (GitHost::GitHub, GITHUB_EVENT, "ping", false),
            (GitHost::Gitea, GITEA_EVENT, "push", true),
            (GitHost::Gitea, GITEA_EVENT, "pull_request", false),
            (GitHost::GitLab, GITLAB_EVENT, "Push Hook", true),
            (GitHost::GitLab, GITLAB_EVENT, "Tag Push Hook", true),
            (GitHost::GitLab, GITLAB_EVENT, "Merge Request Hook", false),
            (GitHost::GitLab, GITHUB_EVENT, "push", false),
        ];
        for (host, name, event, want) in cases {
            assert_eq!(
                is_push(host, &headers(&[(name, event)])).is_ok(),
                want,
                "{host} {name}: {event}"
            );
        }
        assert_eq!(
            is_push(GitHost::GitHub, &headers(&[(GITHUB_EVENT, "ping")]))
                .unwrap_err()
                .to_string(),
            "github event `ping` is not a push (header x-github-event)"
        );
        assert_eq!(
            is_push(GitHost::GitLab, &headers(&[]))
                .unwrap_err()
                .to_string(),
            "gitlab event `none` is not a push (header x-gitlab-event)"
        );
    }

    #[test]
    fn urls_of_one_repository_normalize_alike() {
        let cases = [
            ("https://github.com/Org/Mesh.git", "github.com/org/mesh"),
            ("https://github.com/org/mesh", "github.com/org/mesh"),
            ("https://github.com/org/mesh/", "github.com/org/mesh"),
            ("git@github.com:org/mesh.git", "github.com/org/mesh"),
            (
                "ssh://git@github.com:22/org/mesh.git",
                "github.com/org/mesh",
            ),
            (
                "https://user@gitlab.example.com:8443/g/sub/mesh.git",
                "gitlab.example.com/g/sub/mesh",
            ),
            ("git://github.com/org/mesh.git", "github.com/org/mesh"),
            ("/srv/git/mesh.git", "/srv/git/mesh"),
            ("file:///srv/git/mesh.git", "/srv/git/mesh"),
        ];
        for (url, want) in cases {
            assert_eq!(normalize_repo_url(url), want, "{url}");
        }
        assert_ne!(
            normalize_repo_url("https://github.com/org/mesh"),
            normalize_repo_url("https://github.com/org/mesh-old")
        );
    }

    fn spec(url: &str, reference: GitRef) -> SourceSpec {
        SourceSpec::new(url, reference).unwrap()
    }

    #[test]
    fn a_push_concerns_the_tracked_repository_and_ref_only() {
        let github = br#"{"ref":"refs/heads/main","after":"abc","repository":{"clone_url":"https://github.com/org/mesh.git","ssh_url":"git@github.com:org/mesh.git","html_url":"https://github.com/org/mesh"}}"#;
        let gitlab = br#"{"ref":"refs/heads/main","project":{"git_http_url":"https://gitlab.com/org/mesh.git","git_ssh_url":"git@gitlab.com:org/mesh.git"}}"#;
        let push = read_push(GitHost::GitHub, github).unwrap();
        assert_eq!(push.after.as_deref(), Some("abc"));
        assert_eq!(push.repo_urls.len(), 3);
        let main = GitRef::Branch("main".into());
        let cases = [
            (
                &push,
                spec("git@github.com:org/mesh.git", main.clone()),
                Ok(()),
            ),
            (
                &push,
                spec("https://github.com/org/mesh", main.clone()),
                Ok(()),
            ),
            (
                &push,
                spec("https://github.com/org/other.git", main.clone()),
                Err("is not the tracked"),
            ),
            (
                &push,
                spec(
                    "https://github.com/org/mesh.git",
                    GitRef::Branch("prod".into()),
                ),
                Err("ref refs/heads/main is not the tracked refs/heads/prod"),
            ),
            (
                &push,
                spec(
                    "https://github.com/org/mesh.git",
                    GitRef::Tag("main".into()),
                ),
                Err("refs/tags/main"),
            ),
            (
                &push,
                spec(
                    "https://github.com/org/mesh.git",
                    GitRef::Commit("a".repeat(40)),
                ),
                Err("pinned"),
            ),
        ];
        for (push, spec, want) in cases {
            match (concerns(push, &spec), want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{e} should say {w}"),
                (got, want) => panic!("{}: got {got:?}, want {want:?}", spec.url),
            }
        }
        let push = read_push(GitHost::GitLab, gitlab).unwrap();
        assert!(concerns(&push, &spec("https://gitlab.com/org/mesh", main)).is_ok());
    }

    #[test]
    fn unreadable_payloads_say_what_is_wrong() {
        let message = |body: &[u8]| read_push(GitHost::GitHub, body).unwrap_err().to_string();
        assert!(
            message(b"not json").starts_with("the body is not JSON: "),
            "{}",
            message(b"not json")
        );
        assert_eq!(message(b"{}"), "the payload has no `ref`");
        assert_eq!(
            message(br#"{"ref":"refs/heads/main"}"#),
            "the payload names no repository URL"
        );
    }
}
