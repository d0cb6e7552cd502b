//! Reading files: identity, defaults, refusals, the parse cache, counts.

use super::*;

fn parse(text: &str) -> ParsedFile {
    parse_file("x.yaml", text.as_bytes(), &ReadOptions::default())
}

#[test]
fn objects_get_identity_and_default_namespace() {
    let f = parse(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: reviews-v1\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    );
    assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
    assert_eq!(f.manifests.len(), 2);
    assert_eq!(
        f.manifests[0].key.to_string(),
        "Deployment default/reviews-v1"
    );
    assert_eq!(f.manifests[0].key.api_version(), "apps/v1");
    assert_eq!(f.manifests[1].key.namespace, None);
    assert_eq!(f.manifests[1].line, 6);
}

#[test]
fn missing_identity_fields_are_reported_with_lines() {
    let f = parse("kind: Service\nmetadata:\n  labels: {}\n");
    let codes: Vec<_> = f.diagnostics.iter().map(|d| (d.code, d.line)).collect();
    assert_eq!(codes, vec![("missing-field", 1), ("missing-field", 2)]);
}

#[test]
fn kinds_in_the_wrong_case_are_refused_at_the_kind_line() {
    let table: &[(&str, &str)] = &[
        ("networking.istio.io/v1", "virtualservice"),
        ("networking.istio.io/v1", "Virtualservice"),
        ("apps/v1", "deployment"),
        ("v1", "configMap"),
    ];
    for (api_version, kind) in table {
        let f = parse(&format!(
            "apiVersion: {api_version}\nmetadata:\n  name: x\nkind: {kind}\n"
        ));
        assert!(f.manifests.is_empty(), "{kind}");
        let d = &f.diagnostics[0];
        assert_eq!((d.code, d.line, d.column), ("kind-case", 4, 1), "{kind}");
        let right =
            kinds::right_case(api_version.rsplit_once('/').map_or("", |(g, _)| g), kind).unwrap();
        assert!(d.message.contains(&format!("`{right}`")), "{}", d.message);
        assert_eq!(
            d.fix.as_deref(),
            Some(format!("write `kind: {right}`").as_str())
        );
    }
    // Right case, and kinds veer does not know, pass.
    let f = parse("apiVersion: example.com/v1\nkind: widget\nmetadata:\n  name: x\n");
    assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
}

#[test]
fn generate_name_is_refused_with_a_fix() {
    let f = parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: cfg-\n");
    assert!(f.manifests.is_empty());
    let d = &f.diagnostics[0];
    assert_eq!((d.code, d.line), ("generate-name", 4));
    assert_eq!(
        d.fix.as_deref(),
        Some("replace `generateName: cfg-` by a fixed `name:`, e.g. `name: cfg-1`")
    );
}

#[test]
fn hostile_bytes_are_refused_cleanly() {
    let f = parse_file("b.yaml", b"a: 1\nb: \xff\xfe\n", &ReadOptions::default());
    assert_eq!(f.diagnostics[0].code, "not-utf8");
    assert_eq!(f.diagnostics[0].line, 2);
    let big = vec![b'#'; 2 * 1024 * 1024];
    let f = parse_file("big.yaml", &big, &ReadOptions::default());
    assert_eq!(f.diagnostics[0].code, "file-too-large");
}

#[test]
fn too_large_only_above_the_limit() {
    let opts = ReadOptions {
        max_file_bytes: 10,
        ..ReadOptions::default()
    };
    assert!(too_large("a.yaml", 10, &opts).is_none());
    assert_eq!(
        too_large("a.yaml", 11, &opts).map(|d| d.code),
        Some("file-too-large")
    );
}

#[test]
fn cache_parses_each_blob_once() {
    let mut cache = ParseCache::default();
    let opts = ReadOptions::default();
    let (path, id1, id2) = (Arc::from("a.yaml"), ContentId([1; 20]), ContentId([2; 20]));
    let (_, hit) = cache.get_or_parse(&path, id1, || b"a: 1\n".to_vec(), &opts);
    assert!(!hit);
    let (_, hit) = cache.get_or_parse(&path, id1, || unreachable!(), &opts);
    assert!(hit);
    assert!(cache.contains("a.yaml", id1));
    // New content under the same path replaces the entry.
    let (_, hit) = cache.get_or_parse(&path, id2, || b"a: 2\n".to_vec(), &opts);
    assert!(!hit);
    assert!(!cache.contains("a.yaml", id1));
    assert_eq!(cache.len(), 1);
    cache.retain(|_, id| id == id1);
    assert!(cache.is_empty());
}

/// A hit through another copy of the path re-keys the entry by that copy: the caller's path
/// is then the only one held, the cache's old copy is freed.
#[test]
fn cache_keeps_the_callers_copy_of_a_path() {
    let mut cache = ParseCache::default();
    let opts = ReadOptions::default();
    let id = ContentId([7; 20]);
    let first: Arc<str> = Arc::from("dir/a.yaml");
    cache.parse(&first, id, b"a: 1\n", &opts);
    assert_eq!(Arc::strong_count(&first), 2);
    let second: Arc<str> = Arc::from("dir/a.yaml");
    assert!(cache.get(&second, id).is_some());
    assert_eq!(Arc::strong_count(&first), 1);
    assert_eq!(Arc::strong_count(&second), 2);
    // A hit through the copy it holds changes nothing.
    assert!(cache.get(&second, id).is_some());
    assert_eq!(Arc::strong_count(&second), 2);
    assert!(cache.get(&second, ContentId([8; 20])).is_none());
}

#[test]
fn content_ids_read_as_hex() {
    let mut bytes = [0u8; 20];
    bytes[0] = 0xab;
    bytes[19] = 0x01;
    let id = ContentId(bytes);
    assert_eq!(id.to_string(), format!("ab{}01", "0".repeat(36)));
    assert_eq!(ContentId::from_slice(&bytes), Some(id));
    assert_eq!(ContentId::from_slice(&bytes[..19]), None);
}

const VS: &str =
    "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n";

#[test]
fn every_unknown_field_of_an_object_is_reported_at_its_line() {
    let f = parse(&format!(
        "{VS}  hostz: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, subsett: v1}}\n      wieght: 100\n    timout: 2s\n"
    ));
    let found: Vec<_> = f
        .diagnostics
        .iter()
        .map(|d| (d.code, d.line, d.message.split(':').next().unwrap_or("")))
        .collect();
    assert_eq!(
        found,
        vec![
            ("unknown-field", 6, "spec.hostz"),
            (
                "unknown-field",
                9,
                "spec.http[0].route[0].destination.subsett"
            ),
            ("unknown-field", 10, "spec.http[0].route[0].wieght"),
            ("unknown-field", 11, "spec.http[0].timout"),
        ]
    );
    // Typos alone leave the object usable (decoded without them), so other checks still see
    // it; the revision is invalid all the same.
    assert_eq!(f.manifests.len(), 1);
    assert!(matches!(
        f.manifests[0].typed,
        TypedObject::VirtualService(_)
    ));
    assert_eq!(f.objects, 1);
}

#[test]
fn invalid_values_are_all_reported_and_leave_the_object_out() {
    let f = parse(&format!(
        "{VS}  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews}}\n      weight: ten\n    corsPolicy: {{unmatchedPreflights: DROP}}\n    retriez: 3\n  exportTo: 7\n"
    ));
    let found: Vec<_> = f.diagnostics.iter().map(|d| (d.code, d.line)).collect();
    assert_eq!(
        found,
        vec![
            ("invalid-field", 10),
            ("invalid-field", 11),
            ("unknown-field", 12),
            ("invalid-field", 13),
        ],
        "{:?}",
        f.diagnostics
    );
    assert!(f.manifests.is_empty());
    assert_eq!(f.objects, 1);
}

#[test]
fn a_required_field_taken_out_for_its_value_is_not_reported_missing() {
    // `host` is required: reported once, for its value, not again as missing.
    let f = parse(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: r\nspec:\n  host: [reviews]\n  trafficPolicy: {tls: {mode: NOPE}}\n",
    );
    let found: Vec<_> = f.diagnostics.iter().map(|d| (d.code, d.line)).collect();
    assert!(found.contains(&("invalid-field", 6)), "{:?}", f.diagnostics);
    assert!(
        f.diagnostics
            .iter()
            .all(|d| !d.message.contains("missing field")),
        "{:?}",
        f.diagnostics
    );
}

#[test]
fn one_bad_document_hides_none_of_the_others() {
    let f = parse(&format!(
        "{VS}  hostz: [a]\n---\nkind: Service\n---\n- not an object\n---\n{VS}  hosts: [b]\n  tcp: 3\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ok\n"
    ));
    let found: Vec<_> = f.diagnostics.iter().map(|d| (d.code, d.line)).collect();
    assert_eq!(
        found,
        vec![
            ("unknown-field", 6),
            ("missing-field", 8),
            ("missing-field", 8),
            ("not-an-object", 10),
            ("invalid-field", 18),
        ],
        "{:?}",
        f.diagnostics
    );
    let kept: Vec<_> = f.manifests.iter().map(|m| m.key.to_string()).collect();
    assert_eq!(
        kept,
        vec!["VirtualService default/reviews", "Service default/ok"]
    );
    // Four documents are objects (the list item is not); two of them are usable.
    assert_eq!(f.objects, 4);
}

#[test]
fn field_errors_stop_at_the_cap() {
    let typos: String = (0..2 * istio::decode::MAX_FIELD_ERRORS)
        .map(|i| format!("  typo{i}: 1\n"))
        .collect();
    let f = parse(&format!("{VS}{typos}"));
    assert_eq!(f.diagnostics.len(), istio::decode::MAX_FIELD_ERRORS);
}

#[test]
fn the_set_counts_files_and_objects() {
    let mut set = ManifestSet::default();
    set.extend(&parse(&format!("{VS}  hostz: [a]\n")));
    set.extend(&parse("# nothing here\n"));
    set.extend(&parse("a: [1\n"));
    assert_eq!((set.files, set.objects, set.manifests.len()), (3, 1, 1));
}
