//! Properties of the stored form: what is read back is what was written, a write after a
//! change stores the bytes a whole encode stores (and only the shards that changed), and
//! states written by the encoder before chunks and shards (format 1, one gzip stream of the
//! whole JSON) are still read.

use std::io::{Read, Write};

use base64::Engine as _;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// The encoder as it was before chunks and shards (format 1): the fixture of an older state.
fn old_encode(state: &SyncState) -> Stored {
    let text = serde_json::to_string(state).unwrap();
    let (data, binary) = if text.len() <= COMPRESS_ABOVE {
        (json!({"format": "1", JSON_KEY: text}), json!({}))
    } else {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        let zipped = encoder.finish().unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(zipped);
        (json!({"format": "1"}), json!({GZIP_KEY: encoded}))
    };
    Stored {
        data,
        binary,
        shards: Vec::new(),
    }
}

/// The state read back from its stored form, the shards' bodies as the bytes the cluster
/// holds.
pub(super) fn read_back(stored: &Stored) -> Result<SyncState, (bool, String)> {
    let bodies: std::collections::BTreeMap<&str, Vec<u8>> = (stored.shards.iter())
        .filter_map(|s| {
            let body = s.body.as_ref()?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()?;
            Some((s.id.as_str(), bytes))
        })
        .collect();
    decode(&stored.data, &stored.binary, &|id| bodies.get(id).cloned())
}

/// The JSON document stored, whichever way.
fn stored_json(stored: &Stored) -> Value {
    let text = match stored.data.get(JSON_KEY).and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None if stored.data["format"] == "2" => {
            let mut text = stored.data[HEAD_KEY].as_str().unwrap().to_string();
            for shard in &stored.shards {
                let b = shard.body.as_deref().unwrap();
                let zipped = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
                // Each shard is one ordinary gzip member.
                GzDecoder::new(zipped.as_slice())
                    .read_to_string(&mut text)
                    .unwrap();
            }
            text + stored.data[TAIL_KEY].as_str().unwrap()
        }
        None => {
            let b = stored.binary[GZIP_KEY].as_str().unwrap();
            let zipped = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
            let mut text = String::new();
            GzDecoder::new(zipped.as_slice())
                .read_to_string(&mut text)
                .unwrap();
            text
        }
    };
    serde_json::from_str(&text).unwrap()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        Just("ünïcode \"quoted\" \\ back\nline".to_string()),
    ]
}

fn record() -> impl Strategy<Value = ObjectRecord> {
    (
        prop::sample::select(vec!["", "apps", "networking.istio.io"]),
        prop::sample::select(vec!["v1", "v1beta1"]),
        prop::sample::select(vec!["ConfigMap", "VirtualService", "Namespace"]),
        prop::option::of("[a-c]{1,2}"),
        "[a-z]{1,4}",
        prop::option::of("[0-9a-f]{8}"),
        prop::sample::select(vec!["created", "updated", "failed", "pending"]),
        prop::option::of(400u16..600),
        prop::option::of(text()),
    )
        .prop_map(
            |(group, version, kind, namespace, name, hash, result, code, message)| ObjectRecord {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                namespace,
                name,
                hash,
                result: result.into(),
                code,
                message,
            },
        )
}

/// Records as a state holds them: in key order, one per object.
fn records(max: usize) -> impl Strategy<Value = Vec<ObjectRecord>> {
    prop::collection::vec(record(), 0..max).prop_map(|mut rs| {
        rs.sort_by(|a, b| encoding::order(a).cmp(&encoding::order(b)));
        let mut seen = std::collections::HashSet::new();
        rs.retain(|r| {
            seen.insert((
                r.group.clone(),
                r.kind.clone(),
                r.namespace.clone(),
                r.name.clone(),
            ))
        });
        rs
    })
}

fn header() -> impl Strategy<Value = SyncState> {
    (
        prop::option::of(("[0-9a-f]{40}", text(), text())),
        prop::option::of(any::<bool>()),
        prop::option::of(text()),
        prop::option::of((text(), 0usize..9, text())),
        prop::option::of((text(), text())),
        prop::collection::vec(text(), 0..3),
        prop::option::of(text()),
    )
        .prop_map(
            |(revision, outcome, applied_at, rejected, last_error, drift, updated_at)| SyncState {
                format: STATE_FORMAT,
                revision: revision.map(|(commit, summary, author)| RevisionRecord {
                    commit,
                    summary,
                    author,
                }),
                outcome: outcome.map(|partly| {
                    if partly {
                        RevisionOutcome::PartiallyApplied
                    } else {
                        RevisionOutcome::Applied
                    }
                }),
                applied_at,
                rejected: rejected.map(|(commit, errors, at)| RejectedRecord {
                    commit,
                    summary: String::new(),
                    errors,
                    at,
                }),
                last_error: last_error.map(|(message, at)| ErrorRecord { message, at }),
                objects: Vec::new(),
                drift,
                updated_at,
            },
        )
}

fn state(max: usize) -> impl Strategy<Value = SyncState> {
    (header(), records(max)).prop_map(|(header, objects)| SyncState { objects, ..header })
}

/// A change of `state`: some records put (new objects or new versions of held ones), some
/// removed (held or not), a new header.
fn change() -> impl Strategy<Value = (SyncState, StateChange)> {
    (
        state(400),
        header(),
        records(6),
        prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    )
        .prop_map(|(state, header, put, removed, replaced)| {
            let mut put = put;
            let mut remove: Vec<ObjectKey> = Vec::new();
            if !state.objects.is_empty() {
                remove.extend(removed.iter().map(|i| i.get(&state.objects).key()));
                // New records of held objects (another result, another API version).
                for i in replaced {
                    let mut r = i.get(&state.objects).clone();
                    r.result = "updated".into();
                    r.version = "v2".into();
                    put.retain(|p| p.identity() != r.identity());
                    put.push(r);
                }
            }
            (
                state,
                StateChange {
                    header,
                    put,
                    remove,
                },
            )
        })
}

/// What `apply` must come to, computed the plain way.
fn naive(state: &SyncState, change: &StateChange) -> SyncState {
    let gone = |r: &ObjectRecord| {
        (change.put.iter().map(ObjectRecord::identity))
            .chain(change.remove.iter().map(ObjectKey::identity))
            .any(|id| id == r.identity())
    };
    let mut objects: Vec<ObjectRecord> = (state.objects.iter())
        .filter(|r| !gone(r))
        .cloned()
        .chain(change.put.iter().cloned())
        .collect();
    objects.sort_by(|a, b| encoding::order(a).cmp(&encoding::order(b)));
    SyncState {
        objects,
        ..change.header.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn what_is_written_is_read_back(s in state(400), compress in any::<bool>()) {
        let above = if compress { 0 } else { COMPRESS_ABOVE };
        let stored = Encoded::default().encode_above(&s, None, above).unwrap();
        prop_assert_eq!(stored.data["format"] == "2", compress);
        prop_assert_eq!(read_back(&stored).unwrap(), s.clone());
        // The same JSON document the encoder before chunks stored.
        prop_assert_eq!(stored_json(&stored), serde_json::to_value(&s).unwrap());
    }

    #[test]
    fn a_change_is_applied_in_place_and_undone(case in change()) {
        let (before, change) = case;
        let mut s = before.clone();
        let expected = naive(&before, &change);
        let (undo, _) = s.apply(change);
        prop_assert_eq!(&s, &expected);
        s.apply(undo);
        prop_assert_eq!(s, before);
    }

    #[test]
    fn a_write_after_a_change_stores_what_a_whole_write_stores(
        case in change(),
        compress in any::<bool>(),
    ) {
        let (mut s, change) = case;
        let above = if compress { 0 } else { COMPRESS_ABOVE };
        let mut cache = Encoded::default();
        cache.encode_above(&s, None, above).unwrap();
        let (_, changed) = s.apply(change);
        let incremental = cache.encode_above(&s, Some(&changed), above).unwrap();
        let whole = Encoded::default().encode_above(&s, None, above).unwrap();
        prop_assert_eq!(&incremental, &whole);
        prop_assert_eq!(read_back(&incremental).unwrap(), s);
    }

    /// Told what the cluster holds, a write leaves out the bodies of the shards it keeps and
    /// still gives every shard a body the cluster does not hold.
    #[test]
    fn only_shards_the_cluster_lacks_are_sent(case in change()) {
        let (mut s, change) = case;
        let mut cache = Encoded::default();
        let first = cache.encode_above(&s, None, 0).unwrap();
        let held: std::collections::BTreeSet<String> =
            first.shard_ids().map(str::to_string).collect();
        cache.stored(held.clone());
        let (_, changed) = s.apply(change);
        let next = cache.encode_above(&s, Some(&changed), 0).unwrap();
        let whole = Encoded::default().encode_above(&s, None, 0).unwrap();
        prop_assert_eq!(next.shard_ids().collect::<Vec<_>>(), whole.shard_ids().collect::<Vec<_>>());
        for (sent, all) in next.shards.iter().zip(&whole.shards) {
            prop_assert_eq!(sent.body.is_none(), held.contains(&sent.id));
            if sent.body.is_some() {
                prop_assert_eq!(&sent.body, &all.body);
            }
        }
    }

    #[test]
    fn states_stored_before_chunks_are_read(s in state(400)) {
        prop_assert_eq!(read_back(&old_encode(&s)).unwrap(), s);
    }
}

#[test]
fn a_large_state_changed_a_little_reencodes_the_same_bytes() {
    let objects: Vec<ObjectRecord> = (0..3000)
        .map(|i| ObjectRecord {
            group: "networking.istio.io".into(),
            version: "v1".into(),
            kind: "VirtualService".into(),
            namespace: Some(format!("ns-{:02}", i % 50)),
            name: format!("route-{i:05}"),
            hash: Some(format!("{:016x}", i * 7919)),
            result: "created".into(),
            code: None,
            message: None,
        })
        .collect();
    let mut s = SyncState {
        objects,
        ..SyncState::default()
    };
    s.objects
        .sort_by(|a, b| encoding::order(a).cmp(&encoding::order(b)));
    let mut cache = Encoded::default();
    let first = cache.encode(&s, None).unwrap();
    assert_eq!(first.data["format"], "2", "sharded");
    // The old encoder's output and this one's hold the same document.
    assert_eq!(stored_json(&first), stored_json(&old_encode(&s)));
    cache.stored(first.shard_ids().map(str::to_string).collect());
    for step in 0..5 {
        let mut put = s.objects[step * 97].clone();
        put.result = format!("updated-{step}");
        let remove = vec![s.objects[step * 311 + 5].key()];
        let change = StateChange {
            header: SyncState {
                updated_at: Some(format!("step {step}")),
                ..StateChange::header_of(&s)
            },
            put: vec![put],
            remove,
        };
        let (_, changed) = s.apply(change);
        let incremental = cache.encode(&s, Some(&changed)).unwrap();
        let whole = Encoded::default().encode(&s, None).unwrap();
        assert_eq!(incremental.data, whole.data);
        // Two records changed: at most two shards are sent again, of about 1,000 records.
        let sent: Vec<&Shard> = incremental
            .shards
            .iter()
            .filter(|s| s.body.is_some())
            .collect();
        assert!((1..=2).contains(&sent.len()), "{} shards sent", sent.len());
        let mut held: std::collections::BTreeSet<String> = cache.stored_ids().unwrap().clone();
        held.extend(incremental.shard_ids().map(str::to_string));
        cache.stored(held);
        let (data, binary) = (&whole.data, &whole.binary);
        let bodies: std::collections::BTreeMap<&str, &Shard> =
            whole.shards.iter().map(|s| (s.id.as_str(), s)).collect();
        let read = decode(data, binary, &|id| {
            let body = bodies.get(id)?.body.as_ref()?;
            base64::engine::general_purpose::STANDARD.decode(body).ok()
        });
        assert_eq!(read.unwrap(), s);
    }
}
