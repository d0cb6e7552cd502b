//! Getting a message to a receiver: the retry policy (pure: which failures are retried, how
//! long to wait, when to give up), `Retry-After` parsing, and one HTTP POST whose outcome is
//! classified into a [`DeliveryError`] that never carries a URL or a secret.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::DeliveryError;
use crate::secret::Secret;

/// How hard to try one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub initial_backoff: Duration,
    /// Cap on the doubling.
    pub max_backoff: Duration,
    /// Cap on a receiver's `Retry-After`, so a hostile or confused receiver cannot park the
    /// queue for a day.
    pub max_retry_after: Duration,
}

pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before attempt `failed_attempt + 1`, or `None` to give up. Pure.
    pub fn next_delay(&self, failed_attempt: u32, error: &DeliveryError) -> Option<Duration> {
        if failed_attempt >= self.max_attempts || !error.is_retryable() {
            return None;
        }
        let exponent = failed_attempt.saturating_sub(1).min(30);
        let backoff = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        Some(match error.retry_after() {
            // The receiver knows best when it can take more, within our cap.
            Some(after) => after.min(self.max_retry_after),
            None => backoff,
        })
    }
}

/// Parse a `Retry-After` value: delay-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// A receiver's answer to a successful POST.
pub(crate) struct Answer {
    pub body: Vec<u8>,
}

/// POST `body` as JSON to `url`, classify the outcome. `secrets` are scrubbed from any text
/// that ends up in an error (a receiver could echo its URL back).
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: reqwest::Url,
    headers: &[(&str, String)],
    body: Vec<u8>,
    secrets: &[&Secret],
) -> Result<Answer, DeliveryError> {
    let mut request = client
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Err(DeliveryError::Transport {
                message: scrub(&crate::http_client::describe_transport_error(&e), secrets),
            });
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, Utc::now()));
    let body = match response.bytes().await {
        Ok(b) => b.to_vec(),
        Err(e) => {
            return Err(DeliveryError::Transport {
                message: scrub(&crate::http_client::describe_transport_error(&e), secrets),
            });
        }
    };
    if status.is_success() {
        return Ok(Answer { body });
    }
    let excerpt = scrub(&excerpt(&body), secrets);
    let code = status.as_u16();
    if code == 429 || code == 408 || status.is_server_error() {
        Err(DeliveryError::Status {
            status: code,
            retry_after,
            body: excerpt,
        })
    } else {
        Err(DeliveryError::Rejected {
            status: Some(code),
            message: excerpt,
        })
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Replace every occurrence of a secret with `***`.
pub(crate) fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut text = text.to_string();
    for secret in secrets {
        if !secret.expose().is_empty() {
            text = text.replace(secret.expose(), "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<Duration>) -> DeliveryError {
        DeliveryError::Status {
            status: code,
            retry_after,
            body: String::new(),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let p = RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(60),
        };
        let e = status(500, None);
        let delays: Vec<_> = (1..=6).map(|a| p.next_delay(a, &e)).collect();
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(delays, vec![s(1), s(2), s(4), s(5), s(5), None]);
    }

    #[test]
    fn retry_after_wins_within_its_cap_and_permanent_errors_are_not_retried() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.next_delay(1, &status(429, Some(Duration::from_secs(30)))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            p.next_delay(1, &status(429, Some(Duration::from_secs(86_400)))),
            Some(p.max_retry_after)
        );
        let rejected = DeliveryError::Rejected {
            status: Some(404),
            message: "no_service".into(),
        };
        assert_eq!(p.next_delay(1, &rejected), None);
        let transport = DeliveryError::Transport {
            message: "could not connect".into(),
        };
        assert_eq!(p.next_delay(1, &transport), Some(Duration::from_secs(1)));
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn scrub_and_excerpt() {
        let s = Secret::new("T0/B0/XYZ");
        assert_eq!(
            scrub("posting to /services/T0/B0/XYZ failed", &[&s]),
            "posting to /services/*** failed"
        );
        let long = "x".repeat(500);
        assert_eq!(excerpt(long.as_bytes()).chars().count(), 201);
    }
}
