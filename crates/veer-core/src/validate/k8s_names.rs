//! Kubernetes name syntax, as the API server checks it: object names per [`NameRule`], label
//! keys and values, annotation keys. Pure functions that say what is wrong in words a user can
//! act on, and suggest a name that would pass; `validate::metadata` applies them to objects.
//!
//! The rules are those of `k8s.io/apimachinery/pkg/util/validation` (`IsDNS1123Label`,
//! `IsDNS1123Subdomain`, `IsDNS1035Label`, `IsQualifiedName`, `IsValidLabelValue`) and
//! `pkg/api/validation/path` (`IsValidPathSegmentName`).

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[super::catalog::Check] = &[];

use crate::manifest::kinds::NameRule;

/// Longest DNS-1123 or RFC 1035 label, label value, and name part of a qualified name.
pub const LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (and prefix of a qualified name).
pub const SUBDOMAIN_MAX: usize = 253;

/// Why `name` breaks `rule`, or `None` when the API server accepts it.
pub fn name_problem(name: &str, rule: NameRule) -> Option<String> {
    match rule {
        NameRule::Subdomain { max } => subdomain_problem(name, max),
        NameRule::Label => label_problem(name, false),
        NameRule::Rfc1035Label => label_problem(name, true),
        NameRule::PathSegment => path_segment_problem(name),
    }
}

/// What `rule` asks for, for messages.
pub fn describe(rule: NameRule) -> String {
    match rule {
        NameRule::Subdomain { max } => format!(
            "a DNS-1123 subdomain: at most {max} characters of lowercase letters, digits, `-` and `.`, each dot-separated part starting and ending with a letter or digit"
        ),
        NameRule::Label => format!(
            "a DNS-1123 label: at most {LABEL_MAX} characters of lowercase letters, digits and `-`, starting and ending with a letter or digit"
        ),
        NameRule::Rfc1035Label => format!(
            "an RFC 1035 label: at most {LABEL_MAX} characters of lowercase letters, digits and `-`, starting with a letter and ending with a letter or digit"
        ),
        NameRule::PathSegment => {
            "usable as a URL path segment: not `.` or `..`, and without `/` or `%`".to_string()
        }
    }
}

/// A name close to `name` that satisfies `rule`, to suggest in a fix.
pub fn suggest(name: &str, rule: NameRule) -> Option<String> {
    let (max, dots) = match rule {
        NameRule::Subdomain { max } => (max, true),
        NameRule::Label | NameRule::Rfc1035Label => (LABEL_MAX, false),
        NameRule::PathSegment => return None,
    };
    let mapped: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c if c.is_ascii_lowercase() || c.is_ascii_digit() => c,
            '.' if dots => '.',
            _ => '-',
        })
        .collect();
    let parts: Vec<String> = mapped
        .split('.')
        .map(|part| {
            let mut collapsed = String::new();
            for c in part.chars() {
                if !(c == '-' && collapsed.ends_with('-')) {
                    collapsed.push(c);
                }
            }
            collapsed.trim_matches('-').to_string()
        })
        .filter(|part| !part.is_empty())
        .collect();
    let mut s = parts.join(".");
    if rule == NameRule::Rfc1035Label && s.starts_with(|c: char| c.is_ascii_digit()) {
        // Only Service names are RFC 1035 labels.
        s = format!("svc-{s}");
    }
    s.truncate(max);
    let s = s.trim_end_matches(['-', '.']).to_string();
    (!s.is_empty() && s != name && name_problem(&s, rule).is_none()).then_some(s)
}

/// `c` as it reads in a message.
fn show_char(c: char) -> String {
    if c == ' ' {
        "a space".to_string()
    } else if c.is_ascii_graphic() {
        format!("`{c}`")
    } else {
        format!("`{}`", c.escape_debug())
    }
}

/// The first character outside `allowed`, described.
fn bad_char(s: &str, allowed: impl Fn(char) -> bool) -> Option<String> {
    let c = s.chars().find(|c| !allowed(*c))?;
    Some(if c.is_ascii_uppercase() {
        format!("has uppercase letters ({})", show_char(c))
    } else {
        format!("has {}, which is not allowed", show_char(c))
    })
}

fn starts_and_ends_alphanumeric(s: &str, what: &str) -> Option<String> {
    let first = s.chars().next()?;
    let last = s.chars().last()?;
    if !first.is_ascii_alphanumeric() {
        return Some(format!(
            "{what}starts with {}, not a letter or digit",
            show_char(first)
        ));
    }
    if !last.is_ascii_alphanumeric() {
        return Some(format!(
            "{what}ends with {}, not a letter or digit",
            show_char(last)
        ));
    }
    None
}

fn too_long(s: &str, max: usize) -> Option<String> {
    (s.len() > max).then(|| format!("is {} characters, more than {max}", s.len()))
}

/// `IsDNS1123Label`, or with `letter_first` `IsDNS1035Label`.
fn label_problem(s: &str, letter_first: bool) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".to_string());
    }
    bad_char(s, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
    .or_else(|| too_long(s, LABEL_MAX))
    .or_else(|| {
        let first = s.chars().next()?;
        (letter_first && first.is_ascii_digit())
            .then(|| format!("starts with {}, not a letter", show_char(first)))
    })
    .or_else(|| starts_and_ends_alphanumeric(s, ""))
}

/// `IsDNS1123Subdomain`, with a kind-specific maximum length.
fn subdomain_problem(s: &str, max: usize) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".to_string());
    }
    bad_char(s, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
    })
    .or_else(|| too_long(s, max))
    .or_else(|| {
        s.split('.').find_map(|part| {
            if part.is_empty() {
                Some("has an empty part between dots".to_string())
            } else {
                starts_and_ends_alphanumeric(part, &format!("has a part `{part}` that "))
            }
        })
    })
}

/// `IsValidPathSegmentName`: what RBAC names must be.
fn path_segment_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".to_string());
    }
    if s == "." || s == ".." {
        return Some(format!("may not be `{s}`"));
    }
    ['/', '%']
        .into_iter()
        .find(|c| s.contains(*c))
        .map(|c| format!("may not contain `{c}`"))
}

/// The characters of a label value and of the name part of a qualified name.
fn label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// `IsQualifiedName`: `name` or `prefix/name`. Annotation keys are checked lowercased, so
/// their prefix may have capitals.
pub fn qualified_name_problem(key: &str, annotation: bool) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if name.contains('/') {
        return Some("has more than one `/`".to_string());
    }
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Some("has an empty prefix before `/`".to_string());
        }
        let checked = if annotation {
            prefix.to_ascii_lowercase()
        } else {
            prefix.to_string()
        };
        if let Some(why) = subdomain_problem(&checked, SUBDOMAIN_MAX) {
            return Some(format!(
                "has a prefix `{prefix}` that {why} (a prefix is a DNS subdomain such as `example.com`)"
            ));
        }
    }
    if name.is_empty() {
        return Some("has an empty name part".to_string());
    }
    bad_char(name, label_char)
        .or_else(|| {
            (name.len() > LABEL_MAX).then(|| {
                format!(
                    "has a name part of {} characters, more than {LABEL_MAX}",
                    name.len()
                )
            })
        })
        .or_else(|| starts_and_ends_alphanumeric(name, "has a name part that "))
}

/// `IsValidLabelValue`: empty, or at most 63 characters of alphanumerics, `-`, `_` and `.`
/// starting and ending with an alphanumeric.
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    bad_char(value, label_char)
        .or_else(|| too_long(value, LABEL_MAX))
        .or_else(|| starts_and_ends_alphanumeric(value, ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::kinds::SUBDOMAIN;

    #[test]
    fn names_follow_the_rule_of_their_kind() {
        let long_label = "a".repeat(64);
        let long_subdomain = format!("{}.{}", "a".repeat(200), "b".repeat(53));
        let table: &[(&str, NameRule, Option<&str>)] = &[
            ("reviews-v2", SUBDOMAIN, None),
            ("reviews.v2", SUBDOMAIN, None),
            ("0abc", SUBDOMAIN, None),
            (
                "Reviews_V2!@",
                SUBDOMAIN,
                Some("has uppercase letters (`R`)"),
            ),
            (
                "reviews_v2",
                SUBDOMAIN,
                Some("has `_`, which is not allowed"),
            ),
            (
                "-reviews",
                SUBDOMAIN,
                Some("has a part `-reviews` that starts with `-`"),
            ),
            ("a..b", SUBDOMAIN, Some("has an empty part between dots")),
            (
                "a.-b",
                SUBDOMAIN,
                Some("has a part `-b` that starts with `-`"),
            ),
            (
                &long_subdomain,
                SUBDOMAIN,
                Some("is 254 characters, more than 253"),
            ),
            (
                "reviews.v2",
                NameRule::Label,
                Some("has `.`, which is not allowed"),
            ),
            (
                &long_label,
                NameRule::Label,
                Some("is 64 characters, more than 63"),
            ),
            ("0abc", NameRule::Label, None),
            ("abc-", NameRule::Label, Some("ends with `-`")),
            (
                "0abc",
                NameRule::Rfc1035Label,
                Some("starts with `0`, not a letter"),
            ),
            ("abc0", NameRule::Rfc1035Label, None),
            ("-abc", NameRule::Rfc1035Label, Some("starts with `-`")),
            ("system:controller:Foo_bar", NameRule::PathSegment, None),
            ("..", NameRule::PathSegment, Some("may not be `..`")),
            ("a/b", NameRule::PathSegment, Some("may not contain `/`")),
            ("50%", NameRule::PathSegment, Some("may not contain `%`")),
            ("", SUBDOMAIN, Some("is empty")),
            (
                &"a".repeat(53),
                NameRule::Subdomain { max: 52 },
                Some("is 53 characters, more than 52"),
            ),
        ];
        for (name, rule, want) in table {
            let got = name_problem(name, *rule);
            match want {
                None => assert_eq!(got, None, "{name} {rule:?}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.starts_with(w)),
                    "{name} {rule:?}: {got:?}, want {w}"
                ),
            }
        }
    }

    #[test]
    fn suggestions_are_valid_and_close() {
        let table: &[(&str, NameRule, Option<&str>)] = &[
            ("Reviews_V2!@", NameRule::Rfc1035Label, Some("reviews-v2")),
            ("Reviews_V2!@", SUBDOMAIN, Some("reviews-v2")),
            ("My.App", SUBDOMAIN, Some("my.app")),
            ("My.App", NameRule::Label, Some("my-app")),
            (
                "2fa-service",
                NameRule::Rfc1035Label,
                Some("svc-2fa-service"),
            ),
            ("--", SUBDOMAIN, None),
            ("x/y", NameRule::PathSegment, None),
        ];
        for (name, rule, want) in table {
            assert_eq!(suggest(name, *rule).as_deref(), *want, "{name} {rule:?}");
        }
        let long = "a".repeat(300);
        assert_eq!(suggest(&long, SUBDOMAIN).map(|s| s.len()), Some(253));
        assert_eq!(suggest(&long, NameRule::Label).map(|s| s.len()), Some(63));
    }

    #[test]
    fn label_keys_and_values() {
        let long_name = format!("example.com/{}", "a".repeat(64));
        let keys: &[(&str, bool, Option<&str>)] = &[
            ("app", false, None),
            ("app.kubernetes.io/name", false, None),
            ("App_Name.v1", false, None),
            (
                "Example.com/name",
                false,
                Some("has a prefix `Example.com` that has uppercase"),
            ),
            ("Example.com/name", true, None),
            ("a/b/c", false, Some("has more than one `/`")),
            ("/name", false, Some("has an empty prefix")),
            ("example.com/", false, Some("has an empty name part")),
            ("bad key", false, Some("has a space, which is not allowed")),
            ("-app", false, Some("has a name part that starts with `-`")),
            (&long_name, false, Some("has a name part of 64 characters")),
        ];
        for (key, annotation, want) in keys {
            let got = qualified_name_problem(key, *annotation);
            match want {
                None => assert_eq!(got, None, "{key}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.starts_with(w)),
                    "{key}: {got:?}, want {w}"
                ),
            }
        }
        let long_value = "v".repeat(64);
        let values: &[(&str, Option<&str>)] = &[
            ("", None),
            ("v1.2_RC-3", None),
            ("v1 beta", Some("has a space")),
            ("-v1", Some("starts with `-`")),
            ("v1.", Some("ends with `.`")),
            (&long_value, Some("is 64 characters, more than 63")),
        ];
        for (value, want) in values {
            let got = label_value_problem(value);
            match want {
                None => assert_eq!(got, None, "{value}"),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.starts_with(w)),
                    "{value}: {got:?}, want {w}"
                ),
            }
        }
    }
}
