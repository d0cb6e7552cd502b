//! HTTP route settings: match regexes (RE2, as Istio's `validateStringRegexp`), timeouts and
//! delays (at least 1ms) and retry attempts.

use crate::diagnostic::Diagnostic;
use crate::duration::{self, DurationError};
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::{StringMatch, VirtualService};
use crate::manifest::yaml::pointer_join;

/// Istio's limit on a regex's length (`validateStringRegexp`), which stands in for Envoy's
/// limit on the compiled program's size.
const MAX_REGEX_LEN: usize = 1024;

/// A regex of a VirtualService, where it is, and whether Istio checks it: it checks every
/// match regex but those of `withoutHeaders`.
struct Found<'a> {
    pointer: String,
    regex: &'a str,
    istio_checks: bool,
}

/// Every regex in a match, CORS origin or URI rewrite is one Istio accepts: RE2 syntax (the
/// `regex` crate's dialect), not empty, at most 1024 characters. Istio refuses the others
/// (an error), except in `withoutHeaders`, which it does not check (a warning).
pub fn check_regexes(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    fn add<'a>(
        found: &mut Vec<Found<'a>>,
        pointer: String,
        sm: &'a StringMatch,
        istio_checks: bool,
    ) {
        if let Some(re) = &sm.regex {
            found.push(Found {
                pointer: pointer_join(&pointer, "regex"),
                regex: re,
                istio_checks,
            });
        }
    }
    let mut found: Vec<Found<'_>> = Vec::new();
    for (i, http) in vs.http.iter().enumerate() {
        for (j, mr) in http.matches.iter().enumerate() {
            let base = format!("/spec/http/{i}/match/{j}");
            for (field, sm) in [
                ("uri", &mr.uri),
                ("scheme", &mr.scheme),
                ("method", &mr.method),
                ("authority", &mr.authority),
            ] {
                if let Some(sm) = sm {
                    add(&mut found, pointer_join(&base, field), sm, true);
                }
            }
            for (field, map, istio_checks) in [
                ("headers", &mr.headers, true),
                ("queryParams", &mr.query_params, true),
                ("withoutHeaders", &mr.without_headers, false),
            ] {
                for (name, sm) in map {
                    add(
                        &mut found,
                        pointer_join(&pointer_join(&base, field), name),
                        sm,
                        istio_checks,
                    );
                }
            }
        }
        if let Some(cors) = &http.cors_policy {
            for (j, sm) in cors.allow_origins.iter().enumerate() {
                add(
                    &mut found,
                    format!("/spec/http/{i}/corsPolicy/allowOrigins/{j}"),
                    sm,
                    true,
                );
            }
        }
        if let Some(re) = http
            .rewrite
            .as_ref()
            .and_then(|r| r.uri_regex_rewrite.as_ref())
            .and_then(|r| r.regex.as_deref())
        {
            found.push(Found {
                pointer: format!("/spec/http/{i}/rewrite/uriRegexRewrite/match"),
                regex: re,
                istio_checks: true,
            });
        }
    }
    for f in found {
        let Some(why) = regex_problem(f.regex) else {
            continue;
        };
        let at = display_path(&f.pointer);
        let fix = "correct the regex (RE2 syntax: no lookaround or backreferences), or use `exact`/`prefix`";
        out.push(if f.istio_checks {
            m.error("vs-regex", &f.pointer, format!("{at} {why}"))
                .fix(fix)
                .istio("IST0122")
        } else {
            m.warning(
                "vs-without-headers-regex",
                &f.pointer,
                format!("{at} {why}; Istio does not check withoutHeaders, but the proxies refuse a route whose regex does not compile"),
            )
            .fix(fix)
        });
    }
}

/// Why Istio's `validateStringRegexp` (and `validateStringMatchRegexp`) refuses `re`.
fn regex_problem(re: &str) -> Option<String> {
    if re.is_empty() {
        return Some("is empty; a regex match needs a pattern".to_string());
    }
    if re.len() > MAX_REGEX_LEN {
        return Some(format!(
            "is {} characters long; Istio refuses regexes over {MAX_REGEX_LEN} characters",
            re.len()
        ));
    }
    let err = regex::Regex::new(re).err()?;
    // The crate's message draws the pattern and a caret; its last line says why.
    let why = err.to_string();
    let why = why
        .lines()
        .last()
        .unwrap_or("invalid regex")
        .trim()
        .to_string();
    Some(format!("`{re}` is not a valid RE2 regex: {why}"))
}

/// Timeouts and delays are durations of at least 1ms, as the CRD requires.
pub fn check_durations(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    for (i, http) in vs.http.iter().enumerate() {
        let base = format!("/spec/http/{i}");
        let mut fields: Vec<(String, &str)> = Vec::new();
        if let Some(t) = &http.timeout {
            fields.push((format!("{base}/timeout"), t));
        }
        if let Some(r) = &http.retries {
            if let Some(t) = &r.per_try_timeout {
                fields.push((format!("{base}/retries/perTryTimeout"), t));
            }
            if let Some(t) = &r.backoff {
                fields.push((format!("{base}/retries/backoff"), t));
            }
        }
        if let Some(delay) = http.fault.as_ref().and_then(|f| f.delay.as_ref()) {
            if let Some(t) = &delay.fixed_delay {
                fields.push((format!("{base}/fault/delay/fixedDelay"), t));
            }
            if let Some(t) = &delay.exponential_delay {
                fields.push((format!("{base}/fault/delay/exponentialDelay"), t));
            }
        }
        if let Some(t) = http.cors_policy.as_ref().and_then(|c| c.max_age.as_deref()) {
            fields.push((format!("{base}/corsPolicy/maxAge"), t));
        }
        for (pointer, text) in fields {
            if let Err(why) = duration_at_least_1ms(text) {
                out.push(
                    m.error(
                        "vs-duration",
                        &pointer,
                        format!("{}: {why}", display_path(&pointer)),
                    )
                    .fix("write a duration of at least 1ms, like 250ms, 10s or 1m30s"),
                );
            }
        }
    }
}

/// Why a duration field Istio bounds at 1ms is refused; the message quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShortDurationError {
    #[error(transparent)]
    Unreadable(#[from] DurationError),
    /// Readable, but below Istio's 1ms floor: `0s` and `500us` are refused.
    #[error("`{text}` is shorter than the 1ms minimum")]
    BelowMinimum { text: String },
}

/// A duration Istio accepts for fields whose CRD rule is `duration(self) >= duration('1ms')`.
pub(crate) fn duration_at_least_1ms(text: &str) -> Result<(), ShortDurationError> {
    let d = duration::parse(text)?;
    if d < std::time::Duration::from_millis(1) {
        return Err(ShortDurationError::BelowMinimum {
            text: text.to_string(),
        });
    }
    Ok(())
}

/// Retry attempts are not negative.
pub fn check_retry_attempts(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    for (i, http) in vs.http.iter().enumerate() {
        if let Some(attempts) = http.retries.as_ref().and_then(|r| r.attempts)
            && attempts < 0
        {
            let pointer = format!("/spec/http/{i}/retries/attempts");
            out.push(
                m.error(
                    "vs-retry-attempts",
                    &pointer,
                    format!(
                        "{} is {attempts}; attempts cannot be negative",
                        display_path(&pointer)
                    ),
                )
                .fix("set `attempts` to 0 (no retries) or more"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::virtual_service::fixtures::table;

    #[test]
    fn regexes() {
        table(
            check_regexes,
            &[
                (
                    "  http:\n  - match:\n    - uri: {regex: \"^/api/v[0-9]+\"}\n      headers:\n        x: {regex: \"a|b\"}\n",
                    &[],
                ),
                (
                    "  http:\n  - match:\n    - uri: {regex: \"(unclosed\"}\n",
                    &[("vs-regex", 8)],
                ),
                // Lookahead is not RE2.
                (
                    "  http:\n  - match:\n    - scheme: {regex: \"(?=x)\"}\n",
                    &[("vs-regex", 8)],
                ),
                (
                    "  http:\n  - match:\n    - method: {regex: \"[\"}\n",
                    &[("vs-regex", 8)],
                ),
                (
                    "  http:\n  - match:\n    - authority: {regex: \"*a\"}\n",
                    &[("vs-regex", 8)],
                ),
                (
                    "  http:\n  - match:\n    - headers:\n        x-a:\n          regex: \"(\"\n",
                    &[("vs-regex", 10)],
                ),
                (
                    "  http:\n  - match:\n    - queryParams:\n        q:\n          regex: \"a{2,1}\"\n",
                    &[("vs-regex", 10)],
                ),
                // Istio does not check withoutHeaders regexes: a warning.
                (
                    "  http:\n  - match:\n    - withoutHeaders:\n        h:\n          regex: \"\\\\\"\n",
                    &[("vs-without-headers-regex", 10)],
                ),
                // validateStringMatchRegexp: not empty; validateStringRegexp: at most 1024.
                (
                    "  http:\n  - match:\n    - uri:\n        regex: \"\"\n",
                    &[("vs-regex", 9)],
                ),
            ],
        );
    }

    /// validateStringRegexp: at most 1024 characters, whatever the pattern.
    #[test]
    fn long_regexes_are_refused() {
        use crate::validate::virtual_service::fixtures::run;
        let body = |n: usize| {
            format!(
                "  http:\n  - match:\n    - uri:\n        regex: \"{}\"\n",
                "a".repeat(n)
            )
        };
        assert!(run(check_regexes, &body(1024)).is_empty());
        assert_eq!(run(check_regexes, &body(1025)), vec![("vs-regex", 9)]);
    }

    #[test]
    fn durations() {
        table(
            check_durations,
            &[
                (
                    "  http:\n  - timeout: 2s\n    retries: {attempts: 2, perTryTimeout: 500ms}\n    fault:\n      delay: {fixedDelay: 1.5s}\n",
                    &[],
                ),
                ("  http:\n  - timeout: \"2\"\n", &[("vs-duration", 7)]),
                (
                    "  http:\n  - retries:\n      perTryTimeout: 1d\n",
                    &[("vs-duration", 8)],
                ),
                (
                    "  http:\n  - fault:\n      delay:\n        fixedDelay: 0s\n",
                    &[("vs-duration", 9)],
                ),
            ],
        );
    }

    #[test]
    fn retry_attempts() {
        table(
            check_retry_attempts,
            &[
                ("  http:\n  - retries: {attempts: 0}\n", &[]),
                (
                    "  http:\n  - retries:\n      attempts: -1\n",
                    &[("vs-retry-attempts", 8)],
                ),
            ],
        );
    }
}
