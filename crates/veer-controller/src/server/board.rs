//! The status board: what the status page and `/readyz` show, kept by the controller after
//! every pass in a small shared handle ([`StatusBoard`], cheap to clone) and read by the HTTP
//! handlers as a [`StatusSnapshot`] (plain data, rendered by pure functions).
//!
//! The board holds its own copies in display form (strings, weights, verdicts), so the page
//! never reaches into the controller's or a rollout's internals, and a slow page load never
//! holds a lock the controller needs for long.
//!
//! The snapshot's types are in `snapshot`, re-exported here.

mod snapshot;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use super::readiness::{ApiOutage, Readiness};
use crate::cluster::SharedContact;
use crate::pass::{Pass, RejectedBy};
use crate::rollout::state::RolloutState;
use crate::sync::state::SyncState;

pub use snapshot::{
    CheckMark, ObjectHealth, ObjectStatus, PassStatus, RejectedStatus, RevisionStatus,
    RolloutStatus, StatusSnapshot, TrackedSource, WeightSample,
};

/// Weight samples kept per rollout (the oldest go first): one per change of weight, so this
/// covers far more steps than a rollout has.
pub const MAX_SAMPLES: usize = 200;
/// Characters of the last diff kept for the page.
pub const MAX_DIFF_CHARS: usize = 64 * 1024;

/// A diff as the page shows it: whole up to [`MAX_DIFF_CHARS`], else cut after the last
/// object (or line) that fits, saying how many objects are left out. Whoever keeps a diff for
/// the page keeps this: the diff of an initial sync of 10,000 objects is 8 MiB.
pub fn shown_diff(text: String) -> String {
    if text.len() <= MAX_DIFF_CHARS {
        return text;
    }
    let mut fits = MAX_DIFF_CHARS;
    while !text.is_char_boundary(fits) {
        fits -= 1;
    }
    // An object's diff starts with its `# ` title line (`diff::render::human`).
    let head = &text[..fits];
    let cut = match head.rfind("\n# ") {
        Some(i) => i + 1,
        None => head.rfind('\n').map_or(fits, |i| i + 1),
    };
    let rest = &text[cut..];
    let more = rest.matches("\n# ").count() + usize::from(rest.starts_with("# "));
    let mut shown = String::with_capacity(cut + 80);
    shown.push_str(&text[..cut]);
    if !shown.ends_with('\n') {
        shown.push('\n');
    }
    shown.push_str(&format!(
        "… and {more} more object{} (cut; `veer diff` shows all of it)\n",
        if more == 1 { "" } else { "s" }
    ));
    shown
}

#[derive(Debug, Default)]
struct Board {
    snapshot: StatusSnapshot,
    rollouts: BTreeMap<String, RolloutStatus>,
    /// Whether the API answers; `None`: not known (no cluster yet), never an outage.
    contact: Option<SharedContact>,
    /// An outage longer than this makes veer not ready; `None`: the default.
    not_ready_after: Option<Duration>,
}

impl Board {
    /// The readiness flags, with the API outage as of `now`.
    fn readiness_at(&self, now: DateTime<Utc>) -> Readiness {
        let allowed =
            (self.not_ready_after).unwrap_or(crate::config::DEFAULT_NOT_READY_AFTER_API_OUTAGE);
        let contact = self.contact.as_ref().map(SharedContact::get);
        self.snapshot.readiness.with_outage(contact, allowed, now)
    }
}

/// The shared handle: the controller writes after each pass, the server reads.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    inner: Arc<RwLock<Board>>,
}

impl StatusBoard {
    pub fn new() -> Self {
        StatusBoard::default()
    }

    // A panic while holding the lock leaves plain data behind, still fit to show.
    fn read(&self) -> RwLockReadGuard<'_, Board> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Board> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The repository veer follows.
    pub fn set_source(&self, source: TrackedSource) {
        self.write().snapshot.source = Some(source);
    }

    /// The first valid revision was loaded (readiness).
    pub fn set_revision_loaded(&self, loaded: bool) {
        self.write().snapshot.readiness.revision_loaded = loaded;
    }

    /// The cluster watches are established (readiness).
    pub fn set_watches_up(&self, up: bool) {
        self.write().snapshot.readiness.watches_up = up;
    }

    /// Where the watches report whether the Kubernetes API answers (the cluster's record).
    pub fn set_contact(&self, contact: SharedContact) {
        self.write().contact = Some(contact);
    }

    /// `server.notReadyAfterApiOutage`.
    pub fn set_not_ready_after_api_outage(&self, after: Duration) {
        self.write().not_ready_after = Some(after);
    }

    /// Readiness now.
    pub fn readiness(&self) -> Readiness {
        self.readiness_at(Utc::now())
    }

    /// Readiness as of `now` (an API outage grows with time, not with events).
    pub fn readiness_at(&self, now: DateTime<Utc>) -> Readiness {
        self.read().readiness_at(now)
    }

    /// After a pass: its outcome, the revision in force and every object's standing from the
    /// recorded state. A pass that reconciled a revision also marks the revision loaded.
    pub fn record_pass(&self, pass: &Pass, state: &SyncState, now: DateTime<Utc>) {
        self.record_outcome(pass, state, now);
        self.record_objects(state);
    }

    /// A pass's outcome and the revision in force, leaving the objects' standing as it was:
    /// for a pass that planned nothing, whose state's objects cannot have changed (rebuilding
    /// the list costs as much as the repository).
    pub fn record_outcome(&self, pass: &Pass, state: &SyncState, now: DateTime<Utc>) {
        let outcome = pass.outcome();
        let message = match pass {
            Pass::Rejected {
                errors,
                by: RejectedBy::Validation,
                ..
            } => Some(format!(
                "{errors} validation errors; the last good revision stays in force"
            )),
            Pass::Rejected {
                errors,
                by: RejectedBy::Server,
                ..
            } => Some(format!(
                "the API server's dry run refused {errors} objects; nothing from it was written"
            )),
            Pass::Failed { message } => Some(message.clone()),
            Pass::NoRevision
            | Pass::InSync { .. }
            | Pass::DriftReported { .. }
            | Pass::Synced { .. } => None,
        };
        let reconciled = match pass {
            Pass::InSync { .. } | Pass::DriftReported { .. } | Pass::Synced { .. } => true,
            Pass::Rejected { .. } => state.revision.is_some(),
            Pass::NoRevision | Pass::Failed { .. } => false,
        };
        let mut board = self.write();
        let s = &mut board.snapshot;
        s.last_pass = Some(PassStatus {
            outcome,
            at: now,
            message,
        });
        s.revision = state.revision.as_ref().map(|r| RevisionStatus {
            commit: r.commit.clone(),
            summary: r.summary.clone(),
            author: r.author.clone(),
        });
        s.rejected = state.rejected.as_ref().map(|r| RejectedStatus {
            commit: r.commit.clone(),
            errors: r.errors,
        });
        if reconciled {
            s.readiness.revision_loaded = true;
        }
    }

    /// Whether a pass has recorded the objects' standing yet.
    pub fn has_objects(&self) -> bool {
        !self.read().snapshot.objects.is_empty()
    }

    /// Every object's standing from the recorded state.
    pub fn record_objects(&self, state: &SyncState) {
        let drift: std::collections::HashSet<&str> =
            state.drift.iter().map(String::as_str).collect();
        let mut objects: Vec<ObjectStatus> = state
            .objects
            .iter()
            .map(|r| {
                let key = r.key();
                let key = key.to_string();
                let drifted = drift.contains(key.as_str());
                let (health, reason) = if r.result == "failed" {
                    let reason = match (r.code, &r.message) {
                        (Some(code), Some(m)) => format!("{code}: {m}"),
                        (None, Some(m)) => m.clone(),
                        (Some(code), None) => format!("HTTP {code}"),
                        (None, None) => "failed".to_string(),
                    };
                    (ObjectHealth::Failed, reason)
                } else if drifted || r.result == "drift-reported" {
                    (
                        ObjectHealth::Drifted,
                        "changed in the cluster, not in git".to_string(),
                    )
                } else {
                    (ObjectHealth::InSync, r.result.clone())
                };
                ObjectStatus {
                    key,
                    health,
                    reason,
                }
            })
            .collect();
        objects.sort_by(|a, b| b.health.cmp(&a.health).then_with(|| a.key.cmp(&b.key)));
        self.write().snapshot.objects = objects;
    }

    /// The last diff worth showing (`diff::render::human` without colour); `None` keeps the
    /// previous one, so an idle pass does not wipe what the last change was.
    pub fn set_last_diff(&self, diff: Option<String>) {
        let Some(text) = diff.filter(|d| !d.trim().is_empty()) else {
            return;
        };
        self.write().snapshot.last_diff = Some(shown_diff(text));
    }

    /// A rollout's state after a pass: phase, split, checks, and a weight sample when the new
    /// version's weight changed (the first record also samples where it started).
    pub fn record_rollout(&self, name: &str, state: &RolloutState, now: DateTime<Utc>) {
        let gaining = state.from_split.gaining_toward(&state.target_split);
        let weight = state.current_split.weight_of(&gaining);
        let split = |s: &crate::rollout::split::TrafficSplit| {
            s.iter().map(|(d, w)| (d.to_string(), w)).collect()
        };
        let checks = state
            .history
            .iter()
            .map(|c| {
                let verdict = c.outcome.judgement();
                let mut detail = c.check.clone();
                if let Some(v) = c.value {
                    detail.push_str(&format!(" = {}", crate::figures::for_people(v)));
                }
                if !c.threshold.is_empty() {
                    detail.push_str(&format!(" (wants {})", c.threshold));
                }
                if !c.message.is_empty() {
                    detail.push_str(&format!(": {}", c.message));
                }
                if let Some(b) = &c.baseline {
                    detail.push_str(&format!("; {b}"));
                }
                CheckMark {
                    at: c.at,
                    check: c.check.clone(),
                    verdict,
                    detail,
                }
            })
            .collect();
        let mut board = self.write();
        let entry = board
            .rollouts
            .entry(name.to_string())
            .or_insert_with(|| RolloutStatus {
                name: name.to_string(),
                revision: String::new(),
                phase: state.phase,
                split: Vec::new(),
                target: Vec::new(),
                samples: vec![WeightSample {
                    at: state.created_at.min(now),
                    weight: state.from_split.weight_of(&gaining),
                }],
                checks: Vec::new(),
                failure: None,
                interfered: None,
            });
        if entry.revision != state.revision && !entry.revision.is_empty() {
            // A new commit restarted the rollout: a new chart.
            entry.samples = vec![WeightSample {
                at: now,
                weight: state.from_split.weight_of(&gaining),
            }];
        }
        entry.revision = state.revision.clone();
        entry.phase = state.phase;
        entry.split = split(&state.current_split);
        entry.target = split(&state.target_split);
        entry.checks = checks;
        entry.failure = state.failure.as_ref().map(|f| f.to_string());
        if entry.weight() != weight {
            entry.samples.push(WeightSample { at: now, weight });
            if entry.samples.len() > MAX_SAMPLES {
                let extra = entry.samples.len() - MAX_SAMPLES;
                entry.samples.drain(..extra);
            }
        }
    }

    /// Set a rollout's display directly (for rollouts kept outside [`RolloutState`], and
    /// tests).
    pub fn put_rollout(&self, status: RolloutStatus) {
        self.write().rollouts.insert(status.name.clone(), status);
    }

    /// The last hand edit of a rollout's route that veer undid.
    pub fn record_interference(&self, name: &str, text: String) {
        if let Some(entry) = self.write().rollouts.get_mut(name) {
            entry.interfered = Some(text);
        }
    }

    /// A rollout no longer in git.
    pub fn forget_rollout(&self, name: &str) {
        self.write().rollouts.remove(name);
    }

    /// A copy of everything, as of `now`.
    pub fn snapshot(&self, now: DateTime<Utc>) -> StatusSnapshot {
        let board = self.read();
        let mut s = board.snapshot.clone();
        s.now = Some(now);
        s.readiness = board.readiness_at(now);
        s.rollouts = board.rollouts.values().cloned().collect();
        // Rollouts under way first: they are what someone opening the page wants to see.
        s.rollouts.sort_by_key(|r| r.phase.is_terminal());
        s
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::analysis::Judgement;
    use crate::pass::PassOutcome;
    use crate::rollout::state::{CheckOutcome, Phase};
    use crate::sync::state::{ObjectRecord, RevisionRecord};
    use veer_testkit::{at, service as key};

    #[test]
    fn readiness_needs_both_flags_and_says_what_is_missing() {
        let board = StatusBoard::new();
        assert_eq!(
            board.readiness().check().map_err(|e| e.to_string()),
            Err("no revision loaded yet; cluster watches not up yet".into())
        );
        board.set_watches_up(true);
        assert_eq!(
            board.readiness().check().map_err(|e| e.to_string()),
            Err("no revision loaded yet".into())
        );
        board.set_revision_loaded(true);
        assert_eq!(board.readiness().check(), Ok(()));
    }

    #[test]
    fn readyz_and_the_page_see_the_clusters_contact_record() {
        let board = StatusBoard::new();
        board.set_watches_up(true);
        board.set_revision_loaded(true);
        // No cluster record yet: nothing to say about the API.
        assert_eq!(board.readiness_at(at(25, 30)).check(), Ok(()));
        let contact = SharedContact::default();
        board.set_contact(contact.clone());
        board.set_not_ready_after_api_outage(Duration::from_secs(90));
        contact.failed(at(25, 1));
        assert_eq!(board.readiness_at(at(25, 2)).check(), Ok(()));
        let why = board.readiness_at(at(25, 3)).check().unwrap_err();
        assert!(
            why.to_string()
                .starts_with("the Kubernetes API has been unreachable for 2m"),
            "{why}"
        );
        assert_eq!(board.snapshot(at(25, 3)).readiness.check(), Err(why));
        contact.succeeded(at(25, 3));
        assert_eq!(board.readiness_at(at(25, 3)).check(), Ok(()));
    }

    #[test]
    fn a_pass_sorts_objects_into_failed_drifted_in_sync() {
        let board = StatusBoard::new();
        let mut failed = ObjectRecord::new(&key("b"), None, "failed");
        failed.code = Some(422);
        failed.message = Some("spec.ports: Required".into());
        let state = SyncState {
            revision: Some(RevisionRecord {
                commit: "a".repeat(40),
                summary: "shift reviews".into(),
                author: "Ada".into(),
            }),
            objects: vec![
                ObjectRecord::new(&key("a"), Some("h".into()), "unchanged"),
                failed,
                ObjectRecord::new(&key("c"), Some("h".into()), "drift-reported"),
            ],
            drift: vec![key("c").to_string()],
            ..SyncState::default()
        };
        let pass = Pass::InSync {
            commit: "a".repeat(40),
        };
        board.record_pass(&pass, &state, at(25, 1));
        let s = board.snapshot(at(25, 2));
        assert_eq!(
            s.objects
                .iter()
                .map(|o| (o.key.as_str(), o.health))
                .collect::<Vec<_>>(),
            vec![
                ("Service shop/b", ObjectHealth::Failed),
                ("Service shop/c", ObjectHealth::Drifted),
                ("Service shop/a", ObjectHealth::InSync),
            ]
        );
        assert_eq!(s.objects[0].reason, "422: spec.ports: Required");
        assert!(s.readiness.revision_loaded);
        assert_eq!(s.last_pass.map(|p| p.outcome), Some(PassOutcome::InSync));
        assert_eq!(s.now, Some(at(25, 2)));
        // A pass that planned nothing records its outcome and keeps the objects' standing.
        assert!(board.has_objects());
        board.record_outcome(&pass, &SyncState::default(), at(25, 3));
        let s = board.snapshot(at(25, 3));
        assert_eq!(s.objects.len(), 3);
        assert_eq!(s.last_pass.map(|p| p.at), Some(at(25, 3)));
    }

    #[test]
    fn a_failed_pass_does_not_mark_a_revision_loaded() {
        let board = StatusBoard::new();
        board.record_pass(
            &Pass::Failed {
                message: "cluster unreachable".into(),
            },
            &SyncState::default(),
            at(25, 1),
        );
        let s = board.snapshot(at(25, 1));
        assert!(!s.readiness.revision_loaded);
        assert_eq!(
            s.last_pass.and_then(|p| p.message).as_deref(),
            Some("cluster unreachable")
        );
    }

    fn split(v1: u32, v2: u32) -> crate::rollout::TrafficSplit {
        use crate::rollout::DestinationId;
        use crate::rollout::split::WeightedDestination;
        vec![
            WeightedDestination {
                destination: DestinationId::new("reviews", Some("v1")),
                weight: v1,
            },
            WeightedDestination {
                destination: DestinationId::new("reviews", Some("v2")),
                weight: v2,
            },
        ]
        .into()
    }

    #[test]
    fn a_rollout_samples_its_weight_when_it_changes() {
        use crate::rollout::state::CheckRecord;
        use crate::rollout::{AnalysisVerdict, RouteRef};
        let board = StatusBoard::new();
        let route = RouteRef {
            index: 0,
            name: None,
        };
        let policy = crate::rollout::RolloutPolicySpec::default();
        let mut state = RolloutState::new(
            "c1",
            route,
            &split(100, 0),
            &split(0, 100),
            &policy,
            at(25, 0),
        );
        state.phase = Phase::Progressing;
        board.record_rollout("shop/reviews", &state, at(25, 1));
        board.record_rollout("shop/reviews", &state, at(25, 2));
        state.current_split = split(80, 20);
        state.history.push(CheckRecord {
            at: at(25, 3),
            phase: Phase::Progressing,
            step: 0,
            check: "success-rate".into(),
            query: String::new(),
            same_query: false,
            value: Some(99.5),
            threshold: ">= 99".into(),
            verdict: AnalysisVerdict::Pass,
            message: String::new(),
            outcome: CheckOutcome::Passed,
            baseline: None,
        });
        board.record_rollout("shop/reviews", &state, at(25, 3));
        let s = board.snapshot(at(25, 4));
        let r = &s.rollouts[0];
        assert_eq!(
            r.samples,
            vec![
                WeightSample {
                    at: at(25, 0),
                    weight: 0
                },
                WeightSample {
                    at: at(25, 3),
                    weight: 20
                },
            ]
        );
        assert_eq!(
            r.split,
            vec![("reviews/v1".into(), 80), ("reviews/v2".into(), 20)]
        );
        assert_eq!(r.checks.len(), 1);
        assert_eq!(r.checks[0].verdict, Judgement::Pass);
        assert_eq!(r.checks[0].detail, "success-rate = 99.5 (wants >= 99)");
        // A new commit restarts the chart.
        state.revision = "c2".into();
        state.from_split = state.current_split.clone();
        board.record_rollout("shop/reviews", &state, at(25, 5));
        assert_eq!(board.snapshot(at(25, 5)).rollouts[0].samples.len(), 1);
        board.forget_rollout("shop/reviews");
        assert!(board.snapshot(at(25, 6)).rollouts.is_empty());
    }

    #[test]
    fn the_last_diff_survives_idle_passes_and_is_bounded() {
        let board = StatusBoard::new();
        board.set_last_diff(Some("--- live\n+++ git\n".into()));
        board.set_last_diff(None);
        board.set_last_diff(Some("  \n".into()));
        assert_eq!(
            board.snapshot(at(25, 0)).last_diff.as_deref(),
            Some("--- live\n+++ git\n")
        );
        board.set_last_diff(Some("é".repeat(MAX_DIFF_CHARS)));
        let diff = board.snapshot(at(25, 0)).last_diff.unwrap_or_default();
        assert!(diff.len() < MAX_DIFF_CHARS + 100);
        assert!(diff.ends_with("shows all of it)\n"));
    }

    #[test]
    fn a_long_diff_is_cut_after_the_last_object_that_fits() {
        let object = |i: usize| format!("# Service s/{i}: create\n+{}\n", "x".repeat(100));
        let whole: String = (0..2_000).map(object).collect();
        let shown = shown_diff(whole.clone());
        assert!(shown.len() <= MAX_DIFF_CHARS + 100, "{}", shown.len());
        let kept = shown.matches("# Service").count();
        assert!(kept > 0 && whole.starts_with(&shown[..shown.len() - 80]));
        assert!(
            shown.ends_with(&format!(
                "\n… and {} more objects (cut; `veer diff` shows all of it)\n",
                2_000 - kept
            )),
            "{}",
            &shown[shown.len() - 100..]
        );
        assert_eq!(shown_diff("# small\n".into()), "# small\n");
    }
}
