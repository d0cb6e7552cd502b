//! Values as Go's `fmt` prints them in the real server's field errors: `%q` strings,
//! `[]string{…}`, `map[string]string{…}` and `%#v` of a `metav1.LabelSelector`.

use serde_json::Value;

/// A string as Go's `%q` / `strconv.Quote` writes it.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0B}' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON scalar where Go has a string (anything else is quoted as its JSON text).
fn go_string(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        other => go_quote(&other.to_string()),
    }
}

/// `[]string{"a", "b"}` / `[]string(nil)`.
pub(super) fn go_strings(list: Option<&[String]>) -> String {
    match list {
        Some(items) if !items.is_empty() => format!(
            "[]string{{{}}}",
            items
                .iter()
                .map(|s| go_quote(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(_) => "[]string{}".into(),
        None => "[]string(nil)".into(),
    }
}

/// `map[string]string{"a":"1", "b":"2"}` (keys sorted, as `fmt` prints maps).
fn go_string_map(value: Option<&Value>) -> String {
    match value {
        Some(Value::Object(m)) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_string(v)))
                .collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
        _ => "map[string]string(nil)".into(),
    }
}

/// A label selector as the field error prints it (Go's `%#v` of `metav1.LabelSelector`, or
/// `"null"` when there is none).
pub(super) fn go_label_selector(value: Option<&Value>) -> String {
    let Some(selector) = value.filter(|v| !v.is_null()) else {
        return go_quote("null");
    };
    let expressions = match selector.get("matchExpressions") {
        Some(Value::Array(items)) => {
            let body: Vec<String> = items
                .iter()
                .map(|r| {
                    let values: Option<Vec<String>> =
                        r.get("values").and_then(Value::as_array).map(|vs| {
                            vs.iter()
                                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                                .collect()
                        });
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_string(r.get("key").unwrap_or(&Value::String(String::new()))),
                        go_string(r.get("operator").unwrap_or(&Value::String(String::new()))),
                        go_strings(values.as_deref()),
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", body.join(", "))
        }
        _ => "[]v1.LabelSelectorRequirement(nil)".into(),
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_string_map(selector.get("matchLabels")),
        expressions
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quotes_as_strconv_does() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}\u{7f}é"), r#""a\"b\\c\n\x01\x7fé""#);
        assert_eq!(go_label_selector(None), r#""null""#);
    }
}
