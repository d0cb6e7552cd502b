//! Properties of the stored form: what is read back is what was written, a write after a
//! change stores the bytes a whole encode stores, and states written by the encoder before
//! chunks (one gzip stream of the whole JSON) are still read.

use std::io::{Read, Write};

use base64::Engine as _;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// The encoder as it was before chunks (format 1 too): the fixture of an older state.
fn old_encode(state: &SyncState) -> (Value, Value) {
    let text = serde_json::to_string(state).unwrap();
    if text.len() <= COMPRESS_ABOVE {
        return (json!({"format": "1", JSON_KEY: text}), json!({}));
    }
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    let zipped = encoder.finish().unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(zipped);
    (json!({"format": "1"}), json!({GZIP_KEY: encoded}))
}

/// The JSON document stored, whichever way.
fn stored_json(data: &Value, binary: &Value) -> Value {
    let text = match data.get(JSON_KEY).and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None => {
            let b = binary[GZIP_KEY].as_str().unwrap();
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
        let (data, binary) = Encoded::default().encode_above(&s, None, above).unwrap();
        prop_assert_eq!(binary.get(GZIP_KEY).is_some(), compress);
        prop_assert_eq!(decode(&data, &binary).unwrap(), s.clone());
        // The same JSON document the encoder before chunks stored.
        prop_assert_eq!(stored_json(&data, &binary), serde_json::to_value(&s).unwrap());
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
        prop_assert_eq!(decode(&incremental.0, &incremental.1).unwrap(), s);
    }

    #[test]
    fn states_stored_before_chunks_are_read(s in state(400)) {
        let (data, binary) = old_encode(&s);
        prop_assert_eq!(decode(&data, &binary).unwrap(), s);
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
    let (_, first) = cache.encode(&s, None).unwrap();
    assert!(first.get(GZIP_KEY).is_some(), "compressed");
    // The old encoder's output and this one's hold the same document.
    assert_eq!(
        stored_json(&json!({}), &first),
        stored_json(&old_encode(&s).0, &old_encode(&s).1)
    );
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
        assert_eq!(incremental, Encoded::default().encode(&s, None).unwrap());
        assert_eq!(decode(&incremental.0, &incremental.1).unwrap(), s);
    }
}
