//! `make bench`: peak memory of the real `veer` binary fetching a hostile repository with an
//! empty cache, as a restarted pod does. Prints figures; asserts nothing (a line ending in
//! `<-- UNEXPECTED` means the run did not do what its label says).
//!
//! The repositories are built once, with the `git` CLI, straight into bare repositories
//! (`hash-object`, `mktree`, `commit-tree`) from sparse files, so nothing big is held in
//! memory or on disk except the incompressible case's pack:
//!
//! - one 1 GiB file of zeros (1 MiB packed) next to a valid manifest, over `git://` (a real
//!   `git daemon` on a free loopback port) and through a `file://` URL;
//! - one 256 MiB incompressible file over `git://`;
//! - two 256 MiB files of zeros that differ by one byte, over `git://`: the server sends one
//!   as a delta of the other.
//!
//! Each case runs `veer validate --repo URL --cache-dir <new empty dir>` once. The peak RSS is
//! the child's own (`wait4`'s `ru_maxrss`); the anonymous and file-backed parts are sampled
//! from `/proc/PID/status` every 5 ms (so they may miss a short peak). Where the bytes go:
//! `benches/README.md`.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn git(dir: &Path, args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("git is needed: apt-get install git");
    if let Some(text) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write to git");
    }
    let out = child.wait_with_output().expect("git runs");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What a file of the generated repository holds.
enum Content {
    /// `len` zero bytes, with an `x` at the given offset when set (sparse on disk).
    Zeros(u64, Option<u64>),
    /// `len` bytes of xorshift noise from `seed`: zlib cannot shrink it.
    Noise(u64, u64),
    Text(&'static str),
}

const MANIFEST: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: ok\n  namespace: default\nspec:\n  ports:\n  - port: 80\n";

/// Sizes of a generated repository's files.
#[derive(Clone, Copy)]
struct Sizes {
    largest: u64,
    total: u64,
}

/// A bare repository `<base>/<name>.git` with one commit on `main` holding `files`.
fn bare_repo(base: &Path, name: &str, files: &[(String, Content)]) -> Sizes {
    let bare = base.join(format!("{name}.git"));
    std::fs::create_dir_all(&bare).expect("mkdir");
    git(&bare, &["init", "-q", "--bare", "-b", "main"], None);
    let scratch = base.join(format!("{name}.file"));
    let mut tree = String::new();
    let mut sizes = Sizes {
        largest: 0,
        total: 0,
    };
    for (path, content) in files {
        let file = std::fs::File::create(&scratch).expect("scratch file");
        let len = match content {
            Content::Zeros(len, marker) => {
                file.set_len(*len).expect("sparse file");
                if let Some(at) = marker {
                    use std::os::unix::fs::FileExt as _;
                    file.write_at(b"x", *at).expect("marker");
                }
                *len
            }
            Content::Noise(len, seed) => {
                let mut out = std::io::BufWriter::new(file);
                let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
                for _ in 0..len / 8 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    out.write_all(&x.to_le_bytes()).expect("write noise");
                }
                out.flush().expect("flush");
                *len
            }
            Content::Text(text) => {
                std::fs::write(&scratch, text).expect("write");
                text.len() as u64
            }
        };
        sizes.largest = sizes.largest.max(len);
        sizes.total += len;
        let scratch_path = scratch.to_str().expect("utf-8 path");
        let id = git(&bare, &["hash-object", "-w", scratch_path], None);
        tree.push_str(&format!("100644 blob {id}\t{path}\n"));
    }
    let _ = std::fs::remove_file(&scratch);
    let tree = git(&bare, &["mktree"], Some(&tree));
    let commit = git(&bare, &["commit-tree", &tree, "-m", "hostile"], None);
    git(&bare, &["update-ref", "refs/heads/main", &commit], None);
    sizes
}

/// A `git daemon` exporting `base`; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // `git-daemon` itself: `git daemon` forks it as a child that outlives a kill.
        let exec_path = git(base, &["--exec-path"], None);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .arg("--export-all")
            .arg(format!("--base-path={}", base.display()))
            .arg(format!("--port={port}"))
            .arg("--listen=127.0.0.1")
            .arg("--reuseaddr")
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts: apt-get install git");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon { child, port }
    }

    fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}.git", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `veer validate` run and what it cost.
struct Run {
    code: Option<i32>,
    output: String,
    peak_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    elapsed: Duration,
    cache_bytes: u64,
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn validate(work: &Path, url: &str, cache: &Path) -> Run {
    let log = work.join("veer.out");
    let out = std::fs::File::create(&log).expect("log file");
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(["validate", "--repo", url, "--cache-dir"])
        .arg(cache)
        .current_dir(work)
        .env_remove("VEER_CONFIG")
        .env_remove("VEER_REPO")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .expect("veer runs");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let (anon, file) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sampler = {
        let (done, anon, file) = (done.clone(), anon.clone(), file.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(a) = status_kib(pid, "RssAnon:") {
                    anon.fetch_max(a, Ordering::Relaxed);
                }
                if let Some(f) = status_kib(pid, "RssFile:") {
                    file.fetch_max(f, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut status = 0;
    // SAFETY: a zeroed `rusage` is a valid value, and wait4 writes it for our own child,
    // which std has not waited for (the `Child` is dropped unwaited below).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    drop(child);
    assert_eq!(waited, pid as libc::pid_t, "wait4 failed");
    Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        output: std::fs::read_to_string(&log).unwrap_or_default(),
        // Linux reports ru_maxrss in KiB.
        peak_kib: usage.ru_maxrss as u64,
        anon_kib: anon.load(Ordering::Relaxed),
        file_kib: file.load(Ordering::Relaxed),
        elapsed,
        cache_bytes: dir_bytes(cache),
    }
}

fn refused(files: &[&str]) -> Vec<String> {
    files
        .iter()
        .map(|f| format!("error[file-too-large] {f}:1:1: file is"))
        .collect()
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// `expect`: what the output must hold (the refusals, or the diagnostics of valid-size files).
fn case(label: &str, work: &Path, url: &str, expect: &[String], sizes: Sizes) {
    let cache = work.join(format!("cache-{}", label.replace([' ', '/', ':'], "-")));
    let _ = std::fs::remove_dir_all(&cache);
    let run = validate(work, url, &cache);
    let _ = std::fs::remove_dir_all(&cache);
    let as_expected = run.code == Some(1)
        && expect.iter().all(|e| run.output.contains(e.as_str()))
        && run.output.contains("INVALID");
    let peak = (run.peak_kib * 1024) as f64;
    println!(
        "{label:<46} peak RSS {:>8} = {:.3}x the largest file ({:.0} MiB), {:.3}x all files; sampled anon {:>8}, file-backed {:>8}; {:.1} s; cache {:.1} MiB{}",
        mib(run.peak_kib),
        peak / sizes.largest as f64,
        sizes.largest as f64 / MIB as f64,
        peak / sizes.total as f64,
        mib(run.anon_kib),
        mib(run.file_kib),
        run.elapsed.as_secs_f64(),
        run.cache_bytes as f64 / MIB as f64,
        if as_expected {
            String::new()
        } else {
            format!(
                "  <-- UNEXPECTED (exit {:?}, expected {expect:?}):\n{}",
                run.code, run.output
            )
        }
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used.
    println!(
        "veer hostile-repository fetch: peak RSS of `veer validate` with an empty cache (figures, not pass/fail)"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let base: PathBuf = tmp.path().join("srv");
    std::fs::create_dir_all(&base).expect("mkdir");

    let t = Instant::now();
    let zeros = bare_repo(
        &base,
        "zeros",
        &[
            ("big.yaml".into(), Content::Zeros(GIB, None)),
            ("ok.yaml".into(), Content::Text(MANIFEST)),
        ],
    );
    let noise = bare_repo(
        &base,
        "noise",
        &[
            ("big.yaml".into(), Content::Noise(256 * MIB, 0)),
            ("ok.yaml".into(), Content::Text(MANIFEST)),
        ],
    );
    let delta = bare_repo(
        &base,
        "delta",
        &[
            ("big-a.yaml".into(), Content::Zeros(256 * MIB, None)),
            ("big-b.yaml".into(), Content::Zeros(256 * MIB, Some(4096))),
            ("ok.yaml".into(), Content::Text(MANIFEST)),
        ],
    );
    let many: Vec<(String, Content)> = (0..200)
        .map(|i| (format!("f{i:03}.yaml"), Content::Noise(1_000_000, i + 1)))
        .collect();
    let many = bare_repo(&base, "many", &many);
    println!(
        "repositories generated in {:.1} s (on disk: {:.1} MiB)",
        t.elapsed().as_secs_f64(),
        dir_bytes(&base) as f64 / MIB as f64
    );

    let daemon = Daemon::start(&base);
    let work = tmp.path();
    case(
        "1 GiB of zeros over git://",
        work,
        &daemon.url("zeros"),
        &refused(&["big.yaml"]),
        zeros,
    );
    case(
        "1 GiB of zeros, file:// URL (read in place)",
        work,
        &format!("file://{}", base.join("zeros.git").display()),
        &refused(&["big.yaml"]),
        zeros,
    );
    case(
        "256 MiB incompressible over git://",
        work,
        &daemon.url("noise"),
        &refused(&["big.yaml"]),
        noise,
    );
    case(
        "2 x 256 MiB zeros, one sent as a delta, git://",
        work,
        &daemon.url("delta"),
        &refused(&["big-a.yaml", "big-b.yaml"]),
        delta,
    );
    case(
        "200 x 1 MB incompressible files over git://",
        work,
        &daemon.url("many"),
        &["0 objects in 0 files: 200 errors".to_string()],
        many,
    );
}
