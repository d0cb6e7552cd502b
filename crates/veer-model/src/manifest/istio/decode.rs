//! Decoding a manifest into its typed form with every field problem reported. serde stops at
//! the first unknown or invalid field, so decoding is repeated on a copy of the object with
//! each reported field taken out, until it succeeds or a problem cannot be stepped over: three
//! typos are three errors in one run, each at its own line.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::display_path;
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::yaml::pointer_join;

/// Most field problems reported for one object; each costs one more decoding of it.
pub const MAX_FIELD_ERRORS: usize = 50;

/// The typed form and every field problem of `manifest`. The typed form is there when the only
/// problems were unknown fields: it is then decoded without them, so checks of other objects
/// (a VirtualService's subsets, say) still see this one and report nothing that follows from
/// its typo. Any other problem leaves it out: a field taken out for its value would make
/// checks report it missing.
pub(crate) fn decode_all<T: DeserializeOwned>(manifest: &Manifest) -> (Option<T>, Vec<Diagnostic>) {
    let mut value = Cow::Borrowed(&manifest.value);
    let mut diagnostics = Vec::new();
    let mut only_unknown = true;
    // Fields taken out for an invalid value: serde then reports a required one missing.
    let mut taken_out = Vec::new();
    loop {
        let err = match serde_path_to_error::deserialize::<_, T>(value.as_ref()) {
            Ok(typed) => return (only_unknown.then_some(typed), diagnostics),
            Err(err) => err,
        };
        let problem = Problem::of(&err);
        if let Some(field) = missing_field(&problem.message)
            && taken_out.contains(&pointer_join(&problem.pointer, field))
        {
            return (None, diagnostics);
        }
        diagnostics.push(problem.diagnostic(manifest));
        if problem.code != "unknown-field" {
            only_unknown = false;
        }
        if diagnostics.len() >= MAX_FIELD_ERRORS || !take_out(value.to_mut(), &problem.pointer) {
            return (None, diagnostics);
        }
        if problem.code != "unknown-field" {
            taken_out.push(problem.pointer);
        }
    }
}

/// One field problem serde reported: where, and what.
struct Problem {
    pointer: String,
    code: &'static str,
    message: String,
    fix: String,
}

impl Problem {
    fn of(err: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        let mut pointer = String::new();
        for segment in err.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    pointer = pointer_join(&pointer, index)
                }
                serde_path_to_error::Segment::Map { key } => pointer = pointer_join(&pointer, key),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        let message = err.inner().to_string();
        let (code, fix) = match unknown_field(&message) {
            Some(field) => {
                // serde_path_to_error usually ends the path with the unknown key already.
                let named = pointer_join("", field);
                if !pointer.ends_with(&named) {
                    pointer = pointer_join(&pointer, field);
                }
                (
                    "unknown-field",
                    format!("remove or correct `{field}`; the allowed fields are listed above"),
                )
            }
            None => (
                "invalid-field",
                "give the field a value of the type Istio expects".to_string(),
            ),
        };
        Self {
            pointer,
            code,
            message,
            fix,
        }
    }

    fn diagnostic(&self, manifest: &Manifest) -> Diagnostic {
        let at = if self.pointer.is_empty() {
            "(object)".to_string()
        } else {
            display_path(&self.pointer)
        };
        manifest
            .error(self.code, &self.pointer, format!("{at}: {}", self.message))
            .fix(self.fix.clone())
    }
}

/// `unknown field `wieght`, expected one of ...` → `wieght`.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// `missing field `host`` → `host`.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// Take the mapping entry at `pointer` out of `value`, so decoding can go past it. Only
/// mapping entries: taking out a list item would renumber the items after it and put later
/// problems at the wrong line. False when there is no such entry.
fn take_out(value: &mut Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => map.shift_remove(&key).is_some(),
        _ => false,
    }
}
