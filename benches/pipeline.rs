//! `make bench`: figures for the read → validate pipeline on generated repositories of 1,000
//! and 10,000 manifest files. Prints numbers and ratios; asserts nothing (targets live here,
//! not in timed unit tests).
//!
//! For each size: a cold load (fetch + parse every file), validation, an idle poll (nothing
//! changed), and a commit touching one file (only that file is parsed), against a full
//! re-parse of every file as the baseline.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use veer::manifest::{self, ManifestSet, ParseCache, ReadOptions};
use veer::source::{FetchOutcome, GitRef, GitSource, SourceSpec};
use veer::validate;

#[path = "support/manifests.rs"]
mod manifests;

use manifests::{manifest_text, ms, namespace, peak_rss_kib};

// The allocator `veer` runs on, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: veer::controller::memory::Allocator = veer::controller::memory::Allocator;

/// Where object `i` lives: the layout of `benches/daemon.rs` (one directory per namespace), so
/// the load measured here is the one the binary does.
fn object_path(i: usize) -> String {
    format!("mesh/{}/object-{i}.yaml", namespace(i))
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .status()
        .expect("git is needed: apt-get install git");
    assert!(status.success(), "git {args:?} failed");
}

fn run(n: usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("repo");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(
        tmp.path(),
        &["init", "-q", "--bare", "-b", "main", "mesh.git"],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["config", "user.name", "bench"]);
    git(&work, &["config", "user.email", "bench@example.com"]);
    for i in 0..n {
        let path = work.join(object_path(i));
        std::fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
        std::fs::write(path, manifest_text(i, 0)).expect("write");
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "generated"]);
    // As `veer run` follows a repository: a pushed bare one (its objects packed, trees
    // deltified) by `file://` URL.
    let url = format!("file://{}", tmp.path().join("mesh.git").display());
    git(&work, &["push", "-q", &url, "main"]);

    let spec = SourceSpec::new(&url, GitRef::Branch("main".into())).expect("spec");
    let mut source = GitSource::open(spec, &tmp.path().join("cache")).expect("open");
    let options = ReadOptions::default();
    let mut cache = ParseCache::default();

    let rss_before = peak_rss_kib();
    let t = Instant::now();
    let fetched = source.fetch().expect("fetch");
    let loaded = source
        .load(fetched.commit(), &options, &mut cache)
        .expect("load");
    let cold = t.elapsed();
    let rss_after = peak_rss_kib();

    let t = Instant::now();
    let report = validate::validate(&loaded.set);
    let validate_time = t.elapsed();
    assert!(
        report.is_ok(),
        "generated repo should be valid:\n{}",
        report.render_human()
    );

    let t = Instant::now();
    let idle = source.fetch().expect("idle fetch");
    let idle_time = t.elapsed();
    assert!(matches!(idle, FetchOutcome::Unchanged { .. }));

    // One file changes.
    let changed = work.join(object_path(1));
    std::fs::write(&changed, manifest_text(1, 1)).expect("write");
    git(&work, &["commit", "-q", "-am", "one change"]);
    git(&work, &["push", "-q", &url, "main"]);
    let t = Instant::now();
    let fetched = source.fetch().expect("fetch");
    let fetch_time = t.elapsed();
    let incremental = source
        .load(fetched.commit(), &options, &mut cache)
        .expect("load");
    let incremental_time = t.elapsed();

    // Baseline: parse every file again, as a tool without the blob cache would.
    let files: Vec<(String, Vec<u8>)> = walk(&work);
    let t = Instant::now();
    let mut set = ManifestSet::default();
    for (path, bytes) in &files {
        set.extend(&manifest::parse_file(path, bytes, &options));
    }
    let full_parse = t.elapsed();

    println!("\n== {n} manifest files ==");
    println!(
        "  cold load (fetch + parse all):  {:>10}   parsed {} files",
        ms(cold),
        loaded.parsed_files
    );
    println!(
        "  validate whole revision:        {:>10}   {} objects",
        ms(validate_time),
        loaded.set.manifests.len()
    );
    println!(
        "  idle poll (fetch, unchanged):   {:>10}   nothing parsed",
        ms(idle_time)
    );
    println!(
        "  one-file commit (fetch + load): {:>10}   parsed {} file(s), {} changed",
        ms(incremental_time),
        incremental.parsed_files,
        incremental.changed_files.len()
    );
    println!(
        "    of which fetch {}, tree walk + cache lookups {}",
        ms(fetch_time),
        ms(incremental_time - fetch_time)
    );
    println!("  baseline full re-parse:         {:>10}", ms(full_parse));
    println!(
        "  ratio full re-parse / one-file load: {:.1}x",
        full_parse.as_secs_f64() / incremental_time.as_secs_f64().max(1e-9)
    );
    println!(
        "  peak RSS: {} MiB (grew {} MiB during the cold load)",
        rss_after / 1024,
        rss_after.saturating_sub(rss_before) / 1024
    );
}

fn walk(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if manifest::is_manifest_path(&path.to_string_lossy()) {
                let rel = path.strip_prefix(root).expect("under root");
                out.push((
                    rel.to_string_lossy().into_owned(),
                    std::fs::read(&path).expect("read"),
                ));
            }
        }
    }
    out
}

fn main() {
    veer::controller::memory::configure();
    // `cargo bench` passes `--bench`; a filter argument is not used.
    println!("veer pipeline benchmark (release build; figures, not pass/fail)");
    for n in [1_000, 10_000] {
        run(n);
    }
}
