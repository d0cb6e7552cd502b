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
#[path = "support/sync_kubectl.rs"]
mod sync_kubectl;
#[path = "support/sync_requests.rs"]
mod sync_requests;
#[path = "support/sync_revisions.rs"]
mod sync_revisions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use kube::api::{Api, Patch, PatchParams};
use veer::controller::rollouts::{RolloutDriver, RolloutOptions};
use veer::controller::{
    Pass, desired_objects, desired_virtual_services, next_state, plan_context,
    report_without_writes,
};
use veer::diff;
use veer::manifest::ObjectKey;
use veer::metrics::Metrics;
use veer::source::PollOutcome;
use veer::sync::MANAGER;

use manifests::{ms, namespace, peak_rss_kib};
use sync_kubectl::{KUBECTL_ENV, kubectl, kubectl_wanted};
use sync_requests::{Counts, Requests, counting_client};
use sync_revisions::{actions, flag, median, micros, planning, revise, revision};

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

    sync_kubectl::compare(
        tmp.path(),
        &kubeconfig,
        &second,
        SOURCE_URL,
        n,
        steady,
        cold,
    )
    .await;
    println!(
        "  (API server process, not counted above: peak RSS {} MiB)",
        server.usage().1
    );
}

fn main() {
    veer::controller::memory::configure();
    if let Ok(size) = std::env::var(SIZE_ENV) {
        let n: usize = size.parse().expect("a size");
        processes::veer_runtime().block_on(run(n));
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
