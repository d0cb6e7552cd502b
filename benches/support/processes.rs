//! The processes a bench runs beside veer, and what it reads of them and of itself: `veer
//! dev-cluster`, `veer synthetic-exporter` and Prometheus as child processes (killed on
//! drop, their output in a log file of the bench's directory), each one's CPU time and peak
//! RSS, and this process's RSS and CPU time, so a bench prints veer's own figures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use veer::demo::prometheus::{free_loopback_port, http_get_status};

// ---------------------------------------------------------------------------------------
// The other processes.

/// A child process, killed when dropped; its output in `log`.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, dir: &Path, command: &mut std::process::Command) -> Process {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("a log file");
        let child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        Process { child, log }
    }

    /// Wait until `ready` (checked every 20 ms), or panic naming the log.
    pub fn wait_for(&mut self, what: &str, within: Duration, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + within;
        while !ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{what}: exited ({status}); see {}", self.log.display());
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; see {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds and peak RSS (MiB) of the process so far, for context.
    pub fn usage(&self) -> (f64, u64) {
        let pid = self.child.id();
        let peak = status_kib(&format!("/proc/{pid}/status"), "VmHWM:") / 1024;
        (cpu_seconds(pid), peak)
    }
}

/// CPU seconds (user and system) process `pid` has used so far, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces): utime is the 14th
            // field of the line, stime the 15th.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `veer run`'s runtime (one thread), for a bench that runs veer's loop in its own process.
pub fn veer_runtime() -> tokio::runtime::Runtime {
    veer::controller::runtime::loop_runtime().expect("a tokio runtime")
}

/// The sizes a bench runs: the environment variable `var` as comma-separated numbers, else
/// `defaults`.
pub fn sizes(var: &str, defaults: &[usize]) -> Vec<usize> {
    match std::env::var(var) {
        Ok(list) => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{var}: comma-separated numbers, not {list:?}"))
            })
            .collect(),
        Err(_) => defaults.to_vec(),
    }
}

pub fn veer_binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_veer"))
}

/// `veer dev-cluster` on a free loopback port; its kubeconfig.
pub fn dev_cluster(dir: &Path) -> (Process, PathBuf) {
    let kubeconfig = dir.join("kubeconfig");
    let mut p = Process::spawn(
        "dev-cluster",
        dir,
        veer_binary()
            .args(["dev-cluster", "--port", "0", "--kubeconfig"])
            .arg(&kubeconfig)
            .env_remove("VEER_DEV_CLUSTER_STATE"),
    );
    // Port 0: the server writes the kubeconfig, atomically, once it listens.
    p.wait_for("veer dev-cluster", Duration::from_secs(20), || {
        kubeconfig.is_file()
    });
    (p, kubeconfig)
}

/// The synthetic exporter, following every namespace's VirtualServices and sending each
/// service `rps` requests a second; its `host:port`.
pub fn exporter(dir: &Path, kubeconfig: &Path, rps: &str) -> (Process, String) {
    let port = free_loopback_port().expect("a free port");
    let mut p = Process::spawn(
        "exporter",
        dir,
        veer_binary()
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["synthetic-exporter", "--all-namespaces", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--requests-per-second", rps]),
    );
    p.wait_for("the synthetic exporter", Duration::from_secs(20), || {
        http_get_status(port, "/metrics") == Some(200)
    });
    (p, format!("127.0.0.1:{port}"))
}

/// Prometheus scraping `target` every `scrape` (`2s`); its URL.
pub fn prometheus(dir: &Path, target: &str, scrape: &str) -> (Process, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: {scrape}\n  scrape_timeout: {scrape}\n\
             scrape_configs:\n  - job_name: istio-synthetic\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let port = free_loopback_port().expect("a free port");
    let mut p = Process::spawn(
        "prometheus",
        dir,
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn"),
    );
    p.wait_for(
        "prometheus (`make deps` installs it)",
        Duration::from_secs(30),
        || http_get_status(port, "/-/ready") == Some(200),
    );
    (p, format!("http://127.0.0.1:{port}"))
}

// ---------------------------------------------------------------------------------------
// This process.

/// A field of `/proc/.../status`, in KiB.
pub fn status_kib(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn rss_mib() -> f64 {
    status_kib("/proc/self/status", "VmRSS:") as f64 / 1024.0
}

pub fn peak_rss_mib() -> f64 {
    status_kib("/proc/self/status", "VmHWM:") as f64 / 1024.0
}

/// CPU time of this whole process (every thread) so far.
pub fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to write.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// This process's CPU time in the kernel so far, and its minor page faults (a page touched
/// for the first time, or again after the allocator gave it back): what a tick's memory
/// churn costs shows in both. The kernel's time is split from the user's by sampling at
/// the scheduler's tick on kernels without `VIRT_CPU_ACCOUNTING_GEN` (this one: 250 Hz), so
/// over a tick of a few hundred ms it is rough; the fault count is exact.
pub fn kernel_time_and_faults() -> (Duration, u64) {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage for getrusage to write.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF)");
    let kernel = Duration::new(
        usage.ru_stime.tv_sec as u64,
        usage.ru_stime.tv_usec as u32 * 1_000,
    );
    (kernel, usage.ru_minflt as u64)
}
