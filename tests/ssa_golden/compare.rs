//! Comparing veer's answers with a golden: on the parts a real server does not fill in, with a
//! diff per finding, after undoing the KNOWN DIFFERENCEs.

use serde_json::{Map, Value, json};

use crate::cases::Case;
use crate::helpers::{Answer, text};
use crate::known::known;

/// Deep union of fieldsV1 trees.
fn union_into(into: &mut Value, other: &Value) {
    if let (Value::Object(a), Value::Object(b)) = (&mut *into, other) {
        for (k, v) in b {
            union_into(a.entry(k.clone()).or_insert_with(|| json!({})), v);
        }
    }
}

/// Numbers equal by value (`25` and `25.0`), as key matching must be.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The part of `value` a fieldsV1 tree names. Written here, not with veer's own code, so the
/// check does not lean on what it checks. A key field the item lacks (a defaulted
/// `protocol`) does not stop a match.
fn project(value: &Value, set: &Value) -> Value {
    let children: Vec<(&String, &Value)> = set
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| *k != ".").collect())
        .unwrap_or_default();
    if children.is_empty() {
        return value.clone();
    }
    match value {
        Value::Object(m) => Value::Object(
            children
                .iter()
                .filter_map(|(k, sub)| {
                    let name = k.strip_prefix("f:")?;
                    m.get(name).map(|v| (name.to_string(), project(v, sub)))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter_map(|item| {
                    children.iter().find_map(|(k, sub)| {
                        if let Some(key) = k.strip_prefix("k:") {
                            let key: Map<String, Value> = serde_json::from_str(key).ok()?;
                            key.iter()
                                .all(|(f, v)| item.get(f).is_none_or(|i| same(i, v)))
                                .then(|| project(item, sub))
                        } else {
                            let v: Value = serde_json::from_str(k.strip_prefix("v:")?).ok()?;
                            same(&v, item).then(|| item.clone())
                        }
                    })
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The parts of one step compared, by name. With `owned`, an object is compared on its
/// managedFields (whole) and, of the rest, on identity and every field some manager owned at
/// some step of the golden (so a field dropped by its manager and removed by the server
/// counts); without, whole.
fn parts(answer: &Answer, owned: Option<&Value>) -> Vec<(&'static str, String)> {
    let (o, owned) = match (answer, owned) {
        (Err(status), _) => return vec![("error", text(status))],
        (Ok(o), None) => return vec![("object", text(o))],
        (Ok(o), Some(owned)) => (o, owned),
    };
    let mut rest = o.clone();
    let managed = rest["metadata"]
        .as_object_mut()
        .and_then(|m| m.remove("managedFields"));
    let mut set = owned.clone();
    let identity = json!({"f:apiVersion": {}, "f:kind": {},
                          "f:metadata": {"f:name": {}, "f:namespace": {}}});
    union_into(&mut set, &identity);
    vec![
        ("managedFields", text(&managed.unwrap_or(Value::Null))),
        ("object", text(&project(&rest, &set))),
    ]
}

/// Compare `actual` (engine or embedded) with the golden; a list of findings, each with a
/// diff, after undoing the KNOWN differences (and saying when one no longer shows).
pub(crate) fn compare(case: &Case, who: &str, golden: &Value, actual: &[Answer]) -> Vec<String> {
    // Kinds a real server fills defaults into are compared on what was owned (see `parts`).
    let defaulted = matches!(case.target().0.kind.as_str(), "Deployment" | "Service");
    let steps = golden["steps"].as_array().expect("golden steps");
    assert_eq!(
        steps.len(),
        case.steps.len(),
        "{}: the golden has another number of steps; re-record it",
        case.name
    );
    let expected: Vec<Answer> = steps
        .iter()
        .map(|s| match s.get("error") {
            Some(e) => Err(e.clone()),
            None => Ok(s["object"].clone()),
        })
        .collect();
    let mut owned = json!({});
    for o in expected.iter().filter_map(|a| a.as_ref().ok()) {
        let entries = o["metadata"]["managedFields"].as_array();
        for e in entries.into_iter().flatten() {
            union_into(&mut owned, &e["fieldsV1"]);
        }
    }
    let mut actual = actual.to_vec();
    let mut findings = Vec::new();
    for (name, rewrite) in known(case.name, who) {
        let hits = actual
            .iter_mut()
            .filter_map(|a| rewrite(a).then_some(()))
            .count();
        if hits == 0 {
            findings.push(format!(
                "{}, {who}: KNOWN DIFFERENCE `{name}` no longer shows; remove it from `known`",
                case.name
            ));
        } else {
            eprintln!(
                "{}, {who}: KNOWN DIFFERENCE `{name}` undone in {hits} step(s)",
                case.name
            );
        }
    }
    for (i, ((what, _), (want, got))) in case
        .steps
        .iter()
        .zip(expected.iter().zip(&actual))
        .enumerate()
    {
        let owned = defaulted.then_some(&owned);
        let got_parts = parts(got, owned);
        for (part, w) in parts(want, owned) {
            let g = got_parts
                .iter()
                .find(|(p, _)| *p == part)
                .map(|(_, g)| g.as_str())
                .unwrap_or("(none: the step's outcome differs)\n");
            if w != g {
                let diff = similar::TextDiff::from_lines(w.as_str(), g)
                    .unified_diff()
                    .header("real server (golden)", who)
                    .to_string();
                findings.push(format!(
                    "{} step {i} ({what}), {who}, {part}:\n{diff}",
                    case.name
                ));
            }
        }
    }
    findings
}
