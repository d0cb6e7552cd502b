//! The sync bench's comparison with Debian's `kubectl diff --server-side` over the same
//! objects against the same API server: running it under a time cap, reading its `-v=6` log,
//! and printing its figures beside veer's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use veer::controller::desired_objects;
use veer::source::LoadedRevision;

use crate::manifests::ms;
use crate::sync_revisions::flag;

/// `VEER_BENCH_KUBECTL=0` leaves kubectl out (it takes minutes; the veer figures do not
/// depend on it).
pub const KUBECTL_ENV: &str = "VEER_BENCH_KUBECTL";

pub fn kubectl_wanted() -> bool {
    std::env::var(KUBECTL_ENV).map_or(true, |v| v != "0")
}

/// How long kubectl may take. Debian's kubectl 1.20 throttles itself (client-go's default
/// client-side rate limit), so 10,000 objects would take far longer than the bench may: it is
/// stopped and the figure is given as a lower bound, with its rate so far.
fn kubectl_timeout(n: usize) -> Duration {
    if n > 2_000 {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(240)
    }
}

/// Debian's kubectl, unpacked by `scripts/install-deps.sh`.
pub fn kubectl() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/tools/kubernetes-client/usr/bin/kubectl");
    assert!(
        path.is_file(),
        "Debian's kubectl is missing at {}: run `make deps` (scripts/install-deps.sh fetches the \
         kubernetes-client package with `apt-get download` and unpacks it there)",
        path.display()
    );
    path
}

enum KubectlOutcome {
    /// Exit code (0: no differences, 1: differences) and the diff's line count.
    Finished {
        code: i32,
        diff_lines: usize,
    },
    /// Exit code above 1: kubectl could not diff; its first error line.
    Failed {
        code: i32,
        error: String,
    },
    TimedOut,
}

/// What kubectl's `-v=6` log says it did.
#[derive(Default)]
struct KubectlLog {
    requests: usize,
    /// Server dry-run PATCHes: one per object diffed.
    objects: usize,
    /// Waits on its own client-side rate limit ("Throttling request took …").
    throttled: usize,
    throttled_for: Duration,
}

impl KubectlLog {
    fn read(path: &Path) -> KubectlLog {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut log = KubectlLog::default();
        for line in text.lines() {
            if line.contains("round_trippers.go") {
                log.requests += 1;
                if line.contains("] PATCH ") && line.contains("dryRun=All") {
                    log.objects += 1;
                }
            }
            if let Some(rest) = line.split("Throttling request took ").nth(1) {
                log.throttled += 1;
                let took = rest.split(',').next().unwrap_or("");
                log.throttled_for += go_duration(took);
            }
        }
        log
    }
}

/// A Go duration as kubectl prints it (`196.4ms`, `1.2s`, `850µs`); zero when unreadable.
fn go_duration(text: &str) -> Duration {
    let number = |suffix: &str| text.strip_suffix(suffix)?.parse::<f64>().ok();
    if let Some(v) = number("ms") {
        Duration::from_secs_f64(v / 1e3)
    } else if let Some(v) = number("µs") {
        Duration::from_secs_f64(v / 1e6)
    } else if let Some(v) = number("s") {
        Duration::from_secs_f64(v)
    } else {
        Duration::ZERO
    }
}

/// `kubectl diff --server-side --field-manager=veer -R -f dir`, as a user would check the
/// same objects veer applies (`-v=6` so its log says what it did).
async fn kubectl_diff(
    kubeconfig: &Path,
    dir: &Path,
    home: &Path,
    within: Duration,
) -> (Duration, KubectlOutcome, KubectlLog) {
    let out = home.join("kubectl-diff.out");
    let err = home.join("kubectl-diff.err");
    let mut child = tokio::process::Command::new(kubectl())
        .args([
            "diff",
            "-v=6",
            "--server-side",
            "--field-manager=veer",
            "-R",
            "-f",
        ])
        .arg(dir)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        // Its LIVE-*/MERGED-* directories stay inside the bench's temporary directory, even
        // when it is stopped at the cap.
        .env("TMPDIR", home)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("kubectl output file"))
        .stderr(std::fs::File::create(&err).expect("kubectl error file"))
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl starts");
    let t = Instant::now();
    let outcome = match tokio::time::timeout(within, child.wait()).await {
        Ok(status) => {
            let code = status.expect("kubectl runs").code().unwrap_or(-1);
            if code == 0 || code == 1 {
                let diff_lines = std::fs::read_to_string(&out)
                    .map(|s| s.lines().count())
                    .unwrap_or(0);
                KubectlOutcome::Finished { code, diff_lines }
            } else {
                let stderr = std::fs::read_to_string(&err).unwrap_or_default();
                let error = stderr
                    .lines()
                    .find(|l| l.contains("error"))
                    .unwrap_or("no error line")
                    .to_string();
                KubectlOutcome::Failed { code, error }
            }
        }
        Err(_) => {
            let _ = child.kill().await;
            KubectlOutcome::TimedOut
        }
    };
    (t.elapsed(), outcome, KubectlLog::read(&err))
}

/// kubectl diff over `second`'s objects, written under `dir`, and its figures beside veer's
/// steady-state and cold plans of the same `n` objects.
pub async fn compare(
    dir: &Path,
    kubeconfig: &Path,
    second: &LoadedRevision,
    source_url: &str,
    n: usize,
    steady: Duration,
    cold: Duration,
) {
    // kubectl diff over the same objects (as veer applies them: label and source annotation
    // included) against the same server; the cluster now matches `second`.
    let files = dir.join("objects");
    for (i, d) in desired_objects(second, source_url).iter().enumerate() {
        let dir = files.join(format!("d{:03}", i / 100));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join(format!("m{i}.json")),
            serde_json::to_vec(&*d.value()).expect("json"),
        )
        .expect("write");
    }
    let home = dir.join("kubectl-home");
    std::fs::create_dir_all(&home).expect("mkdir");
    let within = kubectl_timeout(n);
    let (kubectl_time, outcome, log) = kubectl_diff(kubeconfig, &files, &home, within).await;
    let throttling = format!(
        "{} requests, {} of them held back by kubectl's own rate limiter, {:.1} s in all",
        log.requests,
        log.throttled,
        log.throttled_for.as_secs_f64()
    );
    let ratio = |veer: Duration| kubectl_time.as_secs_f64() / veer.as_secs_f64().max(1e-9);
    match outcome {
        KubectlOutcome::Finished { code, diff_lines } => {
            println!(
                "  kubectl diff --server-side:         {:>10}   exit {code}, {diff_lines} diff line(s); {throttling}{}",
                ms(kubectl_time),
                flag(code == 0 && log.objects == n)
            );
            println!(
                "  ratio kubectl diff / veer steady-state plan: {:.0}x;  kubectl diff / veer cold plan: {:.1}x",
                ratio(steady),
                ratio(cold)
            );
        }
        KubectlOutcome::Failed { code, error } => {
            println!(
                "  kubectl diff --server-side:         failed after {} (exit {code}): {error}   <-- UNEXPECTED",
                ms(kubectl_time)
            );
        }
        KubectlOutcome::TimedOut => {
            let rate = log.objects as f64 / kubectl_time.as_secs_f64().max(1e-9);
            println!(
                "  kubectl diff --server-side:         stopped at the {} s cap after {} of {n} objects \
                 ({rate:.1} objects/s; all would take about {:.0} s); {throttling}",
                within.as_secs(),
                log.objects,
                n as f64 / rate.max(1e-9)
            );
            println!(
                "  ratio kubectl diff / veer steady-state plan: more than {:.0}x;  kubectl diff / veer cold plan: more than {:.1}x",
                ratio(steady),
                ratio(cold)
            );
        }
    }
}
