//! A git source's load reuses what the last load found in the directories that did not change
//! (by git tree id). Proved here equal to a load that walks the whole tree, revision by
//! revision, on random commits to a real repository: files added, modified, removed, renamed,
//! directories added and removed, symlinks to files and directories made and broken, ignore
//! files edited, files over the size limit, with and without a sub-path.

mod support;

use std::path::Path;

use proptest::prelude::Rng as _;
use proptest::test_runner::{RngAlgorithm, TestRng};
use support::{Remote, service};
use veer::manifest::{ParseCache, ReadOptions};
use veer::source::{GitRef, GitSource, LoadedRevision, SourceSpec};

const DIRS: &[&str] = &["", "a", "a/b", "c", "c/d", "base", "base/x", "base/x/y"];
const IGNORES: &[&str] = &[
    "c/d/\n",
    "*.yml\n",
    "f1.yaml\n",
    "f*.yaml\n!f2.yaml\n",
    "x/\n",
    "l*\n",
    "y\n",
    "[\n",
];

/// proptest's generator from a fixed seed: a fixed sequence per seed.
struct Rng(TestRng);

impl Rng {
    fn seeded(seed: u64) -> Rng {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Rng(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }
    fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Every file and symlink of the work tree (not `.git`), work-tree-relative.
fn entries(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for e in read.flatten() {
        let path = e.path();
        if path.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            entries(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
    out.sort();
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// A link target from `dir` to `to` (work-tree-relative).
fn relative(dir: &str, to: &str) -> String {
    let ups = if dir.is_empty() {
        0
    } else {
        dir.split('/').count()
    };
    let target = format!("{}{to}", "../".repeat(ups));
    if target.is_empty() {
        ".".to_string()
    } else {
        target
    }
}

fn content(rng: &mut Rng, name: &str) -> String {
    match rng.below(6) {
        // Over the size limit of the options below.
        0 => format!("{}# {}\n", service(name), "x".repeat(400)),
        1 => "kind: [\n".to_string(),
        _ => service(&format!("{name}-{}", rng.below(1000))),
    }
}

/// One random change to the work tree.
fn mutate(remote: &Remote, rng: &mut Rng) {
    let mut existing = Vec::new();
    entries(&remote.work, &remote.work, &mut existing);
    let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
    let dir = rng.pick(DIRS);
    match rng.below(10) {
        0..=2 => {
            let ext = if rng.below(5) == 0 { "yml" } else { "yaml" };
            let name = format!("f{}.{ext}", rng.below(6));
            let path = join(dir, &name);
            let _ = std::fs::remove_file(remote.work.join(&path));
            remote.write(&path, &content(rng, &name));
        }
        3 if !existing.is_empty() => {
            let gone = rng.pick(&existing);
            remote.remove(gone);
        }
        4 if !existing.is_empty() => {
            let from = rng.pick(&existing);
            let to = join(dir, &format!("r{}.yaml", rng.below(4)));
            if std::fs::symlink_metadata(remote.work.join(&to)).is_err() {
                std::fs::create_dir_all(remote.work.join(&to).parent().unwrap()).unwrap();
                std::fs::rename(remote.work.join(from), remote.work.join(&to)).unwrap();
            }
        }
        5 if !dir.is_empty() => {
            let _ = std::fs::remove_dir_all(remote.work.join(dir));
        }
        6 => {
            // A directory of several files at once.
            for k in 0..3 {
                let name = format!("n{k}.yaml");
                remote.write(&join(dir, &format!("new/{name}")), &content(rng, &name));
            }
        }
        7 | 8 => {
            let targets: Vec<String> = existing
                .iter()
                .map(|s| s.to_string())
                .chain(DIRS.iter().map(|d| d.to_string()))
                .chain([
                    "missing.yaml".to_string(),
                    "../../../../outside".to_string(),
                ])
                .collect();
            let target = &targets[rng.below(targets.len())];
            let name = if rng.below(3) == 0 {
                format!("l{}", rng.below(3))
            } else {
                format!("l{}.yaml", rng.below(3))
            };
            let path = join(dir, &name);
            let full = remote.work.join(&path);
            let _ = std::fs::remove_file(&full);
            if std::fs::symlink_metadata(&full).is_err() {
                let target = relative(dir, target);
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                if let Err(e) = std::os::unix::fs::symlink(&target, &full) {
                    panic!("{path} -> {target}: {e}");
                }
            }
        }
        _ => {
            let at = if rng.below(2) == 0 {
                ".veerignore"
            } else {
                "base/.veerignore"
            };
            if rng.below(3) == 0 {
                let _ = std::fs::remove_file(remote.work.join(at));
            } else {
                remote.write(at, rng.pick(IGNORES));
            }
        }
    }
}

fn load(source: &mut GitSource, cache: &mut ParseCache, options: &ReadOptions) -> LoadedRevision {
    let fetched = source.fetch().unwrap();
    source.load(fetched.commit(), options, cache).unwrap()
}

fn incremental_equals_full(seed: u64, sub_path: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote::new(tmp.path(), "mesh");
    for dir in DIRS {
        remote.write(&join(dir, "f0.yaml"), &service(&format!("s{}", dir.len())));
    }
    remote.commit_and_push("start");
    let mut spec =
        SourceSpec::new(remote.bare.to_str().unwrap(), GitRef::Branch("main".into())).unwrap();
    if let Some(sub) = sub_path {
        spec = spec.with_sub_path(sub).unwrap();
    }
    let mut incremental = GitSource::open(spec.clone(), &tmp.path().join("a")).unwrap();
    let mut full = GitSource::open(spec, &tmp.path().join("b")).unwrap();
    let (mut cache_a, mut cache_b) = (ParseCache::default(), ParseCache::default());
    let options = ReadOptions {
        max_file_bytes: 300,
        ..ReadOptions::default()
    };
    let mut rng = Rng::seeded(seed);
    for step in 0..60 {
        for _ in 0..=rng.below(3) {
            mutate(&remote, &mut rng);
        }
        if sub_path.is_some() {
            // The sub-path must stay a directory git tracks: not a symlink, never empty.
            let base = remote.work.join("base");
            if base.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                std::fs::remove_file(&base).unwrap();
            }
            if !base.join("anchor.yaml").is_file() {
                remote.write("base/anchor.yaml", &service("keep"));
            }
        }
        remote.commit_and_push(&format!("step {step}"));
        let a = load(&mut incremental, &mut cache_a, &options);
        full.forget_walk();
        let b = load(&mut full, &mut cache_b, &options);
        assert_eq!(a, b, "seed {seed}, step {step}");
        assert_eq!(cache_a.len(), cache_b.len(), "seed {seed}, step {step}");
    }
}

#[test]
fn incremental_load_equals_a_full_walk_on_random_commits() {
    for seed in [0x9e37_79b9_7f4a_7c15, 42, 7_777_777] {
        incremental_equals_full(seed, None);
    }
}

#[test]
fn incremental_load_equals_a_full_walk_under_a_sub_path() {
    for seed in [3, 0x1234_5678_9abc_def0] {
        incremental_equals_full(seed, Some("base"));
    }
}
