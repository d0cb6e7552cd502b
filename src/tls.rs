//! The process-wide TLS crypto provider. reqwest is built with `rustls-no-provider` to share
//! kube's ring-based rustls stack, and building a TLS client panics when the process has no
//! default provider: every place that builds an HTTP client calls [`install_crypto_provider`]
//! first (it is idempotent), and `main` calls it at start-up.

pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
