//! Work proportional to what changed: which objects a pass plans, and what a pass leaves for
//! the next one to build on ([`Baseline`]).
//!
//! A pass plans every object when it has nothing to build on (the first pass, or one after
//! an error or a refused dry run), when `sync.resyncInterval` has passed since the last full
//! plan (the safety net for whatever the watches cannot tell), in server dry-run mode (it
//! records nothing), when the change journal lost entries, and when what changed reaches
//! beyond single objects: a RolloutPolicy (it binds VirtualServices anywhere), a
//! CustomResourceDefinition (how lists merge), an object in or of a Namespace that may be
//! pruned (whether it may depends on every object in it). Otherwise it plans only:
//! - git's objects that differ from the revision planned last (the parse cache shares the
//!   manifests of unchanged files, so most are told apart by pointer), and those that left
//!   git (prune candidates when in the inventory);
//! - the objects the watches saw change since the last pass (`cluster::Changes`);
//! - what the last pass left unsettled: objects it wrote (read back once), failed, reported
//!   as drift, could not find the kind of, or could not prune yet;
//! - the VirtualServices of rollouts whose state changed or that own fields without a
//!   rollout, and, whenever anything is planned, those of every tracked rollout (the driver's
//!   pass forgets the rollouts it is not shown);
//!
//! and the records of the rest stay as they are. When nothing qualifies the pass plans
//! nothing and makes no API request, and says what the last pass said: in sync (the rollouts
//! are still driven, as a rollout tick drives them).

mod decide;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use decide::{RolloutStates, changed_rollouts, decide, unsettled};

use super::planning::{desired_where, record_identity};
use super::rollouts::{self, RolloutId};
use super::{Controller, ControllerError, Pass, Planned};
use crate::diff;
use crate::manifest::{Manifest, ObjectIdentity, ObjectKey};
use crate::source::LoadedRevision;
use crate::sync::SyncReport;
use crate::sync::state::SyncState;

/// `sync.resyncInterval` when veer.yaml does not say.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(600);

/// Why a pass planned every object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullReason {
    /// No pass to build on: the first since start, or the last one failed or was refused.
    First,
    /// `sync.resyncInterval` passed since the last full plan.
    Resync,
    /// Server dry run: nothing is recorded, so nothing is known to be settled.
    DryRun,
    /// More changed in the cluster than the change journal holds.
    JournalOverflow,
    /// A RolloutPolicy changed: it may bind or free VirtualServices anywhere.
    Policies,
    /// A CustomResourceDefinition is planned: how its kind's lists merge may change.
    CustomResourceDefinition,
    /// A Namespace that may be pruned, or an object in one, is planned: whether it may
    /// depends on everything in it.
    NamespacePrune,
}

impl FullReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FullReason::First => "first",
            FullReason::Resync => "resync",
            FullReason::DryRun => "dry_run",
            FullReason::JournalOverflow => "journal_overflow",
            FullReason::Policies => "policies",
            FullReason::CustomResourceDefinition => "crd",
            FullReason::NamespacePrune => "namespace_prune",
        }
    }
}

/// How much of the revision a pass planned ([`Controller::last_planning`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planning {
    /// Objects planned: git's and prune candidates, read from the watch cache.
    pub objects: usize,
    /// `Some`: every object, and why; `None`: only what changed (nothing, on an idle pass).
    pub full: Option<FullReason>,
}

/// What a pass leaves for the next one to build on.
#[derive(Debug, Clone)]
pub(super) struct Baseline {
    commit: String,
    /// The manifests planned (shared with the revision: a new revision's unchanged files
    /// hold the same ones).
    manifests: Vec<Arc<Manifest>>,
    /// The change journal's position before the pass read the watch cache.
    position: u64,
    /// When the last full plan was made.
    full_at: DateTime<Utc>,
    /// Objects to plan again, whatever else changes.
    again: BTreeSet<ObjectKey>,
    /// Rollouts whose VirtualService to plan again.
    rollouts_again: BTreeSet<RolloutId>,
}

/// The controller's incremental bookkeeping.
#[derive(Debug)]
pub(super) struct Incremental {
    baseline: Option<Baseline>,
    pub(super) resync: Duration,
    last: Option<Planning>,
    /// What validation of the next revision builds on (module `validation`).
    pub(super) validation: super::validation::Memo,
}

impl Default for Incremental {
    fn default() -> Self {
        Incremental {
            baseline: None,
            resync: DEFAULT_RESYNC_INTERVAL,
            last: None,
            validation: super::validation::Memo::default(),
        }
    }
}

/// Which objects a pass plans: the decision, and what it was made against.
pub(super) struct Scope {
    /// `Some`: every object, and why.
    full: Option<FullReason>,
    /// Otherwise these, sorted by identity (git's objects and prune candidates).
    keys: Vec<ObjectKey>,
    baseline: Option<Baseline>,
    /// The journal's position when decided (before the watch cache is read).
    through: u64,
}

impl Scope {
    fn full(reason: FullReason, baseline: Option<Baseline>, through: u64) -> Self {
        Scope {
            full: Some(reason),
            keys: Vec::new(),
            baseline,
            through,
        }
    }

    /// Every object, with nothing to build on (`Controller::plan`).
    pub(super) fn everything() -> Self {
        Scope::full(FullReason::First, None, 0)
    }

    /// Nothing to plan.
    pub(super) fn is_nothing(&self) -> bool {
        self.full.is_none() && self.keys.is_empty()
    }

    /// Is the object planned?
    pub(super) fn selects(&self, id: ObjectIdentity<'_>) -> bool {
        self.full.is_some()
            || self
                .keys
                .binary_search_by(|k| k.identity().cmp(&id))
                .is_ok()
    }

    /// Does the object keep its last outcome (not planned)?
    pub(super) fn carries(&self, id: ObjectIdentity<'_>) -> bool {
        !self.selects(id)
    }
}

/// What the scope of a pass is decided from, besides the baseline and the journal.
pub(super) struct Facts<'a> {
    pub loaded: &'a LoadedRevision,
    pub state: &'a SyncState,
    pub now: DateTime<Utc>,
    pub resync: Duration,
    pub dry_run: bool,
    /// The rollouts the driver tracks; `None` without rollouts.
    pub tracked: Option<BTreeSet<RolloutId>>,
}

impl Controller {
    /// Plan every object at least this often (`sync.resyncInterval`), whatever the change
    /// journal says.
    pub fn with_resync_interval(mut self, every: Duration) -> Self {
        self.incremental.resync = every;
        self
    }

    /// How much the last pass planned (`None` before the first).
    pub fn last_planning(&self) -> Option<Planning> {
        self.incremental.last
    }

    /// After an error: the next pass plans everything.
    pub(super) fn forget_baseline(&mut self) {
        self.incremental.baseline = None;
    }

    fn rollout_states(&self) -> Option<RolloutStates> {
        let driver = self.rollouts.as_ref()?;
        Some(
            driver
                .states()
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect(),
        )
    }

    /// The scope of a pass over `loaded`. Takes the baseline: a pass that ends early or fails
    /// leaves none, and the next one plans everything.
    pub(super) fn scope(&mut self, loaded: &LoadedRevision, now: DateTime<Utc>) -> Scope {
        let baseline = self.incremental.baseline.take();
        let position = match &baseline {
            Some(b) => b.position,
            None => self.cluster.journal_position(),
        };
        let changes = self.cluster.changes_since(position);
        let facts = Facts {
            loaded,
            state: &self.state,
            now,
            resync: self.incremental.resync,
            dry_run: self.options.sync.mode == crate::sync::WriteMode::ServerDryRun,
            tracked: (self.rollouts.as_ref()).map(|d| d.tracked().unwrap_or_default()),
        };
        let touched = |key: &ObjectKey| self.cluster.touched(&changes, key);
        let decided = decide(baseline.as_ref(), &facts, &changes, &touched);
        let scope = match decided {
            Ok(keys) => Scope {
                full: None,
                keys,
                baseline,
                through: changes.through,
            },
            Err(reason) => Scope::full(reason, baseline, changes.through),
        };
        match scope.full {
            Some(reason) => debug!(reason = reason.as_str(), "planning every object"),
            None => debug!(objects = scope.keys.len(), "planning what changed"),
        }
        scope
    }

    /// Plan the objects of `loaded` that `scope` selects against the live cluster (the
    /// watch cache): git's, and the inventory's that git no longer has (prune candidates).
    pub(super) async fn plan_scope(
        &self,
        loaded: &LoadedRevision,
        scope: &Scope,
    ) -> Result<Planned, ControllerError> {
        let desired = desired_where(loaded, &self.options.source_url, |key| {
            scope.selects(key.identity())
        });
        let mut keys: Vec<ObjectKey> = desired.iter().map(|d| d.key.clone()).collect();
        let wanted: HashSet<ObjectIdentity<'_>> =
            desired.iter().map(|d| d.key.identity()).collect();
        keys.extend(
            (self.state.objects.iter())
                .filter(|r| r.in_inventory())
                .filter(|r| {
                    let id = record_identity(r);
                    scope.selects(id) && !wanted.contains(&id)
                })
                .map(crate::sync::state::ObjectRecord::key),
        );
        let view = self.cluster.live_view(&keys).await?;
        let semantics = self.cluster.list_semantics().await;
        let mut ctx = super::planning::plan_context_where(
            &self.state,
            &self.options.sync.manager,
            self.options.prune,
            semantics,
            |id| scope.selects(id),
        );
        let rollouts = (self.rollouts.as_ref()).map(|d| d.plan(loaded, &desired, &view.texts));
        ctx.ignore = rollouts.as_ref().map(|r| r.ignore()).unwrap_or_default();
        ctx.unreadable = view.forbidden.keys().cloned().collect();
        ctx.self_heal = self.options.sync.self_heal;
        let plan = diff::plan(&desired, &view.texts, &ctx);
        let live = super::planning::live_after_plan(view, &wanted, self.rollouts.as_ref());
        Ok(Planned {
            plan,
            desired,
            live,
            rollouts,
        })
    }

    /// Note how much a pass planned.
    pub(super) fn note_planning(&mut self, scope: &Scope, planned: &Planned) {
        let candidates = (planned.plan.objects.iter())
            .filter(|o| {
                matches!(
                    o.action,
                    diff::ObjectAction::Prune | diff::ObjectAction::PruneSkipped { .. }
                )
            })
            .count();
        self.incremental.last = Some(Planning {
            objects: planned.desired.len() + candidates,
            full: scope.full,
        });
    }

    /// A pass with nothing to plan: the last outcome stands (in sync: anything else leaves
    /// objects to plan again). Rollouts are driven as a tick drives them.
    pub(super) async fn pass_without_plan(
        &mut self,
        loaded: &LoadedRevision,
        scope: Scope,
    ) -> Pass {
        if let Some(mut b) = scope.baseline {
            b.position = scope.through;
            self.cluster.forget_changes_before(b.position);
            self.incremental.baseline = Some(b);
        }
        self.incremental.last = Some(Planning {
            objects: 0,
            full: None,
        });
        let busy =
            (self.rollouts.as_ref()).is_some_and(|d| d.tracked().is_none_or(|t| !t.is_empty()));
        if busy {
            // The rollouts an idle poll can move (a command waiting, due, waiting for health,
            // admission or approval: nothing changed, so there is no hand edit to see),
            // without planning the rest.
            let _ = self.tick_rollouts(loaded, true).await;
        }
        Pass::InSync {
            commit: loaded.revision.commit.0.clone(),
        }
    }

    /// Drive the rollouts `planned` was made with (after the state is recorded), and leave
    /// what the pass did for the next one to build on.
    pub(super) async fn drive_and_settle(
        &mut self,
        loaded: &LoadedRevision,
        scope: Scope,
        planned: &Planned,
        report: &SyncReport,
        now: DateTime<Utc>,
    ) {
        let before = self.rollout_states();
        if let Some(driver) = &mut self.rollouts {
            let namespace = driver.state_namespace().to_string();
            let adapters =
                rollouts::ClusterPorts::new(&self.cluster, &self.options.sync, &namespace)
                    .keeping(driver.built_workloads());
            driver
                .drive_planned(&adapters.ports(), loaded, planned)
                .await;
            adapters.await_written().await;
        }
        let mut again: BTreeSet<ObjectKey> = (report.objects.iter())
            .filter(|o| unsettled(&o.result))
            .map(|o| o.key.clone())
            .collect();
        again.extend(planned.live.unknown.iter().cloned());
        again.extend(report.unobserved.iter().cloned());
        let mut rollouts_again = BTreeSet::new();
        if let (Some(before), Some(after)) = (before, self.rollout_states()) {
            rollouts_again = changed_rollouts(&before, &after);
            // Fields owned for a rollout that did not start (its state could not be
            // stored): planned again until it starts.
            if let Some(r) = &planned.rollouts {
                for key in r.ignore().keys() {
                    let id = RolloutId::of(key);
                    if !after.contains_key(&id) {
                        rollouts_again.insert(id);
                    }
                }
            }
        }
        let full_at = match (&scope.full, &scope.baseline) {
            (None, Some(b)) => b.full_at,
            (Some(_), _) | (None, None) => now,
        };
        // The next pass asks the journal from here on.
        self.cluster.forget_changes_before(scope.through);
        self.incremental.baseline = Some(Baseline {
            commit: loaded.revision.commit.0.clone(),
            manifests: loaded.set.manifests.clone(),
            position: scope.through,
            full_at,
            again,
            rollouts_again,
        });
    }

    /// Rollout work over `loaded` without a plan: the VirtualServices with a rollout in
    /// flight, read from the watch cache, and the driver's pass over them (`every`: an idle
    /// poll, every one it can move, `RolloutDriver::idle_poll`; else those due, as a tick
    /// does); nothing else is planned and no sync state is written. Rollouts whose state
    /// changed are planned at the next pass. Returns how many rollouts' states the driver
    /// read, changed or forgot.
    pub(super) async fn tick_rollouts(&mut self, loaded: &LoadedRevision, every: bool) -> usize {
        let Some(driver) = &mut self.rollouts else {
            return 0;
        };
        // What changed before this tick is a pass's business (`drive_and_settle`).
        driver.take_changed();
        let namespace = driver.state_namespace().to_string();
        let adapters = rollouts::ClusterPorts::new(&self.cluster, &self.options.sync, &namespace)
            .keeping(driver.built_workloads());
        let ports = adapters.ports();
        // An idle pass drives a finished rollout only for a command: the commands waiting
        // (labelled pending; a pass that plans reads every mailbox) are read first.
        let commands = match every {
            true => match driver.read_commands(&ports, false).await {
                Some(c) => Some(c),
                None => return 0,
            },
            false => None,
        };
        // Only the VirtualServices with a rollout in flight (new rollouts start at a pass,
        // not a tick, and finished ones ask nothing of it), and of those, in an idle pass,
        // only the ones it can move. Before the states are read, every bound VirtualService
        // (the tick reads them).
        let commanded: BTreeSet<RolloutId> =
            commands.iter().flat_map(|c| c.keys().cloned()).collect();
        let only = match every {
            true => driver.idle_poll(&commanded, Utc::now()),
            false => driver.in_flight(&commanded),
        };
        // Bound once per revision, not at every tick.
        let bindings = driver.bindings(loaded, &self.options.source_url);
        let keys: Vec<ObjectKey> = bindings
            .bound
            .iter()
            .filter(|b| only.as_ref().is_none_or(|o| o.contains(&b.id)))
            .map(|b| b.key.clone())
            .collect();
        match self.cluster.live(&keys).await {
            Ok(live) => {
                driver
                    .drive_bound(
                        &ports,
                        loaded,
                        &bindings,
                        only.as_ref(),
                        live.objects,
                        every,
                        commands,
                    )
                    .await;
                adapters.await_written().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot read the VirtualServices for a rollout tick; trying again in 5 s");
                driver.retry_at(Utc::now() + chrono::TimeDelta::seconds(5));
            }
        }
        // The driver's own list of the states it read, changed or forgot: no copy of every
        // state (histories of up to a hundred checks) to compare.
        let changed = driver.take_changed();
        let count = changed.len();
        if let Some(b) = self.incremental.baseline.as_mut() {
            b.rollouts_again.extend(changed);
        }
        count
    }
}
