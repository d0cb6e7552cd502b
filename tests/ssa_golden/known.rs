//! The KNOWN DIFFERENCEs between veer and the real server, and the rewrites undoing each in
//! veer's answers before they are compared.

use serde_json::{Value, json};

use crate::helpers::Answer;

// KNOWN DIFFERENCE: what veer does unlike kube-apiserver v1.20.2, not fixed yet (src/ is not
// this file's to change). Each is undone in veer's answer by a narrow rewrite, so the rest of
// that answer (managedFields included) is still compared exactly; a rewrite that finds nothing
// to undo fails the case, so a fix asks for its entry to go.
// - `selector-atomic` (engine, embedded): a Deployment's `spec.selector` is a LabelSelector,
//   `+structType=atomic`: the server owns it whole (`f:selector: {}`); veer records
//   `f:selector.f:matchLabels.f:app`. veer's `fields` has atomic lists but no atomic maps;
//   the fix is a rule treating LabelSelector-typed fields (workloads' `spec.selector`,
//   affinity `labelSelector`, …) as one leaf. Not every `selector`: v1.20 owns a Service's
//   `spec.selector` (a plain map) per key, as veer does (service-ports matches).
// - `conflict-details` (embedded): a 409 apply conflict's `details` holds `causes` only; the
//   embedded server adds `name`, `group` and `kind` (`apply_error` in
//   `crates/veer-devcluster/src/api/patching.rs`).
//   Message and causes match word for word.
// - `engine-numbers` (engine): the engine returns `mirrorPercentage.value: 25.0` as sent; the
//   server stores `25`. The embedded server canonicalises on store, so it matches; the diff
//   compares numbers by value, so only a caller printing the engine's object would notice.

/// A rewrite undoing one known difference in one answer; true when it changed something.
pub(crate) type Rewrite = fn(&mut Answer) -> bool;

/// The KNOWN DIFFERENCEs of one case, in `who`'s answers (`engine` or `embedded`).
pub(crate) fn known(case: &str, who: &str) -> Vec<(&'static str, Rewrite)> {
    let mut out: Vec<(&'static str, Rewrite)> = Vec::new();
    if case.starts_with("deployment-") || case == "apply-conflict" {
        out.push(("selector-atomic", selector_as_atom));
    }
    if case == "apply-conflict" && who == "embedded" {
        out.push(("conflict-details", causes_only));
    }
    if case == "virtualservice-numbers" && who == "engine" {
        out.push(("engine-numbers", integral_floats));
    }
    out
}

fn selector_as_atom(answer: &mut Answer) -> bool {
    let Ok(o) = answer else { return false };
    let mut changed = false;
    let entries = o["metadata"]["managedFields"].as_array_mut();
    for e in entries.into_iter().flatten() {
        if let Some(sel) = e.pointer_mut("/fieldsV1/f:spec/f:selector")
            && sel != &json!({})
        {
            *sel = json!({});
            changed = true;
        }
    }
    changed
}

fn causes_only(answer: &mut Answer) -> bool {
    let Err(s) = answer else { return false };
    let Some(d) = s.get_mut("details").and_then(Value::as_object_mut) else {
        return false;
    };
    let n = d.len();
    d.retain(|k, _| k == "causes");
    d.len() != n
}

fn integral_floats(answer: &mut Answer) -> bool {
    fn walk(v: &mut Value) -> bool {
        match v {
            Value::Number(n) if n.is_f64() => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                    *v = json!(f as i64);
                    true
                }
                _ => false,
            },
            Value::Object(m) => m.values_mut().fold(false, |c, v| walk(v) | c),
            Value::Array(a) => a.iter_mut().fold(false, |c, v| walk(v) | c),
            _ => false,
        }
    }
    answer.as_mut().is_ok_and(walk)
}
