//! Field paths: one [`PathElement`] (`f:`, `k:`, `v:`, `i:`) and a [`FieldPath`] from the
//! object's root, with the `fieldsV1` key form, the order that makes `25` and `25.0` the same
//! key, and the display form of conflict messages; [`canonical`] JSON for keys.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use super::compare_values;

/// One step of a field path, as structured-merge-diff names it. Equality follows the order
/// ([`compare_values`]): `k:{"port":25}` and `k:{"port":25.0}` name the same item.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// `f:name`: a field of a map.
    Field(String),
    /// `k:{"name":"app"}`: an item of an associative list, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// `v:"value"`: an item of a set-like list.
    Value(Value),
    /// `i:3`: an item of a list by position (not written by apply; read for completeness).
    Index(usize),
}

impl PathElement {
    pub fn field(name: impl Into<String>) -> Self {
        PathElement::Field(name.into())
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` key form: `f:spec`, `k:{"name":"app"}`, `v:"x"`, `i:0`.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let mut map = Map::new();
                for (name, value) in fields {
                    map.insert(name.clone(), canonical(value));
                }
                format!("k:{}", Value::Object(map))
            }
            PathElement::Value(value) => format!("v:{}", canonical(value)),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parse a `fieldsV1` key. `None` for `.` and anything malformed.
    pub fn from_fields_v1_key(key: &str) -> Option<Self> {
        let (prefix, rest) = key.split_once(':')?;
        match prefix {
            "f" => Some(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest).ok()? {
                Value::Object(map) => Some(PathElement::Key(sorted_key(
                    map.into_iter().collect::<Vec<_>>(),
                ))),
                _ => None,
            },
            "v" => serde_json::from_str(rest).ok().map(PathElement::Value),
            "i" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }
}

pub(super) fn sorted_key(mut fields: Vec<(String, Value)>) -> Vec<(String, Value)> {
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let o = an.cmp(bn).then_with(|| compare_values(av, bv));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The value with every map's keys sorted, so equal values serialise equally.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A path from the object's root to one field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    pub fn fields(names: &[&str]) -> Self {
        FieldPath(names.iter().map(|n| PathElement::field(*n)).collect())
    }

    pub fn elements(&self) -> &[PathElement] {
        &self.0
    }
}

/// The form the API server uses in conflict messages: `.spec.containers[name="app"].image`.
impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for element in &self.0 {
            match element {
                PathElement::Field(name) => write!(f, ".{name}")?,
                PathElement::Key(fields) => {
                    f.write_str("[")?;
                    for (i, (name, value)) in fields.iter().enumerate() {
                        if i > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "{name}={}", canonical(value))?;
                    }
                    f.write_str("]")?;
                }
                PathElement::Value(value) => write!(f, "[={}]", canonical(value))?,
                PathElement::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}
