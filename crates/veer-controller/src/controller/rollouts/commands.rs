//! Operator commands (`veer rollout pause|resume|promote|abort|retry`): the CLI writes one
//! into the rollout's ConfigMap, the driver reads it at its next pass and clears it once
//! applied.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::store::{COMMAND_KEY, read_rollout};
use super::{Mailbox, RolloutDriverError, RolloutId};
use crate::rollout::{Command, OperatorCommand};

/// The command waiting in `id`'s rollout ConfigMap, if any.
pub(super) async fn read_command(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
) -> Result<Option<Mailbox>, RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let cm = api
        .get_opt(&id.config_map())
        .await
        .map_err(|e| RolloutDriverError::api(format!("read the rollout state of {id}"), &e))?;
    Ok(cm
        .and_then(|c| c.data)
        .and_then(|d| d.get(COMMAND_KEY).and_then(|t| Mailbox::read(t))))
}

/// Write an operator command into a rollout's ConfigMap (merge patch, field manager
/// `veer-cli`); the controller applies it once and clears it. The id is above every id the
/// rollout has seen, so it is never mistaken for an old one.
pub async fn send_command(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
    command: Command,
) -> Result<Option<OperatorCommand>, RolloutDriverError> {
    let Some((state, pending, _)) = read_rollout(client, state_namespace, id).await? else {
        return Ok(None);
    };
    let next = OperatorCommand {
        id: state.last_command.max(pending.map_or(0, |p| p.id)) + 1,
        command,
    };
    let text = serde_json::to_string(&next).unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let patch = json!({"data": {COMMAND_KEY: text}});
    let params = PatchParams {
        field_manager: Some("veer-cli".into()),
        ..PatchParams::default()
    };
    api.patch(&id.config_map(), &params, &Patch::Merge(&patch))
        .await
        .map_err(|e| RolloutDriverError::api(format!("write the command for {id}"), &e))?;
    Ok(Some(next))
}
