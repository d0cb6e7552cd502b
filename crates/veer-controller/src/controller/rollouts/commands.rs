//! Operator commands (`veer rollout pause|resume|promote|abort|retry`): the CLI writes one
//! into the rollout's ConfigMap, and labels the ConfigMap [`COMMAND_LABEL`]`=pending` in the
//! same write; the driver reads the mailboxes once per pass (one LIST, [`read_commands`]) and
//! clears a command once applied (`store::clear_command`, which drops the label too).
//!
//! A tick and an idle pass list only the ConfigMaps labelled pending (usually none: an empty
//! answer, however many rollouts run); a pass that plans (a new commit, a change in the
//! cluster, the resync interval) lists every rollout ConfigMap, so a command written without
//! the label (by an older CLI) is still read.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use super::store::{COMMAND_KEY, NAME_KEY, NAMESPACE_KEY, ROLLOUT_LABEL, locate};
use super::{Mailbox, RolloutDriverError, RolloutId};
use crate::rollout::{Command, OperatorCommand};

/// Label the CLI puts on a rollout ConfigMap whose mailbox it wrote; `pending` until the
/// driver clears the command.
pub(super) const COMMAND_LABEL: &str = "veer.io/command";
pub(super) const PENDING: &str = "pending";

/// The commands waiting in the rollout ConfigMaps of `state_namespace`, by rollout: those
/// labelled pending, or with `every`, those of every rollout ConfigMap. One LIST.
pub(super) async fn read_commands(
    client: &kube::Client,
    state_namespace: &str,
    every: bool,
) -> Result<BTreeMap<RolloutId, Mailbox>, RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let selector = if every {
        format!("{ROLLOUT_LABEL}=true")
    } else {
        format!("{ROLLOUT_LABEL}=true,{COMMAND_LABEL}={PENDING}")
    };
    let list = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(RolloutDriverError::api(
                "read the rollout commands".into(),
                &e,
            ));
        }
    };
    Ok(list
        .items
        .into_iter()
        .filter_map(|cm| {
            let data = cm.data?;
            let mailbox = Mailbox::read(data.get(COMMAND_KEY)?)?;
            let id = RolloutId {
                namespace: data.get(NAMESPACE_KEY)?.clone(),
                name: data.get(NAME_KEY)?.clone(),
            };
            Some((id, mailbox))
        })
        .collect())
}

/// Write an operator command into a rollout's ConfigMap (merge patch, field manager
/// `veer-cli`), labelled pending; the controller applies it once and clears it. The id is above every id the
/// rollout has seen, so it is never mistaken for an old one. A state an older veer wrote and
/// not moved yet gets it where it is: the move takes the command along.
pub async fn send_command(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
    command: Command,
) -> Result<Option<OperatorCommand>, RolloutDriverError> {
    let Some(stored) = locate(client, state_namespace, id).await? else {
        return Ok(None);
    };
    let next = OperatorCommand {
        id: stored
            .state
            .last_command
            .max(stored.command.map_or(0, |p| p.id))
            + 1,
        command,
    };
    let text = serde_json::to_string(&next).unwrap_or_default();
    write_mailbox(client, state_namespace, &stored.name, &text)
        .await
        .map_err(|e| RolloutDriverError::api(format!("write the command for {id}"), &e))?;
    Ok(Some(next))
}

/// Put `text` in the mailbox of the rollout ConfigMap `name`, labelled pending, as the CLI
/// writes it (field manager `veer-cli`): never part of veer's apply of the state, which
/// would take it out again at the next store.
pub(super) async fn write_mailbox(
    client: &kube::Client,
    state_namespace: &str,
    name: &str,
    text: &str,
) -> Result<(), kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let patch = json!({
        "metadata": {"labels": {COMMAND_LABEL: PENDING}},
        "data": {COMMAND_KEY: text},
    });
    let params = PatchParams {
        field_manager: Some("veer-cli".into()),
        ..PatchParams::default()
    };
    api.patch(name, &params, &Patch::Merge(&patch))
        .await
        .map(drop)
}
