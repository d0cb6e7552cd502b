//! `read_local`: a plain directory (no git) read with the same rules as a git source.

mod support;

use std::fs;
use std::os::unix::fs::symlink;

use support::service;
use veer::manifest::ReadOptions;
use veer::source::read_local;

#[test]
fn directory_is_read_with_ignore_yaml_only_and_safe_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside.yaml");
    fs::write(&outside, service("outside")).unwrap();
    let dir = tmp.path().join("manifests");
    fs::create_dir_all(dir.join("net")).unwrap();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    fs::create_dir_all(dir.join("common")).unwrap();
    fs::write(dir.join(".veerignore"), "tmp/\n*.off.yaml\n").unwrap();
    fs::write(dir.join("svc.yaml"), service("svc")).unwrap();
    fs::write(dir.join("net/vs.yml"), service("vs")).unwrap();
    fs::write(dir.join("net/old.off.yaml"), service("old")).unwrap();
    fs::write(dir.join("tmp/x.yaml"), service("x")).unwrap();
    fs::write(dir.join("notes.txt"), "ignored").unwrap();
    fs::write(dir.join("common/base.yaml"), service("base")).unwrap();
    symlink("../common/base.yaml", dir.join("net/base.yaml")).unwrap();
    symlink(&outside, dir.join("abs.yaml")).unwrap();
    symlink("../outside.yaml", dir.join("up.yaml")).unwrap();
    // A directory link out of the tree: its files must not be reachable through it, and it
    // is reported rather than skipped.
    symlink(tmp.path(), dir.join("escape")).unwrap();
    // A link to a file, not named like a manifest: not read, not an error.
    symlink("svc.yaml", dir.join("README")).unwrap();

    let set = read_local(&dir, &ReadOptions::default()).unwrap();
    let mut names: Vec<_> = set
        .manifests
        .iter()
        .map(|m| format!("{}:{}", m.file, m.key.name))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "common/base.yaml:base",
            "net/base.yaml:base",
            "net/vs.yml:vs",
            "svc.yaml:svc",
        ]
    );
    let mut codes: Vec<_> = set
        .diagnostics
        .iter()
        .map(|d| (d.file.as_str(), d.code, d.line))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("abs.yaml", "symlink-outside-repo", 1),
            ("escape", "symlink-outside-repo", 1),
            ("up.yaml", "symlink-outside-repo", 1),
        ]
    );
}

#[test]
fn directory_symlinks_are_errors_not_followed_and_cannot_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir.join("apps/v2")).unwrap();
    fs::create_dir_all(dir.join("vendor")).unwrap();
    fs::write(dir.join("apps/v2/svc.yaml"), service("svc")).unwrap();
    fs::write(dir.join("vendor/x.yaml"), service("x")).unwrap();
    fs::write(dir.join(".veerignore"), "vendored\n").unwrap();
    symlink("apps/v2", dir.join("current")).unwrap();
    // Followed, these would walk the tree forever.
    symlink("..", dir.join("apps/parent")).unwrap();
    symlink(".", dir.join("apps/v2/self")).unwrap();
    // Excluded by .veerignore: no diagnostic.
    symlink("vendor", dir.join("vendored")).unwrap();

    let set = read_local(dir, &ReadOptions::default()).unwrap();
    let mut names: Vec<_> = set
        .manifests
        .iter()
        .map(|m| format!("{}:{}", m.file, m.key.name))
        .collect();
    names.sort();
    // Each file once, by its real path: nothing read through a link.
    assert_eq!(names, vec!["apps/v2/svc.yaml:svc", "vendor/x.yaml:x"]);
    let mut codes: Vec<_> = set
        .diagnostics
        .iter()
        .map(|d| (d.file.as_str(), d.code))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("apps/parent", "symlink-to-directory"),
            ("apps/v2/self", "symlink-to-directory"),
            ("current", "symlink-to-directory"),
        ]
    );
    let current = set
        .diagnostics
        .iter()
        .find(|d| d.file == "current")
        .unwrap();
    assert!(current.is_error());
    assert!(
        current.message.contains("directory `apps/v2`"),
        "{}",
        current.message
    );
}

#[test]
fn size_limit_and_reading_problems_become_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("big.yaml"), "#".repeat(300)).unwrap();
    fs::write(tmp.path().join("bad.yaml"), "a: [\n").unwrap();
    fs::write(tmp.path().join("ok.yaml"), service("ok")).unwrap();
    let options = ReadOptions {
        max_file_bytes: 100,
        ..ReadOptions::default()
    };
    let set = read_local(tmp.path(), &options).unwrap();
    assert_eq!(set.manifests.len(), 1);
    let mut codes: Vec<_> = set
        .diagnostics
        .iter()
        .map(|d| (d.file.as_str(), d.code))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![("bad.yaml", "yaml-syntax"), ("big.yaml", "file-too-large")]
    );
}

#[test]
fn missing_directory_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = read_local(&missing, &ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let file = tmp.path().join("f.yaml");
    fs::write(&file, "").unwrap();
    let err = read_local(&file, &ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn invalid_ignore_pattern_is_reported_at_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(".veerignore"), "# comment\nok/\n{a,b\n").unwrap();
    fs::write(tmp.path().join("a.yaml"), service("a")).unwrap();
    let set = read_local(tmp.path(), &ReadOptions::default()).unwrap();
    let d: Vec<_> = set
        .diagnostics
        .iter()
        .map(|d| (d.file.as_str(), d.code, d.line))
        .collect();
    assert_eq!(d, vec![(".veerignore", "veerignore-invalid", 3)]);
    assert_eq!(set.manifests.len(), 1);
}
