//! What the other modules share: a step's answer, the namespace a case runs in, and JSON as
//! written to a golden and diffed.

use serde_json::Value;

/// The answer to one step: the object written, or the error status.
pub(crate) type Answer = Result<Value, Value>;

pub(crate) fn namespace(case: &str) -> String {
    format!("ssa-{case}")
}

pub(crate) fn text(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON") + "\n"
}
