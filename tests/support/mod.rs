//! Real git remotes for the source tests: working repositories driven with the `git` CLI, a
//! `git daemon` on a free loopback port, and a small smart-HTTP server running
//! `git http-backend` (buffered, so responses carry `Content-Length`, which libgit2 needs).
//! The embedded dev cluster's helpers are in [`devcluster`].
#![allow(dead_code)]

pub mod backend;
pub mod devcluster;
pub mod repo;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Fail (never skip) when a tool the test needs is missing, saying how to install it.
pub fn require_git() {
    let ok = Command::new("git")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "these tests need the `git` command line tool: install it with `apt-get install git`"
    );
}

fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("git {args:?}: {e}; install git with `apt-get install git`"));
    assert!(
        out.status.success(),
        "git {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A bare repository serving as the remote, with a working clone to commit from.
pub struct Remote {
    pub base: PathBuf,
    pub bare: PathBuf,
    pub work: PathBuf,
}

impl Remote {
    /// `<root>/srv/<name>.git` (bare) and `<root>/work/<name>` (working, `main` branch).
    pub fn new(root: &Path, name: &str) -> Self {
        require_git();
        let base = root.join("srv");
        let bare = base.join(format!("{name}.git"));
        let work = root.join("work").join(name);
        std::fs::create_dir_all(&bare).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        run_git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        run_git(&work, &["init", "-q", "-b", "main"]);
        run_git(&work, &["config", "user.name", "Ada Lovelace"]);
        run_git(&work, &["config", "user.email", "ada@example.com"]);
        run_git(&work, &["config", "core.symlinks", "true"]);
        run_git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Remote { base, bare, work }
    }

    pub fn git(&self, args: &[&str]) -> String {
        run_git(&self.work, args)
    }

    pub fn write(&self, path: &str, content: &str) {
        let full = self.work.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    pub fn symlink(&self, path: &str, target: &str) {
        let full = self.work.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, full).unwrap();
    }

    pub fn remove(&self, path: &str) {
        std::fs::remove_file(self.work.join(path)).unwrap();
    }

    /// Let `git http-backend` accept pushes to the bare repository (it refuses them by default
    /// to anonymous users).
    pub fn allow_http_push(&self) {
        run_git(&self.bare, &["config", "http.receivepack", "true"]);
    }

    /// Install a server-side `update` hook (a shell script) in the bare repository.
    pub fn update_hook(&self, script: &str) {
        let hook = self.bare.join("hooks").join("update");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        std::fs::write(&hook, format!("#!/bin/sh\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The commit a branch of the bare repository points at.
    pub fn remote_tip(&self, branch: &str) -> String {
        run_git(&self.bare, &["rev-parse", &format!("refs/heads/{branch}")])
    }

    /// Commit everything and return the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Commit and push the current branch.
    pub fn commit_and_push(&self, message: &str) -> String {
        let sha = self.commit(message);
        self.git(&["push", "-q", "--force", "origin", "HEAD"]);
        sha
    }
}

/// A small manifest naming `name`.
pub fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: 80\n"
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until_accepting(port: u16, what: &str, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not accept connections on port {port} within 10s");
}

/// A real `git daemon` exporting every repository under `base`. Killed on drop.
pub struct GitDaemon {
    pub port: u16,
    child: Child,
}

impl GitDaemon {
    pub fn start(base: &Path) -> Self {
        Self::start_with(base, false)
    }

    /// Also accept pushes (`--enable=receive-pack`), anonymously.
    pub fn start_with_push(base: &Path) -> Self {
        Self::start_with(base, true)
    }

    fn start_with(base: &Path, push: bool) -> Self {
        require_git();
        let port = free_port();
        // Run `git-daemon` itself: `git daemon` would fork it as a child that outlives a kill.
        let exec_path = Command::new("git")
            .arg("--exec-path")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let mut child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .arg("--export-all")
            .arg(format!("--base-path={}", base.display()))
            .arg(format!("--port={port}"))
            .arg("--listen=127.0.0.1")
            .arg("--reuseaddr")
            .args(push.then_some("--enable=receive-pack"))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `git daemon`: {e}; install it with `apt-get install git`")
            });
        wait_until_accepting(port, "git daemon", &mut child);
        GitDaemon { port, child }
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}.git", self.port)
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A smart-HTTP git server on 127.0.0.1 running `git http-backend` per request, optionally
/// requiring HTTP Basic credentials. Stops accepting on drop.
pub struct HttpGit {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl HttpGit {
    pub fn start(root: &Path, basic: Option<(&str, &str)>) -> Self {
        require_git();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_path_buf();
        let expected = basic.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let stopping = Arc::clone(&stop);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let root = root.clone();
                let expected = expected.clone();
                thread::spawn(move || {
                    let _ = handle(stream, &root, expected.as_deref());
                });
            }
        });
        HttpGit { port, stop }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}.git", self.port)
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(stream: TcpStream, root: &Path, expected_auth: Option<&str>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let body = if let Some(len) = headers.get("content-length") {
        let mut body = vec![0; len.parse().unwrap_or(0)];
        reader.read_exact(&mut body)?;
        body
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        read_chunked(&mut reader)?
    } else {
        Vec::new()
    };
    if let Some(expected) = expected_auth
        && headers.get("authorization").map(String::as_str) != Some(expected)
    {
        writer.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(t) = headers.get("content-type") {
        cmd.env("CONTENT_TYPE", t);
    }
    if let Some(e) = headers.get("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", e);
    }
    if let Some(p) = headers.get("git-protocol") {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let writer_thread = thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let output = child.wait_with_output()?;
    let _ = writer_thread.join();
    let out = output.stdout;
    let split = find(&out, b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| find(&out, b"\n\n").map(|i| (i, 2)));
    let (head, payload) = match split {
        Some((i, n)) => (
            String::from_utf8_lossy(&out[..i]).to_string(),
            &out[i + n..],
        ),
        None => (String::new(), &out[..]),
    };
    let mut status = "200 OK".to_string();
    let mut response_headers = String::new();
    for line in head.lines() {
        let line = line.trim_end();
        if let Some(s) = line.strip_prefix("Status:") {
            status = s.trim().to_string();
        } else if !line.is_empty() {
            response_headers.push_str(line);
            response_headers.push_str("\r\n");
        }
    }
    write!(
        writer,
        "HTTP/1.1 {status}\r\n{response_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    writer.write_all(payload)?;
    writer.flush()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
            .unwrap_or(0);
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// A real OpenSSH `sshd` on a free loopback port, with a throwaway host key and one
/// authorized client key, serving the current user's shell (so `git-upload-pack` runs).
/// Killed on drop.
pub struct SshServer {
    pub port: u16,
    pub user: String,
    /// Client private key (ed25519, no passphrase).
    pub client_key: PathBuf,
    /// A known_hosts file listing this server's key.
    pub known_hosts: PathBuf,
    child: Child,
}

fn ssh_keygen(path: &Path, passphrase: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
        .arg(path)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run ssh-keygen: {e}; install it with `apt-get install openssh-client`")
        });
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

impl SshServer {
    pub fn start(dir: &Path) -> Self {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "this test needs OpenSSH's sshd: install it with `apt-get install openssh-server`"
        );
        // sshd refuses to start without its privilege separation directory, which the
        // Debian service script normally creates.
        if !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd").unwrap_or_else(|e| {
                panic!("sshd needs /run/sshd: {e}; create it with `mkdir -p /run/sshd` (as root)")
            });
        }
        std::fs::create_dir_all(dir).unwrap();
        let host_key = dir.join("host_key");
        let client_key = dir.join("client_key");
        ssh_keygen(&host_key, "");
        ssh_keygen(&client_key, "");
        let authorized = dir.join("authorized_keys");
        std::fs::copy(dir.join("client_key.pub"), &authorized).unwrap();
        let port = free_port();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let mut fields = host_pub.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        let known_hosts = dir.join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {kind} {key}\n")).unwrap();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nLogLevel ERROR\n",
                host_key.display(),
                authorized.display()
            ),
        )
        .unwrap();
        let user = std::env::var("USER")
            .ok()
            .or_else(|| {
                Command::new("whoami")
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            })
            .unwrap();
        let mut child = Command::new(sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start sshd: {e}; install it with `apt-get install openssh-server`")
            });
        wait_until_accepting(port, "sshd", &mut child);
        SshServer {
            port,
            user,
            client_key,
            known_hosts,
            child,
        }
    }

    pub fn url(&self, repo: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            repo.display()
        )
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ask `probe` every 100 ms until it answers, failing with `what` after `within`.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
