//! `veer status`: what veer last recorded in the cluster's state ConfigMap, as text or JSON.

use anyhow::Result;

use veer::cli::{OutputFormat, StatusArgs, exit};
use veer::config::Config;
use veer::ids::RolloutId;
use veer::rollout::RolloutState;
use veer::sync::state::{self as sync_state, SyncState};

use super::{connect, runtime, state_location};

/// `veer status`: what veer last recorded in the cluster.
pub(crate) fn status_command(config: &Config, args: &StatusArgs) -> Result<i32> {
    runtime()?.block_on(async {
        let cluster = connect(config).await?;
        let at = state_location(config);
        let state = sync_state::read(cluster.client(), &at).await?;
        // The rollouts beside the sync: "applied" is not the whole story after a rollback.
        let rollouts = veer::controller::rollouts::list_rollouts(cluster.client(), &at.namespace)
            .await
            .unwrap_or_default();
        match args.output {
            OutputFormat::Human => match &state {
                Some(s) => print!("{}{}", status_human(s), rollouts_human(&rollouts)),
                None => println!(
                    "veer has recorded nothing in {}/{} yet: no sync has run against this cluster",
                    at.namespace, at.name
                ),
            },
            OutputFormat::Json => {
                let value = match &state {
                    Some(s) => {
                        let rollouts: Vec<serde_json::Value> = rollouts
                            .iter()
                            .map(|(id, state, policy)| {
                                serde_json::json!({
                                    "rollout": id.to_string(),
                                    "policy": policy,
                                    "phase": state.phase,
                                    "failure": state.failure.as_ref().map(ToString::to_string),
                                })
                            })
                            .collect();
                        serde_json::json!({"recorded": true, "state": s, "counts": counts(s), "rollouts": rollouts})
                    }
                    None => serde_json::json!({"recorded": false}),
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            }
        }
        Ok(exit::OK)
    })
}

fn counts(state: &SyncState) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for o in &state.objects {
        *counts.entry(o.result.clone()).or_insert(0) += 1;
    }
    counts
}

/// One line per rollout: its phase and, for a rolled-back one, that the route serves the old
/// weights while git still asks for the new ones.
fn rollouts_human(rollouts: &[(RolloutId, RolloutState, String)]) -> String {
    let mut out = String::new();
    for (id, state, _) in rollouts {
        let text = if state.phase.is_failed() {
            format!(
                "{id} ROLLED BACK{}: the route serves the old weights, not git's{}",
                state
                    .failure
                    .as_ref()
                    .map(|f| format!(" ({f})"))
                    .unwrap_or_default(),
                state
                    .revert_commit
                    .as_deref()
                    .map(|c| format!("; revert {} pushed", veer::ids::short(c)))
                    .unwrap_or_default()
            )
        } else {
            format!(
                "{id} {} ({}% to the new version)",
                state.phase,
                state.canary_weight()
            )
        };
        out.push_str(&format!("{:<11}{text}\n", "rollout"));
    }
    out
}

fn status_human(s: &SyncState) -> String {
    let mut out = String::new();
    let line = |out: &mut String, label: &str, value: String| {
        out.push_str(&format!("{label:<11}{value}\n"));
    };
    match &s.revision {
        Some(r) => line(
            &mut out,
            "revision",
            format!("{} ({}) by {}", r.commit, r.summary, r.author),
        ),
        None => line(&mut out, "revision", "none applied yet".into()),
    }
    if let Some(o) = s.outcome {
        line(
            &mut out,
            "outcome",
            match o {
                sync_state::RevisionOutcome::Applied => "applied".into(),
                sync_state::RevisionOutcome::PartiallyApplied => {
                    "PARTIALLY applied: some objects failed".into()
                }
            },
        );
    }
    if let Some(at) = &s.applied_at {
        line(&mut out, "applied at", at.clone());
    }
    let counts = counts(s)
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    line(
        &mut out,
        "objects",
        format!("{} in inventory ({counts})", s.inventory().len()),
    );
    for o in s.objects.iter().filter(|o| o.result == "failed") {
        line(
            &mut out,
            "failed",
            format!(
                "{} {}: {}",
                o.key(),
                o.code.map(|c| c.to_string()).unwrap_or_default(),
                o.message.clone().unwrap_or_default()
            ),
        );
    }
    for d in &s.drift {
        line(&mut out, "drift", format!("{d} (selfHeal is off)"));
    }
    if let Some(r) = &s.rejected {
        line(
            &mut out,
            "rejected",
            format!(
                "{} ({}): {} errors, at {}",
                r.commit, r.summary, r.errors, r.at
            ),
        );
    }
    if let Some(e) = &s.last_error {
        line(
            &mut out,
            "last error",
            format!("{} (at {})", e.message, e.at),
        );
    }
    if let Some(at) = &s.updated_at {
        line(&mut out, "updated at", at.clone());
    }
    out
}
