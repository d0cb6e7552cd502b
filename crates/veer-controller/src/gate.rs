//! Rollout webhooks (Flagger-like gates): the I/O edge behind [`Action::RunWebhooks`]. Each
//! webhook of the asked kind gets a JSON POST `{name, namespace, phase, kind, metadata,
//! checks?}` with its own timeout; a 2xx answer passes, anything else (another status, a
//! timeout, no connection) fails with the reason. The answer is the plain
//! [`WebhookReport`] the rollout state machine consumes; what a failure *means* (a failed
//! check, a hold before promotion, a report only) is the state machine's business.
//!
//! Webhook URLs may carry tokens, so no message here ever contains a URL.
//!
//! [`Action::RunWebhooks`]: crate::rollout::Action::RunWebhooks

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::manifest::rollout_policy::Webhook;
use crate::rollout::{Check, Phase, WebhookKind, WebhookReport, WebhookResult};

/// A webhook's timeout when the policy gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest part of a refusing webhook's answer kept in the message.
const EXCERPT_CHARS: usize = 200;

/// Why the webhook client could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("cannot build the HTTP client for rollout webhooks: {message}")]
    Client { message: String },
}

impl GateError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            GateError::Client { .. } => "client",
        }
    }
}

/// The rollout a webhook is called about.
#[derive(Debug, Clone, PartialEq)]
pub struct GateContext<'a> {
    /// The VirtualService's name and namespace.
    pub name: &'a str,
    pub namespace: &'a str,
    pub phase: Phase,
    /// The latest checks, sent along when given (e.g. to a rollback webhook).
    pub checks: Option<&'a [Check]>,
}

/// The JSON body each webhook receives.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    name: &'a str,
    namespace: &'a str,
    phase: &'static str,
    kind: &'static str,
    metadata: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<&'a [Check]>,
}

/// Calls rollout webhooks. Cheap to clone; build one and reuse it (it pools connections).
#[derive(Debug, Clone)]
pub struct WebhookGate {
    client: reqwest::Client,
}

impl WebhookGate {
    pub fn new() -> Result<Self, GateError> {
        crate::http_client::install_crypto_provider();
        let client = reqwest::Client::builder()
            // A redirect would send the payload somewhere the policy did not name.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("veer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GateError::Client {
                message: e.without_url().to_string(),
            })?;
        Ok(WebhookGate { client })
    }

    /// Call every webhook of `kind` among `webhooks` (a policy's list), all at once, each with
    /// its timeout, and report each result in the policy's order under `id`. No webhook of that
    /// kind: an empty report, which passes.
    pub async fn run(
        &self,
        id: u64,
        kind: WebhookKind,
        webhooks: &[Webhook],
        context: &GateContext<'_>,
    ) -> WebhookReport {
        let calls = webhooks
            .iter()
            .filter(|w| w.kind == kind)
            .map(|w| self.call(w, context));
        let results = futures::future::join_all(calls).await;
        WebhookReport { id, results }
    }

    async fn call(&self, webhook: &Webhook, context: &GateContext<'_>) -> WebhookResult {
        let result = |passed: bool, message: String| WebhookResult {
            name: webhook.name.clone(),
            passed,
            message,
        };
        let timeout = match webhook.timeout.as_deref().map(crate::duration::parse) {
            None => DEFAULT_TIMEOUT,
            Some(Ok(t)) => t,
            Some(Err(reason)) => {
                return result(
                    false,
                    format!("the webhook's timeout is not usable: {reason}"),
                );
            }
        };
        let payload = Payload {
            name: context.name,
            namespace: context.namespace,
            phase: context.phase.as_str(),
            kind: webhook.kind.as_str(),
            metadata: &webhook.metadata,
            checks: context.checks,
        };
        let outcome = async {
            let response = self
                .client
                .post(&webhook.url)
                .timeout(timeout)
                .json(&payload)
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let outcome = match outcome {
            Ok((status, _)) if status.is_success() => result(true, String::new()),
            Ok((status, body)) => {
                let mut message = format!("answered HTTP {status}");
                let excerpt = excerpt(&body);
                if !excerpt.is_empty() {
                    message.push_str(": ");
                    message.push_str(&excerpt);
                }
                result(false, message)
            }
            Err(e) => result(false, describe(&e, timeout)),
        };
        if !outcome.passed {
            tracing::info!(
                webhook = %webhook.name, kind = webhook.kind.as_str(),
                rollout = %format!("{}/{}", context.namespace, context.name),
                reason = %outcome.message, "rollout webhook did not pass"
            );
        }
        outcome
    }
}

/// A transport error in words, without the URL (which may hold a token); a timeout says
/// which timeout, since each webhook has its own.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout:?}");
    }
    crate::http_client::describe_transport_error(e)
}

/// The start of an answer's body on one line, for the message. Pure.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_one_bounded_line() {
        assert_eq!(
            excerpt(b"  waiting for\n approval \n"),
            "waiting for approval"
        );
        let long = "x".repeat(500);
        let cut = excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(b""), "");
    }
}
