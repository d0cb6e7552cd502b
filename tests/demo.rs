//! `veer demo` end to end: the real binary, from a directory holding a broken veer.yaml and
//! with a `VEER_KUBECONFIG` pointing nowhere (neither may reach the demo), plays the whole
//! story against its own API server, exporter, Prometheus (it must be on PATH: `make deps`),
//! Slack receiver and `veer run`. Asserted from what it printed and from the git repository
//! it left in `--dir`: v1 deployed; v2 stepped, rolled back and reverted in git by veer; v3
//! promoted to 100 %; the mirrored copies and the faults measured in Prometheus; the Slack
//! messages; exit 0; and no process it started still running.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo takes about a minute alone; a machine shared with builds is slower.
const DEADLINE: Duration = Duration::from_secs(300);
/// How long the demo may take to stop after SIGTERM (`veer run` alone may take 10 s).
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc") {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// The number after `pid ` on the line starting with `label`.
fn pid_after(output: &str, label: &str) -> u32 {
    let line = output
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{output}"));
    let rest = &line[line.find("pid ").expect("a pid") + 4..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a pid number")
}

fn summaries(repo: &git2::Repository) -> Vec<(String, git2::Oid)> {
    let mut walk = repo.revwalk().unwrap();
    walk.push_ref("refs/heads/main").unwrap();
    walk.map(|id| {
        let id = id.unwrap();
        let c = repo.find_commit(id).unwrap();
        (c.summary().unwrap().unwrap_or("").to_string(), id)
    })
    .collect()
}

fn file_at(repo: &git2::Repository, commit: git2::Oid, path: &str) -> String {
    let tree = repo.find_commit(commit).unwrap().tree().unwrap();
    let entry = tree.get_path(Path::new(path)).unwrap();
    let blob = repo.find_blob(entry.id()).unwrap();
    String::from_utf8(blob.content().to_vec()).unwrap()
}

/// SIGTERM (the demo then stops everything it started), SIGKILL if it has not ended within
/// [`STOP_WITHIN`]: killed at once, it would leave prometheus and `veer run` running.
fn stop(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on our own child, not reaped yet, so its pid cannot be reused.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let asked = Instant::now();
    while asked.elapsed() < STOP_WITHIN {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_demo_plays_the_whole_story_and_leaves_nothing_running() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("veer.yaml"), "not: [valid veer config\n").unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let out_path = work.path().join("output.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(["demo", "--color", "never", "--dir"])
        .arg(&dir)
        .current_dir(cwd.path())
        .env("VEER_KUBECONFIG", "/nonexistent/kubeconfig")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start veer demo");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            stop(&mut child);
            panic!(
                "veer demo did not end within {DEADLINE:?}; its output:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&out_path).unwrap();
    eprintln!("veer demo took {:?}", started.elapsed());
    assert_eq!(status.code(), Some(0), "veer demo failed:\n{output}");
    let has = |text: &str| {
        assert!(output.contains(text), "missing {text:?} in:\n{output}");
    };

    // Nothing it started survives it: neither by the pids it printed nor by the demo
    // directory on any command line (prometheus and veer run both name it).
    for label in ["prometheus", "veer run"] {
        let pid = pid_after(&output, label);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{label} (pid {pid}) is still running"
        );
    }
    let left = processes_mentioning(&dir.display().to_string());
    assert!(left.is_empty(), "still running: {left:#?}");

    // Act 1: the first sync, object by object.
    has("created  Deployment bookinfo/reviews-v1");
    has("created  VirtualService bookinfo/reviews");
    has("✓ applied: 12 objects created");
    // Act 2: stepped (a bar at 10 % for v2), checks against thresholds, a failed check,
    // rolled back, the revert commit.
    has("step 1/3    ██░░░░░░░░░░░░░░░░░░  10% v2   v1 90 · v2 10");
    has("(want >= 99) failed");
    has("rolled back ░░░░░░░░░░░░░░░░░░░░   0%");
    has("↩ veer pushed a revert commit");
    // Act 3: promoted step by step.
    for step in [
        "step 1/3    ██░░░░░░░░░░░░░░░░░░  10% v3",
        "step 2/3    █████░░░░░░░░░░░░░░░  25% v3",
        "step 3/3    ██████████░░░░░░░░░░  50% v3",
        "promoted    ████████████████████ 100% v3   v3 100",
    ] {
        has(step);
    }
    let act3 = &output[output.find("━━ Act 3").unwrap()..output.find("━━ Act 4").unwrap()];
    assert!(!act3.contains(") failed"), "no check of v3 fails:\n{act3}");
    // Act 4 and 5.
    has("created  VirtualService demo/httpbin");
    has("mirrored copies");
    has("✓ v2 received");
    has(
        "fault  everyone-else: abort with HTTP 500 for 10% of the requests no earlier route matches",
    );
    has("✓ 5 Fault injection on ratings");
    // The callers see the faults: 10 % of the 90 % plain requests aborted, the test user's
    // 10 % delayed 7 s (the exporter's A/B share carries the matched header).
    let aborted = output
        .lines()
        .find_map(|l| {
            l.trim_start()
                .split_once(" % answered 5xx by the fault (expected 9.0 %)")
                .and_then(|(head, _)| head.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("no measured abort share in:\n{output}"));
    assert!((aborted - 9.0).abs() <= 4.0, "aborted {aborted} %");
    has("(10.0 % of requests are delayed 7000 ms)");
    // The p99 reads above the 7 s delay: Prometheus interpolates inside Istio's bucket.
    has(
        "(Prometheus estimates the p99 inside the 5–10 s histogram bucket, so a 7 s delay reads as ~",
    );
    // Slack: printed as they came, and counted in the summary.
    let printed = output
        .lines()
        .filter(|l| l.starts_with("  [slack] "))
        .count();
    has(&format!("Slack messages received: {printed}"));
    assert!(printed >= 6, "{printed} Slack messages:\n{output}");
    has("[slack] ● Rollout of bookinfo/reviews rolled back");
    has("[slack] ● Pushed revert");
    has("[slack] ● Rollout of bookinfo/reviews promoted");
    // A promotion leaves live equal to git: nothing for a later pass to heal.
    assert!(
        !output.contains("Healed drift"),
        "veer healed drift during the story:\n{output}"
    );
    for act in 1..=5 {
        assert!(
            output
                .lines()
                .any(|l| l.starts_with(&format!("  ✓ {act} "))),
            "act {act} is not ✓ in the summary:\n{output}"
        );
    }
    has("status page: http://127.0.0.1:");
    has("stopped veer run (pid");

    // The repository veer tracked: the story's commits, veer's revert of the v2 commit
    // between them, and v3 taking all of reviews' traffic at the tip.
    let repo = git2::Repository::open_bare(dir.join("repo.git")).expect("the demo's repository");
    let log = summaries(&repo);
    let names: Vec<&str> = log.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "ratings: inject faults",
            "httpbin: mirror 25 % of the traffic to v2",
            "reviews: send all traffic to v3",
            "Revert \"reviews: send all traffic to v2\"",
            "reviews: send all traffic to v2",
            "reviews: first deploy, all traffic to v1",
        ]
    );
    let revert = repo.find_commit(log[3].1).unwrap();
    assert_eq!(revert.author().name().unwrap(), "veer");
    assert!(
        revert
            .message()
            .unwrap()
            .contains(&format!("This reverts commit {}.", log[4].1)),
        "{:?}",
        revert.message()
    );
    has(&format!(
        "revert commit pushed by veer: {}",
        &log[3].1.to_string()[..7]
    ));
    let vs = file_at(
        &repo,
        log[3].1,
        "reviews/traffic/reviews-virtualservice.yaml",
    );
    assert_eq!(
        vs,
        include_str!("../examples/reviews/traffic/reviews-virtualservice.yaml"),
        "the revert restores the example as it was"
    );
    let tip_vs: serde_json::Value = serde_saphyr::from_str(&file_at(
        &repo,
        log[0].1,
        "reviews/traffic/reviews-virtualservice.yaml",
    ))
    .unwrap();
    assert_eq!(
        tip_vs.pointer("/spec/http/0/route/1"),
        Some(
            &serde_json::json!({"destination": {"host": "reviews", "subset": "v3"}, "weight": 100})
        )
    );
}
