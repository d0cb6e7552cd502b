//! kubectl's age format (`45s`, `3m12s`, `2d4h`), and the ages of an object's timestamps as
//! the printers show them.

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use veer_model::duration::human_duration;

pub(super) fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The age of the timestamp at `pointer`, or `<unknown>` when there is none.
pub(super) fn since(object: &Value, pointer: &str, now: DateTime<Utc>) -> String {
    match object.pointer(pointer).and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}
