//! The network side of a git operation: answering libgit2's credential requests (secrets read
//! at use time, each kind tried once), checking an SSH server's host key against
//! `known_hosts`, and turning what a transfer's callbacks learnt (a timeout, an unreadable
//! secret) and libgit2's error into a [`SourceError`].

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorCode};

use crate::source::SourceError;
use crate::source::spec::{Auth, SourceSpec, UrlKind};

/// What the callbacks of one network operation learnt, beyond libgit2's error.
pub(super) struct Transfer {
    deadline: Option<(Instant, Duration)>,
    timed_out: Cell<bool>,
    /// A secret that cannot be read is reported as such, not as a refusal by the server.
    pub(super) secret_error: RefCell<Option<SourceError>>,
}

impl Transfer {
    pub(super) fn new(timeout: Option<Duration>) -> Self {
        Transfer {
            deadline: timeout.map(|t| (Instant::now() + t, t)),
            timed_out: Cell::new(false),
            secret_error: RefCell::new(None),
        }
    }

    /// Checked while data flows; returning true aborts the transfer.
    pub(super) fn past_deadline(&self) -> bool {
        match self.deadline {
            Some((at, _)) if Instant::now() > at => {
                self.timed_out.set(true);
                true
            }
            _ => false,
        }
    }

    pub(super) fn error(&self, url: &str, e: &git2::Error) -> SourceError {
        if let Some(secret) = self.secret_error.take() {
            return secret;
        }
        if self.timed_out.get()
            && let Some((_, after)) = self.deadline
        {
            return SourceError::Timeout {
                url: url.to_string(),
                after,
            };
        }
        map_fetch_error(url, e)
    }
}

fn map_fetch_error(url: &str, e: &git2::Error) -> SourceError {
    let message = e.message().to_string();
    match e.code() {
        ErrorCode::Auth => SourceError::Auth {
            url: url.to_string(),
            message,
        },
        ErrorCode::Certificate => SourceError::HostKey {
            url: url.to_string(),
            message,
        },
        _ => SourceError::Fetch {
            url: url.to_string(),
            message,
        },
    }
}

/// Answer libgit2's credential requests once per kind: a rejected credential is asked for
/// again forever otherwise. Secrets are read here, at use time.
pub(super) fn credentials(
    spec: &SourceSpec,
    user_from_url: Option<&str>,
    allowed: CredentialType,
    tried: &mut HashSet<u32>,
    secret_error: &RefCell<Option<SourceError>>,
) -> Result<Cred, git2::Error> {
    if !tried.insert(allowed.bits()) {
        return Err(git2::Error::new(
            ErrorCode::Auth,
            git2::ErrorClass::Net,
            "the server rejected the configured credentials",
        ));
    }
    let secret = |s: &crate::source::SecretSource| {
        s.read().map_err(|e| {
            let message = e.to_string();
            *secret_error.borrow_mut() = Some(e.into());
            git2::Error::new(ErrorCode::Auth, git2::ErrorClass::Net, message)
        })
    };
    match &spec.auth {
        Auth::None => Err(git2::Error::new(
            ErrorCode::Auth,
            git2::ErrorClass::Net,
            "the server asks for credentials but the source has no `auth` configured",
        )),
        Auth::Token(token) => Cred::userpass_plaintext(
            user_from_url.unwrap_or("x-access-token"),
            secret(token)?.expose(),
        ),
        Auth::Basic { username, password } => {
            Cred::userpass_plaintext(username, secret(password)?.expose())
        }
        Auth::SshKey {
            private_key,
            passphrase,
            ..
        } => {
            let user = user_from_url.or(spec.ssh_user()).unwrap_or("git");
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(user);
            }
            let passphrase = passphrase.as_ref().map(secret).transpose()?;
            Cred::ssh_key(
                user,
                None,
                private_key,
                passphrase.as_ref().map(|p| p.expose()),
            )
        }
    }
}

/// Host and port of an SSH URL, for known_hosts lookups.
pub(super) fn ssh_host_port(spec: &SourceSpec) -> Option<(String, u16)> {
    let text = &spec.url.text;
    let authority = match spec.url.kind {
        UrlKind::Ssh => text.split_once("://")?.1.split('/').next()?,
        UrlKind::Scp => text.split(':').next()?,
        UrlKind::LocalPath | UrlKind::File | UrlKind::Git | UrlKind::Http | UrlKind::Https => {
            return None;
        }
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((host, port)) if spec.url.kind == UrlKind::Ssh => {
            Some((host.to_string(), port.parse().ok()?))
        }
        _ => Some((host_port.to_string(), 22)),
    }
}

/// Accept the server only if its exact key is listed for it in `known_hosts` (plain host
/// entries, as `ssh-keyscan` writes them; hashed entries are not supported).
pub(super) fn check_host_key(
    cert: &git2::cert::Cert<'_>,
    host: &str,
    host_port: Option<&(String, u16)>,
    known_hosts: &PathBuf,
) -> Result<CertificateCheckStatus, git2::Error> {
    let refuse = |msg: String| git2::Error::new(ErrorCode::Certificate, git2::ErrorClass::Ssh, msg);
    let Some(key) = cert.as_hostkey().and_then(|k| k.hostkey()) else {
        return Err(refuse("the server offered no SSH host key".to_string()));
    };
    let text = std::fs::read_to_string(known_hosts).map_err(|e| {
        refuse(format!(
            "cannot read known_hosts file {}: {e}",
            known_hosts.display()
        ))
    })?;
    let port = host_port.map_or(22, |(_, p)| *p);
    let names = if port == 22 {
        vec![host.to_string()]
    } else {
        vec![format!("[{host}]:{port}")]
    };
    if known_host_matches(&text, &names, key) {
        Ok(CertificateCheckStatus::CertificateOk)
    } else {
        Err(refuse(format!(
            "no matching key for {} in {}",
            names.join(", "),
            known_hosts.display()
        )))
    }
}

/// Does a known_hosts text list `key` (raw SSH wire form) for one of `names`? Pure.
fn known_host_matches(text: &str, names: &[String], key: &[u8]) -> bool {
    text.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(b64)) = (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        if hosts.starts_with('#') || hosts.starts_with('@') {
            return false;
        }
        let host_listed = hosts.split(',').any(|h| names.iter().any(|n| n == h));
        host_listed
            && base64::engine::general_purpose::STANDARD
                .decode(b64)
                .is_ok_and(|k| k == key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_match_exact_host_and_key() {
        let key = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20abcdefghijklmnopqrstuvwxyz012345";
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        let text = format!("# comment\n[127.0.0.1]:2222,other ssh-ed25519 {b64}\n");
        let names = vec!["[127.0.0.1]:2222".to_string()];
        assert!(known_host_matches(&text, &names, key));
        assert!(!known_host_matches(&text, &["127.0.0.1".to_string()], key));
        assert!(!known_host_matches(&text, &names, b"other key"));
    }
}
