//! Hostile repositories: a blob far over `manifests.maxFileBytes` (64 MiB of zeros, which
//! packs to a few hundred KiB) served by real remotes: `git daemon`, a `file://` URL and a
//! plain path. The load refuses it from its size in the object database's header, before
//! reading it, and the revision is rejected as a whole. Memory is not asserted here:
//! `make bench` (`benches/hostile_fetch.rs`) prints the peak RSS of the same fetch.

mod support;

use std::path::Path;
use std::process::Command;

use support::{GitDaemon, Remote, service};
use veer::manifest::{ParseCache, ReadOptions};
use veer::source::{GitRef, GitSource, LoadedRevision, SourceSpec};
use veer::validate;

/// 64 MiB: 64 times the default `maxFileBytes`.
const BIG: u64 = 64 << 20;
const LIMIT: u64 = 1 << 20;

/// A file of `len` zero bytes (sparse: nothing is held in memory), with an `x` at `marker`.
fn write_zeros(remote: &Remote, path: &str, len: u64, marker: Option<u64>) {
    use std::os::unix::fs::FileExt as _;
    let file = std::fs::File::create(remote.work.join(path)).unwrap();
    file.set_len(len).unwrap();
    if let Some(at) = marker {
        file.write_at(b"x", at).unwrap();
    }
}

/// `big.yaml` (64 MiB) next to a valid `ok.yaml`, committed and pushed.
fn hostile_remote(root: &Path) -> Remote {
    let remote = Remote::new(root, "app");
    write_zeros(&remote, "big.yaml", BIG, None);
    remote.write("ok.yaml", &service("ok"));
    remote.commit_and_push("a file far over the limit");
    remote
}

fn load(url: &str, cache_dir: &Path) -> LoadedRevision {
    load_ref(url, GitRef::Branch("main".into()), cache_dir)
}

fn load_ref(url: &str, reference: GitRef, cache_dir: &Path) -> LoadedRevision {
    let spec = SourceSpec::new(url, reference).unwrap();
    let mut source = GitSource::open(spec, cache_dir).unwrap();
    let commit = source.fetch().unwrap().commit().clone();
    source
        .load(&commit, &ReadOptions::default(), &mut ParseCache::default())
        .unwrap()
}

/// Each of `files` is refused with `file-too-large`, naming its size and the limit; nothing
/// but `ok.yaml` was parsed, and the revision as a whole does not validate.
fn assert_refused(rev: &LoadedRevision, files: &[&str]) {
    for file in files {
        let d = rev
            .set
            .diagnostics
            .iter()
            .find(|d| d.file == *file)
            .unwrap_or_else(|| panic!("no diagnostic for {file}: {:?}", rev.set.diagnostics));
        assert_eq!(d.code, "file-too-large", "{d:?}");
        assert!(
            d.message.contains(&format!("file is {BIG} bytes"))
                && d.message.contains(&format!("limit of {LIMIT} bytes")),
            "{}",
            d.message
        );
    }
    assert_eq!(
        rev.set.diagnostics.len(),
        files.len(),
        "{:?}",
        rev.set.diagnostics
    );
    assert_eq!(rev.parsed_files, 1, "only ok.yaml is parsed");
    let report = validate::validate(&rev.set);
    assert!(
        !report.is_ok(),
        "a revision with a refused file is rejected as a whole"
    );
}

#[test]
fn oversized_blob_over_git_daemon_is_refused_and_rejects_the_revision() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = hostile_remote(tmp.path());
    let daemon = GitDaemon::start(&remote.base);
    let url = daemon.url("app");

    let rev = load(&url, &tmp.path().join("cache"));
    assert_refused(&rev, &["big.yaml"]);

    // The real binary, with an empty cache, as a restarted pod runs it.
    let out = Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(["validate", "--repo", &url, "--cache-dir"])
        .arg(tmp.path().join("cli-cache"))
        .current_dir(tmp.path())
        .env_remove("VEER_CONFIG")
        .env_remove("VEER_REPO")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "error[file-too-large] big.yaml:1:1: file is {BIG} bytes, more than the limit of {LIMIT} bytes"
        )),
        "{text}"
    );
    assert!(
        text.contains("INVALID: nothing from this revision may be applied"),
        "{text}"
    );
}

#[test]
fn oversized_blob_sent_as_a_delta_is_refused_by_its_header() {
    // Two big files that differ by one byte: the server sends one as a delta of the other, and
    // its size comes from the delta's header.
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "app");
    write_zeros(&remote, "big-a.yaml", BIG, None);
    write_zeros(&remote, "big-b.yaml", BIG, Some(4096));
    remote.write("ok.yaml", &service("ok"));
    remote.commit_and_push("two big files, one a delta of the other");
    let daemon = GitDaemon::start(&remote.base);

    let cache = tmp.path().join("cache");
    let rev = load(&daemon.url("app"), &cache);
    assert_refused(&rev, &["big-a.yaml", "big-b.yaml"]);

    // The test is about a delta: check that the fetched pack holds the big blob as one.
    let pack = std::fs::read_dir(cache.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .expect("the fetch wrote a pack");
    let listing = Command::new("git")
        .args(["verify-pack", "-v"])
        .arg(&pack)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    // `id blob size size-in-pack offset [depth base]`; a delta's size is the delta's own.
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let big_whole = rows
        .iter()
        .find(|f| f.len() == 5 && f[1] == "blob" && f[2] == BIG.to_string())
        .map(|f| f[0]);
    let big_delta = rows
        .iter()
        .any(|f| f.len() == 7 && f[1] == "blob" && Some(f[6]) == big_whole);
    assert!(big_delta, "no big blob stored as a delta:\n{listing}");
}

#[test]
fn local_repository_is_read_in_place_then_the_cache_can_follow_a_remote() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = hostile_remote(tmp.path());
    let cache = tmp.path().join("cache");
    let no_pack = |cache: &Path| {
        std::fs::read_dir(cache.join("objects/pack"))
            .unwrap()
            .all(|e| e.unwrap().path().extension().is_none_or(|x| x != "pack"))
    };

    // A plain path and a file:// URL: nothing is copied into the cache. A commit id is
    // followed, so every branch is fetched into our refs (and kept between fetches).
    let commit = GitRef::Commit(remote.remote_tip("main"));
    let rev = load_ref(remote.bare.to_str().unwrap(), commit.clone(), &cache);
    assert_refused(&rev, &["big.yaml"]);
    assert!(no_pack(&cache), "a local source is read in place");
    let file_url = format!("file://{}", remote.bare.display());
    let rev = load_ref(&file_url, commit.clone(), &cache);
    assert_refused(&rev, &["big.yaml"]);
    assert!(no_pack(&cache), "a local source is read in place");

    // The same cache then follows the repository over the network: our refs to objects it
    // never copied are dropped (libgit2's negotiation would fail on them), and the fetch
    // downloads the objects.
    let daemon = GitDaemon::start(&remote.base);
    let rev = load_ref(&daemon.url("app"), commit, &cache);
    assert_refused(&rev, &["big.yaml"]);
    assert!(!no_pack(&cache));
}
