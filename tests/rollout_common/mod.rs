//! A simulated I/O edge for the rollout state machine: it performs each action against an
//! in-memory route (weights that may or may not stick), answers analysis and webhooks as a
//! test says, and moves a fake clock to each `Wait`. Shared by the rollout test files.

#![allow(dead_code)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use veer::manifest::rollout_policy::{RolloutPolicySpec, ThresholdRange};
use veer::rollout::detect::RouteRef;
use veer::rollout::state::Phase;
use veer::rollout::{
    Action, AnalysisReport, AnalysisVerdict, Check, Decision, DestinationId, LiveRoute,
    Observation, OperatorCommand, Overlay, RevertReport, RolloutState, TargetUpdate, TrafficSplit,
    WebhookKind, WebhookReport, WebhookResult, WriteReadBack, decide,
};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

pub fn d(subset: &str) -> DestinationId {
    DestinationId::new("reviews", Some(subset))
}

pub fn split(pairs: &[(&str, u32)]) -> TrafficSplit {
    pairs.iter().map(|(s, w)| (d(s), *w)).collect()
}

pub fn policy(yaml_spec: &str) -> RolloutPolicySpec {
    serde_saphyr::from_str(yaml_spec).expect("test policy parses")
}

/// interval 1m, threshold 2, steps 10/20/50, deadline 10m, one metric.
pub fn basic_policy() -> RolloutPolicySpec {
    policy(
        "interval: 1m\nthreshold: 2\nstepWeights: [10, 20, 50]\nprogressDeadline: 10m\nmetrics:\n- name: success-rate\n  builtin: request-success-rate\n  thresholdRange: {min: 99}\n",
    )
}

pub fn new_state(from: &TrafficSplit, to: &TrafficSplit, p: &RolloutPolicySpec) -> RolloutState {
    RolloutState::new(
        "rev1",
        RouteRef {
            index: 0,
            name: None,
        },
        from,
        to,
        p,
        t0(),
    )
}

pub fn pass(metric: &str) -> Check {
    verdict(metric, AnalysisVerdict::Pass)
}

pub fn verdict(metric: &str, v: AnalysisVerdict) -> Check {
    Check {
        metric: metric.to_string(),
        query: format!("query of {metric}"),
        value: match &v {
            AnalysisVerdict::Pass => Some(99.9),
            AnalysisVerdict::Fail { value, .. } => Some(*value),
            _ => None,
        },
        threshold: ThresholdRange {
            min: Some(99.0),
            max: None,
        },
        requests: Some(100.0),
        verdict: v,
        baseline: None,
    }
}

pub fn fail(metric: &str) -> Check {
    verdict(
        metric,
        AnalysisVerdict::Fail {
            value: 80.0,
            min: Some(99.0),
            max: None,
        },
    )
}

/// Verdict for each analysis, by how many analyses ran before and the live split.
pub type VerdictFn = Box<dyn FnMut(usize, &TrafficSplit) -> AnalysisVerdict>;

/// The simulated world the controller would see.
pub struct World {
    pub now: DateTime<Utc>,
    pub live: TrafficSplit,
    pub overlay: Option<Overlay>,
    pub available: bool,
    pub admitted: bool,
    /// Do writes stick (read back as written)?
    pub writes_stick: bool,
    /// Verdict for each analysis, by how many analyses ran before.
    pub verdicts: VerdictFn,
    pub analyses: usize,
    pub webhooks_pass: Box<dyn FnMut(WebhookKind) -> bool>,
    pub revert: Result<String, String>,
    /// Answer for the next observation.
    pub pending: Observation,
    pub command: Option<OperatorCommand>,
    pub target: Option<TargetUpdate>,
    /// Every action performed, with the phase of the state that asked for it.
    pub log: Vec<(Phase, Action)>,
    pub decisions: Vec<Decision>,
    /// Report the live route (as the watch cache would) with each observation, edited by
    /// `editor`.
    pub report_live: bool,
    pub editor: Option<String>,
}

impl World {
    pub fn new(live: TrafficSplit) -> Self {
        World {
            now: t0(),
            live,
            overlay: None,
            available: true,
            admitted: true,
            writes_stick: true,
            verdicts: Box::new(|_, _| AnalysisVerdict::Pass),
            analyses: 0,
            webhooks_pass: Box::new(|_| true),
            revert: Ok("c0ffee".into()),
            pending: Observation::default(),
            command: None,
            target: None,
            log: Vec::new(),
            decisions: Vec::new(),
            report_live: false,
            editor: None,
        }
    }

    pub fn observation(&mut self) -> Observation {
        let mut o = std::mem::take(&mut self.pending);
        o.available = Some(self.available);
        o.admitted = self.admitted;
        o.command = self.command;
        o.target = self.target.clone().map(Into::into);
        if self.report_live {
            o.live = Some(LiveRoute {
                split: self.live.clone(),
                editor: self.editor.clone(),
            });
        }
        o
    }

    /// Perform `action` as the controller would.
    pub fn perform(&mut self, phase: Phase, action: &Action, metrics: &[String]) {
        self.log.push((phase, action.clone()));
        match action {
            Action::SetSplit { id, split, overlay } => {
                if self.writes_stick {
                    self.live = split.clone();
                    self.overlay = overlay.clone();
                }
                self.pending.write = Some(WriteReadBack {
                    id: *id,
                    read_back: self.live.clone(),
                });
            }
            Action::Rollback { id, to } => {
                if self.writes_stick {
                    self.live = to.clone();
                    self.overlay = None;
                }
                self.pending.write = Some(WriteReadBack {
                    id: *id,
                    read_back: self.live.clone(),
                });
            }
            Action::RunWebhooks { id, kind } => {
                let passed = (self.webhooks_pass)(*kind);
                self.pending.webhooks = Some(WebhookReport {
                    id: *id,
                    results: vec![WebhookResult {
                        name: format!("{}-hook", kind.as_str()),
                        passed,
                        message: if passed {
                            String::new()
                        } else {
                            "HTTP 500".into()
                        },
                    }],
                });
            }
            Action::Analyse { id, .. } => {
                let v = (self.verdicts)(self.analyses, &self.live);
                self.analyses += 1;
                self.pending.analysis = Some(AnalysisReport {
                    id: *id,
                    checks: metrics.iter().map(|m| verdict(m, v.clone())).collect(),
                });
            }
            Action::Wait { until } => {
                self.now = (*until).max(self.now + TimeDelta::seconds(1));
            }
            Action::Alert { .. } => {}
            Action::RevertInGit { id, .. } => {
                self.pending.revert = Some(RevertReport {
                    id: *id,
                    outcome: self.revert.clone(),
                });
            }
            Action::Done => {}
        }
    }

    /// One decision, performed.
    pub fn tick(&mut self, state: &RolloutState, p: &RolloutPolicySpec) -> RolloutState {
        let obs = self.observation();
        let decision = decide(state, &obs, p, self.now);
        let metrics: Vec<String> = p.metrics.iter().map(|m| m.name.clone()).collect();
        self.perform(decision.next.phase, &decision.action, &metrics);
        let next = decision.next.clone();
        self.decisions.push(decision);
        next
    }

    /// Decide and perform until `Done` or `limit` decisions.
    pub fn run(
        &mut self,
        mut state: RolloutState,
        p: &RolloutPolicySpec,
        limit: usize,
    ) -> RolloutState {
        for _ in 0..limit {
            state = self.tick(&state, p);
            if matches!(self.log.last(), Some((_, Action::Done))) {
                break;
            }
        }
        state
    }

    /// Forward weight writes (not promotion, not rollback), in order.
    pub fn step_writes(&self) -> Vec<TrafficSplit> {
        self.log
            .iter()
            .filter_map(|(phase, a)| match a {
                Action::SetSplit { split, .. }
                    if *phase != Phase::Promoting && *phase != Phase::Succeeded =>
                {
                    Some(split.clone())
                }
                _ => None,
            })
            .collect()
    }
}
