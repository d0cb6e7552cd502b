//! `kind: List` documents, expanded into their items the way kubectl expands them.
//!
//! kubectl's decoder (the API machinery's `unstructuredJSONScheme`) reads any object with an
//! `items` field as a list, and `kubectl apply` applies the items, lists among them expanded in
//! turn; the list itself (`apiVersion: v1`, `kind: List`, its metadata) is never applied. An item
//! with neither `kind` nor `apiVersion` takes the list's API version and its kind less `List`
//! (an item of a `ConfigMapList` is a ConfigMap). veer does the same, each item keeping its own
//! line, so the items are checked like any other object, duplicates among them included.
//!
//! Only a sequence of items makes a list here: kubectl refuses an `items` of another type, and
//! veer leaves such an object to the checks of its kind rather than refuse it.

use serde_json::Value;

use super::yaml::{Document, pointer_join};

/// The objects a document stands for: itself, or the items of a list.
pub(crate) fn expand(doc: Document) -> Vec<Document> {
    let mut out = Vec::new();
    let mut pending = vec![doc];
    while let Some(doc) = pending.pop() {
        if !is_list(&doc.value) {
            out.push(doc);
            continue;
        }
        let Document {
            mut value,
            positions,
            ..
        } = doc;
        let api_version = text(&value, "apiVersion");
        let item_kind = text(&value, "kind")
            .strip_suffix("List")
            .unwrap_or(&text(&value, "kind"))
            .to_string();
        let items = match value.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => continue,
        };
        // Reversed onto the stack, so items come out in file order.
        for (i, mut item) in items.into_iter().enumerate().rev() {
            let pointer = pointer_join("/items", i);
            if let Value::Object(fields) = &mut item
                && text_of(fields.get("kind")).is_empty()
                && text_of(fields.get("apiVersion")).is_empty()
            {
                fields.insert("apiVersion".into(), Value::String(api_version.clone()));
                fields.insert("kind".into(), Value::String(item_kind.clone()));
            }
            pending.push(Document {
                value: item,
                start: positions.locate(&pointer),
                positions: positions.subtree(&pointer),
            });
        }
    }
    out
}

/// Does kubectl read this document as a list?
fn is_list(value: &Value) -> bool {
    matches!(value.get("items"), Some(Value::Array(_)))
}

fn text(value: &Value, field: &str) -> String {
    text_of(value.get(field)).to_string()
}

fn text_of(value: Option<&Value>) -> &str {
    value.and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use crate::manifest::{ReadOptions, parse_file};

    fn codes(text: &str) -> (Vec<String>, Vec<(&'static str, u32)>, usize) {
        let f = parse_file("l.yaml", text.as_bytes(), &ReadOptions::default());
        let keys = f
            .manifests
            .iter()
            .map(|m| format!("{}@{}", m.key, m.line))
            .collect();
        let diagnostics = f.diagnostics.iter().map(|d| (d.code, d.line)).collect();
        (keys, diagnostics, f.objects)
    }

    #[test]
    fn a_list_becomes_its_items_each_at_its_line() {
        let (keys, diagnostics, objects) = codes(
            "apiVersion: v1\nkind: List\nmetadata: {}\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: reviews}\n- apiVersion: networking.istio.io/v1\n  kind: VirtualService\n  metadata: {name: reviews, namespace: shop}\n  spec:\n    hosts: [reviews]\n    http:\n    - route:\n      - destination: {host: reviews}\n        wieght: 1\n",
        );
        assert_eq!(
            keys,
            vec!["Service default/reviews@5", "VirtualService shop/reviews@8"]
        );
        assert_eq!(diagnostics, vec![("unknown-field", 16)]);
        assert_eq!(objects, 2);
    }

    #[test]
    fn items_without_kind_take_the_lists_and_lists_nest() {
        let (keys, diagnostics, objects) = codes(
            "apiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata: {name: a}\n- apiVersion: v1\n  kind: List\n  items:\n  - {apiVersion: v1, kind: Secret, metadata: {name: b}}\n  - 7\n- kind: Service\n  metadata: {name: c}\n",
        );
        assert_eq!(keys, vec!["ConfigMap default/a@4", "Secret default/b@8"]);
        // An item that is not an object, and one with a kind but no apiVersion.
        assert_eq!(
            diagnostics,
            vec![("not-an-object", 9), ("missing-field", 10)]
        );
        assert_eq!(objects, 3);
    }

    #[test]
    fn an_empty_list_has_no_objects_and_items_of_another_type_make_no_list() {
        let (keys, diagnostics, objects) = codes("apiVersion: v1\nkind: List\nitems: []\n");
        assert!(
            keys.is_empty() && diagnostics.is_empty(),
            "{keys:?} {diagnostics:?}"
        );
        assert_eq!(objects, 0);
        let (keys, _, objects) = codes(
            "apiVersion: example.com/v1\nkind: Basket\nmetadata: {name: b}\nitems: {apple: 1}\n",
        );
        assert_eq!(keys, vec!["Basket default/b@1"]);
        assert_eq!(objects, 1);
    }
}
