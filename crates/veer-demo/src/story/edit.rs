//! A commit's changes applied to the demo's repository: files added as they are, or the
//! weights of a VirtualService's named route set (the YAML written anew).

use serde_json::{Value, json};

use super::{Change, StoryError, Tree};

/// Apply one change to the tree.
pub fn apply(tree: &mut Tree, change: &Change) -> Result<(), StoryError> {
    match change {
        Change::Add(files) => {
            for f in *files {
                tree.insert(f.path.to_string(), f.text.to_string());
            }
        }
        Change::Weights {
            file,
            route,
            weights,
        } => {
            let text = tree.get(*file).ok_or_else(|| StoryError::Missing {
                file: file.to_string(),
            })?;
            let edited = set_route_weights(file, text, route, weights)?;
            tree.insert(file.to_string(), edited);
        }
    }
    Ok(())
}

/// The file's YAML documents and the position of its (first) VirtualService.
pub(super) fn parse_vs(file: &str, text: &str) -> Result<(Vec<Value>, usize), StoryError> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| StoryError::NotVirtualService {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
    let index = docs
        .iter()
        .position(|d| d.get("kind").and_then(Value::as_str) == Some("VirtualService"))
        .ok_or_else(|| StoryError::NotVirtualService {
            file: file.to_string(),
            reason: "it holds no VirtualService".to_string(),
        })?;
    Ok((docs, index))
}

/// The file with route `route` of its VirtualService set to `weights` (subset → weight, on
/// the route's host; a destination's other fields, such as its port, are kept). Everything
/// else stays as it was; the YAML is written anew (comments are not kept).
pub fn set_route_weights(
    file: &str,
    text: &str,
    route: &str,
    weights: &[(&str, u32)],
) -> Result<String, StoryError> {
    let (mut docs, index) = parse_vs(file, text)?;
    let no_route = || StoryError::NoRoute {
        file: file.to_string(),
        route: route.to_string(),
    };
    let http = docs[index]
        .pointer_mut("/spec/http")
        .and_then(Value::as_array_mut)
        .ok_or_else(no_route)?;
    let found = http
        .iter_mut()
        .find(|r| r.get("name").and_then(Value::as_str) == Some(route))
        .ok_or_else(no_route)?;
    let old: Vec<Value> = found
        .get("route")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let host = old
        .iter()
        .find_map(|d| d.pointer("/destination/host").and_then(Value::as_str))
        .ok_or_else(no_route)?
        .to_string();
    let new: Vec<Value> = weights
        .iter()
        .map(|(subset, weight)| {
            let mut destination = old
                .iter()
                .filter_map(|d| d.get("destination"))
                .find(|d| d.get("subset").and_then(Value::as_str) == Some(subset))
                .cloned()
                .unwrap_or_else(|| json!({"host": host}));
            destination["subset"] = json!(subset);
            json!({"destination": destination, "weight": weight})
        })
        .collect();
    found["route"] = Value::Array(new);
    let written = if docs.len() == 1 {
        serde_saphyr::to_string(&docs[0])
    } else {
        serde_saphyr::to_string_multiple(&docs)
    };
    written.map_err(|e| StoryError::NotVirtualService {
        file: file.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::story::{MIRRORING, REVIEWS, REVIEWS_VS, STORY};

    #[test]
    fn weights_in_a_file_of_several_documents() {
        let text = MIRRORING[1].text;
        let (docs, index) = parse_vs("httpbin.yaml", text).unwrap();
        assert_eq!((docs.len(), index), (2, 1));
        // httpbin's only route has no name: name it to shift it.
        let named = text.replacen(
            "  http:\n  - route:",
            "  http:\n  - name: main\n    route:",
            1,
        );
        let edited =
            set_route_weights("httpbin.yaml", &named, "main", &[("v1", 50), ("v2", 50)]).unwrap();
        let (docs, index) = parse_vs("httpbin.yaml", &edited).unwrap();
        assert_eq!(docs.len(), 2, "the DestinationRule is kept:\n{edited}");
        assert_eq!(docs[0]["kind"], json!("DestinationRule"));
        assert_eq!(
            docs[index].pointer("/spec/http/0/route/1"),
            Some(&json!({"destination": {"host": "httpbin", "subset": "v2"}, "weight": 50}))
        );
        assert_eq!(
            docs[index].pointer("/spec/http/0/mirrorPercentage/value"),
            Some(&json!(25.0))
        );
    }

    #[test]
    fn weights_of_a_missing_route_or_file_are_errors() {
        let text = REVIEWS.iter().find(|f| f.path == REVIEWS_VS).unwrap().text;
        assert_eq!(
            set_route_weights("f.yaml", text, "nope", &[("v1", 100)]),
            Err(StoryError::NoRoute {
                file: "f.yaml".into(),
                route: "nope".into()
            })
        );
        let mut empty = Tree::new();
        assert!(matches!(
            apply(&mut empty, &STORY[1].changes[0]),
            Err(StoryError::Missing { .. })
        ));
        let ns = REVIEWS[0].text;
        assert!(matches!(
            set_route_weights("ns.yaml", ns, "primary", &[]),
            Err(StoryError::NotVirtualService { .. })
        ));
    }
}
