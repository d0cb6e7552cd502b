//! veer's memory, kept in the cluster (the pod is disposable): one ConfigMap, by default
//! `veer/veer-state`, holding the applied revision, the inventory (what veer applied, so it
//! knows what it may prune), each object's `desired_hash` as applied (to tell a git change
//! from drift), each object's last result, the last error and timestamps.
//!
//! Format 1 (documented in README): `data.format: "1"` and the [`SyncState`] as JSON in
//! `data["state.json"]`; when that JSON is larger than [`COMPRESS_ABOVE`] bytes it is stored
//! gzip-compressed in `binaryData["state.json.gz"]` instead (about 60 bytes per object, so
//! ~16,000 objects fit in the 1 MiB ConfigMap limit; beyond that writing fails, naming the
//! limit). Written with server-side apply (field manager `veer`) after each sync that changed
//! something, from cached pieces so that a small change costs little to encode (module `encoding`);
//! the records change in place ([`StateChange`]); read once at start.

mod change;
mod encoding;
#[cfg(test)]
mod roundtrip;

use std::io::Read;

use base64::Engine as _;
use flate2::read::GzDecoder;
use kube::api::Api;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::manifest::ObjectKey;

pub use change::StateChange;
pub use encoding::{Encoded, OrderKey};

/// The current format.
pub const STATE_FORMAT: u32 = 1;
/// Plain JSON up to this size; gzip above it.
pub const COMPRESS_ABOVE: usize = 256 * 1024;
/// What a ConfigMap may hold (etcd's limit is 1 MiB for the whole object; leave room).
pub const MAX_STATE_BYTES: usize = 1000 * 1024;

const JSON_KEY: &str = "state.json";
const BUG: &str = "report this as a veer bug";
/// The RBAC a state read and a state write need.
const READ_NEEDS: &str = "get on configmaps in this namespace";
const WRITE_NEEDS: &str =
    "patch on configmaps in this namespace (and on namespaces, if veer must create it)";
const GZIP_KEY: &str = "state.json.gz";

/// The commit veer applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRecord {
    pub commit: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub author: String,
}

/// How the applied revision went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevisionOutcome {
    /// Every object is as git says.
    Applied,
    /// Some objects failed; the others were applied.
    PartiallyApplied,
}

/// A revision that failed validation: nothing from it was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedRecord {
    pub commit: String,
    #[serde(default)]
    pub summary: String,
    pub errors: usize,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRecord {
    pub message: String,
    pub at: String,
}

/// One object veer knows about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRecord {
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// `desired_hash` of the object as veer last applied it; `None`: never applied (it is
    /// then not in the inventory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Last result: `created`, `updated`, `unchanged`, `failed`, `prune-skipped`, …
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ObjectRecord {
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    pub fn new(key: &ObjectKey, hash: Option<String>, result: &str) -> Self {
        ObjectRecord {
            group: key.group.clone(),
            version: key.version.clone(),
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            hash,
            result: result.to_string(),
            code: None,
            message: None,
        }
    }

    /// Its identity (API version aside), borrowed.
    pub fn identity(&self) -> crate::manifest::ObjectIdentity<'_> {
        crate::manifest::ObjectIdentity {
            group: &self.group,
            kind: &self.kind,
            namespace: self.namespace.as_deref(),
            name: &self.name,
        }
    }

    /// In the inventory: veer applied it.
    pub fn in_inventory(&self) -> bool {
        self.hash.is_some()
    }
}

/// Everything veer remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncState {
    pub format: u32,
    /// The revision last applied (fully or partly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<RevisionRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RevisionOutcome>,
    /// When that revision was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    /// The newest revision rejected by validation, if it came after the applied one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<RejectedRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorRecord>,
    /// Objects veer applied or tried to, sorted by key.
    #[serde(default)]
    pub objects: Vec<ObjectRecord>,
    /// Objects that drifted and were left alone (selfHeal off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// When this record was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl Default for SyncState {
    fn default() -> Self {
        SyncState {
            format: STATE_FORMAT,
            revision: None,
            outcome: None,
            applied_at: None,
            rejected: None,
            last_error: None,
            objects: Vec::new(),
            drift: Vec::new(),
            updated_at: None,
        }
    }
}

impl SyncState {
    /// Keys veer applied: the only objects it may prune.
    pub fn inventory(&self) -> Vec<ObjectKey> {
        self.objects
            .iter()
            .filter(|o| o.in_inventory())
            .map(ObjectRecord::key)
            .collect()
    }

    pub fn record(&self, key: &ObjectKey) -> Option<&ObjectRecord> {
        self.objects.iter().find(|o| o.key().same_object(key))
    }

    /// The same content, timestamps aside: is a write needed? Field by field, without
    /// copies (every pass asks, and a state holds a record per object).
    pub fn same_content(&self, other: &SyncState) -> bool {
        let SyncState {
            format,
            revision,
            outcome,
            applied_at,
            rejected,
            last_error,
            objects,
            drift,
            updated_at: _,
        } = self;
        *format == other.format
            && *revision == other.revision
            && *outcome == other.outcome
            && *applied_at == other.applied_at
            && *rejected == other.rejected
            && *last_error == other.last_error
            && *drift == other.drift
            && *objects == other.objects
    }
}

/// What can go wrong with the state ConfigMap.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read veer's state {namespace}/{name}: {reason}; {hint}")]
    Read {
        namespace: String,
        name: String,
        reason: String,
        /// What to check, by the kind of failure (see [`hint`]).
        hint: String,
    },
    #[error(
        "veer's state {namespace}/{name} is not readable: {reason}; delete the ConfigMap to start over (veer then prunes nothing until it has applied again)"
    )]
    Corrupt {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error(
        "veer's state {namespace}/{name} has format {found}, newer than this veer understands ({STATE_FORMAT}); upgrade veer"
    )]
    Format {
        namespace: String,
        name: String,
        found: String,
    },
    #[error(
        "veer's state is {bytes} bytes even compressed, over the ConfigMap limit of {MAX_STATE_BYTES}; split the repository across several veer instances"
    )]
    TooLarge { bytes: usize },
    #[error("cannot write veer's state {namespace}/{name}: {reason}; {hint}")]
    Write {
        namespace: String,
        name: String,
        reason: String,
        hint: String,
    },
}

impl StateError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            StateError::Read { .. } => "state_read",
            StateError::Corrupt { .. } => "state_corrupt",
            StateError::Format { .. } => "state_format",
            StateError::TooLarge { .. } => "state_too_large",
            StateError::Write { .. } => "state_write",
        }
    }
}

/// What to check after a failed state read or write, most likely first: a refusal names the
/// RBAC `needed`; an unanswered request points at the server, not at RBAC. Pure.
pub fn hint(error: &kube::Error, needed: &str) -> String {
    match error {
        kube::Error::Api(status) => match status.code {
            403 => format!("grant veer's service account {needed}"),
            401 => "the API server refused veer's credentials: check the kubeconfig or the service account token".into(),
            _ => "see the API server's message".into(),
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            "the API server did not answer: check that it is up and reachable (kubeconfig server address, network)".into()
        }
        _ => "check the API server and veer's kubeconfig".into(),
    }
}

/// The ConfigMap's `data` and `binaryData` for a state, encoded whole. Pure.
pub fn encode(state: &SyncState) -> Result<(Value, Value), StateError> {
    Encoded::default().encode(state, None)
}

/// A state from a ConfigMap's `data` and `binaryData`. Errors carry no names; [`read`]
/// adds them. Pure.
pub fn decode(data: &Value, binary: &Value) -> Result<SyncState, (bool, String)> {
    let format = data.get("format").and_then(Value::as_str).unwrap_or("");
    if format != STATE_FORMAT.to_string() {
        return Err((true, format.to_string()));
    }
    let text = if let Some(t) = data.get(JSON_KEY).and_then(Value::as_str) {
        t.to_string()
    } else if let Some(b) = binary.get(GZIP_KEY).and_then(Value::as_str) {
        let zipped = base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| (false, format!("{GZIP_KEY} is not base64: {e}")))?;
        let mut text = String::new();
        GzDecoder::new(zipped.as_slice())
            .read_to_string(&mut text)
            .map_err(|e| (false, format!("{GZIP_KEY} is not gzip JSON: {e}")))?;
        text
    } else {
        return Err((
            false,
            format!("neither {JSON_KEY} nor {GZIP_KEY} is present"),
        ));
    };
    serde_json::from_str(&text).map_err(|e| (false, format!("{JSON_KEY}: {e}")))
}

/// Where the state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLocation {
    pub namespace: String,
    pub name: String,
}

/// Read the state; `None` when veer has recorded nothing yet.
pub async fn read(
    client: &kube::Client,
    at: &StateLocation,
) -> Result<Option<SyncState>, StateError> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &at.namespace);
    let cm = api.get_opt(&at.name).await.map_err(|e| StateError::Read {
        namespace: at.namespace.clone(),
        name: at.name.clone(),
        reason: e.to_string(),
        hint: hint(&e, READ_NEEDS),
    })?;
    let Some(cm) = cm else {
        return Ok(None);
    };
    let data = serde_json::to_value(cm.data.unwrap_or_default()).unwrap_or(Value::Null);
    let binary = match cm.binary_data {
        Some(b) => Value::Object(
            b.into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        Value::String(base64::engine::general_purpose::STANDARD.encode(v.0)),
                    )
                })
                .collect(),
        ),
        None => json!({}),
    };
    decode(&data, &binary)
        .map(Some)
        .map_err(|(format, reason)| {
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
        })
}

/// Write the state (server-side apply, forced: veer owns its own ConfigMap). Creates the
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
    let err = |e: kube::Error| StateError::Write {
        namespace: at.namespace.clone(),
        name: at.name.clone(),
        reason: e.to_string(),
        hint: hint(&e, WRITE_NEEDS),
    };
    let (data, binary) = cache.encode(state, changed).map_err(|e| match e {
        StateError::Write { reason, hint, .. } => StateError::Write {
            namespace: at.namespace.clone(),
            name: at.name.clone(),
            reason,
            hint,
        },
        other => other,
    })?;
    let cm = super::store::OwnConfigMap {
        namespace: &at.namespace,
        name: &at.name,
        labels: serde_json::Map::new(),
        data,
        binary_data: binary,
    };
    super::store::write(client, &cm).await.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: usize) -> SyncState {
        let objects = (0..n)
            .map(|i| ObjectRecord {
                group: "networking.istio.io".into(),
                version: "v1".into(),
                kind: "VirtualService".into(),
                namespace: Some("shop".into()),
                name: format!("route-{i}"),
                hash: Some(crate::diff::desired_hash(&json!({"i": i}))),
                result: "created".into(),
                code: None,
                message: None,
            })
            .collect();
        SyncState {
            revision: Some(RevisionRecord {
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
                summary: "s".into(),
                author: "a".into(),
            }),
            outcome: Some(RevisionOutcome::Applied),
            objects,
            ..SyncState::default()
        }
    }

    #[test]
    fn small_state_is_plain_json_and_round_trips() {
        let s = state(3);
        let (data, binary) = encode(&s).unwrap();
        assert_eq!(data["format"], "1");
        assert!(data[JSON_KEY].as_str().unwrap().contains("route-2"));
        assert_eq!(binary, json!({}));
        assert_eq!(decode(&data, &binary).unwrap(), s);
    }

    #[test]
    fn ten_thousand_objects_are_compressed_under_the_limit_and_round_trip() {
        let s = state(10_000);
        let (data, binary) = encode(&s).unwrap();
        assert!(data.get(JSON_KEY).is_none());
        let size = binary[GZIP_KEY].as_str().unwrap().len();
        assert!(size < MAX_STATE_BYTES, "{size}");
        assert_eq!(decode(&data, &binary).unwrap(), s);
    }

    #[test]
    fn other_formats_and_garbage_are_refused() {
        assert_eq!(
            decode(&json!({"format": "2"}), &json!({})).unwrap_err(),
            (true, "2".to_string())
        );
        assert!(
            !decode(&json!({"format": "1", "state.json": "{"}), &json!({}))
                .unwrap_err()
                .0
        );
        assert!(!decode(&json!({"format": "1"}), &json!({})).unwrap_err().0);
    }

    #[test]
    fn inventory_is_what_was_applied() {
        let mut s = state(2);
        s.objects[1].hash = None;
        s.objects[1].result = "failed".into();
        assert_eq!(s.inventory().len(), 1);
        assert_eq!(s.inventory()[0].name, "route-0");
    }

    #[test]
    fn hints_name_rbac_only_for_a_refusal() {
        let refused = kube::Error::Api(Box::new(
            kube::core::Status::failure("configmaps is forbidden", "Forbidden").with_code(403),
        ));
        assert!(hint(&refused, READ_NEEDS).contains("get on configmaps"));
        let reset = kube::Error::Service("connection reset by peer".into());
        let h = hint(&reset, READ_NEEDS);
        assert!(h.contains("did not answer") && !h.contains("grant"), "{h}");
        let unauthorized = kube::Error::Api(Box::new(
            kube::core::Status::failure("Unauthorized", "Unauthorized").with_code(401),
        ));
        assert!(hint(&unauthorized, WRITE_NEEDS).contains("credentials"));
    }

    #[test]
    fn timestamps_alone_are_not_a_change() {
        let a = state(1);
        let mut b = a.clone();
        b.updated_at = Some("2026-11-25T00:00:00Z".into());
        assert!(a.same_content(&b));
        b.objects[0].result = "updated".into();
        assert!(!a.same_content(&b));
    }
}
