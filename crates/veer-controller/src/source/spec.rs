//! What to fetch: the repository URL, the ref, the sub-path and the credentials. Plain data,
//! checked on construction; secrets are only named here and read when a fetch needs them.

use std::fmt;
use std::path::PathBuf;

pub use crate::secret::{Secret, SecretSource};

use super::SourceError;

/// How the repository URL reaches the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    /// A path on this machine, e.g. `/srv/git/app.git` or `../app`.
    LocalPath,
    /// `file:///srv/git/app.git`.
    File,
    /// `git://host/app.git` (the git daemon protocol; no authentication).
    Git,
    /// `http://host/app.git`; only sensible on a trusted network.
    Http,
    /// `https://host/app.git`.
    Https,
    /// `ssh://[user@]host[:port]/app.git`.
    Ssh,
    /// scp-style `user@host:org/app.git`, which git treats as SSH.
    Scp,
}

impl UrlKind {
    pub fn is_ssh(self) -> bool {
        match self {
            UrlKind::Ssh | UrlKind::Scp => true,
            UrlKind::LocalPath | UrlKind::File | UrlKind::Git | UrlKind::Http | UrlKind::Https => {
                false
            }
        }
    }

    pub fn is_http(self) -> bool {
        match self {
            UrlKind::Http | UrlKind::Https => true,
            UrlKind::LocalPath | UrlKind::File | UrlKind::Git | UrlKind::Ssh | UrlKind::Scp => {
                false
            }
        }
    }
}

/// A repository URL and how it was classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitUrl {
    pub text: String,
    pub kind: UrlKind,
}

impl fmt::Display for GitUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Which commit of the repository to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    /// Follow the tip of a branch (force-pushes included).
    Branch(String),
    /// Follow a tag (moved tags are followed too).
    Tag(String),
    /// Pin one commit, by its full hexadecimal id.
    Commit(String),
}

impl GitRef {
    /// `main`, `branch:main`, `tag:v1.2`, `commit:<sha>`, or a bare full commit id.
    pub fn parse(text: &str) -> Result<GitRef, SourceError> {
        let text = text.trim();
        let invalid = |reason: &str| SourceError::InvalidRef {
            reference: text.to_string(),
            reason: reason.to_string(),
        };
        let (kind, name) = match text.split_once(':') {
            Some((k, n)) => (Some(k), n),
            None => (None, text),
        };
        if name.is_empty() {
            return Err(invalid(
                "a ref needs a name, e.g. `main`, `tag:v1.2` or `commit:<sha>`",
            ));
        }
        match kind {
            None if GitRef::commit(name).is_ok() => GitRef::commit(name),
            None | Some("branch") => Ok(GitRef::Branch(name.to_string())),
            Some("tag") => Ok(GitRef::Tag(name.to_string())),
            Some("commit") => GitRef::commit(name),
            Some(_) => Err(invalid(
                "unknown ref kind; use `branch:`, `tag:` or `commit:`",
            )),
        }
    }

    /// A pinned commit; the id must be a full 40 (SHA-1) or 64 (SHA-256) hex digits, because an
    /// abbreviation may become ambiguous as the repository grows.
    pub fn commit(sha: &str) -> Result<GitRef, SourceError> {
        let sha = sha.trim();
        if (sha.len() == 40 || sha.len() == 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(GitRef::Commit(sha.to_ascii_lowercase()))
        } else {
            Err(SourceError::InvalidRef {
                reference: sha.to_string(),
                reason: "a commit must be given as its full 40-digit hexadecimal id".to_string(),
            })
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitRef::Branch(b) => write!(f, "branch {b}"),
            GitRef::Tag(t) => write!(f, "tag {t}"),
            GitRef::Commit(c) => write!(f, "commit {c}"),
        }
    }
}

/// How to authenticate to the remote. In veer.yaml, `auth:` holds one of `token`, `basic`,
/// `ssh`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Auth {
    #[serde(skip)]
    None,
    /// An HTTPS access token, sent as the password. The user name is the URL's own, or
    /// `x-access-token` (what GitHub expects; GitLab and Gitea accept any name with a token).
    Token(SecretSource),
    /// HTTPS user name and password.
    Basic {
        username: String,
        password: SecretSource,
    },
    /// SSH private key. The server's host key must be listed in `known_hosts`: veer never
    /// trusts an unknown host.
    #[serde(rename = "ssh", rename_all = "camelCase")]
    SshKey {
        private_key: PathBuf,
        #[serde(default)]
        passphrase: Option<SecretSource>,
        known_hosts: PathBuf,
    },
}

/// Everything needed to follow one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub url: GitUrl,
    pub reference: GitRef,
    /// Directory inside the repository holding the manifests, normalized (`a/b`, no slashes
    /// at either end); `None` for the whole repository.
    pub sub_path: Option<String>,
    pub auth: Auth,
}

impl SourceSpec {
    pub fn new(url: &str, reference: GitRef) -> Result<Self, SourceError> {
        let url = Self::parse_url(url)?;
        match &reference {
            GitRef::Branch(name) | GitRef::Tag(name) => check_ref_name(name)?,
            GitRef::Commit(sha) => {
                GitRef::commit(sha)?;
            }
        }
        Ok(Self {
            url,
            reference,
            sub_path: None,
            auth: Auth::None,
        })
    }

    pub fn with_sub_path(mut self, path: &str) -> Result<Self, SourceError> {
        self.sub_path = normalize_sub_path(path)?;
        Ok(self)
    }

    pub fn with_auth(mut self, auth: Auth) -> Result<Self, SourceError> {
        let fits = match &auth {
            Auth::None => true,
            Auth::Token(_) | Auth::Basic { .. } => self.url.kind.is_http(),
            Auth::SshKey { .. } => self.url.kind.is_ssh(),
        };
        if !fits {
            return Err(SourceError::InvalidUrl {
                url: self.url.text.clone(),
                reason: "this kind of authentication does not apply to this URL: tokens and \
                         passwords are for http(s) URLs, SSH keys for ssh:// or user@host:path URLs"
                    .to_string(),
            });
        }
        self.auth = auth;
        Ok(self)
    }

    /// Classify a repository URL. URLs carrying a password are refused (and not echoed back),
    /// because every error and log line names the URL: credentials belong in `auth`.
    pub fn parse_url(url: &str) -> Result<GitUrl, SourceError> {
        let text = url.trim();
        let invalid = |reason: &str| SourceError::InvalidUrl {
            url: redact(text),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(invalid("the URL is empty"));
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            let kind = match scheme.to_ascii_lowercase().as_str() {
                "file" => UrlKind::File,
                "git" => UrlKind::Git,
                "http" => UrlKind::Http,
                "https" => UrlKind::Https,
                "ssh" | "git+ssh" => UrlKind::Ssh,
                _ => {
                    return Err(invalid(
                        "unsupported scheme; use a local path, file://, git://, http(s)://, \
                         ssh:// or user@host:path",
                    ));
                }
            };
            let authority = rest.split('/').next().unwrap_or("");
            if kind != UrlKind::File && authority.is_empty() {
                return Err(invalid("the URL names no host"));
            }
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && userinfo.contains(':')
            {
                return Err(invalid(
                    "the URL contains a password; remove it and configure `auth` instead",
                ));
            }
            if kind == UrlKind::File && rest.is_empty() {
                return Err(invalid("the file:// URL names no path"));
            }
            return Ok(GitUrl {
                text: text.to_string(),
                kind,
            });
        }
        // scp-style `[user@]host:path`: a colon before any slash. Git itself uses the same rule,
        // so `./a:b` and `/x/a:b` stay local paths.
        if let Some(colon) = text.find(':') {
            let before = &text[..colon];
            if !before.contains('/') && !before.is_empty() {
                if text[colon + 1..].is_empty() {
                    return Err(invalid(
                        "the scp-style URL names no repository path after `:`",
                    ));
                }
                return Ok(GitUrl {
                    text: text.to_string(),
                    kind: UrlKind::Scp,
                });
            }
        }
        Ok(GitUrl {
            text: text.to_string(),
            kind: UrlKind::LocalPath,
        })
    }

    /// The user name an SSH URL names, if any (`git` is the convention otherwise).
    pub fn ssh_user(&self) -> Option<&str> {
        let text = &self.url.text;
        let rest = match self.url.kind {
            UrlKind::Ssh => text.split_once("://").map(|(_, r)| r)?,
            UrlKind::Scp => text.as_str(),
            UrlKind::LocalPath | UrlKind::File | UrlKind::Git | UrlKind::Http | UrlKind::Https => {
                return None;
            }
        };
        let authority = match self.url.kind {
            UrlKind::Scp => rest.split(':').next()?,
            _ => rest.split('/').next()?,
        };
        authority.rsplit_once('@').map(|(user, _)| user)
    }
}

/// Replace anything after `user:` in a URL's authority, for error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

fn check_ref_name(name: &str) -> Result<(), SourceError> {
    let bad = name.is_empty()
        || name.starts_with('-')
        || name.starts_with("refs/")
        || name.contains("..")
        || name.ends_with('/')
        || name.ends_with(".lock")
        || name
            .chars()
            .any(|c| c.is_control() || " ~^:?*[\\".contains(c));
    if bad {
        return Err(SourceError::InvalidRef {
            reference: name.to_string(),
            reason: "not a valid branch or tag name; give the short name, e.g. `main` or `v1.2.0`"
                .to_string(),
        });
    }
    Ok(())
}

/// Normalize a sub-path; absolute paths and `..` are refused so the source can never read
/// outside the repository.
pub fn normalize_sub_path(path: &str) -> Result<Option<String>, SourceError> {
    let invalid = |reason: &str| SourceError::InvalidSubPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(invalid(
            "it is absolute; give a path relative to the repository root, e.g. `deploy/prod`",
        ));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(invalid(
                    "it contains `..`; give a path inside the repository, e.g. `deploy/prod`",
                ));
            }
            p if p.contains('\\') || p.contains('\0') => {
                return Err(invalid(
                    "it contains a backslash or NUL; use `/` between directories",
                ));
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_classified() {
        let table = [
            ("/srv/git/app.git", UrlKind::LocalPath),
            ("../app", UrlKind::LocalPath),
            ("./a:b", UrlKind::LocalPath),
            ("file:///srv/git/app.git", UrlKind::File),
            ("git://127.0.0.1:9418/app.git", UrlKind::Git),
            ("http://127.0.0.1:8080/app.git", UrlKind::Http),
            ("https://github.com/org/app.git", UrlKind::Https),
            ("ssh://git@host:2222/org/app.git", UrlKind::Ssh),
            ("git@github.com:org/app.git", UrlKind::Scp),
            ("host:app.git", UrlKind::Scp),
        ];
        for (url, kind) in table {
            assert_eq!(
                SourceSpec::parse_url(url).map(|u| u.kind),
                Ok(kind),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_passwords() {
        for url in ["", "ftp://host/x", "https:///x", "git@host:"] {
            assert!(SourceSpec::parse_url(url).is_err(), "{url}");
        }
        let err = SourceSpec::parse_url("https://bob:hunter2@host/x.git").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("bob:***@host"), "{text}");
    }

    #[test]
    fn sub_paths_are_normalized_or_refused() {
        assert_eq!(
            normalize_sub_path("deploy//prod/"),
            Ok(Some("deploy/prod".into()))
        );
        assert_eq!(normalize_sub_path("./"), Ok(None));
        for bad in ["/etc", "a/../../b", "..", "a\\b"] {
            let err = normalize_sub_path(bad).unwrap_err();
            assert_eq!(err.metric_label(), "invalid-sub-path", "{bad}");
        }
    }

    #[test]
    fn refs_are_checked() {
        assert!(GitRef::commit("abc123").is_err());
        assert!(GitRef::commit(&"a".repeat(40)).is_ok());
        assert!(SourceSpec::new("/x", GitRef::Branch("a..b".into())).is_err());
        assert!(SourceSpec::new("/x", GitRef::Tag("v1.0".into())).is_ok());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let auth = Auth::Basic {
            username: "bob".into(),
            password: SecretSource::Env("VEER_TEST_NOT_SET_ANYWHERE".into()),
        };
        let err = match &auth {
            Auth::Basic { password, .. } => password.read().unwrap_err(),
            _ => unreachable!(),
        };
        assert!(
            err.to_string()
                .contains("VEER_TEST_NOT_SET_ANYWHERE is not set")
                || err.to_string().contains("not set")
        );
    }

    #[test]
    fn auth_must_fit_the_url() {
        let spec = SourceSpec::new("git://h/x.git", GitRef::Branch("main".into())).unwrap();
        assert!(
            spec.with_auth(Auth::Token(SecretSource::Env("T".into())))
                .is_err()
        );
        let spec = SourceSpec::new("git@h:x.git", GitRef::Branch("main".into())).unwrap();
        assert_eq!(spec.ssh_user(), Some("git"));
    }
}
