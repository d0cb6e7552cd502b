//! `make bench`: where veer's bytes go, for 1,000 and 10,000 generated manifests synced to
//! the embedded API server (the same objects as `sync`). Prints figures; asserts nothing
//! about them.
//!
//! A counting global allocator gives the live heap (bytes allocated and not yet freed) at
//! each point and its peak in between; `/proc/self/status` gives the resident set (VmRSS)
//! and its peak (VmHWM). The heap says what veer's data costs, the RSS what the pod pays
//! (the heap plus what the allocator keeps, the code and the stacks). Each part is measured
//! as the heap it holds while it is alive: the revision's manifests, what a plan makes (the
//! desired objects, the live state read from the watch cache, the plan), the watch cache
//! (filled by a fresh `Cluster`), the sync state.
//!
//! The API server runs as a separate process (`veer dev-cluster`) so that the figures are
//! veer's own; each size runs in a fresh child process. `VEER_BENCH_SIZES=200 cargo test
//! --bench memory` runs other sizes. To see allocation sites, run one size under heaptrack:
//! `VEER_BENCH_MEMORY_SIZE=10000 heaptrack target/release/deps/memory-<hash>`;
//! `VEER_BENCH_MEMORY_UNTIL=sync` (or `steady`) ends the process after the initial sync (or
//! the idle pass) with everything still allocated, so heaptrack's peak is that point's and
//! its leak report is what is held there.

#[path = "support/manifests.rs"]
mod manifests;
#[path = "support/processes.rs"]
mod processes;
#[path = "support/controller.rs"]
mod support_controller;

use std::alloc::{GlobalAlloc, Layout};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use kube::api::Api;
use veer::cluster::Cluster;
use veer::controller::memory::Allocator;
use veer::controller::{Controller, Pass, desired_objects, plan_context};
use veer::diff;
use veer::manifest::{self, ManifestSet, ObjectKey, ReadOptions};
use veer::source::{CommitId, LoadedRevision, PollOutcome, Revision};
use veer::sync::MANAGER;

use manifests::{manifest_text, namespace};

// ---------------------------------------------------------------------------------------
// Counting the heap.

/// veer's allocator (the binary's), counting the bytes it has handed out and not yet had back.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to veer's allocator with the same arguments; only counters
// change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Allocator.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { Allocator.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { Allocator.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { Allocator.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

fn grew(size: usize) {
    let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The heap's peak since the last call; the peak starts again from now.
fn take_peak() -> usize {
    PEAK.swap(heap(), Ordering::Relaxed)
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn rss() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> usize {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Bytes per object, for a part that grows with the repository.
fn each(bytes: usize, n: usize) -> String {
    format!("{:.0} B/object", bytes as f64 / n.max(1) as f64)
}

/// One printed line: what, the heap it holds, the heap's peak while it was made (above what
/// was live before), and the RSS afterwards.
fn line(what: &str, held: usize, peak_above: Option<usize>, n: usize) {
    let (rss, hwm) = rss();
    let peak = peak_above
        .map(|p| format!(", peak +{}", mib(p)))
        .unwrap_or_default();
    println!(
        "  {what:<44} {:>10} ({}{peak})   RSS {} (peak {})",
        mib(held),
        each(held, n),
        mib(rss),
        mib(hwm)
    );
}

/// A client for the dev cluster's kubeconfig.
async fn dev_client(kubeconfig: &Path) -> kube::Client {
    veer::cluster::connect(Some(kubeconfig), None)
        .await
        .expect("a client for the dev cluster")
}

// ---------------------------------------------------------------------------------------
// One size.

const SOURCE_URL: &str = "git://bench.example/mesh.git";
const SIZE_ENV: &str = "VEER_BENCH_MEMORY_SIZE";

fn revision(n: usize) -> Arc<LoadedRevision> {
    let options = ReadOptions::default();
    let mut set = ManifestSet::default();
    for i in 0..n {
        let text = manifest_text(i, 0);
        let path = format!("d{:03}/m{i}.yaml", i / 100);
        set.extend(&manifest::parse_file(&path, text.as_bytes(), &options));
    }
    assert_eq!(set.manifests.len(), n, "every generated manifest parses");
    Arc::new(LoadedRevision {
        revision: Revision {
            commit: CommitId(format!("{:040x}", 1)),
            summary: "bench revision".into(),
            author: "Bench <bench@example.com>".into(),
            time: Utc::now(),
        },
        set,
        changed_files: Vec::new(),
        parsed_files: n,
    })
}

/// Under heaptrack: end the process here, everything still allocated, so that heaptrack's
/// peak is this point's and its "leaked" allocations are what is held here.
fn stop_at(point: &str) {
    if std::env::var("VEER_BENCH_MEMORY_UNTIL").as_deref() == Ok(point) {
        std::process::exit(0);
    }
}

/// A pass over the same revision that must find nothing to write.
async fn idle_pass(c: &mut Controller, loaded: &LoadedRevision) {
    let unchanged = PollOutcome::Unchanged {
        commit: loaded.revision.commit.clone(),
    };
    let pass = c.handle(unchanged, Utc::now()).await;
    assert!(matches!(pass, Pass::InSync { .. }), "{pass:?}");
}

async fn run(n: usize) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (_server, kubeconfig) = processes::dev_cluster(tmp.path());
    let client = dev_client(&kubeconfig).await;
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
    println!("\n== {n} generated manifests ==");
    let (rss0, _) = rss();
    println!("  at start: heap {}, RSS {}", mib(heap()), mib(rss0));

    // The revision: what git holds, parsed.
    let base = heap();
    take_peak();
    let first = revision(n);
    let manifests = heap() - base;
    line(
        "revision (ManifestSet)",
        manifests,
        Some(take_peak() - base),
        n,
    );
    {
        let base = heap();
        let values: Vec<serde_json::Value> = first
            .set
            .manifests
            .iter()
            .map(|m| m.value.clone())
            .collect();
        let v = heap() - base;
        drop(values);
        let base = heap();
        let positions: Vec<_> = first
            .set
            .manifests
            .iter()
            .map(|m| m.positions.clone())
            .collect();
        let p = heap() - base;
        drop(positions);
        let base = heap();
        let typed: Vec<_> = first
            .set
            .manifests
            .iter()
            .map(|m| m.typed.clone())
            .collect();
        let t = heap() - base;
        drop(typed);
        println!(
            "    of which: value (JSON) {}, positions {}, typed {}",
            mib(v),
            mib(p),
            mib(t)
        );
    }

    // The initial sync: validate, plan, apply all, record.
    let base = heap();
    take_peak();
    let mut c = support_controller::controller(client.clone(), SOURCE_URL).await;
    let pass = c
        .handle(PollOutcome::Updated(first.clone()), Utc::now())
        .await;
    assert!(matches!(pass, Pass::Synced { .. }), "{pass:?}");
    drop(pass);
    let after_sync = heap() - base;
    line(
        "controller after the initial sync",
        after_sync,
        Some(take_peak() - base),
        n,
    );
    stop_at("sync");

    // The pass after it reads its writes back from the watch cache: a full plan.
    let base = heap();
    take_peak();
    idle_pass(&mut c, &first).await;
    line(
        "the pass after it (a full plan)",
        heap().saturating_sub(base),
        Some(take_peak() - base),
        n,
    );

    // An idle pass: nothing changed, nothing to plan.
    let base = heap();
    take_peak();
    idle_pass(&mut c, &first).await;
    line(
        "an idle pass",
        heap().saturating_sub(base),
        Some(take_peak() - base),
        n,
    );

    // Between passes: what veer holds, and the RSS as veer leaves it (the controller gives
    // freed memory back after a pass that loaded or planned many objects); then what one
    // more trim (`controller::memory::trim`) would return.
    let (steady_rss, _) = rss();
    let t = Instant::now();
    veer::controller::memory::trim();
    let trim_time = t.elapsed();
    println!(
        "  steady (between passes): heap {}, RSS {}; {} after one more trim ({:.1} ms)",
        mib(heap()),
        mib(steady_rss),
        mib(rss().0),
        trim_time.as_secs_f64() * 1e3
    );
    stop_at("steady");

    // A steady-state plan (nothing to do), part by part, each held while measured.
    let base = heap();
    take_peak();
    let planned = c.plan(&first).await.expect("a plan");
    let plan_held = heap() - base;
    let plan_peak = take_peak() - base;
    assert!(!planned.plan.writes_anything(), "the steady plan is empty");
    drop(planned);
    line(
        "a steady-state plan (Planned, held)",
        plan_held,
        Some(plan_peak),
        n,
    );
    let base = heap();
    let desired = desired_objects(&first, SOURCE_URL);
    let desired_held = heap() - base;
    let keys: Vec<ObjectKey> = desired.iter().map(|d| d.key.clone()).collect();
    let base_live = heap();
    let t = Instant::now();
    let live = c.cluster().live(&keys).await.expect("live state");
    let live_time = t.elapsed();
    let live_held = heap() - base_live;
    let semantics = c.cluster().list_semantics().await;
    let context = plan_context(c.state(), MANAGER, true, semantics);
    let base_plan = heap();
    take_peak();
    let plan = diff::plan(&desired, &live.objects, &context);
    let diff_peak = take_peak() - base_plan;
    let diff_held = heap() - base_plan;
    println!(
        "    of which: desired objects {} ({}), live state read {} ({}, {:.1} ms), diff::plan {} (peak +{})",
        mib(desired_held),
        each(desired_held, n),
        mib(live_held),
        each(live_held, n),
        live_time.as_secs_f64() * 1e3,
        mib(diff_held),
        mib(diff_peak)
    );
    drop((plan, live, keys, desired));
    let _ = base;

    // The sync state veer keeps (and writes): one record per object.
    let base = heap();
    let state = c.state().clone();
    let state_held = heap() - base;
    drop(state);
    line("sync state (a copy)", state_held, None, n);

    // The watch cache alone: a fresh Cluster lists every watched kind once.
    let fresh = Cluster::new(dev_client(&kubeconfig).await);
    let keys: Vec<ObjectKey> = first.set.manifests.iter().map(|m| m.key.clone()).collect();
    let base = heap();
    take_peak();
    let live = fresh.live(&keys).await.expect("live state");
    let list_peak = take_peak() - base;
    let live_size = {
        let before = heap();
        drop(live);
        before - heap()
    };
    let cache = heap() - base;
    line(
        &format!("watch cache ({} watches)", fresh.watch_count()),
        cache,
        Some(list_peak),
        n,
    );
    println!(
        "    (the live state handed out with it: {}, {})",
        mib(live_size),
        each(live_size, n)
    );
    drop(fresh);
    // Dropping a cache aborts its watch tasks; the runtime frees them at their next poll.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let base = heap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let controller_total = base.saturating_sub(heap());
    println!(
        "  dropping the controller frees {} (its watch cache, state, revisions)",
        mib(controller_total)
    );
    drop(first);
    let (rss_before, _) = rss();
    let t = Instant::now();
    veer::controller::memory::trim();
    let trim_time = t.elapsed();
    let (rss_end, hwm) = rss();
    println!(
        "  at the end: heap {}, RSS {} after a trim ({} before it; the trim took {:.1} ms); peak RSS of the run {}",
        mib(heap()),
        mib(rss_end),
        mib(rss_before),
        trim_time.as_secs_f64() * 1e3,
        mib(hwm)
    );
}

fn main() {
    veer::controller::memory::configure();
    if let Ok(size) = std::env::var(SIZE_ENV) {
        let n: usize = size.parse().expect("a size");
        processes::veer_runtime().block_on(run(n));
        return;
    }
    println!("veer memory: where the bytes go (live heap by part; RSS as the kernel counts it)");
    for n in processes::sizes("VEER_BENCH_SIZES", &[1_000, 10_000]) {
        let status = std::process::Command::new(std::env::current_exe().expect("this bench"))
            .env(SIZE_ENV, n.to_string())
            .status()
            .expect("the bench re-runs itself");
        assert!(status.success(), "the {n}-manifest run failed ({status})");
    }
}
