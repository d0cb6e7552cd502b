//! The git source against real remotes: `git daemon`, smart HTTP through `git http-backend`,
//! `file://` and plain paths. Repositories are built with the `git` CLI in temp dirs.

mod support;

use support::{GitDaemon, HttpGit, Remote, service};
use veer::manifest::{ParseCache, ReadOptions};
use veer::source::{
    Auth, CommitId, FetchOutcome, GitRef, GitSource, LoadedRevision, SecretSource, SourceError,
    SourceSpec,
};

fn branch(name: &str) -> GitRef {
    GitRef::Branch(name.to_string())
}

fn open(spec: SourceSpec, cache: &std::path::Path) -> GitSource {
    GitSource::open(spec, &cache.join("cache")).unwrap()
}

fn fetch_and_load(source: &mut GitSource, cache: &mut ParseCache) -> LoadedRevision {
    let outcome = source.fetch().unwrap();
    source
        .load(outcome.commit(), &ReadOptions::default(), cache)
        .unwrap()
}

fn names(rev: &LoadedRevision) -> Vec<String> {
    let mut v: Vec<String> = rev
        .set
        .manifests
        .iter()
        .map(|m| format!("{}:{}", m.file, m.key.name))
        .collect();
    v.sort();
    v
}

fn codes(rev: &LoadedRevision) -> Vec<(String, &'static str)> {
    let mut v: Vec<_> = rev
        .set
        .diagnostics
        .iter()
        .map(|d| (d.file.clone(), d.code))
        .collect();
    v.sort();
    v
}

#[test]
fn git_daemon_branch_follows_new_commits_and_force_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write("svc.yaml", &service("reviews"));
    let first = remote.commit_and_push("add reviews");
    let daemon = GitDaemon::start(&remote.base);

    let spec = SourceSpec::new(&daemon.url("app"), branch("main")).unwrap();
    let mut source = open(spec, tmp.path());
    let mut cache = ParseCache::default();

    let outcome = source.fetch().unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Changed {
            from: None,
            to: CommitId(first.clone())
        }
    );
    let rev = source
        .load(outcome.commit(), &ReadOptions::default(), &mut cache)
        .unwrap();
    assert_eq!(names(&rev), vec!["svc.yaml:reviews"]);
    assert_eq!(rev.revision.summary, "add reviews");
    assert_eq!(rev.revision.author, "Ada Lovelace <ada@example.com>");
    assert!(rev.revision.time.timestamp() > 1_600_000_000);

    // An idle poll only compares.
    assert_eq!(
        source.fetch().unwrap(),
        FetchOutcome::Unchanged {
            commit: CommitId(first.clone())
        }
    );

    remote.write("svc2.yaml", &service("ratings"));
    let second = remote.commit_and_push("add ratings");
    assert_eq!(
        source.fetch().unwrap(),
        FetchOutcome::Changed {
            from: Some(CommitId(first.clone())),
            to: CommitId(second.clone())
        }
    );

    // Rewrite history: the source must follow the force-push.
    remote.git(&["reset", "-q", "--hard", &first]);
    remote.write("other.yaml", &service("details"));
    let rewritten = remote.commit_and_push("rewrite");
    let outcome = source.fetch().unwrap();
    assert_eq!(
        outcome,
        FetchOutcome::Changed {
            from: Some(CommitId(second)),
            to: CommitId(rewritten)
        }
    );
    let rev = source
        .load(outcome.commit(), &ReadOptions::default(), &mut cache)
        .unwrap();
    assert_eq!(names(&rev), vec!["other.yaml:details", "svc.yaml:reviews"]);
    assert_eq!(rev.changed_files, vec!["other.yaml"]);
    assert_eq!(rev.parsed_files, 1);
}

#[test]
fn smart_http_with_basic_auth_and_token() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write("svc.yaml", &service("reviews"));
    let sha = remote.commit_and_push("first");
    let server = HttpGit::start(&remote.base, Some(("robot", "s3cret-pass")));
    let password_file = tmp.path().join("password");
    std::fs::write(&password_file, "s3cret-pass\n").unwrap();

    let spec = SourceSpec::new(&server.url("app"), branch("main"))
        .unwrap()
        .with_auth(Auth::Basic {
            username: "robot".into(),
            password: SecretSource::File(password_file.clone()),
        })
        .unwrap();
    let mut source = open(spec, tmp.path());
    let rev = fetch_and_load(&mut source, &mut ParseCache::default());
    assert_eq!(rev.revision.commit, CommitId(sha));
    assert_eq!(names(&rev), vec!["svc.yaml:reviews"]);

    // A token is sent as the password of `x-access-token`: refused by this server, and the
    // refusal must end (no endless credential retries) without showing the secret.
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "tok-very-secret").unwrap();
    let spec = SourceSpec::new(&server.url("app"), branch("main"))
        .unwrap()
        .with_auth(Auth::Token(SecretSource::File(token_file)))
        .unwrap();
    let err = GitSource::open(spec, &tmp.path().join("cache2"))
        .unwrap()
        .fetch()
        .unwrap_err();
    assert_eq!(err.metric_label(), "auth", "{err}");
    assert!(!err.to_string().contains("tok-very-secret"), "{err}");

    // No credentials at all.
    let spec = SourceSpec::new(&server.url("app"), branch("main")).unwrap();
    let err = GitSource::open(spec, &tmp.path().join("cache3"))
        .unwrap()
        .fetch()
        .unwrap_err();
    assert_eq!(err.metric_label(), "auth", "{err}");
    assert!(err.to_string().contains(&server.url("app")), "{err}");

    // A missing secret file is named, and is an error before any network traffic.
    let spec = SourceSpec::new(&server.url("app"), branch("main"))
        .unwrap()
        .with_auth(Auth::Basic {
            username: "robot".into(),
            password: SecretSource::File(tmp.path().join("nope")),
        })
        .unwrap();
    let err = GitSource::open(spec, &tmp.path().join("cache4"))
        .unwrap()
        .fetch()
        .unwrap_err();
    assert_eq!(err.metric_label(), "secret", "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn smart_http_without_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write("a/svc.yaml", &service("reviews"));
    remote.commit_and_push("first");
    let server = HttpGit::start(&remote.base, None);
    let spec = SourceSpec::new(&server.url("app"), branch("main")).unwrap();
    let mut source = open(spec, tmp.path());
    let rev = fetch_and_load(&mut source, &mut ParseCache::default());
    assert_eq!(names(&rev), vec!["a/svc.yaml:reviews"]);
}

#[test]
fn many_files_one_change_parses_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    for i in 0..60 {
        remote.write(&format!("svc/s{i:02}.yaml"), &service(&format!("s{i}")));
    }
    remote.commit_and_push("many");
    let url = format!("file://{}", remote.bare.display());
    let mut source = open(SourceSpec::new(&url, branch("main")).unwrap(), tmp.path());
    let mut cache = ParseCache::default();
    let rev = fetch_and_load(&mut source, &mut cache);
    assert_eq!(rev.parsed_files, 60);
    assert_eq!(rev.changed_files.len(), 60);
    assert_eq!(rev.set.manifests.len(), 60);

    remote.write("svc/s17.yaml", &service("renamed"));
    remote.commit_and_push("change one");
    let rev = fetch_and_load(&mut source, &mut cache);
    assert_eq!(rev.parsed_files, 1);
    assert_eq!(rev.changed_files, vec!["svc/s17.yaml"]);
    assert_eq!(rev.set.manifests.len(), 60);
    assert!(names(&rev).contains(&"svc/s17.yaml:renamed".to_string()));

    // Removing a file is a change too, and the cache forgets it.
    remote.remove("svc/s03.yaml");
    remote.commit_and_push("remove one");
    let rev = fetch_and_load(&mut source, &mut cache);
    assert_eq!(rev.parsed_files, 0);
    assert_eq!(rev.changed_files, vec!["svc/s03.yaml"]);
    assert_eq!(cache.len(), 59);
}

#[test]
fn local_path_tag_and_commit_refs() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write("svc.yaml", &service("v1"));
    let v1 = remote.commit_and_push("v1");
    remote.git(&["tag", "-a", "v1.0.0", "-m", "release 1"]);
    remote.git(&["push", "-q", "origin", "v1.0.0"]);
    remote.write("svc.yaml", &service("v2"));
    let v2 = remote.commit_and_push("v2");
    let path = remote.bare.to_str().unwrap().to_string();

    let mut cache = ParseCache::default();
    let tag = SourceSpec::new(&path, GitRef::Tag("v1.0.0".into())).unwrap();
    let rev = fetch_and_load(&mut open(tag, &tmp.path().join("t")), &mut cache);
    assert_eq!(rev.revision.commit, CommitId(v1.clone()));
    assert_eq!(names(&rev), vec!["svc.yaml:v1"]);

    let pinned = SourceSpec::new(&path, GitRef::commit(&v1).unwrap()).unwrap();
    let rev = fetch_and_load(&mut open(pinned, &tmp.path().join("c")), &mut cache);
    assert_eq!(rev.revision.commit, CommitId(v1));

    let main = SourceSpec::new(&path, branch("main")).unwrap();
    let rev = fetch_and_load(&mut open(main, &tmp.path().join("m")), &mut cache);
    assert_eq!(rev.revision.commit, CommitId(v2));

    for reference in [
        GitRef::Tag("v9".into()),
        branch("nope"),
        GitRef::commit(&"0".repeat(40)).unwrap(),
    ] {
        let spec = SourceSpec::new(&path, reference.clone()).unwrap();
        let err = open(spec, &tmp.path().join("x")).fetch().unwrap_err();
        assert!(
            matches!(err, SourceError::RefNotFound { .. }),
            "{reference}: {err}"
        );
    }
}

#[test]
fn deleted_branch_is_not_served_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write("svc.yaml", &service("a"));
    remote.commit_and_push("first");
    remote.git(&["push", "-q", "origin", "HEAD:refs/heads/feature"]);
    let url = format!("file://{}", remote.bare.display());
    let mut source = open(
        SourceSpec::new(&url, branch("feature")).unwrap(),
        tmp.path(),
    );
    source.fetch().unwrap();
    remote.git(&["push", "-q", "origin", ":refs/heads/feature"]);
    let err = source.fetch().unwrap_err();
    assert_eq!(err.metric_label(), "ref-not-found", "{err}");
}

#[test]
fn sub_path_and_veerignore() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write(".veerignore", "*.draft.yaml\n");
    remote.write("deploy/prod/.veerignore", "scratch/\n!keep.draft.yaml\n");
    remote.write("deploy/prod/svc.yaml", &service("prod"));
    remote.write("deploy/prod/net/vs.yml", &service("vs"));
    remote.write("deploy/prod/wip.draft.yaml", &service("wip"));
    remote.write("deploy/prod/keep.draft.yaml", &service("keep"));
    remote.write("deploy/prod/scratch/x.yaml", &service("scratch"));
    remote.write("deploy/prod/README.md", "not yaml: [");
    remote.write("deploy/prod/values.json", "{");
    remote.write("deploy/staging/svc.yaml", &service("staging"));
    remote.commit_and_push("layout");
    let url = format!("file://{}", remote.bare.display());

    let spec = SourceSpec::new(&url, branch("main"))
        .unwrap()
        .with_sub_path("deploy/prod/")
        .unwrap();
    let rev = fetch_and_load(&mut open(spec, tmp.path()), &mut ParseCache::default());
    assert_eq!(
        names(&rev),
        vec![
            "deploy/prod/keep.draft.yaml:keep",
            "deploy/prod/net/vs.yml:vs",
            "deploy/prod/svc.yaml:prod",
        ]
    );
    assert!(rev.set.diagnostics.is_empty(), "{:?}", rev.set.diagnostics);

    let spec = SourceSpec::new(&url, branch("main"))
        .unwrap()
        .with_sub_path("deploy/qa")
        .unwrap();
    let mut source = open(spec, &tmp.path().join("qa"));
    let commit = source.fetch().unwrap().commit().clone();
    let err = source
        .load(&commit, &ReadOptions::default(), &mut ParseCache::default())
        .unwrap_err();
    assert_eq!(err.metric_label(), "sub-path-missing");
    assert!(err.to_string().contains("deploy/qa"), "{err}");
}

#[test]
fn symlinks_inside_are_followed_outside_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write("common/shared.yaml", &service("shared"));
    remote.write("prod/svc.yaml", &service("prod"));
    remote.symlink("prod/shared.yaml", "../common/shared.yaml");
    remote.symlink("prod/chain.yaml", "shared.yaml");
    remote.symlink("prod/passwd.yaml", "/etc/passwd");
    remote.symlink("prod/escape.yaml", "../../outside.yaml");
    remote.symlink("prod/loop.yaml", "loop.yaml");
    remote.symlink("prod/missing.yaml", "nothere.yaml");
    remote.symlink("prod/dir.yaml", "../common");
    remote.commit_and_push("links");
    let url = format!("file://{}", remote.bare.display());
    let spec = SourceSpec::new(&url, branch("main"))
        .unwrap()
        .with_sub_path("prod")
        .unwrap();
    let rev = fetch_and_load(&mut open(spec, tmp.path()), &mut ParseCache::default());
    assert_eq!(
        names(&rev),
        vec![
            "prod/chain.yaml:shared",
            "prod/shared.yaml:shared",
            "prod/svc.yaml:prod",
        ]
    );
    assert_eq!(
        codes(&rev),
        vec![
            ("prod/dir.yaml".to_string(), "symlink-not-file"),
            ("prod/escape.yaml".to_string(), "symlink-outside-repo"),
            ("prod/loop.yaml".to_string(), "symlink-loop"),
            ("prod/missing.yaml".to_string(), "symlink-broken"),
            ("prod/passwd.yaml".to_string(), "symlink-outside-repo"),
        ]
    );
    let passwd = rev
        .set
        .diagnostics
        .iter()
        .find(|d| d.file == "prod/passwd.yaml")
        .unwrap();
    assert!(passwd.message.contains("/etc/passwd"), "{passwd}");
    assert!(passwd.fix.is_some());
}

#[test]
fn oversized_files_are_refused_without_parsing() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    remote.write("big.yaml", &"# padding\n".repeat(50));
    remote.write("ok.yaml", &service("ok"));
    remote.commit_and_push("big");
    let mut source = open(
        SourceSpec::new(remote.bare.to_str().unwrap(), branch("main")).unwrap(),
        tmp.path(),
    );
    let commit = source.fetch().unwrap().commit().clone();
    let options = ReadOptions {
        max_file_bytes: 200,
        ..ReadOptions::default()
    };
    let rev = source
        .load(&commit, &options, &mut ParseCache::default())
        .unwrap();
    assert_eq!(rev.parsed_files, 1);
    assert_eq!(
        codes(&rev),
        vec![("big.yaml".to_string(), "file-too-large")]
    );
}

#[test]
fn unreachable_remote_is_a_fetch_error_naming_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("git://127.0.0.1:{}/app.git", support::free_port());
    let mut source = open(SourceSpec::new(&url, branch("main")).unwrap(), tmp.path());
    let err = source.fetch().unwrap_err();
    assert_eq!(err.metric_label(), "fetch", "{err}");
    assert!(err.to_string().contains(&url), "{err}");
}
