//! Label and field selectors as the list and watch verbs take them (`labelSelector=app=web,tier
//! in (a,b),!canary`, `fieldSelector=metadata.name=x`). Pure: parse, then match an object.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// Why a `labelSelector` or `fieldSelector` parameter is refused (the message of the 400); it
/// quotes the selector and says the form the dev cluster reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("label selector {selector:?}: expected a (value, …) list")]
    NoValueList { selector: String },
    #[error("label selector {selector:?}: invalid label key {key:?}")]
    InvalidKey { selector: String, key: String },
    #[error("field selector {selector:?}: expected field=value")]
    NotFieldEqualsValue { selector: String },
    /// Only `metadata.name` and `metadata.namespace` select; the text is kube-apiserver's.
    #[error(
        "field label not supported: {field} (the dev cluster supports metadata.name and metadata.namespace)"
    )]
    UnsupportedField { field: String },
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// Split on commas that are not inside a `( … )` value list.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_set(rest: &str, selector: &str) -> Result<Vec<String>, SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError::NoValueList {
            selector: selector.to_string(),
        })?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn check_key(key: &str, selector: &str) -> Result<String, SelectorError> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key.to_string())
    } else {
        Err(SelectorError::InvalidKey {
            selector: selector.to_string(),
            key: key.to_string(),
        })
    }
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::DoesNotExist(check_key(key, text)?)
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(check_key(k, text)?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Equals(check_key(k, text)?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Equals(check_key(k, text)?, v.trim().to_string())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(check_key(k, text)?, parse_set(rest, text)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Requirement::In(check_key(k, text)?, parse_set(rest, text)?)
            } else {
                Requirement::Exists(check_key(part, text)?)
            };
            requirements.push(req);
        }
        Ok(Self { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            // As in Kubernetes: `a!=b` also matches objects without the label.
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }

    pub fn matches_object(&self, object: &Value) -> bool {
        self.requirements.is_empty() || self.matches(&labels_of(object))
    }
}

pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A field selector on `metadata.name` / `metadata.namespace` (what kubectl and controllers
/// use); other fields are refused as a real server refuses unsupported ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(SelectorError::NotFieldEqualsValue {
                    selector: text.to_string(),
                });
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(SelectorError::UnsupportedField {
                    field: field.to_string(),
                });
            }
            requirements.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(Self { requirements })
    }

    pub fn matches_object(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_matches_as_kubernetes_does() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let db = labels(&[("app", "db")]);
        let cases = [
            ("app=web", true, false),
            ("app==web", true, false),
            ("app!=web", false, true),
            ("tier!=front", false, true),
            ("app in (web, api)", true, false),
            ("app notin (web,api)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("app in (web,db),!tier", false, true),
            ("app in (web,db),tier", true, false),
            ("", true, true),
        ];
        for (sel, on_web, on_db) in cases {
            let s = LabelSelector::parse(sel).unwrap();
            assert_eq!(s.matches(&web), on_web, "{sel} on web");
            assert_eq!(s.matches(&db), on_db, "{sel} on db");
        }
    }

    #[test]
    fn malformed_selectors_are_errors() {
        let message = |e: SelectorError| e.to_string();
        assert_eq!(
            LabelSelector::parse("app in web").map_err(message),
            Err(r#"label selector "app in web": expected a (value, …) list"#.to_string())
        );
        assert_eq!(
            LabelSelector::parse("a b=c").map_err(message),
            Err(r#"label selector "a b=c": invalid label key "a b""#.to_string())
        );
        assert_eq!(
            FieldSelector::parse("spec.replicas=1").map_err(message),
            Err(
                "field label not supported: spec.replicas (the dev cluster supports \
                 metadata.name and metadata.namespace)"
                    .to_string()
            )
        );
        assert!(FieldSelector::parse("metadata.name").is_err());
    }

    #[test]
    fn field_selector_on_name() {
        let obj = serde_json::json!({"metadata": {"name": "a", "namespace": "n"}});
        assert!(
            FieldSelector::parse("metadata.name=a")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=a")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            FieldSelector::parse("metadata.name=a,metadata.namespace=m")
                .map(|s| !s.matches_object(&obj))
                .unwrap()
        );
    }
}
