//! The `namespace/host` form Gateway server hosts and Sidecar egress hosts are written in: the
//! rule for the namespace part, and why a host in that form is refused (Istio's
//! `ValidateNamespaceSlashWildcardHostname`).

use crate::hosts::HostError;

/// Why a Gateway server host or a Sidecar egress host is refused; the message quotes it and
/// says the form to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespacedHostError {
    /// A Sidecar egress host without its `namespace/` part.
    #[error("`{host}` has no namespace; egress hosts are written `namespace/host`")]
    NoNamespace { host: String },
    #[error(
        "`{ns}` in `{whole}` is not a namespace name (lowercase letters, digits and inner hyphens)"
    )]
    NotANamespace { whole: String, ns: String },
    /// A Gateway host without a dot: Istio refuses short names there.
    #[error(
        "`{host}` is a short name; Gateway hosts are fully qualified (`{host}.example.com`) or `*`"
    )]
    ShortName { host: String },
    /// The host part, after any `namespace/`.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// A namespace name is a DNS-1123 label.
pub(crate) fn check_namespace(whole: &str, ns: &str) -> Result<(), NamespacedHostError> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(NamespacedHostError::NotANamespace {
            whole: whole.to_string(),
            ns: ns.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::gateway::check_gateway_host;
    use super::super::sidecar::check_egress_host;

    #[test]
    fn a_refused_host_names_the_part_to_fix() {
        let message = |r: Result<(), super::NamespacedHostError>| r.map_err(|e| e.to_string());
        assert_eq!(
            message(check_egress_host("api.example.com")),
            Err(
                "`api.example.com` has no namespace; egress hosts are written `namespace/host`"
                    .to_string()
            )
        );
        assert_eq!(
            message(check_gateway_host("Shop/a.com")),
            Err(
                "`Shop` in `Shop/a.com` is not a namespace name (lowercase letters, digits and \
                 inner hyphens)"
                    .to_string()
            )
        );
        assert_eq!(
            message(check_egress_host("./a..b")),
            Err("`a..b` has an empty label (two dots, or a dot at an end)".to_string())
        );
        assert_eq!(message(check_gateway_host("shop/*.example.com")), Ok(()));
        assert_eq!(
            message(check_gateway_host("./reviews")),
            Err(
                "`reviews` is a short name; Gateway hosts are fully qualified \
                 (`reviews.example.com`) or `*`"
                    .to_string()
            )
        );
    }
}
