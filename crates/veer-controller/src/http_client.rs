//! What veer's outbound HTTP clients (Prometheus, notifications, rollout webhooks) share: the
//! process-wide TLS crypto provider and how a transport error is put into words.
//!
//! reqwest is built with `rustls-no-provider` to share kube's ring-based rustls stack, and
//! building a TLS client panics when the process has no default provider: every place that
//! builds an HTTP client calls [`install_crypto_provider`] first (it is idempotent), and `main`
//! calls it at start-up.

pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A transport error in words — `timed out`, `could not connect` or `request failed`, then
/// the cause chain (refused, reset, DNS…) — never the URL, which may hold a token.
pub fn describe_transport_error(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
    .to_string();
    // reqwest's own Display names the URL; the sources carry the reason and no URL.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
