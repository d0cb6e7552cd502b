//! `make bench`: figures for live state, diff and sync against the embedded API server, for
//! 1,000 and 10,000 generated manifests. Prints numbers and ratios; asserts nothing about
//! them (only that the setup worked: the objects were created, the plans mean what their
//! label says).
//!
//! The API server runs as a separate process (`veer dev-cluster`, any free loopback port,
//! kubeconfig in a temporary directory) so that the peak RSS printed is veer's own. Each
//! size runs in a fresh child process of this bench, so one size's peak does not hide the
//! other's. API requests are counted client-side, by a tower layer on the kube client.
//!
//! For each size: the initial sync (every object created), a steady-state plan (watch cache
//! up, plan empty), an idle poll (must make no API call), a plan after one object changed in
//! git, a cold plan (a fresh client: discovery, watches, LISTs, as one `veer diff` does), and
//! Debian's `kubectl diff --server-side` over the same objects against the same server.
//!
//! `VEER_BENCH_SIZES=200,500 cargo test --bench sync` runs other sizes (for a quick debug
//! check of the bench itself); `VEER_BENCH_KUBECTL=0` leaves kubectl out.

#[path = "support/figures.rs"]
mod figures;
#[path = "support/manifests.rs"]
mod manifests;
#[path = "support/processes.rs"]
mod processes;
#[path = "support/controller.rs"]
mod support_controller;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::Utc;
use kube::api::{Api, Patch, PatchParams};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tower::{Layer, Service};
use veer::controller::rollouts::{RolloutDriver, RolloutOptions};
use veer::controller::{
    Controller, Pass, desired_objects, desired_virtual_services, next_state, plan_context,
    report_without_writes,
};
use veer::diff::{self, ObjectAction, Plan};
use veer::manifest::{self, ManifestSet, ObjectKey, ReadOptions};
use veer::metrics::Metrics;
use veer::source::{CommitId, LoadedRevision, PollOutcome, Revision};
use veer::sync::MANAGER;

use manifests::{manifest_text, ms, namespace, peak_rss_kib};

// The allocator `veer` runs on, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: veer::controller::memory::Allocator = veer::controller::memory::Allocator;

/// The child-process protocol: the size to run.
const SIZE_ENV: &str = "VEER_BENCH_SYNC_SIZE";
const SOURCE_URL: &str = "git://bench.example/mesh.git";
/// Steady-state figures are the median of this many runs (fewer for the large size, whose
/// idle pass takes seconds: the bench should stay within a few minutes).
fn repeats(n: usize) -> usize {
    if n > 2_000 { 3 } else { 5 }
}

/// `VEER_BENCH_KUBECTL=0` leaves kubectl out (it takes minutes; the veer figures do not
/// depend on it).
const KUBECTL_ENV: &str = "VEER_BENCH_KUBECTL";

fn kubectl_wanted() -> bool {
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

// ---------------------------------------------------------------------------------------
// Counting API requests on the client side.

/// Request categories, in print order.
const VERBS: [&str; 9] = [
    "DISCOVERY",
    "GET",
    "LIST",
    "WATCH",
    "CREATE",
    "UPDATE",
    "PATCH",
    "DELETE",
    "OTHER",
];

#[derive(Clone, Default)]
struct Counts {
    verbs: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    /// When the API server last answered a write of an object (a PATCH that is not a dry
    /// run, veer's own ConfigMaps aside): the "applied" of commit to applied.
    last_write: Arc<Mutex<Option<Instant>>>,
}

impl Counts {
    fn record(&self, verb: &'static str) {
        *self
            .verbs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(verb)
            .or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.verbs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn wrote(&self) {
        *self.last_write.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// When the last object write was answered, if after `start`.
    fn written_since(&self, start: Instant) -> Option<Duration> {
        let last = *self.last_write.lock().unwrap_or_else(|p| p.into_inner());
        last.and_then(|at| at.checked_duration_since(start))
    }

    /// Requests made since `before`.
    fn since(&self, before: &BTreeMap<&'static str, u64>) -> Requests {
        let now = self.snapshot();
        Requests(
            VERBS
                .iter()
                .map(|v| {
                    let a = now.get(v).copied().unwrap_or(0);
                    let b = before.get(v).copied().unwrap_or(0);
                    (*v, a - b)
                })
                .collect(),
        )
    }
}

/// Requests by verb over an interval.
struct Requests(BTreeMap<&'static str, u64>);

impl Requests {
    fn total(&self) -> u64 {
        self.0.values().sum()
    }

    fn get(&self, verb: &str) -> u64 {
        self.0.get(verb).copied().unwrap_or(0)
    }

    fn add(&mut self, other: &Requests) {
        for (v, n) in &other.0 {
            *self.0.entry(v).or_default() += n;
        }
    }
}

impl std::fmt::Display for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} requests", self.total())?;
        let parts: Vec<String> = VERBS
            .iter()
            .filter(|v| self.get(v) > 0)
            .map(|v| format!("{v} {}", self.get(v)))
            .collect();
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// The Kubernetes verb of a request, from its method, path and query.
fn verb(method: &http::Method, uri: &http::Uri) -> &'static str {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // What follows /api/v1 or /apis/<group>/<version>; anything else is discovery.
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] | ["apis", _, _version, rest @ ..] => rest,
        _ => return "DISCOVERY",
    };
    if rest.is_empty() {
        return "DISCOVERY";
    }
    // namespaces/<ns>/<resource>[/<name>[/<subresource>]]; a bare namespaces[/<name>] is the
    // Namespace kind itself.
    let resource_path = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let collection = resource_path.len() == 1;
    let watching = uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    match *method {
        http::Method::GET if collection && watching => "WATCH",
        http::Method::GET if collection => "LIST",
        http::Method::GET => "GET",
        http::Method::POST => "CREATE",
        http::Method::PUT => "UPDATE",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

#[derive(Clone)]
struct CountLayer(Counts);

impl<S> Layer<S> for CountLayer {
    type Service = CountService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountService {
            inner,
            counts: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct CountService<S> {
    inner: S,
    counts: Counts,
}

impl<S, B> Service<http::Request<B>> for CountService<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.counts.record(verb(request.method(), request.uri()));
        let uri = request.uri();
        let object_write = request.method() == http::Method::PATCH
            && !uri.query().unwrap_or("").contains("dryRun")
            && !uri.path().contains("/configmaps/");
        let answer = self.inner.call(request);
        let counts = self.counts.clone();
        Box::pin(async move {
            let answered = answer.await;
            if object_write {
                counts.wrote();
            }
            answered
        })
    }
}

/// A kube client from the dev cluster's kubeconfig, counting its requests into `counts`.
async fn counting_client(kubeconfig: &Path, counts: &Counts) -> kube::Client {
    let file = Kubeconfig::read_from(kubeconfig).expect("the dev cluster's kubeconfig reads");
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig makes a client config");
    ClientBuilder::try_from(config)
        .expect("a client builder")
        .with_layer(&CountLayer(counts.clone()))
        .build()
}

// ---------------------------------------------------------------------------------------
// Revisions, controllers, plans.

/// Where generated manifest `i` lives.
fn path_of(i: usize) -> String {
    format!("d{:03}/m{i}.yaml", i / 100)
}

fn loaded(number: u64, set: ManifestSet, changed_files: Vec<String>) -> Arc<LoadedRevision> {
    let parsed_files = changed_files.len();
    Arc::new(LoadedRevision {
        revision: Revision {
            commit: CommitId(format!("{number:040x}")),
            summary: format!("bench revision {number}"),
            author: "Bench <bench@example.com>".into(),
            time: Utc::now(),
        },
        set,
        changed_files,
        parsed_files,
    })
}

/// A loaded revision of `n` generated manifests, all at generation 0.
fn revision(n: usize, number: u64) -> Arc<LoadedRevision> {
    let options = ReadOptions::default();
    let mut set = ManifestSet::default();
    for i in 0..n {
        let text = manifest_text(i, 0);
        set.extend(&manifest::parse_file(
            &path_of(i),
            text.as_bytes(),
            &options,
        ));
    }
    assert_eq!(set.manifests.len(), n, "every generated manifest parses");
    loaded(number, set, (0..n).map(path_of).collect())
}

/// `base` with manifest `changed` bumped to generation 1, as the git source loads the next
/// commit: that file parsed again, every other manifest the parse cache's same one.
fn revise(base: &LoadedRevision, number: u64, changed: usize) -> Arc<LoadedRevision> {
    let text = manifest_text(changed, 1);
    let parsed = manifest::parse_file(&path_of(changed), text.as_bytes(), &ReadOptions::default());
    let mut set = ManifestSet::default();
    set.manifests = base.set.manifests.clone();
    set.manifests[changed] = parsed.manifests[0].clone();
    loaded(number, set, vec![path_of(changed)])
}

/// A short duration to the microsecond (an idle pass is well under a millisecond).
fn micros(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// How much the controller's last pass planned, for people: `planned 1 object(s)`,
/// `planned 10000 object(s) (full: first)`.
fn planning(c: &Controller) -> (usize, String) {
    match c.last_planning() {
        Some(p) => {
            let full = p.full.map(|r| format!(" (full: {})", r.as_str()));
            (
                p.objects,
                format!(
                    "planned {} object(s){}",
                    p.objects,
                    full.unwrap_or_default()
                ),
            )
        }
        None => (usize::MAX, "planned nothing yet".into()),
    }
}

/// Objects in `plan` by action, e.g. `unchanged 999, update 1`.
fn actions(plan: &Plan) -> (usize, String) {
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &plan.objects {
        *by.entry(o.action.name()).or_default() += 1;
    }
    let changes = plan
        .objects
        .iter()
        .filter(|o| !matches!(o.action, ObjectAction::Unchanged))
        .count();
    let text = by
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    (changes, text)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn flag(ok: bool) -> &'static str {
    if ok { "" } else { "   <-- UNEXPECTED" }
}

// ---------------------------------------------------------------------------------------
// kubectl diff.

/// Debian's kubectl, unpacked by `scripts/install-deps.sh`.
fn kubectl() -> PathBuf {
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

// ---------------------------------------------------------------------------------------
// One size.

async fn run(n: usize) {
    let repeats = repeats(n);
    // Each figure with its ratio to the last run's (`target/bench-figures/sync.json`).
    let mut fig = figures::Figures::load("sync");
    let key = |what: &str| format!("{n} objects/{what}");
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (server, kubeconfig) = processes::dev_cluster(tmp.path());
    let counts = Counts::default();
    let client = counting_client(&kubeconfig, &counts).await;

    // The namespaces exist before veer starts (created by someone else).
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let mut names: Vec<String> = (0..n).map(namespace).collect();
    names.sort();
    names.dedup();
    for ns in &names {
        let object = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))
            .expect("a Namespace");
        namespaces
            .create(&Default::default(), &object)
            .await
            .expect("namespace created");
    }
    println!(
        "\n== {n} generated manifests (DestinationRule, VirtualService, Deployment, Service) in {} namespaces ==",
        names.len()
    );

    let first = revision(n, 1);
    let rss_start = peak_rss_kib();

    // Initial sync: validate, plan (discovery, watches, LISTs), apply every object, wait for
    // the watch cache to see the writes, record the state.
    let mut c = support_controller::controller(client.clone(), SOURCE_URL).await;
    let before = counts.snapshot();
    let t = Instant::now();
    let pass = c
        .handle(PollOutcome::Updated(first.clone()), Utc::now())
        .await;
    let initial = t.elapsed();
    let initial_requests = counts.since(&before);
    let created = match &pass {
        Pass::Synced { report, .. } => {
            let s = report.summary();
            assert_eq!(s.failed, 0, "initial sync failures:\n{}", report.human());
            s.created
        }
        other => panic!("the initial sync did not sync: {other:?}"),
    };
    let rss_synced = peak_rss_kib();
    println!(
        "  initial sync (all created):         {:>10}{}   created {created}; {}; {initial_requests}{}",
        ms(initial),
        fig.ms(&key("initial sync"), initial),
        planning(&c).1,
        flag(created == n)
    );

    // The next pass reads back what the first wrote (every object, once).
    let unchanged = || PollOutcome::Unchanged {
        commit: first.revision.commit.clone(),
    };
    let before = counts.snapshot();
    let t = Instant::now();
    let pass = c.handle(unchanged(), Utc::now()).await;
    let read_back = t.elapsed();
    println!(
        "  pass after it (reads back writes):  {:>10}   {}; {}{}",
        ms(read_back),
        planning(&c).1,
        counts.since(&before),
        flag(matches!(pass, Pass::InSync { .. }))
    );

    // Steady state: the same revision planned again from the watch cache.
    let mut times = Vec::new();
    let mut requests = Requests(BTreeMap::new());
    let mut changes = 0;
    let mut summary = String::new();
    for _ in 0..repeats {
        let before = counts.snapshot();
        let t = Instant::now();
        let planned = c.plan(&first).await.expect("steady-state plan");
        times.push(t.elapsed());
        requests.add(&counts.since(&before));
        (changes, summary) = actions(&planned.plan);
    }
    let steady = median(times);
    println!(
        "  steady-state plan (watch cache):    {:>10}{}   median of {repeats}; {summary}; {} in {repeats} plans, LIST {}{}",
        ms(steady),
        fig.ms(&key("steady-state plan"), steady),
        requests,
        requests.get("LIST"),
        flag(changes == 0 && requests.total() == 0)
    );

    // Where a steady-state plan and an idle pass spend their time, through the same public
    // functions the controller calls.
    let t = Instant::now();
    let desired = desired_objects(&first, SOURCE_URL);
    let desired_time = t.elapsed();
    let keys: Vec<ObjectKey> = desired.iter().map(|d| d.key.clone()).collect();
    let t = Instant::now();
    let live = c.cluster().live(&keys).await.expect("live state");
    let live_time = t.elapsed();
    let semantics = c.cluster().list_semantics().await;
    let context = plan_context(c.state(), MANAGER, true, semantics);
    let t = Instant::now();
    let plan = diff::plan(&desired, &live.objects, &context);
    let diff_time = t.elapsed();
    let report = report_without_writes(&plan);
    let t = Instant::now();
    let next = next_state(
        c.state(),
        &first,
        &desired,
        &report,
        &live.unknown,
        Utc::now(),
    );
    let state_time = t.elapsed();
    let state_unchanged = next.same_content(c.state());
    drop((desired, live, plan, report, next));
    println!(
        "    of which (one run): desired objects {}, watch-cache read {}, diff::plan {}, rest of Controller::plan {}",
        ms(desired_time),
        ms(live_time),
        ms(diff_time),
        ms(steady.saturating_sub(desired_time + live_time + diff_time)),
    );
    println!(
        "    an idle pass adds controller::next_state (bookkeeping of {n} records): {}{}",
        ms(state_time),
        flag(state_unchanged)
    );

    // Idle poll: nothing changed in git or the cluster (a whole pass: nothing to plan,
    // nothing to write, state unchanged).
    let mut times = Vec::new();
    let mut requests = Requests(BTreeMap::new());
    let mut in_sync = true;
    let mut most_planned = 0;
    for _ in 0..repeats {
        let before = counts.snapshot();
        let t = Instant::now();
        let pass = c.handle(unchanged(), Utc::now()).await;
        times.push(t.elapsed());
        requests.add(&counts.since(&before));
        in_sync &= matches!(pass, Pass::InSync { .. });
        most_planned = most_planned.max(planning(&c).0);
    }
    println!(
        "  idle poll (whole pass, no change):  {:>10}{}   median of {repeats}; planned {most_planned} object(s); {} in {repeats} polls{}",
        micros(median(times.clone())),
        fig.ms(&key("idle pass"), median(times)),
        requests,
        flag(in_sync && requests.total() == 0 && most_planned == 0)
    );

    // A rollout wake: rollout work only (the VirtualServices with a rollout, from the watch
    // cache, and the rollout driver's pass), no plan of the repository, no state write. None
    // of the generated VirtualServices has a rollout, so this is the tick's fixed cost: it
    // should not grow with the repository.
    let driver = RolloutDriver::new(
        RolloutOptions {
            state_namespace: "veer".into(),
            max_concurrent: 0,
            concurrency: RolloutOptions::DEFAULT_CONCURRENCY,
            policies: Vec::new(),
        },
        Arc::new(Metrics::new()),
    )
    .expect("a rollout driver");
    let mut ticking = support_controller::controller(client.clone(), SOURCE_URL)
        .await
        .with_rollouts(driver);
    // Its first pass loads the revision in force (the cluster matches it already).
    let pass = ticking
        .handle(PollOutcome::Updated(first.clone()), Utc::now())
        .await;
    assert!(matches!(pass, Pass::InSync { .. }), "{pass:?}");
    let mut times = Vec::new();
    let mut requests = Requests(BTreeMap::new());
    for _ in 0..repeats {
        let before = counts.snapshot();
        let t = Instant::now();
        ticking.rollout_tick().await;
        times.push(t.elapsed());
        requests.add(&counts.since(&before));
    }
    let tick = median(times);
    println!(
        "  rollout tick (rollout work only):   {:>10}{}   median of {repeats}; {} in {repeats} ticks; {} VirtualServices in the revision, a tick reads those with a rollout only",
        ms(tick),
        fig.ms(&key("rollout tick"), tick),
        requests,
        desired_virtual_services(&first, SOURCE_URL).len()
    );
    drop(ticking);

    // One object changed in git (a Deployment's image): a plan of everything (the
    // reference), then the whole pass, which plans what changed.
    let second = revise(&first, 2, 2);
    let mut times = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        let planned = c.plan(&second).await.expect("plan after one change");
        times.push(t.elapsed());
        (changes, summary) = actions(&planned.plan);
    }
    let full_plan = median(times);
    println!(
        "  full plan after one object changed: {:>10}{}   median of {repeats}; {summary}{}",
        ms(full_plan),
        fig.ms(&key("full plan after one change"), full_plan),
        flag(changes == 1)
    );
    let before = counts.snapshot();
    let t = Instant::now();
    let pass = c
        .handle(PollOutcome::Updated(second.clone()), Utc::now())
        .await;
    let one_pass = t.elapsed();
    let updated = match &pass {
        Pass::Synced { report, .. } => report.summary().updated,
        _ => 0,
    };
    let (one_planned, one_text) = planning(&c);
    let applied = counts.written_since(t);
    let pass_requests = counts.since(&before);
    println!(
        "  pass applying that change:          {:>10}{}   updated {updated}; {one_text}; {:.1} % of the full plan's time (validation of the new revision included); {}{}",
        ms(one_pass),
        fig.ms(&key("one-change pass"), one_pass),
        100.0 * one_pass.as_secs_f64() / full_plan.as_secs_f64().max(1e-9),
        pass_requests,
        flag(updated == 1 && one_planned == 1)
    );
    println!(
        "  commit to applied (that change):    {:>10}{}   {:.1} % of the full plan's time; from the pass being handed the loaded revision to the API server's answer to the object's write (validation, plan, dry run, apply; the state write after it not included){}",
        applied.map_or_else(|| "none".to_string(), ms),
        applied.map_or_else(String::new, |d| fig.ms(&key("commit to applied"), d)),
        100.0 * applied.unwrap_or_default().as_secs_f64() / full_plan.as_secs_f64().max(1e-9),
        flag(applied.is_some())
    );
    // Of which: validating the new revision against the first (as the pass does), and whole
    // (as every new revision was validated before).
    let (last, _) = veer::validate::Validated::new(&first.set, &Default::default());
    let t = Instant::now();
    let (next, report) = last.next(&second.set, &Default::default());
    println!(
        "    of which validation against the last revision: {} ({} errors; the last validation reused: {})",
        ms(t.elapsed()),
        report.errors,
        next.reused()
    );
    drop(next);
    let t = Instant::now();
    let report = veer::validate::validate(&second.set);
    println!(
        "    (a whole validation of the new revision, for comparison: {}, {} errors)",
        ms(t.elapsed()),
        report.errors
    );
    let t = Instant::now();
    let listed = c.cluster().services_for_validation().await;
    println!(
        "    (listing the cluster's Services and ServiceEntries, once per resync interval, not in this pass: {}{}; the pass made LIST {})",
        ms(t.elapsed()),
        if listed.is_some() {
            ""
        } else {
            " (not listed)"
        },
        pass_requests.get("LIST")
    );
    // Its write is read back once; then idle again.
    let t = Instant::now();
    c.handle(
        PollOutcome::Unchanged {
            commit: second.revision.commit.clone(),
        },
        Utc::now(),
    )
    .await;
    let after = t.elapsed();
    println!(
        "  the pass after (reads it back):     {:>10}   {}",
        ms(after),
        planning(&c).1
    );
    // A hand edit of that Deployment (as `kubectl edit` makes one): the watch brings it in,
    // and the pass that sees it plans that object alone and heals it.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &namespace(2));
    let by_hand = serde_json::json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "example/app:by-hand"}
    ]}}}});
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    deployments
        .patch("app-2", &edit, &Patch::Merge(&by_hand))
        .await
        .expect("a hand edit");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (heal, healed) = loop {
        let t = Instant::now();
        let pass = c
            .handle(
                PollOutcome::Unchanged {
                    commit: second.revision.commit.clone(),
                },
                Utc::now(),
            )
            .await;
        let took = t.elapsed();
        match pass {
            Pass::Synced { report, .. } => break (took, report.summary().updated),
            Pass::InSync { .. } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => break (took, usize::from(matches!(other, Pass::NoRevision))),
        }
    };
    let (heal_planned, heal_text) = planning(&c);
    println!(
        "  pass healing a hand edit of it:     {:>10}{}   updated {healed}; {heal_text}; {:.1} % of the full plan's time{}",
        ms(heal),
        fig.ms(&key("hand-edit pass"), heal),
        100.0 * heal.as_secs_f64() / full_plan.as_secs_f64().max(1e-9),
        flag(healed == 1 && heal_planned == 1)
    );
    let rss_end = peak_rss_kib();
    drop(c);

    // Cold plan: a fresh client and cache, as one `veer diff` invocation does.
    let cold_counts = Counts::default();
    let cold_client = counting_client(&kubeconfig, &cold_counts).await;
    let t = Instant::now();
    let fresh = support_controller::controller(cold_client, SOURCE_URL).await;
    let planned = fresh.plan(&second).await.expect("cold plan");
    let cold = t.elapsed();
    let (changes, _) = actions(&planned.plan);
    println!(
        "  cold plan (fresh client, one shot): {:>10}{}   {changes} change(s); {}",
        ms(cold),
        fig.ms(&key("cold plan"), cold),
        cold_counts.since(&BTreeMap::new())
    );
    drop(planned);
    drop(fresh);
    println!(
        "  peak RSS of veer (whole run):       {:>7} MiB{}   before sync {} MiB, after initial sync {} MiB",
        rss_end / 1024,
        fig.ratio(&key("peak RSS MiB"), (rss_end / 1024) as f64),
        rss_start / 1024,
        rss_synced / 1024,
    );
    fig.save();
    if !kubectl_wanted() {
        println!("  kubectl diff --server-side:         skipped ({KUBECTL_ENV}=0)");
        return;
    }

    // kubectl diff over the same objects (as veer applies them: label and source annotation
    // included) against the same server; the cluster now matches `second`.
    let files = tmp.path().join("objects");
    for (i, d) in desired_objects(&second, SOURCE_URL).iter().enumerate() {
        let dir = files.join(format!("d{:03}", i / 100));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join(format!("m{i}.json")),
            serde_json::to_vec(&*d.value()).expect("json"),
        )
        .expect("write");
    }
    let home = tmp.path().join("kubectl-home");
    std::fs::create_dir_all(&home).expect("mkdir");
    let within = kubectl_timeout(n);
    let (kubectl_time, outcome, log) = kubectl_diff(&kubeconfig, &files, &home, within).await;
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
    println!(
        "  (API server process, not counted above: peak RSS {} MiB)",
        server.usage().1
    );
}

fn main() {
    veer::controller::memory::configure();
    if let Ok(size) = std::env::var(SIZE_ENV) {
        let n: usize = size.parse().expect("a size");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(run(n));
        return;
    }
    println!(
        "veer live state / diff / sync benchmark (figures, not pass/fail; API server in its own process)"
    );
    if kubectl_wanted() {
        kubectl();
    }
    for n in processes::sizes("VEER_BENCH_SIZES", &[1_000, 10_000]) {
        // A fresh process per size, so each peak RSS is that size's alone.
        let status = std::process::Command::new(std::env::current_exe().expect("this bench"))
            .env(SIZE_ENV, n.to_string())
            .status()
            .expect("the bench re-runs itself");
        assert!(status.success(), "the {n}-manifest run failed ({status})");
    }
}
