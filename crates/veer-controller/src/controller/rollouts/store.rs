//! The rollout ConfigMaps: one per rollout in veer's state namespace
//! ([`RolloutId::config_map`]), holding its state so a restarted veer resumes. The driver
//! loads them once, stores each next state (server-side apply) and deletes a rollout's when
//! its VirtualService leaves git; `veer rollout` reads and lists them.
//!
//! Older veers named them `veer-rollout-NS-NAME` ([`legacy_config_map`]), a name two
//! rollouts could share: the load moves each state found under another name than its
//! rollout's to that name (the new one written, then the old one deleted), and the CLI reads
//! a state not moved yet where it is.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use tracing::{debug, info};

use super::commands::{COMMAND_LABEL, write_mailbox};
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
/// A state under another name than its rollout's (an older veer's) is moved first.
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
    let mut current = BTreeMap::new();
    let mut misnamed = Vec::new();
    for cm in &list.items {
        if let Some(found) = listed(cm)? {
            if found.misnamed {
                misnamed.push(found);
            } else {
                current.insert(found.id, found.tracked);
            }
        }
    }
    for old in misnamed {
        migrate(client, state_namespace, &mut current, old).await?;
    }
    Ok(current.into_iter().collect())
}

/// Move `old`, a state under another name than its rollout's, to that name: written through
/// [`store`] (its pending command too), then the old ConfigMap deleted; a crash between the
/// two leaves both, and the next load deletes the old one. Already under its name (written
/// since by this veer: newer), the state there wins and `old` is only deleted; its command is
/// moved while the new one holds none and the state has not applied it.
async fn migrate(
    client: &kube::Client,
    state_namespace: &str,
    current: &mut BTreeMap<RolloutId, Tracked>,
    old: Listed,
) -> Result<(), RolloutDriverError> {
    let Listed {
        id,
        name,
        policy,
        tracked: Tracked { state, command },
        ..
    } = old;
    let to = id.config_map();
    let target = match current.entry(id.clone()) {
        std::collections::btree_map::Entry::Occupied(kept) => {
            info!(rollout = %id, from = %name, to = %to, "a state under an older veer's name, superseded by the one under its own: deleted");
            kept.into_mut()
        }
        std::collections::btree_map::Entry::Vacant(free) => {
            store(client, state_namespace, &id, &policy, &state, None).await?;
            info!(rollout = %id, from = %name, to = %to, phase = %state.phase, step = state.step, "rollout state moved from an older veer's ConfigMap name");
            free.insert(Tracked {
                state,
                command: None,
            })
        }
    };
    if let Some(mailbox) = command
        && target.command.is_none()
        && mailbox.command.id > target.state.last_command
    {
        write_mailbox(client, state_namespace, &to, &mailbox.text)
            .await
            .map_err(|e| RolloutDriverError::api(format!("move the command of {id}"), &e))?;
        info!(rollout = %id, command = %mailbox.text, "pending command moved with the state");
        target.command = Some(mailbox);
    }
    sync::store::delete(client, state_namespace, &name)
        .await
        .map_err(|e| RolloutDriverError::api(format!("delete {name}, the old state of {id}"), &e))
}

/// The name older veers gave `id`'s ConfigMap: `veer-rollout-NS-NAME`, cut at 253
/// characters. Not one per rollout (`a-b/c` and `a/b-c` share it): it exists only to read
/// and move the states older veers wrote.
pub(super) fn legacy_config_map(id: &RolloutId) -> String {
    let name = format!("veer-rollout-{}-{}", id.namespace, id.name);
    name.chars().take(253).collect()
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
    Ok(Some((
        id,
        Tracked {
            state: Arc::new(state),
            command,
        },
    )))
}

/// A rollout ConfigMap as listed.
struct Listed {
    id: RolloutId,
    /// Its name: not `id.config_map()` when `misnamed`.
    name: String,
    misnamed: bool,
    policy: String,
    tracked: Tracked,
}

/// `cm` as [`Listed`]; `None` when it is not a rollout's.
fn listed(cm: &ConfigMap) -> Result<Option<Listed>, RolloutDriverError> {
    let Some((id, tracked)) = tracked_from(cm)? else {
        return Ok(None);
    };
    let name = cm.metadata.name.clone().unwrap_or_default();
    Ok(Some(Listed {
        misnamed: name != id.config_map(),
        name,
        policy: policy_of(cm),
        id,
        tracked,
    }))
}

fn policy_of(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get(POLICY_KEY).cloned())
        .unwrap_or_default()
}

/// One rollout's ConfigMap as the CLI finds it.
pub(super) struct Located {
    /// Where: `id.config_map()`, or the older veers' name while the state was not moved.
    pub name: String,
    pub state: RolloutState,
    pub command: Option<OperatorCommand>,
    pub policy: String,
}

/// `id`'s ConfigMap, under its name, else under the one an older veer gave it (when it holds
/// `id`'s state: that name could be another rollout's too).
pub(super) async fn locate(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
) -> Result<Option<Located>, RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    for name in [id.config_map(), legacy_config_map(id)] {
        let cm = api
            .get_opt(&name)
            .await
            .map_err(|e| RolloutDriverError::api(format!("read the rollout state of {id}"), &e))?;
        let Some(cm) = cm else { continue };
        if let Some((found, t)) = tracked_from(&cm)?
            && found == *id
        {
            return Ok(Some(Located {
                name,
                state: Arc::unwrap_or_clone(t.state),
                command: t.command.map(|m| m.command),
                policy: policy_of(&cm),
            }));
        }
    }
    Ok(None)
}

/// Read one rollout's state and pending command from the cluster (for `veer rollout`).
pub async fn read_rollout(
    client: &kube::Client,
    state_namespace: &str,
    id: &RolloutId,
) -> Result<Option<(RolloutState, Option<OperatorCommand>, String)>, RolloutDriverError> {
    let located = locate(client, state_namespace, id).await?;
    Ok(located.map(|l| (l.state, l.command, l.policy)))
}

/// Every stored rollout (for `veer rollout status`), once each: a state an older veer wrote
/// and not moved yet counts when none is under the rollout's own name.
pub async fn list_rollouts(
    client: &kube::Client,
    state_namespace: &str,
) -> Result<Vec<(RolloutId, RolloutState, String)>, RolloutDriverError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), state_namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}=true")))
        .await
        .map_err(|e| RolloutDriverError::api("list the rollout states".into(), &e))?;
    let mut out: BTreeMap<RolloutId, (bool, RolloutState, String)> = BTreeMap::new();
    for cm in &list.items {
        let Some(found) = listed(cm)? else { continue };
        if out.get(&found.id).is_none_or(|(misnamed, ..)| *misnamed) {
            let entry = (
                found.misnamed,
                Arc::unwrap_or_clone(found.tracked.state),
                found.policy,
            );
            out.insert(found.id, entry);
        }
    }
    Ok(out
        .into_iter()
        .map(|(id, (_, state, policy))| (id, state, policy))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_name_is_the_one_older_veers_wrote() {
        let id = |namespace: &str, name: &str| RolloutId {
            namespace: namespace.into(),
            name: name.into(),
        };
        assert_eq!(
            legacy_config_map(&id("shop", "reviews")),
            "veer-rollout-shop-reviews"
        );
        // Shared by two rollouts, hence the new name.
        assert_eq!(
            legacy_config_map(&id("a-b", "c")),
            legacy_config_map(&id("a", "b-c"))
        );
        let long = id("shop", &"r".repeat(253));
        assert_eq!(
            legacy_config_map(&long),
            format!("veer-rollout-shop-{}", "r".repeat(253 - 18))
        );
        assert_ne!(legacy_config_map(&long), long.config_map());
    }
}
