//! Table tests of what a first try relies on: `--prometheus-url` over `analysis.prometheus`,
//! and the cache directory's default under the user's cache directory, never the working one.

use std::path::{Path, PathBuf};

use super::*;

#[test]
fn prometheus_url_flag_wins_over_the_file() {
    let prom = |file_text: &str, flag: Option<&str>| {
        let o = Overrides {
            prometheus_url: flag.map(str::to_string),
            ..Overrides::default()
        };
        resolve(Some(("veer.yaml", file_text)), &o)
            .map(|c| c.analysis.prometheus.map(|p| (p.url, p.timeout.as_secs())))
    };
    let file_prom = "analysis:\n  prometheus:\n    url: http://prom:9090\n    timeout: 3s\n";
    assert_eq!(prom("", None), Ok(None));
    assert_eq!(
        prom("", Some("http://127.0.0.1:9090")),
        Ok(Some(("http://127.0.0.1:9090".into(), 10)))
    );
    // The flag replaces the URL; the file's timeout (and auth) still apply.
    assert_eq!(
        prom(file_prom, Some("http://localhost:9091")),
        Ok(Some(("http://localhost:9091".into(), 3)))
    );
    assert_eq!(
        prom(file_prom, None),
        Ok(Some(("http://prom:9090".into(), 3)))
    );
    let err = prom(file_prom, Some("prom:9090")).unwrap_err();
    assert_eq!(
        (err.key.as_str(), err.origin.as_str()),
        ("analysis.prometheus.url", "--prometheus-url")
    );
}

#[test]
fn cache_dir_defaults_under_the_users_cache_directory() {
    let root = |xdg: Option<&str>, home: Option<&str>| {
        default_cache_root(xdg.map(Path::new), home.map(Path::new), Path::new("/tmp"))
    };
    assert_eq!(
        root(Some("/x/cache"), Some("/home/me")),
        PathBuf::from("/x/cache/veer")
    );
    assert_eq!(
        root(None, Some("/home/me")),
        PathBuf::from("/home/me/.cache/veer")
    );
    // A relative XDG_CACHE_HOME is invalid (XDG spec) and ignored; no home: the temp dir.
    assert_eq!(
        root(Some("rel"), Some("/home/me")),
        PathBuf::from("/home/me/.cache/veer")
    );
    assert_eq!(root(Some(""), None), PathBuf::from("/tmp/veer"));

    let cache = |file_text: &str, repo: Option<&str>, flag: Option<&str>| {
        let o = Overrides {
            repo: repo.map(str::to_string),
            cache_dir: flag.map(PathBuf::from),
            cache_root: Some("/c/veer".into()),
            ..Overrides::default()
        };
        resolve(Some(("veer.yaml", file_text)), &o).map(|c| c.cache_dir)
    };
    // One directory per repository, named after it, under the root; never relative.
    let a = cache("", Some("https://example.com/org/mesh.git"), None).unwrap();
    let b = cache("", Some("https://example.com/other/mesh.git"), None).unwrap();
    assert!(
        a.parent() == Some(Path::new("/c/veer/git")) && b.parent() == a.parent(),
        "{a:?} {b:?}"
    );
    assert_ne!(a, b);
    let name = a.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(
        name.starts_with("mesh-") && name.len() == "mesh-".len() + 12,
        "{name}"
    );
    let dot = cache("", Some("."), None).unwrap();
    assert!(
        dot.to_string_lossy().starts_with("/c/veer/git/repo-"),
        "{dot:?}"
    );
    assert_eq!(cache("", None, None).unwrap(), PathBuf::from("/c/veer/git"));
    // An explicit `cacheDir` or `--cache-dir` is kept as given.
    assert_eq!(
        cache("cacheDir: .veer-cache\n", Some("."), None).unwrap(),
        PathBuf::from(".veer-cache")
    );
    assert_eq!(
        cache("cacheDir: /f\n", Some("."), Some("/flag")).unwrap(),
        PathBuf::from("/flag")
    );
}
