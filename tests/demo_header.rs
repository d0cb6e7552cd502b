//! The demo's header on a coloured terminal: the real binary under a pty (util-linux
//! `script`), colour chosen by itself (`--color auto`, the default), stopped with SIGTERM as
//! soon as the header is out. Every value must start at the same visible column, escape
//! codes taking no room (they once ate the labels' padding: `API serverhttp://…`). Needs
//! Prometheus on PATH, as `tests/demo.rs` does (`make deps`); takes a few seconds.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Until the header is printed: the demo starts its stage in well under a second alone.
const HEADER_WITHIN: Duration = Duration::from_secs(120);
/// How long the demo may take to stop after SIGTERM (`veer run` alone may take 10 s).
const STOP_WITHIN: Duration = Duration::from_secs(30);
/// The header's labels, in order, and the visible column their values start at.
const LABELS: [&str; 9] = [
    "API server",
    "kubeconfig",
    "exporter",
    "prometheus",
    "slack",
    "git",
    "veer run",
    "status page",
    "demo dir",
];
const VALUE_COLUMN: usize = 15;

/// `text` without its ANSI CSI sequences and carriage returns: what takes room on screen.
fn visible(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Pids of processes whose command line mentions `needle`, with their command lines.
fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc") {
        let Ok(entry) = entry else { continue };
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// SIGTERM to the demo itself (not to `script`, which would not wait for it to stop what it
/// started), then wait for `script` to end; SIGKILL both if they outstay [`STOP_WITHIN`].
fn stop(script: &mut Child, dir: &Path) {
    let needle = format!("demo --dir {}", dir.display());
    let demo: Vec<i32> = processes_mentioning(&needle)
        .into_iter()
        .filter(|(pid, cmd)| {
            i32::try_from(script.id()).ok() != Some(*pid) && !cmd.starts_with("script ")
        })
        .map(|(pid, _)| pid)
        .collect();
    for pid in &demo {
        // SAFETY: kill(2) on the demo this test started, found by its unique directory.
        unsafe {
            libc::kill(*pid, libc::SIGTERM);
        }
    }
    let asked = Instant::now();
    while asked.elapsed() < STOP_WITHIN {
        if let Ok(Some(_)) = script.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for pid in &demo {
        // SAFETY: as above; it did not stop when asked.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    let _ = script.kill();
    let _ = script.wait();
}

#[test]
fn the_demo_header_lines_up_on_a_coloured_terminal() {
    let cwd = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let out_path = work.path().join("terminal.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    // `exec`: the demo is script's own child, so SIGTERM reaches it and not a shell.
    let line = format!(
        "exec '{}' demo --dir '{}'",
        env!("CARGO_BIN_EXE_veer"),
        dir.display()
    );
    let mut script = Command::new("script")
        .args(["-qfc", &line, "/dev/null"])
        .current_dir(cwd.path())
        .env("VEER_KUBECONFIG", "/nonexistent/kubeconfig")
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        // Held open: at the end of its input `script` ends the session.
        .stdin(Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("run `script` for a pty (util-linux)");

    let started = Instant::now();
    let transcript = loop {
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        let done = visible(&text)
            .lines()
            .any(|l| l.trim_start().starts_with("demo dir"));
        let ended = matches!(script.try_wait(), Ok(Some(_)));
        if done || ended || started.elapsed() > HEADER_WITHIN {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    stop(&mut script, &dir);
    let left = processes_mentioning(&dir.display().to_string());

    // The header ends at `demo dir`; the acts after it have lines like `  git commit …`.
    let header_end = transcript
        .lines()
        .position(|l| visible(l).starts_with("  demo dir"))
        .map_or(0, |i| i + 1);
    let rows: Vec<&str> = transcript
        .lines()
        .take(header_end)
        .filter(|l| {
            LABELS
                .iter()
                .any(|label| visible(l).starts_with(&format!("  {label} ")))
        })
        .collect();
    assert_eq!(
        rows.len(),
        LABELS.len(),
        "one header line per label in:\n{}",
        visible(&transcript)
    );
    for (row, label) in rows.iter().zip(LABELS) {
        assert!(row.contains("\x1b["), "a terminal gets colour: {row:?}");
        let plain = visible(row);
        assert_eq!(
            plain.get(..VALUE_COLUMN),
            Some(format!("  {label:<13}").as_str()),
            "{plain:?}"
        );
        assert!(
            plain[VALUE_COLUMN..].starts_with(|c: char| !c.is_whitespace()),
            "the value of {label} starts at column {VALUE_COLUMN}: {plain:?}"
        );
    }
    assert!(left.is_empty(), "still running: {left:#?}");
}
