//! The git source over SSH against a real OpenSSH `sshd` on a loopback port: key
//! authentication, host keys checked against a known_hosts file, refusals that end.

mod support;

use support::{Remote, SshServer, service};
use veer::manifest::{ParseCache, ReadOptions};
use veer::secret::SecretSource;
use veer::source::{Auth, GitRef, GitSource, SourceSpec};

fn spec(server: &SshServer, remote: &Remote, auth: Auth) -> SourceSpec {
    SourceSpec::new(&server.url(&remote.bare), GitRef::Branch("main".into()))
        .unwrap()
        .with_auth(auth)
        .unwrap()
}

#[test]
fn ssh_key_auth_with_known_hosts() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write("svc.yaml", &service("reviews"));
    let sha = remote.commit_and_push("first");
    let server = SshServer::start(&tmp.path().join("ssh"));

    let auth = Auth::SshKey {
        private_key: server.client_key.clone(),
        passphrase: None,
        known_hosts: server.known_hosts.clone(),
    };
    let mut source = GitSource::open(spec(&server, &remote, auth), &tmp.path().join("c1")).unwrap();
    let outcome = source.fetch().unwrap();
    assert_eq!(outcome.commit().0, sha);
    let rev = source
        .load(
            outcome.commit(),
            &ReadOptions::default(),
            &mut ParseCache::default(),
        )
        .unwrap();
    assert_eq!(rev.set.manifests.len(), 1);

    // A host key that is not listed is refused.
    let other_hosts = tmp.path().join("other_known_hosts");
    std::fs::write(
        &other_hosts,
        format!(
            "[127.0.0.1]:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn8TKgYvRCqA8Ncx8A0ZzSxrTAjq4BM1Lr9nGmbBSuN\n",
            server.port
        ),
    )
    .unwrap();
    let auth = Auth::SshKey {
        private_key: server.client_key.clone(),
        passphrase: None,
        known_hosts: other_hosts,
    };
    let err = GitSource::open(spec(&server, &remote, auth), &tmp.path().join("c2"))
        .unwrap()
        .fetch()
        .unwrap_err();
    assert_eq!(err.metric_label(), "host-key", "{err}");

    // A key the server does not know is refused, and the refusal ends.
    let stranger = tmp.path().join("stranger");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "pass phrase", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(status.success());
    let phrase = tmp.path().join("phrase");
    std::fs::write(&phrase, "pass phrase\n").unwrap();
    let auth = Auth::SshKey {
        private_key: stranger,
        passphrase: Some(SecretSource::File(phrase)),
        known_hosts: server.known_hosts.clone(),
    };
    let err = GitSource::open(spec(&server, &remote, auth), &tmp.path().join("c3"))
        .unwrap()
        .fetch()
        .unwrap_err();
    assert_eq!(err.metric_label(), "auth", "{err}");
    assert!(!err.to_string().contains("pass phrase"), "{err}");
}
