//! Which API errors are worth retrying, and the capped exponential backoff between tries
//! (tokio's clock, so tests run it with `start_paused`).

use std::future::Future;
use std::time::Duration;

use kube::core::Status;
use tracing::debug;

/// How often and how patiently to retry one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all (the first included).
    pub attempts: u32,
    /// Wait after the first failure; doubled each time, up to `max_delay`.
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// One try taking longer counts as a transient failure.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `retry` (0-based): `initial · 2^retry`, capped.
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// What an error means for a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth another try: 408, 409 (stale write), 429, 5xx (but [`is_unhandleable`] ones),
    /// timeouts, connection errors.
    Transient,
    /// Server-side apply found fields owned by other managers: only `force` helps.
    Conflict,
    /// Trying again gives the same answer: any other 4xx, and 500s that refuse the request
    /// itself ([`is_unhandleable`]).
    Permanent,
}

/// Is this 409 a server-side apply conflict (not a stale write)?
fn is_apply_conflict(status: &Status) -> bool {
    status.message.starts_with("Apply failed with")
        || status
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
}

/// 500 answers that are about the request, not the server: the same request gets the same
/// answer, so retrying it only delays the report. Each names the apiserver code path.
const UNHANDLEABLE_500: &[&str] = &[
    // Server-side apply cannot type the object (or the live one) against the server's schema
    // (apiserver fieldmanager `structuredmerge.go`), e.g. a keyed list entry without its key.
    "failed to create typed",
    // The body does not decode as its kind (apiserver `handlers` decoding).
    "cannot be handled as a",
    // The scheme has no such kind at that version (apimachinery `runtime.notRegisteredErr`).
    "is registered for version",
];

/// Is this 500 a refusal of the request itself?
pub fn is_unhandleable(status: &Status) -> bool {
    status.code == 500 && UNHANDLEABLE_500.iter().any(|m| status.message.contains(m))
}

pub fn classify(error: &kube::Error) -> ErrorClass {
    match error {
        kube::Error::Api(status) => match status.code {
            409 if is_apply_conflict(status) => ErrorClass::Conflict,
            // A failed delete precondition means the object is not the one planned on.
            409 if status.message.contains("Precondition failed") => ErrorClass::Permanent,
            500 if is_unhandleable(status) => ErrorClass::Permanent,
            408 | 409 | 429 | 500..=599 => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            ErrorClass::Transient
        }
        _ => ErrorClass::Permanent,
    }
}

/// The field managers named by an apply conflict (`conflict with "kubectl-edit" …`).
pub fn conflict_managers(status: &Status) -> Vec<String> {
    if status.code != 409 || !is_apply_conflict(status) {
        return Vec::new();
    }
    let mut texts = vec![status.message.as_str()];
    if let Some(d) = &status.details {
        texts.extend(d.causes.iter().map(|c| c.message.as_str()));
    }
    let mut managers = Vec::new();
    for text in texts {
        let mut rest = text;
        while let Some(at) = rest.find("with \"") {
            let after = &rest[at + 6..];
            let Some(end) = after.find('"') else {
                break;
            };
            let manager = after[..end].to_string();
            if !managers.contains(&manager) {
                managers.push(manager);
            }
            rest = &after[end..];
        }
    }
    managers
}

/// Run `op` until it succeeds, fails for good, or the tries run out; each try under the
/// policy's timeout. Returns the last result and the number of tries.
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut op: F,
) -> (Result<T, kube::Error>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match tokio::time::timeout(policy.timeout, op()).await {
            Ok(r) => r,
            Err(_) => Err(kube::Error::Service(
                format!("no answer within {:?}", policy.timeout).into(),
            )),
        };
        let error = match result {
            Ok(v) => return (Ok(v), attempt),
            Err(e) => e,
        };
        match classify(&error) {
            ErrorClass::Transient if attempt < policy.attempts => {
                let mut wait = policy.delay(attempt - 1);
                if let kube::Error::Api(status) = &error
                    && let Some(after) = status.details.as_ref().map(|d| d.retry_after_seconds)
                {
                    // Honour the server's Retry-After, within our cap.
                    wait = wait.max(Duration::from_secs(u64::from(after)).min(policy.max_delay));
                }
                debug!(%what, attempt, ?wait, %error, "transient failure; retrying");
                tokio::time::sleep(wait).await;
            }
            ErrorClass::Transient | ErrorClass::Conflict | ErrorClass::Permanent => {
                return (Err(error), attempt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use kube::core::response::{StatusCause, StatusDetails};

    use super::*;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status {
            code,
            message: message.into(),
            ..Status::default()
        }))
    }

    #[test]
    fn delays_double_and_are_capped() {
        let p = RetryPolicy::default();
        let got: Vec<u64> = (0..7).map(|i| p.delay(i).as_millis() as u64).collect();
        assert_eq!(got, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(p.delay(200), p.max_delay);
    }

    #[test]
    fn classification_table() {
        let cases = [
            (
                api(
                    409,
                    "Operation cannot be fulfilled on x: the object has been modified",
                ),
                ErrorClass::Transient,
            ),
            (
                api(
                    409,
                    "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas",
                ),
                ErrorClass::Conflict,
            ),
            (
                api(
                    409,
                    "Operation cannot be fulfilled: Precondition failed: UID in precondition: a",
                ),
                ErrorClass::Permanent,
            ),
            (api(429, "too many requests"), ErrorClass::Transient),
            (api(500, "boom"), ErrorClass::Transient),
            (
                api(
                    500,
                    "failed to create typed patch object: .spec.ports: element 0: associative list with keys has an element that omits key field \"protocol\" (and doesn't have default value)",
                ),
                ErrorClass::Permanent,
            ),
            (
                api(
                    500,
                    "Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal",
                ),
                ErrorClass::Permanent,
            ),
            (
                api(
                    500,
                    "no kind \"Widget\" is registered for version \"example.com/v2\" in scheme",
                ),
                ErrorClass::Permanent,
            ),
            // Only a 500 says so: a 503 with the same words is still the server's trouble.
            (
                api(503, "failed to create typed patch object"),
                ErrorClass::Transient,
            ),
            (api(408, "request timeout"), ErrorClass::Transient),
            (api(400, "bad request"), ErrorClass::Permanent),
            (api(405, "method not allowed"), ErrorClass::Permanent),
            (api(415, "unsupported media type"), ErrorClass::Permanent),
            (api(503, "unavailable"), ErrorClass::Transient),
            (api(504, "timeout"), ErrorClass::Transient),
            (api(403, "forbidden"), ErrorClass::Permanent),
            (api(404, "not found"), ErrorClass::Permanent),
            (api(422, "invalid"), ErrorClass::Permanent),
            (
                api(400, "admission webhook \"x\" denied the request"),
                ErrorClass::Permanent,
            ),
            (
                kube::Error::Service("connection refused".into()),
                ErrorClass::Transient,
            ),
            (
                kube::Error::LinesCodecMaxLineLengthExceeded,
                ErrorClass::Permanent,
            ),
        ];
        for (error, class) in cases {
            assert_eq!(classify(&error), class, "{error}");
        }
    }

    #[test]
    fn managers_are_read_from_message_and_causes() {
        let status = Status {
            code: 409,
            message: "Apply failed with 2 conflicts: conflicts with \"kubectl-edit\" using apps/v1:\n- .spec.replicas\nconflicts with \"helm\":\n- .data.x".into(),
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    reason: "FieldManagerConflict".into(),
                    message: "conflict with \"argocd\"".into(),
                    field: ".spec".into(),
                }],
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                retry_after_seconds: 0,
            }),
            ..Status::default()
        };
        assert_eq!(
            conflict_managers(&status),
            ["kubectl-edit", "helm", "argocd"]
        );
        assert!(
            conflict_managers(&Status {
                code: 409,
                message: "the object has been modified".into(),
                ..Status::default()
            })
            .is_empty()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_backoff_then_given_up() {
        let policy = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let (result, attempts) = with_retries(&policy, "x", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(api(503, "unavailable")) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!((attempts, calls.load(Ordering::SeqCst)), (5, 5));
        // 200 + 400 + 800 + 1600 ms between the five tries.
        assert_eq!(start.elapsed(), Duration::from_millis(3000));
    }

    #[tokio::test(start_paused = true)]
    async fn success_after_transient_failures_and_no_retry_on_conflict() {
        let policy = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let (result, attempts) = with_retries(&policy, "x", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => Err(api(409, "the object has been modified")),
                    1 => Err(api(429, "slow down")),
                    _ => Ok(n),
                }
            }
        })
        .await;
        assert_eq!((result.ok(), attempts), (Some(2), 3));

        let (result, attempts) = with_retries(&policy, "x", || async {
            Err::<(), _>(api(
                409,
                "Apply failed with 1 conflict: conflict with \"a\": .x",
            ))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_try_that_hangs_times_out_and_is_retried() {
        let policy = RetryPolicy {
            attempts: 2,
            ..RetryPolicy::default()
        };
        let start = tokio::time::Instant::now();
        let (result, attempts) = with_retries(&policy, "x", || async {
            std::future::pending::<Result<(), kube::Error>>().await
        })
        .await;
        assert!(matches!(result, Err(kube::Error::Service(_))));
        assert_eq!(attempts, 2);
        assert_eq!(start.elapsed(), Duration::from_millis(30_000 * 2 + 200));
    }
}
