//! veer's memory, kept in the cluster (the pod is disposable): one ConfigMap, by default
//! `veer/veer-state`, holding the applied revision, the inventory (what veer applied, so it
//! knows what it may prune), each object's `desired_hash` as applied (to tell a git change
//! from drift), each object's last result, the last error and timestamps.
//!
//! Documented in README. Format 1: `data.format: "1"` and the [`SyncState`] as JSON in
//! `data["state.json"]`, while that JSON is at most [`COMPRESS_ABOVE`] bytes (older veers
//! also wrote it gzip-compressed in `binaryData["state.json.gz"]`: still read). Format 2,
//! above that: the same JSON document cut in three, its start in `data["head.json"]`, its
//! records gzip-compressed in shard ConfigMaps named `<name>-<id>` (labelled
//! [`SHARD_LABEL`], ids in order in `data["shards"]`), its end in `data["tail.json"]`; a
//! small change stores one shard and the header (module `encoding`). Written with
//! server-side apply (field manager `veer`) after each sync that changed something, the
//! records changed in place ([`StateChange`]); read once at start (module `cluster`).

mod change;
mod cluster;
mod encoding;
#[cfg(test)]
mod roundtrip;

use std::io::Read;

use base64::Engine as _;
use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::ObjectKey;

pub use change::StateChange;
pub use cluster::{read, read_into, write};
pub use encoding::{Encoded, OrderKey, Shard, Stored};

/// The format of the JSON document, and of a state stored whole in one ConfigMap.
pub const STATE_FORMAT: u32 = 1;
/// The format of a state stored in shards.
pub const SHARDED_FORMAT: u32 = 2;
/// The label on every shard ConfigMap (value `"true"`).
pub const SHARD_LABEL: &str = "veer.io/state-shard";
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
/// Format 2: the document before its records, after them, and the shards' ids.
const HEAD_KEY: &str = "head.json";
const TAIL_KEY: &str = "tail.json";
const SHARDS_KEY: &str = "shards";
/// A shard's records (gzip) in its ConfigMap's `binaryData`.
const SHARD_KEY: &str = "records.json.gz";

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
        "veer's state {namespace}/{name} is not readable: {reason}; delete the ConfigMap (and its shards, labelled veer.io/state-shard=true) to start over (veer then prunes nothing until it has applied again)"
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
        "a piece of veer's state is {bytes} bytes even compressed, over the ConfigMap limit of {MAX_STATE_BYTES} (records with very long messages?); split the repository across several veer instances"
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

/// A state's stored form, encoded whole (every shard with its body). Pure.
pub fn encode(state: &SyncState) -> Result<Stored, StateError> {
    Encoded::default().encode(state, None)
}

/// A state from a ConfigMap's `data` and `binaryData` and, for format 2, its shards' gzip
/// bytes by id. Errors carry no names; [`read`] adds them (`true`: an unknown format). Pure.
pub fn decode(
    data: &Value,
    binary: &Value,
    shard: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<SyncState, (bool, String)> {
    let format = data.get("format").and_then(Value::as_str).unwrap_or("");
    let text = if format == SHARDED_FORMAT.to_string() {
        sharded_text(data, shard)?
    } else if format != STATE_FORMAT.to_string() {
        return Err((true, format.to_string()));
    } else if let Some(t) = data.get(JSON_KEY).and_then(Value::as_str) {
        t.to_string()
    } else if let Some(b) = binary.get(GZIP_KEY).and_then(Value::as_str) {
        let zipped = base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| (false, format!("{GZIP_KEY} is not base64: {e}")))?;
        let mut text = String::new();
        gunzip(&zipped, &mut text, GZIP_KEY)?;
        text
    } else {
        return Err((
            false,
            format!("neither {JSON_KEY} nor {GZIP_KEY} is present"),
        ));
    };
    serde_json::from_str(&text).map_err(|e| (false, format!("{JSON_KEY}: {e}")))
}

/// Format 2's document: the head, each shard's records in order, the tail.
fn sharded_text(
    data: &Value,
    shard: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<String, (bool, String)> {
    let field = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| (false, format!("format 2 without {key}")))
    };
    let mut text = field(HEAD_KEY)?.to_string();
    for id in field(SHARDS_KEY)?.split(',').filter(|id| !id.is_empty()) {
        let bytes = shard(id).ok_or_else(|| (false, format!("its shard {id} is missing")))?;
        gunzip(&bytes, &mut text, &format!("shard {id}"))?;
    }
    text.push_str(field(TAIL_KEY)?);
    Ok(text)
}

fn gunzip(zipped: &[u8], text: &mut String, what: &str) -> Result<(), (bool, String)> {
    GzDecoder::new(zipped)
        .read_to_string(text)
        .map(drop)
        .map_err(|e| (false, format!("{what} is not gzip JSON: {e}")))
}

/// Where the state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLocation {
    pub namespace: String,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// No shards.
    fn none(_: &str) -> Option<Vec<u8>> {
        None
    }

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
        let stored = encode(&s).unwrap();
        assert_eq!(stored.data["format"], "1");
        assert!(stored.data[JSON_KEY].as_str().unwrap().contains("route-2"));
        assert_eq!(stored.binary, json!({}));
        assert!(stored.shards.is_empty());
        assert_eq!(roundtrip::read_back(&stored).unwrap(), s);
    }

    #[test]
    fn ten_thousand_objects_are_sharded_under_the_limit_and_round_trip() {
        let s = state(10_000);
        let stored = encode(&s).unwrap();
        assert_eq!(stored.data["format"], "2");
        assert!(stored.data.get(JSON_KEY).is_none());
        // About ten shards of ~1,000 records, each well under a ConfigMap's limit.
        assert!(
            (4..=30).contains(&stored.shards.len()),
            "{}",
            stored.shards.len()
        );
        for shard in &stored.shards {
            let size = shard.body.as_ref().unwrap().len();
            assert!(size < MAX_STATE_BYTES / 4, "{size}");
        }
        assert_eq!(roundtrip::read_back(&stored).unwrap(), s);
        // A shard gone is named.
        let first = stored.shards[0].id.clone();
        let partial = Stored {
            shards: stored.shards[1..].to_vec(),
            ..stored.clone()
        };
        let (format, reason) = roundtrip::read_back(&partial).unwrap_err();
        assert!(!format && reason.contains(&first), "{reason}");
    }

    #[test]
    fn other_formats_and_garbage_are_refused() {
        assert_eq!(
            decode(&json!({"format": "3"}), &json!({}), &none).unwrap_err(),
            (true, "3".to_string())
        );
        assert!(
            !decode(
                &json!({"format": "1", "state.json": "{"}),
                &json!({}),
                &none
            )
            .unwrap_err()
            .0
        );
        assert!(
            !decode(&json!({"format": "1"}), &json!({}), &none)
                .unwrap_err()
                .0
        );
        assert!(
            !decode(&json!({"format": "2", "head.json": "{"}), &json!({}), &none)
                .unwrap_err()
                .0
        );
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
