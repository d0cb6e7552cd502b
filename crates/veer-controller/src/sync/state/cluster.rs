//! The state's ConfigMaps in the cluster: read once at start, written after each sync that
//! changed something. A sharded state (format 2) is written in a crash-safe order: first the
//! shards the cluster does not hold yet (named by a digest of their bytes, so an existing
//! one is never overwritten), then the header naming them (the one write that switches the
//! state), then the shards no longer named are deleted. A crash between the steps leaves
//! the old state whole, or unnamed shards that the next write deletes.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde_json::{Map, Value, json};
use tracing::warn;

use super::{
    Encoded, OrderKey, READ_NEEDS, SHARD_KEY, SHARD_LABEL, StateError, StateLocation, SyncState,
    WRITE_NEEDS, decode, hint,
};
use crate::sync::store::{self, OwnConfigMap};

/// The ConfigMap of shard `id`.
fn shard_name(at: &StateLocation, id: &str) -> String {
    format!("{}-{id}", at.name)
}

/// The shard id of ConfigMap `name`, if it is one of this state's.
fn shard_id<'n>(at: &StateLocation, name: &'n str) -> Option<&'n str> {
    let id = name.strip_prefix(&at.name)?.strip_prefix('-')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

fn shard_selector() -> ListParams {
    ListParams::default().labels(&format!("{SHARD_LABEL}=true"))
}

fn read_error(at: &StateLocation, e: &kube::Error) -> StateError {
    StateError::Read {
        namespace: at.namespace.clone(),
        name: at.name.clone(),
        reason: e.to_string(),
        hint: hint(e, READ_NEEDS),
    }
}

fn write_error(at: &StateLocation, e: &kube::Error) -> StateError {
    StateError::Write {
        namespace: at.namespace.clone(),
        name: at.name.clone(),
        reason: e.to_string(),
        hint: hint(e, WRITE_NEEDS),
    }
}

/// Read the state; `None` when veer has recorded nothing yet.
pub async fn read(
    client: &kube::Client,
    at: &StateLocation,
) -> Result<Option<SyncState>, StateError> {
    read_into(client, at, &mut Encoded::default()).await
}

/// [`read`], telling `cache` which shards the cluster holds (those the state names and any
/// an interrupted write left): the first write after it sends only the shards that changed
/// and deletes the others.
pub async fn read_into(
    client: &kube::Client,
    at: &StateLocation,
    cache: &mut Encoded,
) -> Result<Option<SyncState>, StateError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &at.namespace);
    let Some(cm) = api
        .get_opt(&at.name)
        .await
        .map_err(|e| read_error(at, &e))?
    else {
        return Ok(None);
    };
    let data = serde_json::to_value(cm.data.unwrap_or_default()).unwrap_or(Value::Null);
    let binary = match cm.binary_data {
        Some(b) => Value::Object(
            b.into_iter()
                .map(|(k, v)| {
                    let text = base64::engine::general_purpose::STANDARD.encode(v.0);
                    (k, Value::String(text))
                })
                .collect(),
        ),
        None => json!({}),
    };
    // A sharded state's shards: one LIST (unnamed ones from an interrupted write included).
    let mut shards: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if data.get(super::SHARDS_KEY).is_some() {
        let list = api
            .list(&shard_selector())
            .await
            .map_err(|e| read_error(at, &e))?;
        for cm in list.items {
            let name = cm.metadata.name.unwrap_or_default();
            let bytes = cm.binary_data.and_then(|mut b| b.remove(SHARD_KEY));
            if let (Some(id), Some(bytes)) = (shard_id(at, &name), bytes) {
                shards.insert(id.to_string(), bytes.0);
            }
        }
    }
    let state =
        decode(&data, &binary, &|id| shards.get(id).cloned()).map_err(|(format, reason)| {
            if format {
                StateError::Format {
                    namespace: at.namespace.clone(),
                    name: at.name.clone(),
                    found: reason,
                }
            } else {
                StateError::Corrupt {
                    namespace: at.namespace.clone(),
                    name: at.name.clone(),
                    reason,
                }
            }
        })?;
    if !shards.is_empty() {
        cache.stored(shards.into_keys().collect());
    }
    Ok(Some(state))
}

/// Write the state (server-side apply, forced: veer owns its own ConfigMaps). Creates the
/// namespace when it does not exist. `cache` holds the encoded pieces of the state last
/// written with it, and `changed` the keys of the records changed since, sorted (`None`:
/// unknown); after a failure the cache is emptied (the stored state is not this one).
pub async fn write(
    client: &kube::Client,
    at: &StateLocation,
    state: &SyncState,
    cache: &mut Encoded,
    changed: Option<&[OrderKey]>,
) -> Result<(), StateError> {
    let written = write_encoded(client, at, state, cache, changed).await;
    if written.is_err() {
        *cache = Encoded::default();
    }
    written
}

async fn write_encoded(
    client: &kube::Client,
    at: &StateLocation,
    state: &SyncState,
    cache: &mut Encoded,
    changed: Option<&[OrderKey]>,
) -> Result<(), StateError> {
    let stored = cache.encode(state, changed).map_err(|e| match e {
        StateError::Write { reason, hint, .. } => StateError::Write {
            namespace: at.namespace.clone(),
            name: at.name.clone(),
            reason,
            hint,
        },
        other => other,
    })?;
    let mut labels = Map::new();
    labels.insert(SHARD_LABEL.into(), json!("true"));
    for shard in &stored.shards {
        let Some(body) = &shard.body else { continue };
        let name = shard_name(at, &shard.id);
        let cm = OwnConfigMap {
            namespace: &at.namespace,
            name: &name,
            labels: labels.clone(),
            data: json!({}),
            binary_data: json!({ SHARD_KEY: body }),
        };
        store::write(client, &cm)
            .await
            .map_err(|e| write_error(at, &e))?;
    }
    let cm = OwnConfigMap {
        namespace: &at.namespace,
        name: &at.name,
        labels: Map::new(),
        data: stored.data,
        binary_data: stored.binary,
    };
    store::write(client, &cm)
        .await
        .map_err(|e| write_error(at, &e))?;
    let kept: BTreeSet<String> = stored.shards.into_iter().map(|s| s.id).collect();
    // The shards the state no longer names: those of the last write, or (none known: the
    // first write of this process, or after a failure) every shard of this state's.
    let stale: Vec<String> = match cache.stored_ids() {
        Some(before) => before.difference(&kept).cloned().collect(),
        None => listed_shards(client, at)
            .await
            .into_iter()
            .filter(|id| !kept.contains(id))
            .collect(),
    };
    cache.stored(kept);
    for id in stale {
        let name = shard_name(at, &id);
        if let Err(e) = store::delete(client, &at.namespace, &name).await {
            // Left behind, it is deleted by the first write of the next start.
            warn!(configmap = %name, error = %e, "cannot delete a shard of veer's state no longer used");
        }
    }
    Ok(())
}

/// The ids of this state's shard ConfigMaps (names only); none when they cannot be listed
/// (logged: the next start tries again).
async fn listed_shards(client: &kube::Client, at: &StateLocation) -> Vec<String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &at.namespace);
    match api.list_metadata(&shard_selector()).await {
        Ok(list) => list
            .items
            .iter()
            .filter_map(|m| shard_id(at, m.metadata.name.as_deref()?).map(str::to_string))
            .collect(),
        Err(e) => {
            warn!(error = %e, "cannot list the shards of veer's state; unused ones stay until the next start");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_are_told_from_other_configmaps() {
        let at = StateLocation {
            namespace: "veer".into(),
            name: "veer-state".into(),
        };
        let name = shard_name(&at, "0123456789abcdef");
        assert_eq!(name, "veer-state-0123456789abcdef");
        assert_eq!(shard_id(&at, &name), Some("0123456789abcdef"));
        for other in [
            "veer-state",
            "veer-state-0123",
            "veer-state-0123456789abcdeg",
            "other-state-0123456789abcdef",
            "veer-stateX0123456789abcdef",
        ] {
            assert_eq!(shard_id(&at, other), None, "{other}");
        }
    }
}
