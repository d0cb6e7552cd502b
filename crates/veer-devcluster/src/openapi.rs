//! The OpenAPI v2 document kubectl downloads before `apply`, `diff`, `edit` and `explain`.
//!
//! kubectl 1.20 asks for `/openapi/v2` as protobuf (the gnostic `openapi_v2.Document` message)
//! and uses it for two things: schemas under `definitions` (client-side validation, strategic
//! merge metadata for custom kinds) and, for `kubectl diff` and `--dry-run=server`, whether the
//! PATCH operation of a kind takes a `dryRun` query parameter (found through the operation's
//! `x-kubernetes-group-version-kind` extension). So the document lists, for every served kind
//! and version, one path whose PATCH operation has that extension and a `dryRun` parameter, and
//! no definitions (kubectl then treats every kind as schemaless: no client-side validation,
//! merge patches for custom kinds, its compiled-in strategic merge metadata for built-in
//! ones). A handful of message types do not justify a protobuf dependency, so the bytes are
//! written by hand below, with field numbers from gnostic's `openapiv2/OpenAPIv2.proto`.

use serde_json::{Value, json};

use super::catalog::{Catalog, ResourceType};

/// Protobuf wire type 2 (length-delimited) field: tag, length, payload.
fn length_delimited(field: u32, payload: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Base-128 varint: seven bits per byte, least significant first, high bit = more follows.
fn varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A message-typed field: the nested message's bytes.
fn message(field: u32, build: impl FnOnce(&mut Vec<u8>), out: &mut Vec<u8>) {
    let mut inner = Vec::new();
    build(&mut inner);
    length_delimited(field, &inner, out);
}

/// The item path of one kind at one version, as kube-apiserver names it.
fn item_path(t: &ResourceType, version: &str) -> String {
    let base = if t.group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{}/{version}", t.group)
    };
    if t.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
    } else {
        format!("{base}/{}/{{name}}", t.plural)
    }
}

fn gvk_yaml(t: &ResourceType, version: &str) -> String {
    format!(
        "group: \"{}\"\nkind: {}\nversion: {version}\n",
        t.group, t.kind
    )
}

/// `Document { swagger = 1, info = 2 { title = 1, version = 2 }, paths = 8 { path = 2 [
/// NamedPathItem { name = 1, value = 2 PathItem { patch = 8 Operation { parameters = 8 [
/// ParametersItem { parameter = 1 { non_body_parameter = 2 { query_parameter_sub_schema = 3
/// { in = 2, name = 4, type = 6 } } } } ], vendor_extension = 13 [ NamedAny { name = 1,
/// value = 2 Any { yaml = 2 } } ] } } } ] } }`.
pub fn v2_protobuf(catalog: &Catalog) -> Vec<u8> {
    let mut doc = Vec::new();
    length_delimited(1, b"2.0", &mut doc);
    message(
        2,
        |info| {
            length_delimited(1, b"veer dev-cluster", info);
            length_delimited(2, b"v1", info);
        },
        &mut doc,
    );
    message(
        8,
        |paths| {
            for t in catalog.types() {
                for version in &t.versions {
                    message(
                        2,
                        |named| {
                            length_delimited(1, item_path(t, version).as_bytes(), named);
                            message(2, |item| patch_operation(t, version, item), named);
                        },
                        paths,
                    );
                }
            }
        },
        &mut doc,
    );
    doc
}

/// `PathItem.patch`: the PATCH operation with its `dryRun` parameter and GVK extension.
fn patch_operation(t: &ResourceType, version: &str, item: &mut Vec<u8>) {
    message(
        8,
        |op| {
            message(
                8,
                |param_item| {
                    message(
                        1,
                        |param| {
                            message(
                                2,
                                |non_body| {
                                    message(
                                        3,
                                        |query| {
                                            length_delimited(2, b"query", query);
                                            length_delimited(4, b"dryRun", query);
                                            length_delimited(6, b"string", query);
                                        },
                                        non_body,
                                    )
                                },
                                param,
                            )
                        },
                        param_item,
                    )
                },
                op,
            );
            message(
                13,
                |named_any| {
                    length_delimited(1, b"x-kubernetes-group-version-kind", named_any);
                    message(
                        2,
                        |any| length_delimited(2, gvk_yaml(t, version).as_bytes(), any),
                        named_any,
                    );
                },
                op,
            );
        },
        item,
    );
}

/// The same document as JSON, for clients that ask for it.
pub fn v2_json(catalog: &Catalog) -> Value {
    let mut paths = serde_json::Map::new();
    for t in catalog.types() {
        for version in &t.versions {
            paths.insert(
                item_path(t, version),
                json!({"patch": {
                    "parameters": [{"in": "query", "name": "dryRun", "type": "string", "uniqueItems": true}],
                    "x-kubernetes-group-version-kind": {"group": t.group, "kind": t.kind, "version": version},
                }}),
            );
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "veer dev-cluster", "version": "v1"},
        "paths": paths,
        "definitions": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_the_expected_bytes() {
        let bytes = v2_protobuf(&Catalog::builtin());
        // field 1 (0x0a), 3 bytes "2.0"
        assert_eq!(&bytes[..5], b"\x0a\x032.0");
        // field 2 (0x12), length of Info = 2+16 + 2+2 = 22
        assert_eq!(&bytes[5..7], &[0x12, 22]);
        assert_eq!(&bytes[7..9], &[0x0a, 16]);
        // field 8 (0x42) follows Info, with a multi-byte length
        assert_eq!(bytes[29], 0x42);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("/api/v1/namespaces/{namespace}/configmaps/{name}"));
        assert!(text.contains("group: \"\"\nkind: ConfigMap\nversion: v1\n"));
        assert!(text.contains("dryRun"));
        let mut big = Vec::new();
        varint(300, &mut big);
        assert_eq!(big, [0xac, 0x02]);
    }

    #[test]
    fn json_and_protobuf_list_the_same_paths() {
        let c = Catalog::builtin();
        let doc = v2_json(&c);
        let text = String::from_utf8_lossy(&v2_protobuf(&c)).into_owned();
        for path in doc["paths"].as_object().unwrap().keys() {
            assert!(text.contains(path.as_str()), "{path}");
        }
    }
}
