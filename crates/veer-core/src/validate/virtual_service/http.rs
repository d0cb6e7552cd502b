//! HTTP route settings: match regexes (RE2), timeouts and delays (at least 1ms) and retry
//! attempts.

use crate::diagnostic::Diagnostic;
use crate::duration::{self, DurationError};
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::{StringMatch, VirtualService};
use crate::manifest::yaml::pointer_join;

/// Every regex in a match compiles as RE2 syntax (the `regex` crate's dialect).
pub fn check_regexes(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    fn add<'a>(found: &mut Vec<(String, &'a str)>, pointer: String, sm: &'a StringMatch) {
        if let Some(re) = &sm.regex {
            found.push((pointer_join(&pointer, "regex"), re));
        }
    }
    let mut found: Vec<(String, &str)> = Vec::new();
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
                    add(&mut found, pointer_join(&base, field), sm);
                }
            }
            for (field, map) in [
                ("headers", &mr.headers),
                ("queryParams", &mr.query_params),
                ("withoutHeaders", &mr.without_headers),
            ] {
                for (name, sm) in map {
                    add(
                        &mut found,
                        pointer_join(&pointer_join(&base, field), name),
                        sm,
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
                );
            }
        }
        if let Some(re) = http
            .rewrite
            .as_ref()
            .and_then(|r| r.uri_regex_rewrite.as_ref())
            .and_then(|r| r.regex.as_deref())
        {
            found.push((format!("/spec/http/{i}/rewrite/uriRegexRewrite/match"), re));
        }
    }
    for (pointer, re) in found {
        if let Err(err) = regex::Regex::new(re) {
            // The crate's message draws the pattern and a caret; its last line says why.
            let why = err.to_string();
            let why = why
                .lines()
                .last()
                .unwrap_or("invalid regex")
                .trim()
                .to_string();
            out.push(
                m.error(
                    "vs-regex",
                    &pointer,
                    format!("{} `{re}` is not a valid RE2 regex: {why}", display_path(&pointer)),
                )
                .fix("correct the regex (RE2 syntax: no lookaround or backreferences), or use `exact`/`prefix`"),
            );
        }
    }
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
                (
                    "  http:\n  - match:\n    - withoutHeaders:\n        h:\n          regex: \"\\\\\"\n",
                    &[("vs-regex", 10)],
                ),
            ],
        );
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
