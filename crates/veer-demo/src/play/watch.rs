//! What the acts must show, followed as it happens: a rollout step by step until it ends
//! (and veer's revert, when it reverts), a mirror's copies and a fault's effect measured in
//! Prometheus.

use std::time::Instant;

use super::{MATCHED_SHARE, MEASURE_WINDOW, MIN_MEASURED, STATE_NAMESPACE, Stage, Want};
use super::{cluster_error, same_commit};
use crate::DemoError;
use crate::render::{self, RolloutSeen, short};
use crate::story::{self, Tree};
use veer_controller::analysis::{
    BuiltinMetric, BuiltinQuery, MetricsProvider, QueryTemplate, Vars, builtin,
};
use veer_controller::controller::rollouts::read_rollout;
use veer_controller::ids::RolloutId;
use veer_controller::manifest::rollout_policy::Revert;
use veer_controller::rollout::{Phase, RolloutState};
use veer_devcluster::exporter::{DURATION_BUCKETS_MS, ServiceKey};

impl Stage {
    /// Follow the rollout `commit` starts on the VirtualService in `vs` until it ends (and,
    /// for a rollback under `revert: git`, until veer has pushed and applied its revert).
    pub(super) async fn follow_rollout(
        &mut self,
        tree: &Tree,
        vs: &str,
        commit: &str,
        since: Instant,
        want: Want,
    ) -> Result<(bool, String, Vec<u32>), DemoError> {
        let info = story::virtual_service(tree, vs)?;
        let policy = story::policy_for(tree, vs)?;
        let reverts = policy
            .as_ref()
            .is_some_and(|p| p.spec.revert == Revert::Git);
        if let Some(p) = &policy {
            println!("{}", self.paint.dim(&render::policy_line(p)));
        }
        let id = RolloutId {
            namespace: info.namespace.clone(),
            name: info.name.clone(),
        };
        println!("  rollout {id}:");
        let mut seen = RolloutSeen::since(self.act_started_at);
        let mut weights: Vec<u32> = Vec::new();
        let mut last_split = None;
        let state: RolloutState = loop {
            let stored = read_rollout(&self.client, STATE_NAMESPACE, &id)
                .await
                .map_err(|e| cluster_error("read the rollout's state")(e.to_string()))?;
            // Once veer adopts its own revert commit, the failed rollout's state carries that
            // revision: it is still this rollout.
            if let Some((state, _, _)) = stored
                && (same_commit(&state.revision, commit)
                    || (last_split.is_some()
                        && state
                            .revert_commit
                            .as_deref()
                            .is_some_and(|r| same_commit(&state.revision, r))))
            {
                for line in render::rollout_updates(&mut seen, &state, self.paint) {
                    println!("{line}");
                }
                if last_split.as_ref() != Some(&state.current_split)
                    && (last_split.is_some() || state.current_split != state.start_split)
                {
                    weights.push(state.canary_weight());
                }
                last_split = Some(state.current_split.clone());
                // A failed rollout is done once its revert commit is recorded (when it reverts).
                let done = if state.phase.is_failed() {
                    !reverts || state.revert_commit.is_some()
                } else {
                    state.phase.is_terminal()
                };
                if done {
                    break state;
                }
            }
            self.tick(&format!("the rollout of {id}"), since).await?;
        };
        let split = render::split_text(&state.current_split);
        let result = match (want, state.phase) {
            (Want::Promoted, Phase::Succeeded) => (
                true,
                format!(
                    "promoted step by step to {}% ({split})",
                    state.canary_weight()
                ),
            ),
            (Want::RolledBack, Phase::Failed) => {
                let reason = state
                    .failure
                    .as_ref()
                    .map_or_else(|| "failed".to_string(), ToString::to_string);
                let mut outcome = format!("rolled back to {split} after {reason}");
                if let Some(revert) = &state.revert_commit {
                    let described = self.repo.describe(revert)?;
                    println!("  git log: {}", self.paint.yellow(&described));
                    self.show_applied(revert, since).await?;
                    println!(
                        "  {}",
                        self.paint
                            .dim("veer applied its own revert: git and live agree again")
                    );
                    outcome.push_str(&format!("; reverted in git by {}", short(revert)));
                    self.revert = Some(described);
                }
                (true, outcome)
            }
            (Want::Promoted | Want::RolledBack, phase) => (
                false,
                format!(
                    "expected the rollout to be {}, it ended {phase} ({split})",
                    match want {
                        Want::Promoted => "promoted",
                        Want::RolledBack => "rolled back",
                    }
                ),
            ),
        };
        Ok((result.0, result.1, weights))
    }

    /// Requests `subset` of `key` answered over [`MEASURE_WINDOW`], as its own sidecar
    /// reports them (mirrored copies included), from Prometheus.
    async fn served(&self, key: &ServiceKey, subset: &str) -> Result<Option<f64>, DemoError> {
        let vars = Vars::new(&key.namespace, &key.service, subset, MEASURE_WINDOW);
        let query = builtin::request_count().render(&vars)?;
        Ok(self.metrics.query(&query).await.value())
    }

    /// Show that the mirror's copies reach the mirrored subset, measured in Prometheus.
    pub(super) async fn measure_mirror(
        &mut self,
        tree: &Tree,
        vs: &str,
        since: Instant,
    ) -> Result<(bool, String, Vec<u32>), DemoError> {
        let info = story::virtual_service(tree, vs)?;
        let Some((key, split)) = info
            .routes()
            .into_iter()
            .filter_map(|(key, routes)| routes.plain.map(|split| (key, split)))
            .find(|(_, s)| s.mirror.is_some())
        else {
            return Ok((false, format!("{vs} mirrors nothing"), Vec::new()));
        };
        let Some(mirror) = split.mirror.clone() else {
            return Ok((false, format!("{vs} mirrors nothing"), Vec::new()));
        };
        let Some((primary, weight)) = split.weights.iter().max_by_key(|(_, w)| **w) else {
            return Ok((false, format!("{vs} routes nowhere"), Vec::new()));
        };
        let (primary, weight) = (primary.clone(), *weight);
        println!(
            "  measuring in Prometheus: requests {}/{} answered per subset over the last {} s",
            key.namespace,
            key.service,
            MEASURE_WINDOW.as_secs()
        );
        loop {
            let served = self.served(&key, &primary).await?;
            let copies = self.served(&key, &mirror.subset).await?;
            if let (Some(served), Some(copies)) = (served, copies)
                && served >= MIN_MEASURED
            {
                let share = 100.0 * copies / served;
                println!(
                    "    {primary:<4} {} {weight:>3}%  {served:>6.0} requests answered",
                    self.paint.cyan(&render::bar(weight))
                );
                println!(
                    "    {:<4} {:<20} {:>4}  {copies:>6.0} mirrored copies = {share:.1} % of {primary}'s (answers thrown away)",
                    mirror.subset,
                    format!("mirror {}%", mirror.percent),
                    ""
                );
                let ok = copies > 0.0 && (share - mirror.percent).abs() <= 10.0;
                return Ok((
                    ok,
                    format!(
                        "{} received {share:.1} % of {primary}'s requests as copies (mirrorPercentage {} %), with weight 0",
                        mirror.subset, mirror.percent
                    ),
                    Vec::new(),
                ));
            }
            self.tick("mirrored requests showing in Prometheus", since)
                .await?;
        }
    }

    /// What the callers' sidecars report for `key` over [`MEASURE_WINDOW`] (the source
    /// reporter sees faults; the destination never sees an aborted request): requests, the
    /// success rate and the p99 latency (veer's caller-side built-ins).
    async fn measure_callers(
        &self,
        key: &ServiceKey,
    ) -> Result<(Option<f64>, Option<f64>, Option<f64>), DemoError> {
        let vars = Vars::new(&key.namespace, &key.service, "", MEASURE_WINDOW);
        // The built-ins have no caller-side request count: the same selector, counted.
        let count = QueryTemplate::new(
            r#"sum(increase(istio_requests_total{reporter="source",destination_service_namespace="{{ namespace }}",destination_service_name="{{ service }}"}[{{ interval }}]))"#,
        );
        let mut out = [None, None, None];
        let templates = [
            &count,
            BuiltinMetric::CallerRequestSuccessRate.template(),
            BuiltinMetric::CallerRequestDuration.template(),
        ];
        for (slot, template) in out.iter_mut().zip(templates) {
            let query = template.render(&vars)?;
            *slot = self.metrics.query(&query).await.value();
        }
        Ok((out[0], out[1], out[2]))
    }

    /// Show the faults now live and what the callers see of them, measured in Prometheus
    /// against what the exporter's model of Istio says they should see.
    pub(super) async fn measure_fault(
        &mut self,
        tree: &Tree,
        vs: &str,
        since: Instant,
    ) -> Result<(bool, String, Vec<u32>), DemoError> {
        let info = story::virtual_service(tree, vs)?;
        for f in info.faults() {
            println!("  fault  {f}");
        }
        let Some((key, routes)) = info.routes().into_iter().next() else {
            return Ok((false, format!("{vs} routes no traffic"), Vec::new()));
        };
        let expected = story::fault_effect(&routes, MATCHED_SHARE);
        if routes.matched.is_some() {
            println!(
                "  {} {:.0} % of the requests to {} carry the header of its matched route",
                self.paint.yellow("exporter:"),
                MATCHED_SHARE * 100.0,
                key.service
            );
        }
        println!(
            "  measuring in Prometheus what the callers of {} see (reporter=\"source\"), over the last {} s:",
            key.service,
            MEASURE_WINDOW.as_secs()
        );
        loop {
            if let (Some(count), Some(success), Some(p99)) = self.measure_callers(&key).await?
                && count >= MIN_MEASURED
            {
                let failed = 100.0 - success;
                println!(
                    "    {count:.0} requests: {failed:.1} % answered 5xx by the fault (expected {:.1} %)",
                    expected.aborted
                );
                let delayed = expected.delayed >= 1.0;
                if delayed {
                    println!(
                        "    p99 latency {p99:.0} ms ({:.1} % of requests are delayed {:.0} ms)",
                        expected.delayed, expected.delay_ms
                    );
                    if let Some(note) =
                        render::p99_bucket_note(p99, expected.delay_ms, &DURATION_BUCKETS_MS)
                    {
                        println!("    {}", self.paint.dim(&note));
                    }
                } else {
                    println!("    p99 latency {p99:.0} ms");
                }
                let ok = (failed - expected.aborted).abs() <= 4.0
                    && (!delayed || p99 >= expected.delay_ms / 2.0);
                let mut outcome = format!(
                    "{failed:.1} % of the requests to {} aborted with 5xx (expected {:.1} %)",
                    key.service, expected.aborted
                );
                if delayed {
                    outcome.push_str(&format!(
                        ", p99 {:.1} s with {:.0} % delayed {:.0} s",
                        p99 / 1000.0,
                        expected.delayed,
                        expected.delay_ms / 1000.0
                    ));
                }
                return Ok((ok, outcome, Vec::new()));
            }
            self.tick("the faulty service's requests showing in Prometheus", since)
                .await?;
        }
    }
}
