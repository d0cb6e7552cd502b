//! The rollout ConfigMaps: one per rollout in veer's state namespace, holding its state so a
//! restarted veer resumes. The driver loads them once, stores each next state (server-side
//! apply) and deletes a rollout's when its VirtualService leaves git; `veer rollout` reads
//! and lists them.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tracing::{debug, info};

use super::commands::COMMAND_LABEL;
use super::ports::Ports;
use super::{Mailbox, RolloutDriver, RolloutDriverError, RolloutId, Tracked};
use crate::rollout::{OperatorCommand, RolloutState};
use crate::sync;

/// Data keys and labels of a rollout's ConfigMap.
pub(super) const STATE_KEY: &str = "state.json";
/// Where `veer rollout pause|resume|...` writes its command (`{"id": N, "command": "pause"}`).
pub(super) const COMMAND_KEY: &str = "command";
pub(super) const NAMESPACE_KEY: &str = "namespace";
pub(super) const NAME_KEY: &str = "name";
pub(super) const POLICY_KEY: &str = "policy";
/// Label on every rollout ConfigMap, so they can be listed.
pub(super) const ROLLOUT_LABEL: &str = "veer.io/rollout";

impl RolloutDriver {
    /// Read every stored rollout once (one LIST).
    pub(crate) async fn load(&mut self, ports: &Ports<'_>) -> Result<(), RolloutDriverError> {
        if self.loaded {
            return Ok(());
        }
        for (id, tracked) in ports.store.load().await? {
            info!(rollout = %id, phase = %tracked.state.phase, step = tracked.state.step, "rollout state read from the cluster");
            self.changed.insert(id.clone());
            self.rollouts.insert(id, tracked);
        }
        self.loaded = true;
        Ok(())
    }

    /// A rollout whose state was deleted: its metric series and what the driver knew go.
    pub(super) fn forgotten(&mut self, id: &RolloutId) {
        info!(rollout = %id, "VirtualService left git: rollout state deleted");
        self.metrics.forget_rollout(&id.to_string());
        if self.rollouts.remove(id).is_some() {
            self.changed.insert(id.clone());
        }
        self.interfered.remove(id);
        self.due.remove(id);
    }
}

/// Every stored rollout in `state_namespace` (one LIST; none when the namespace is not there).
pub(super) async fn load_all(
    client: &kube::Client,
    state_namespace: &str,
) -> Result<Vec<(RolloutId, Tracked)>, RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let list = match api
        .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}=true")))
        .await
    {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Vec::new()),
        Err(e) => {
            return Err(RolloutDriverError::api(
                "list the rollout states".into(),
                &e,
            ));
        }
    };
    let mut out = Vec::new();
    for cm in &list.items {
        if let Some(found) = tracked_from(cm)? {
            out.push(found);
        }
    }
    Ok(out)
}

/// Delete `id`'s rollout ConfigMap (gone already is fine).
pub(super) async fn delete(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
) -> Result<(), RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    match api.delete(&id.config_map(), &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(RolloutDriverError::api(
            format!("delete the rollout state of {id}"),
            &e,
        )),
    }
}

/// Store the state through [`sync::store`], the one writer of veer's own ConfigMaps (the
/// sync state's too: same retries, the namespace created when missing); `clear_command`
/// removes the consumed command, written as that text (a JSON patch that first tests the
/// mailbox still holds it: the CLI writes as another manager, at any time; a newer command
/// stays).
pub(super) async fn store(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
    policy: &str,
    state: &RolloutState,
    clear_command: Option<&str>,
) -> Result<(), RolloutDriverError> {
    let name = id.config_map();
    let mut labels = serde_json::Map::new();
    labels.insert(ROLLOUT_LABEL.into(), json!("true"));
    let cm = sync::store::OwnConfigMap {
        namespace: state_namespace,
        name: &name,
        labels,
        data: json!({
            NAMESPACE_KEY: id.namespace,
            NAME_KEY: id.name,
            POLICY_KEY: policy,
            STATE_KEY: state.encode(),
        }),
        binary_data: json!({}),
    };
    sync::store::write(client, &cm)
        .await
        .map_err(|e| RolloutDriverError::api(format!("store the rollout state of {id}"), &e))?;
    if let Some(text) = clear_command {
        self::clear_command(client, state_namespace, id, text).await?;
    }
    Ok(())
}

/// Remove the command of `id`'s rollout if its mailbox still holds `text` (a JSON patch whose
/// `test` operation is the precondition). `Ok(false)`: it holds another command now, written
/// while the last one was being applied; that one stays, to be read at the next pass.
pub async fn clear_command(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
    text: &str,
) -> Result<bool, RolloutDriverError> {
    let failed = |message: String| RolloutDriverError::Api {
        what: format!("clear the command of {id}"),
        message,
        hint: "this is a bug in veer; please report it".into(),
    };
    let path = format!("/data/{COMMAND_KEY}");
    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": path, "value": text},
        {"op": "remove", "path": path},
    ]))
    .map_err(|e| failed(e.to_string()))?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    match api
        .patch(
            &id.config_map(),
            &PatchParams::default(),
            &Patch::<()>::Json(ops),
        )
        .await
    {
        Ok(cleared) => {
            unlabel(&api, id, &cleared).await;
            Ok(true)
        }
        // The test failed (Kubernetes answers 422 Invalid).
        Err(kube::Error::Api(s)) if s.code == 422 => {
            info!(rollout = %id, "a newer command arrived while the last one was applied; it is read at the next pass");
            Ok(false)
        }
        Err(e) => Err(RolloutDriverError::api(
            format!("clear the command of {id}"),
            &e,
        )),
    }
}

/// Drop the pending label from `cleared` (the ConfigMap as the clearing left it), only while
/// nothing was written since (a JSON patch testing its resourceVersion): a command the CLI
/// wrote meanwhile keeps its label. Best effort: a label left behind only makes the ticks'
/// LIST return a ConfigMap with an empty mailbox.
async fn unlabel(api: &Api<ConfigMap>, id: &RolloutId, cleared: &ConfigMap) {
    let labelled = cleared
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(COMMAND_LABEL));
    let Some(version) = cleared.metadata.resource_version.as_deref() else {
        return;
    };
    if !labelled {
        return;
    }
    let label = format!("/metadata/labels/{}", COMMAND_LABEL.replace('/', "~1"));
    let Ok(ops) = serde_json::from_value::<json_patch::Patch>(json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": version},
        {"op": "remove", "path": label},
    ])) else {
        return;
    };
    let patch = Patch::<()>::Json(ops);
    if let Err(e) = api
        .patch(&id.config_map(), &PatchParams::default(), &patch)
        .await
    {
        debug!(rollout = %id, error = %e, "the command label stays (written again meanwhile?)");
    }
}

/// A rollout ConfigMap as `(id, tracked)`; `None` when it is not one.
fn tracked_from(cm: &ConfigMap) -> Result<Option<(RolloutId, Tracked)>, RolloutDriverError> {
    let Some(data) = &cm.data else {
        return Ok(None);
    };
    let (Some(ns), Some(name), Some(stored)) = (
        data.get(NAMESPACE_KEY),
        data.get(NAME_KEY),
        data.get(STATE_KEY),
    ) else {
        return Ok(None);
    };
    let id = RolloutId {
        namespace: ns.clone(),
        name: name.clone(),
    };
    let state = RolloutState::decode(&format!("VirtualService {id}"), stored)?;
    let command = data.get(COMMAND_KEY).and_then(|t| Mailbox::read(t));
    Ok(Some((id, Tracked { state, command })))
}

/// Read one rollout's state and pending command from the cluster (for `veer rollout`).
pub async fn read_rollout(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
) -> Result<Option<(RolloutState, Option<OperatorCommand>, String)>, RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let cm = api
        .get_opt(&id.config_map())
        .await
        .map_err(|e| RolloutDriverError::api(format!("read the rollout state of {id}"), &e))?;
    let Some(cm) = cm else { return Ok(None) };
    let policy = cm
        .data
        .as_ref()
        .and_then(|d| d.get(POLICY_KEY).cloned())
        .unwrap_or_default();
    Ok(tracked_from(&cm)?.map(|(_, t)| (t.state, t.command.map(|m| m.command), policy)))
}

/// Every stored rollout (for `veer rollout status`).
pub async fn list_rollouts(
    client: &kube::Client,
    state_namespace: &str,
) -> Result<Vec<(RolloutId, RolloutState, String)>, RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}=true")))
        .await
        .map_err(|e| RolloutDriverError::api("list the rollout states".into(), &e))?;
    let mut out = Vec::new();
    for cm in &list.items {
        let policy = cm
            .data
            .as_ref()
            .and_then(|d| d.get(POLICY_KEY).cloned())
            .unwrap_or_default();
        if let Some((id, t)) = tracked_from(cm)? {
            out.push((id, t.state, policy));
        }
    }
    Ok(out)
}
