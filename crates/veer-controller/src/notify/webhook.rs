//! The generic JSON webhook: the event as JSON ([`payload`], pure), POSTed with an
//! `X-Veer-Signature: sha256=<hex>` header, the HMAC-SHA256 of the exact body bytes under the
//! shared secret, so the receiver can check it came from veer and was not altered.

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::delivery::post_json;
use super::event::Event;
use super::{DeliveryError, Notifier, WebhookConfig};
use crate::secret::SecretSource;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Veer-Signature";
/// Header carrying the event kind, so a receiver can route before parsing.
pub const EVENT_HEADER: &str = "X-Veer-Event";
/// Version of the payload's shape.
pub const PAYLOAD_VERSION: u32 = 1;

/// The JSON a webhook receives. Pure.
pub fn payload(event: &Event) -> Value {
    let key = event.dedup_key();
    json!({
        "version": PAYLOAD_VERSION,
        "kind": event.kind().as_str(),
        "severity": event.severity().as_str(),
        "text": event.plain_text(),
        "dedupKey": {
            "object": key.object,
            "revision": key.revision,
            "transition": key.transition,
        },
        "event": event,
    })
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={:x}", mac.finalize().into_bytes())
}

/// Check a `sha256=<hex>` signature in constant time.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The generic webhook notifier.
#[derive(Debug)]
pub struct Webhook {
    url: reqwest::Url,
    secret: Option<SecretSource>,
    client: reqwest::Client,
}

impl Webhook {
    pub(crate) fn new(config: &WebhookConfig, client: reqwest::Client) -> Self {
        Webhook {
            url: config.url.clone(),
            secret: config.secret.clone(),
            client,
        }
    }
}

impl Notifier for Webhook {
    fn deliver<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&payload(event)).map_err(|e| DeliveryError::Config {
                message: format!("cannot encode the webhook payload: {e}"),
            })?;
            let mut headers = vec![(EVENT_HEADER, event.kind().as_str().to_string())];
            let secret = match &self.secret {
                Some(source) => Some(source.read().map_err(|e| DeliveryError::Config {
                    message: format!("{e} (notify.webhooks[].secret)"),
                })?),
                None => None,
            };
            if let Some(secret) = &secret {
                headers.push((SIGNATURE_HEADER, sign(secret.expose().as_bytes(), &body)));
            }
            let secrets: Vec<&crate::secret::Secret> = secret.iter().collect();
            post_json(&self.client, self.url.clone(), &headers, body, &secrets).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector_and_verifies() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sig = sign(b"s3cret", b"{}");
        assert!(verify(b"s3cret", b"{}", &sig));
        assert!(!verify(b"other", b"{}", &sig));
        assert!(!verify(b"s3cret", b"{ }", &sig));
        assert!(!verify(b"s3cret", b"{}", sig.trim_start_matches("sha256=")));
        assert!(!verify(b"s3cret", b"{}", "sha256=zz"));
    }

    #[test]
    fn payload_carries_kind_severity_key_and_the_event() {
        let e = Event::RolloutPromoted {
            rollout: "shop/reviews".into(),
            commit: "abc".into(),
        };
        let p = payload(&e);
        assert_eq!(p["version"], 1);
        assert_eq!(p["kind"], "rollout-promoted");
        assert_eq!(p["severity"], "info");
        assert_eq!(p["dedupKey"]["object"], "shop/reviews");
        assert_eq!(p["dedupKey"]["transition"], "rollout-promoted");
        assert_eq!(p["event"]["rollout"], "shop/reviews");
        assert_eq!(p["event"]["kind"], "rollout-promoted");
    }
}
