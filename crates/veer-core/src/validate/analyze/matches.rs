//! Unreachable rules (IST0130) and ineffective matches (IST0131), as Istio's webhook computes
//! them (`analyzeUnreachableHTTPRules`, `...TCPRules`, `...TLSRules` in
//! `pkg/config/validation`) and istioctl reports them:
//!
//! - a rule without `match` catches everything, so only the last rule may have none;
//! - a match identical to an earlier one (the `name` aside) is never used, and a rule whose
//!   matches all are is never used;
//! - for HTTP, a URI prefix match that an earlier prefix match covers (same port, method,
//!   authority, headers, query parameters) is never used.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::{HttpMatchRequest, HttpRoute, StringMatch};
use crate::validate::Index;

pub(super) fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, vs) in &index.virtual_services {
        let vs = &vs.spec;
        let http: Vec<Rule> = vs
            .http
            .iter()
            .map(|r| Rule {
                name: r.name.clone(),
                matches: r
                    .matches
                    .iter()
                    .map(|mr| (identity(mr), mr.name.clone()))
                    .collect(),
            })
            .collect();
        let tcp: Vec<Rule> = vs
            .tcp
            .iter()
            .map(|r| Rule {
                name: None,
                matches: r.matches.iter().map(|mr| (identity(mr), None)).collect(),
            })
            .collect();
        let tls: Vec<Rule> = vs
            .tls
            .iter()
            .map(|r| Rule {
                name: None,
                matches: r.matches.iter().map(|mr| (identity(mr), None)).collect(),
            })
            .collect();
        let mut reporter = Reporter { m, out };
        let prefixes = unreachable(&mut reporter, "/spec/http", &http, |i, j| {
            vs.http
                .get(i)
                .and_then(|r| r.matches.get(j).map(|mr| (r, mr)))
                .and_then(|(r, mr)| prefix_match(r, mr, i, j))
        });
        overlapping_prefixes(&mut reporter, &prefixes);
        unreachable(&mut reporter, "/spec/tcp", &tcp, |_, _| None);
        unreachable(&mut reporter, "/spec/tls", &tls, |_, _| None);
    }
}

/// One rule as the analysis sees it: its name and each match's identity and name.
struct Rule {
    name: Option<String>,
    matches: Vec<(String, Option<String>)>,
}

/// How Istio names a rule or a match in messages: its name quoted, or `#i`.
fn rule_name(name: Option<&str>, i: usize) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("{n:?}"),
        Some(_) | None => format!("#{i}"),
    }
}

/// A match's identity: its JSON without `name` and without unset or zero fields, as Istio
/// compares the JSON of the protobuf messages (which omits zero values).
fn identity(m: &impl Serialize) -> String {
    fn prune(v: Value) -> Option<Value> {
        match v {
            Value::Null | Value::Bool(false) => None,
            Value::String(s) if s.is_empty() => None,
            Value::Number(n) if n.as_f64() == Some(0.0) => None,
            Value::Array(a) => {
                let a: Vec<Value> = a.into_iter().filter_map(prune).collect();
                (!a.is_empty()).then_some(Value::Array(a))
            }
            Value::Object(o) => {
                let o: serde_json::Map<String, Value> = o
                    .into_iter()
                    .filter(|(k, _)| k != "name")
                    .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                    .collect();
                (!o.is_empty()).then_some(Value::Object(o))
            }
            other @ (Value::Bool(true) | Value::Number(_) | Value::String(_)) => Some(other),
        }
    }
    let value = serde_json::to_value(m).unwrap_or(Value::Null);
    prune(value).map(|v| v.to_string()).unwrap_or_default()
}

struct Reporter<'a, 'o> {
    m: &'a Manifest,
    out: &'o mut Vec<Diagnostic>,
}

impl Reporter<'_, '_> {
    fn unreachable(&mut self, pointer: &str, rule: &str, reason: &str) {
        self.out.push(
            self.m
                .warning(
                    "vs-unreachable-rule",
                    pointer,
                    format!(
                        "{}: rule {rule} is never used ({reason})",
                        display_path(pointer)
                    ),
                )
                .istio("IST0130")
                .fix("put the rule before the rules that catch its traffic, or remove it; only the last rule may have no `match`"),
        );
    }

    fn ineffective(&mut self, pointer: &str, rule: &str, what: &str, earlier: &str) {
        self.out.push(
            self.m
                .warning(
                    "vs-ineffective-match",
                    pointer,
                    format!(
                        "{}: match {what} of rule {rule} is never used (an earlier match covers it: {earlier})",
                        display_path(pointer)
                    ),
                )
                .istio("IST0131")
                .fix("remove the match, or move the more specific rule first"),
        );
    }
}

/// The duplicate and catch-all analysis shared by HTTP, TCP and TLS rules. Returns the HTTP
/// prefix matches `prefix` builds, in order, for the overlap analysis.
fn unreachable(
    r: &mut Reporter<'_, '_>,
    base: &str,
    rules: &[Rule],
    prefix: impl Fn(usize, usize) -> Option<PrefixMatch>,
) -> Vec<PrefixMatch> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut catch_all: Option<usize> = None;
    let mut prefixes = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let name = rule_name(rule.name.as_deref(), i);
        let at = format!("{base}/{i}");
        if rule.matches.is_empty() {
            if catch_all.is_some() {
                r.unreachable(&at, &name, "only the last rule can have no matches");
            }
            catch_all = Some(i);
            continue;
        }
        if let Some(earlier) = catch_all {
            let why = format!(
                "rule {} before it has no matches and catches everything",
                rule_name(rules[earlier].name.as_deref(), earlier)
            );
            r.unreachable(&at, &name, &why);
            continue;
        }
        let mut duplicates = 0;
        for (j, (identity, match_name)) in rule.matches.iter().enumerate() {
            match seen.get(identity.as_str()) {
                Some(&earlier) => {
                    duplicates += 1;
                    let earlier = format!(
                        "the same match in rule {}",
                        rule_name(rules[earlier].name.as_deref(), earlier)
                    );
                    r.ineffective(
                        &format!("{at}/match/{j}"),
                        &name,
                        &rule_name(match_name.as_deref(), j),
                        &earlier,
                    );
                }
                None => {
                    seen.insert(identity, i);
                    if let Some(p) = prefix(i, j) {
                        prefixes.push(p);
                    }
                }
            }
        }
        if duplicates == rule.matches.len() {
            r.unreachable(&at, &name, "all its matches are used by earlier rules");
        }
    }
    prefixes
}

/// An HTTP match on a URI prefix, reduced as Istio's `genMatchHTTPRoutes` reduces it.
struct PrefixMatch {
    pointer: String,
    rule: String,
    matchno: String,
    prefix: String,
    port: u32,
    method: String,
    authority: String,
    headers: BTreeMap<String, String>,
    query_params: BTreeMap<String, String>,
    without_headers: BTreeMap<String, String>,
}

/// `exact:v` or `prefix:v` (empty for a regex or nothing), as Istio writes them.
fn exact_or_prefix(sm: Option<&StringMatch>) -> String {
    let Some(sm) = sm else {
        return String::new();
    };
    match (sm.exact.as_deref(), sm.prefix.as_deref()) {
        (Some(e), _) if !e.is_empty() => format!("exact:{e}"),
        (_, Some(p)) if !p.is_empty() => format!("prefix:{p}"),
        _ => String::new(),
    }
}

fn prefix_match(
    route: &HttpRoute,
    mr: &HttpMatchRequest,
    i: usize,
    j: usize,
) -> Option<PrefixMatch> {
    let prefix = mr
        .uri
        .as_ref()?
        .prefix
        .as_deref()
        .filter(|p| !p.is_empty())?;
    let map = |m: &BTreeMap<String, StringMatch>| {
        m.iter()
            .map(|(k, v)| (k.clone(), exact_or_prefix(Some(v))))
            .collect()
    };
    let method = match exact_or_prefix(mr.method.as_deref()) {
        // Istio assumes GET when a match names no method.
        m if m.is_empty() => "exact:GET".to_string(),
        m => m,
    };
    Some(PrefixMatch {
        pointer: format!("/spec/http/{i}/match/{j}"),
        rule: rule_name(route.name.as_deref(), i),
        matchno: rule_name(mr.name.as_deref(), j),
        prefix: prefix.to_string(),
        port: mr.port.unwrap_or(0),
        method,
        authority: exact_or_prefix(mr.authority.as_deref()),
        headers: map(&mr.headers),
        query_params: map(&mr.query_params),
        without_headers: map(&mr.without_headers),
    })
}

/// Istio's `coveredValidation`: does the earlier match `a` take all of `b`'s traffic?
fn covers(a: &PrefixMatch, b: &PrefixMatch) -> bool {
    fn same_or_prefixed(a: &str, b: &str) -> bool {
        a == b || a.starts_with(b)
    }
    fn maps(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
        a.len() == b.len()
            && a.iter()
                .all(|(k, v)| b.get(k).is_some_and(|bv| same_or_prefixed(v, bv)))
    }
    b.prefix.starts_with(&a.prefix)
        && a.port == b.port
        && same_or_prefixed(&a.method, &b.method)
        && same_or_prefixed(&a.authority, &b.authority)
        && maps(&a.headers, &b.headers)
        && maps(&a.query_params, &b.query_params)
        && maps(&a.without_headers, &b.without_headers)
}

fn overlapping_prefixes(r: &mut Reporter<'_, '_>, prefixes: &[PrefixMatch]) {
    for (k, a) in prefixes.iter().enumerate() {
        for b in &prefixes[k + 1..] {
            // Identical prefixes were judged as duplicates (or differ elsewhere).
            if a.prefix == b.prefix || !covers(a, b) {
                continue;
            }
            r.ineffective(
                &b.pointer,
                &b.rule,
                &format!("{} (prefix {})", b.matchno, b.prefix),
                &format!(
                    "match {} of prefix {} in rule {}",
                    a.matchno, a.prefix, a.rule
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::analyze::tests::{doc, run};

    fn vs(body: &str) -> String {
        doc(
            "VirtualService",
            "vs",
            "default",
            &format!("  hosts: [web]\n{body}"),
        )
    }

    const R: &str = "    route:\n    - destination: {host: web}\n";

    /// Table after Istio's `virtualservice_dupmatches.yaml` and
    /// `virtualservice_overlappingmatches.yaml` (analyzers_test "dupmatches").
    #[test]
    fn unreachable_and_ineffective_table() {
        let cases: Vec<(String, Vec<(&str, u32)>)> = vec![
            // Distinct matches, catch-all last: fine.
            (
                vs(&format!(
                    "  http:\n  - match:\n    - uri: {{prefix: /api}}\n{R}  - match:\n    - uri: {{prefix: /web}}\n{R}  - {}",
                    &R[4..]
                )),
                vec![],
            ),
            // Two catch-alls: the second is unreachable.
            (
                vs(&format!("  http:\n  - {}  - {}", &R[4..], &R[4..])),
                vec![("vs-unreachable-rule", 12)],
            ),
            // A rule after a catch-all never sees traffic.
            (
                vs(&format!(
                    "  http:\n  - {}  - match:\n    - uri: {{exact: /a}}\n{R}",
                    &R[4..]
                )),
                vec![("vs-unreachable-rule", 12)],
            ),
            // The same match twice (names aside): ineffective, and the rule unreachable.
            (
                vs(&format!(
                    "  http:\n  - match:\n    - uri: {{exact: /a}}\n{R}  - match:\n    - name: again\n      uri: {{exact: /a}}\n{R}"
                )),
                vec![("vs-unreachable-rule", 14), ("vs-ineffective-match", 15)],
            ),
            // One of two matches duplicated: only the match is ineffective.
            (
                vs(&format!(
                    "  http:\n  - match:\n    - uri: {{exact: /a}}\n{R}  - match:\n    - uri: {{exact: /a}}\n    - uri: {{exact: /b}}\n{R}"
                )),
                vec![("vs-ineffective-match", 15)],
            ),
            // A longer prefix after a shorter one, same method: covered.
            (
                vs(&format!(
                    "  http:\n  - match:\n    - uri: {{prefix: /debug}}\n{R}  - match:\n    - uri: {{prefix: /debugs}}\n{R}"
                )),
                vec![("vs-ineffective-match", 15)],
            ),
            // ... not when the later one asks for a header the earlier does not.
            (
                vs(&format!(
                    "  http:\n  - match:\n    - uri: {{prefix: /debug}}\n{R}  - match:\n    - uri: {{prefix: /debugs}}\n      headers: {{x: {{exact: a}}}}\n{R}"
                )),
                vec![],
            ),
            // ... nor for another method (no method is GET to Istio).
            (
                vs(&format!(
                    "  http:\n  - match:\n    - uri: {{prefix: /debug}}\n{R}  - match:\n    - uri: {{prefix: /debugs}}\n      method: {{exact: POST}}\n{R}"
                )),
                vec![],
            ),
            // TCP: duplicate matches and catch-alls, the same way.
            (
                vs(
                    "  tcp:\n  - match:\n    - port: 27017\n    route:\n    - destination: {host: db}\n  - match:\n    - port: 27017\n    route:\n    - destination: {host: db}\n",
                ),
                vec![("vs-unreachable-rule", 14), ("vs-ineffective-match", 15)],
            ),
            // TLS: same SNI twice.
            (
                vs(
                    "  tls:\n  - match:\n    - sniHosts: [a.com]\n    route:\n    - destination: {host: a}\n  - match:\n    - sniHosts: [a.com]\n    route:\n    - destination: {host: b}\n",
                ),
                vec![("vs-unreachable-rule", 14), ("vs-ineffective-match", 15)],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(run(&text, check), want, "{text}");
        }
    }

    #[test]
    fn identity_ignores_name_and_zero_values() {
        let a = HttpMatchRequest {
            name: Some("a".into()),
            ignore_uri_case: Some(false),
            port: Some(0),
            ..Default::default()
        };
        assert_eq!(identity(&a), identity(&HttpMatchRequest::default()));
    }
}
