//! The driver against fakes of its ports and tokio's paused clock: what it does with a hand
//! edit mid-step, a probe that cannot list, a command that arrives while a pass works, a
//! gate that does not pass, and a pass over many objects no rollout is about; rollouts driven
//! concurrently with their analyses batched (`concurrency_tests`). The end-to-end suite
//! (`tests/rollout_e2e/`) keeps what needs a real server, Prometheus and exporter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::fixtures::{key, policy, split, t, vs};
use super::health::Health;
use super::ports::{Clock, Gate, Ports, Probe, RolloutStore, TrafficWriter};
use super::{Mailbox, RolloutDriver, RolloutDriverError, RolloutId, RolloutOptions, Tracked};
use crate::diff::DesiredObject;
use crate::gate::GateContext;
use crate::manifest::rollout_policy::{RolloutPolicy, Webhook};
use crate::manifest::{ManifestSet, ObjectKey};
use crate::metrics::Metrics;
use crate::rollout::state::Phase;
use crate::rollout::{
    Command, DestinationId, HoldReason, OperatorCommand, RolloutState, RouteRef, TrafficSplit,
    WebhookKind, WebhookReport, WebhookResult, read_split,
};
use crate::source::{CommitId, LoadedRevision, Revision};

/// The rollout ConfigMaps in memory; the mailbox is cleared only if it holds the text given,
/// as the real store's JSON patch `test` does. `then_cli_writes` is written into the mailbox
/// right after a pass read it (the CLI, while the pass works).
#[derive(Default)]
struct Store {
    states: Mutex<BTreeMap<RolloutId, RolloutState>>,
    mailbox: Mutex<Option<String>>,
    then_cli_writes: Mutex<Option<String>>,
    writes: Mutex<usize>,
}

impl RolloutStore for Store {
    fn load(&self) -> BoxFuture<'_, Result<Vec<(RolloutId, Tracked)>, RolloutDriverError>> {
        let states = self.states.lock().unwrap().clone();
        Box::pin(async move {
            Ok(states
                .into_iter()
                .map(|(id, state)| {
                    (
                        id,
                        Tracked {
                            state: state.into(),
                            command: None,
                        },
                    )
                })
                .collect())
        })
    }

    /// The one mailbox, as every stored rollout's.
    fn read_commands(
        &self,
        _every: bool,
    ) -> BoxFuture<'_, Result<BTreeMap<RolloutId, Mailbox>, RolloutDriverError>> {
        let read = self.mailbox.lock().unwrap().clone();
        if let Some(next) = self.then_cli_writes.lock().unwrap().take() {
            *self.mailbox.lock().unwrap() = Some(next);
        }
        let ids: Vec<RolloutId> = self.states.lock().unwrap().keys().cloned().collect();
        Box::pin(async move {
            Ok(ids
                .into_iter()
                .filter_map(|id| Some((id, read.as_deref().and_then(Mailbox::read)?)))
                .collect())
        })
    }

    fn store<'a>(
        &'a self,
        id: &'a RolloutId,
        _policy: &'a str,
        state: &'a RolloutState,
        clear_command: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), RolloutDriverError>> {
        *self.writes.lock().unwrap() += 1;
        self.states
            .lock()
            .unwrap()
            .insert(id.clone(), state.clone());
        let mut mailbox = self.mailbox.lock().unwrap();
        if clear_command.is_some() && mailbox.as_deref() == clear_command {
            *mailbox = None;
        }
        Box::pin(async { Ok(()) })
    }

    fn forget<'a>(&'a self, id: &'a RolloutId) -> BoxFuture<'a, Result<(), RolloutDriverError>> {
        self.states.lock().unwrap().remove(id);
        Box::pin(async { Ok(()) })
    }
}

struct FixedProbe(Mutex<Health>);

impl Probe for FixedProbe {
    fn health<'a>(&'a self, _: &'a str, _: &'a [DestinationId]) -> BoxFuture<'a, Health> {
        let health = self.0.lock().unwrap().clone();
        Box::pin(async move { health })
    }
}

/// A route that takes every write and reads back what was written; it records them.
#[derive(Default)]
struct Route {
    written: Mutex<Vec<TrafficSplit>>,
    /// Every object written, whole.
    objects: Mutex<Vec<Value>>,
    /// When each VirtualService (by name) was written, and the split.
    log: Mutex<Vec<(tokio::time::Instant, String, TrafficSplit)>>,
    /// A VirtualService whose writes take 35 s.
    slow: Mutex<Option<&'static str>>,
}

impl TrafficWriter for Route {
    fn write<'a>(
        &'a self,
        _: &'a RolloutId,
        _: &'a ObjectKey,
        rendered: Value,
        route: &'a RouteRef,
    ) -> BoxFuture<'a, Option<TrafficSplit>> {
        let split = read_split(&rendered, route.index).ok();
        let name = rendered["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let slow = *self.slow.lock().unwrap() == Some(name.as_str());
        self.objects.lock().unwrap().push(rendered);
        Box::pin(async move {
            if slow {
                tokio::time::sleep(std::time::Duration::from_secs(35)).await;
            }
            if let Some(s) = &split {
                self.written.lock().unwrap().push(s.clone());
                self.log
                    .lock()
                    .unwrap()
                    .push((tokio::time::Instant::now(), name, s.clone()));
            }
            split
        })
    }
}

/// Webhooks that answer `passed` (all of them), recording the kind of each call.
struct FixedGate {
    passed: Mutex<bool>,
    calls: Mutex<Vec<WebhookKind>>,
}

impl Gate for FixedGate {
    fn run<'a>(
        &'a self,
        id: u64,
        kind: WebhookKind,
        webhooks: &'a [Webhook],
        _: &'a GateContext<'a>,
    ) -> BoxFuture<'a, WebhookReport> {
        self.calls.lock().unwrap().push(kind);
        let passed = *self.passed.lock().unwrap();
        let results = webhooks
            .iter()
            .filter(|w| w.kind == kind)
            .map(|w| WebhookResult {
                name: w.name.clone(),
                passed,
                message: if passed {
                    String::new()
                } else {
                    "answered HTTP 403".into()
                },
            })
            .collect();
        Box::pin(async move { WebhookReport { id, results } })
    }
}

/// Wall time that moves with tokio's (paused) clock.
struct PausedClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl Clock for PausedClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::TimeDelta::from_std(self.start.elapsed()).unwrap_or_default();
        self.base + elapsed
    }
}

struct World {
    store: Store,
    probe: FixedProbe,
    route: Route,
    clock: PausedClock,
    driver: RolloutDriver,
    loaded: LoadedRevision,
}

impl World {
    fn new() -> World {
        World::with_policy(policy("p"))
    }

    /// A world whose policy `p` is `policy`.
    fn with_policy(policy: RolloutPolicy) -> World {
        let options = RolloutOptions {
            state_namespace: "veer".into(),
            max_concurrent: 0,
            concurrency: 0,
            policies: vec![policy],
        };
        World {
            store: Store::default(),
            probe: FixedProbe(Mutex::new(Health::Available)),
            route: Route::default(),
            clock: PausedClock {
                base: t(0),
                start: tokio::time::Instant::now(),
            },
            driver: RolloutDriver::new(options, Arc::new(Metrics::new())).unwrap(),
            loaded: LoadedRevision {
                revision: Revision {
                    commit: CommitId("c0ffee".repeat(6) + "0000"),
                    summary: "reviews v2".into(),
                    author: "Dev <dev@example.com>".into(),
                    time: t(0),
                },
                set: ManifestSet::default(),
                changed_files: Vec::new(),
                parsed_files: 0,
            },
        }
    }

    fn ports(&self) -> Ports<'_> {
        Ports {
            store: &self.store,
            probe: &self.probe,
            traffic: &self.route,
            clock: &self.clock,
        }
    }

    /// One pass with git's VirtualService at v2:100 (plus `others`) and `live` as the cache
    /// has it.
    async fn pass(&mut self, live: Value, others: &[DesiredObject]) {
        self.pass_with(vs(0, 100, Some("p")), live, others).await;
    }

    /// One pass with `git` as git's VirtualService.
    async fn pass_with(&mut self, git: Value, live: Value, others: &[DesiredObject]) {
        let mut desired = vec![DesiredObject::new(key(), git)];
        desired.extend_from_slice(others);
        let live = BTreeMap::from([(key(), live)]);
        let ports = Ports {
            store: &self.store,
            probe: &self.probe,
            traffic: &self.route,
            clock: &self.clock,
        };
        self.driver
            .drive_all(&ports, &self.loaded, &desired, &live)
            .await;
    }

    fn state(&self) -> RolloutState {
        self.store
            .states
            .lock()
            .unwrap()
            .values()
            .next()
            .cloned()
            .expect("a rollout state")
    }

    fn written(&self) -> Vec<TrafficSplit> {
        self.route.written.lock().unwrap().clone()
    }
}

/// The live VirtualService at `(v1, v2)`, last written by `manager`.
fn live(v1: u32, v2: u32, manager: &str) -> Value {
    let mut v = vs(v1, v2, Some("p"));
    v["metadata"]["managedFields"] = json!([{
        "manager": manager, "operation": "Update", "time": "2026-11-25T10:00:30Z",
        "fieldsV1": {"f:spec": {"f:http": {}}},
    }]);
    v
}

#[tokio::test(start_paused = true)]
async fn a_hand_edit_mid_step_is_written_back() {
    let mut w = World::new();
    w.pass(live(100, 0, "veer"), &[]).await;
    assert_eq!(w.written(), [split(75, 25)], "the first step is written");
    assert_eq!(w.state().phase, Phase::Progressing);

    // A watch cache not yet told of that write still shows veer's older split: no hand edit.
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    w.pass(live(100, 0, "veer"), &[]).await;
    assert_eq!(w.written(), [split(75, 25)], "nothing to undo");

    // A second later someone sets 50/50 by hand; the cache shows it at the next pass.
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    w.pass(live(50, 50, "kubectl-edit"), &[]).await;
    assert_eq!(
        w.written(),
        [split(75, 25), split(75, 25)],
        "the step's split is written back"
    );
    let state = w.state();
    assert_eq!((state.phase, state.step), (Phase::Progressing, 0));
    assert_eq!(
        state.traffic_since,
        Some(w.clock.now()),
        "the step is measured afresh"
    );
    let told: Vec<&String> = w.driver.interferences().map(|(_, text)| text).collect();
    assert!(
        told.len() == 1 && told[0].contains("kubectl-edit") && told[0].contains("v1:50"),
        "the page is told: {told:?}"
    );

    // As written: nothing more to undo.
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    w.pass(live(75, 25, "veer"), &[]).await;
    assert_eq!(w.written().len(), 2);
    let _ = w.ports();
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_cannot_list_holds_and_says_why() {
    let mut w = World::new();
    let why = "cannot list Deployments in shop: forbidden; check that veer may list deployments (apps) there";
    *w.probe.0.lock().unwrap() = Health::Unavailable(why.into());
    w.pass(live(100, 0, "veer"), &[]).await;
    let state = w.state();
    assert_eq!(state.phase, Phase::WaitingForHealth);
    assert_eq!(
        state.last_hold,
        Some(HoldReason::Unavailable { why: why.into() })
    );
    assert!(w.written().is_empty(), "no traffic moves");
}

#[tokio::test(start_paused = true)]
async fn a_command_arriving_mid_pass_is_applied_at_the_next_pass() {
    let mut w = World::new();
    w.pass(live(100, 0, "veer"), &[]).await;
    let first = state_command(&w, 1, Command::Pause);
    let second = state_command(&w, 2, Command::Resume);
    *w.store.mailbox.lock().unwrap() = Some(first);
    // While the pass applies `pause`, the CLI writes `resume`.
    *w.store.then_cli_writes.lock().unwrap() = Some(second.clone());
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    w.pass(live(75, 25, "veer"), &[]).await;
    assert_eq!(w.state().phase, Phase::Paused);
    assert_eq!(
        w.store.mailbox.lock().unwrap().as_deref(),
        Some(second.as_str()),
        "the second command is kept"
    );
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    w.pass(live(75, 25, "veer"), &[]).await;
    assert_eq!(w.state().phase, Phase::Progressing, "then applied");
    assert_eq!(*w.store.mailbox.lock().unwrap(), None);
}

fn state_command(w: &World, offset: u64, command: Command) -> String {
    let id = w.state().last_command + offset;
    serde_json::to_string(&OperatorCommand { id, command }).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_pass_over_many_unrelated_objects_does_rollout_work_only() {
    let mut w = World::new();
    // Live equals git: no rollout. Ten thousand ConfigMaps beside it.
    let others: Vec<DesiredObject> = (0..10_000)
        .map(|i| {
            DesiredObject::new(
                ObjectKey {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: Some("shop".into()),
                    name: format!("cm-{i}"),
                },
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("cm-{i}"), "namespace": "shop"}}),
            )
        })
        .collect();
    w.pass(live(0, 100, "veer"), &others).await;
    assert_eq!(*w.store.writes.lock().unwrap(), 0, "nothing stored");
    assert!(w.written().is_empty(), "nothing written");
    assert_eq!(w.driver.states().count(), 0);
}

/// `vs` with an A/B route ahead of the default one, both at `(v1, v2)`.
fn two_routes(v1: u32, v2: u32) -> Value {
    let mut v = vs(v1, v2, Some("p"));
    let primary = v["spec"]["http"][0].clone();
    let mut ab = primary.clone();
    ab["name"] = json!("testers");
    ab["match"] = json!([{"headers": {"x-tester": {"exact": "yes"}}}]);
    v["spec"]["http"] = json!([ab, primary]);
    v
}

fn route_split(object: &Value, index: usize) -> TrafficSplit {
    read_split(object, index).unwrap()
}

#[tokio::test(start_paused = true)]
async fn two_routes_a_commit_shifts_move_together_and_roll_back_together() {
    let mut w = World::new();
    w.pass_with(two_routes(0, 100), two_routes(100, 0), &[])
        .await;
    let state = w.state();
    assert_eq!(state.route.name.as_deref(), Some("testers"));
    assert_eq!(state.companions.len(), 1, "the default route moves with it");
    let first = w.route.objects.lock().unwrap()[0].clone();
    assert_eq!(route_split(&first, 0), split(75, 25));
    assert_eq!(route_split(&first, 1), split(75, 25), "the same step");

    // Abort: both routes go back to where they started.
    *w.store.mailbox.lock().unwrap() = Some(state_command(&w, 1, Command::Abort));
    for _ in 0..3 {
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let mut live = two_routes(75, 25);
        live["metadata"]["managedFields"] = json!([{"manager": "veer", "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:http": {}}}}]);
        w.pass_with(two_routes(0, 100), live, &[]).await;
    }
    let objects = w.route.objects.lock().unwrap().clone();
    let last = objects.last().unwrap();
    assert_eq!(route_split(last, 0), split(100, 0), "rolled back");
    assert_eq!(route_split(last, 1), split(100, 0), "rolled back together");
    assert!(w.state().phase.is_terminal() || w.state().phase == Phase::RollingBack);
}

#[tokio::test(start_paused = true)]
async fn a_gate_that_does_not_pass_holds_the_rollout() {
    let mut approval = policy("p");
    approval.spec.webhooks = vec![Webhook {
        name: "approval".into(),
        kind: WebhookKind::ConfirmPromotion,
        url: "http://approvals.invalid/".into(),
        timeout: None,
        metadata: BTreeMap::new(),
    }];
    let mut w = World::with_policy(approval);
    let gate = Arc::new(FixedGate {
        passed: Mutex::new(false),
        calls: Mutex::new(Vec::new()),
    });
    w.driver.gate = gate.clone();
    // The last step is done: the rollout waits for the promotion webhook.
    let mut awaiting = super::fixtures::state("c1", Phase::AwaitingPromotion, (100, 0), (0, 100));
    awaiting.current_split = split(25, 75);
    w.store
        .states
        .lock()
        .unwrap()
        .insert(super::fixtures::id(), awaiting);

    w.pass(live(25, 75, "veer"), &[]).await;
    let state = w.state();
    assert_eq!(*gate.calls.lock().unwrap(), [WebhookKind::ConfirmPromotion]);
    assert_eq!(state.phase, Phase::AwaitingPromotion, "held, not promoted");
    assert_eq!(
        state.last_hold,
        Some(HoldReason::AwaitingConfirmation {
            webhook: "approval".into()
        })
    );
    assert!(w.written().is_empty(), "no traffic moves");

    // Approved: asked again at a later pass, the rollout promotes.
    *gate.passed.lock().unwrap() = true;
    for _ in 0..3 {
        tokio::time::advance(std::time::Duration::from_secs(61)).await;
        w.pass(live(25, 75, "veer"), &[]).await;
    }
    assert!(gate.calls.lock().unwrap().len() >= 2);
    assert_eq!(w.written().first(), Some(&split(0, 100)), "promoted");
}

#[path = "concurrency_tests.rs"]
mod concurrency;
#[path = "finished_tests.rs"]
mod finished;

/// Git's VirtualService at `git`, as revision `commit` of the repository.
fn revision(w: &World, commit: &str, git: &Value) -> LoadedRevision {
    let parsed = crate::manifest::parse_file(
        "mesh/reviews.yaml",
        git.to_string().as_bytes(),
        &crate::manifest::ReadOptions::default(),
    );
    let mut set = ManifestSet::default();
    set.extend(&parsed);
    LoadedRevision {
        revision: Revision {
            commit: CommitId(commit.repeat(40 / commit.len())),
            ..w.loaded.revision.clone()
        },
        set,
        changed_files: Vec::new(),
        parsed_files: 1,
    }
}

/// A tick (`every`: a pass over every rollout in flight) as the controller makes it: the
/// revision's bindings (kept between ticks of one commit), the rollouts in flight (and those
/// with a command waiting); an idle poll drives fewer (`finished_tests::idle_poll`).
async fn tick(w: &mut World, loaded: &LoadedRevision, live: Value, every: bool) {
    let ports = Ports {
        store: &w.store,
        probe: &w.probe,
        traffic: &w.route,
        clock: &w.clock,
    };
    let commands = match every {
        true => Some(w.driver.read_commands(&ports, false).await.unwrap()),
        false => None,
    };
    let only = w.driver.in_flight(commands.iter().flat_map(|c| c.keys()));
    let bindings = w.driver.bindings(loaded, "git://example/mesh.git");
    let live = BTreeMap::from([(key(), live)]);
    w.driver
        .drive_bound(
            &ports,
            loaded,
            &bindings,
            only.as_ref(),
            live,
            every,
            commands,
        )
        .await;
}

/// The bindings a tick plans from are made once per commit: ticks over one commit share
/// them, and the first tick after a new commit sees the new commit's VirtualService.
#[tokio::test(start_paused = true)]
async fn a_tick_after_a_new_commit_sees_the_new_work() {
    let mut w = World::new();
    let first = revision(&w, "a", &vs(0, 100, Some("p")));
    tick(&mut w, &first, live(100, 0, "veer"), true).await;
    assert_eq!(w.written(), [split(75, 25)], "the rollout starts");
    assert_eq!(w.state().revision, first.revision.commit.0);
    let kept = w.driver.bindings(&first, "git://example/mesh.git");
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    tick(&mut w, &first, live(75, 25, "veer"), false).await;
    assert!(
        Arc::ptr_eq(&kept, &w.driver.bindings(&first, "git://example/mesh.git")),
        "one commit is bound once"
    );

    // The next commit takes v2 back out: the tick that follows rolls toward git's new split.
    let second = revision(&w, "b", &vs(100, 0, Some("p")));
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    tick(&mut w, &second, live(75, 25, "veer"), true).await;
    let bound = w.driver.bindings(&second, "git://example/mesh.git");
    assert!(!Arc::ptr_eq(&kept, &bound), "a new commit binds again");
    assert_eq!(
        bound.bound[0].desired["spec"],
        vs(100, 0, Some("p"))["spec"]
    );
    let state = w.state();
    assert_eq!(state.revision, second.revision.commit.0, "{state:?}");
    assert_eq!(state.target_split, split(100, 0));

    // A commit unbinding the VirtualService ends its rollout at the next tick.
    let third = revision(&w, "c", &vs(100, 0, None));
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    tick(&mut w, &third, live(100, 0, "veer"), false).await;
    assert!(
        w.store.states.lock().unwrap().is_empty(),
        "its state is forgotten"
    );
    assert_eq!(w.driver.states().count(), 0);
}
