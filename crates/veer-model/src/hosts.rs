//! Host names and wildcards as Istio reads them, and their resolution to fully qualified
//! names (a short name `reviews` in namespace `shop` is `reviews.shop.svc.cluster.local`).

/// The cluster's DNS suffix for services.
pub const CLUSTER_SUFFIX: &str = "svc.cluster.local";

/// Why a host is not one Istio accepts; the message quotes the host and names the rule it
/// breaks, so the writer knows what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("`{host}` is empty after the wildcard")]
    EmptyAfterWildcard { host: String },
    #[error("`{host}` is longer than 253 characters")]
    TooLong { host: String },
    #[error(
        "`{host}` has a wildcard that is not the whole first label; only `*.` at the start is allowed"
    )]
    InnerWildcard { host: String },
    #[error("`{host}` has an empty label (two dots, or a dot at an end)")]
    EmptyLabel { host: String },
    #[error("`{host}` has a label longer than 63 characters")]
    LabelTooLong { host: String },
    #[error(
        "`{host}` is not a valid DNS name: `{label}` may hold only letters, digits and inner hyphens"
    )]
    BadLabel { host: String, label: String },
}

/// Check a host as used in VirtualService, DestinationRule, ServiceEntry and Gateway hosts:
/// a DNS name, optionally with a leading `*.` wildcard, or `*` alone.
pub fn check_host(host: &str) -> Result<(), HostError> {
    if host == "*" {
        return Ok(());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty() {
        return Err(HostError::EmptyAfterWildcard {
            host: host.to_string(),
        });
    }
    if name.len() > 253 {
        return Err(HostError::TooLong {
            host: host.to_string(),
        });
    }
    if name.contains('*') {
        return Err(HostError::InnerWildcard {
            host: host.to_string(),
        });
    }
    for label in name.split('.') {
        check_label(host, label)?;
    }
    Ok(())
}

fn check_label(host: &str, label: &str) -> Result<(), HostError> {
    if label.is_empty() {
        return Err(HostError::EmptyLabel {
            host: host.to_string(),
        });
    }
    if label.len() > 63 {
        return Err(HostError::LabelTooLong {
            host: host.to_string(),
        });
    }
    let ok_chars = label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok_chars || label.starts_with('-') || label.ends_with('-') {
        return Err(HostError::BadLabel {
            host: host.to_string(),
            label: label.to_string(),
        });
    }
    Ok(())
}

/// Resolve a host written in an object of `namespace` to its fully qualified form. Short
/// names (no dot) are services of that namespace; names with a dot are taken as written.
pub fn fqdn(host: &str, namespace: &str) -> String {
    if host.contains('.') || host == "*" {
        host.to_ascii_lowercase()
    } else {
        format!("{}.{namespace}.{CLUSTER_SUFFIX}", host.to_ascii_lowercase())
    }
}

/// Does host pattern `pattern` (possibly `*.x` or `*`) cover the fully qualified `host`?
pub fn matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('.') && head.len() > 1),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_hosts() {
        for ok in [
            "reviews",
            "reviews.shop.svc.cluster.local",
            "*.example.com",
            "*",
            "a-b.c",
        ] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "*.", "re_views", "a..b", "-a.b", "a*.b.com", "x.*.com", "a.b-",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refused_host_is_quoted_with_the_rule_it_breaks() {
        let long_label = "a".repeat(64);
        let cases = [
            ("*.", "`*.` is empty after the wildcard".to_string()),
            (
                "a*.b.com",
                "`a*.b.com` has a wildcard that is not the whole first label; only `*.` at the \
                 start is allowed"
                    .to_string(),
            ),
            (
                "a..b",
                "`a..b` has an empty label (two dots, or a dot at an end)".to_string(),
            ),
            (
                long_label.as_str(),
                format!("`{long_label}` has a label longer than 63 characters"),
            ),
            (
                "re_views.shop",
                "`re_views.shop` is not a valid DNS name: `re_views` may hold only letters, \
                 digits and inner hyphens"
                    .to_string(),
            ),
        ];
        for (host, want) in cases {
            assert_eq!(check_host(host).map_err(|e| e.to_string()), Err(want));
        }
        let long = format!("{}.com", ["a"; 130].join("."));
        assert_eq!(
            check_host(&long).map_err(|e| e.to_string()),
            Err(format!("`{long}` is longer than 253 characters"))
        );
    }

    #[test]
    fn short_names_resolve_in_their_namespace() {
        assert_eq!(fqdn("reviews", "shop"), "reviews.shop.svc.cluster.local");
        assert_eq!(fqdn("api.example.com", "shop"), "api.example.com");
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        assert!(matches("*.example.com", "api.example.com"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(matches("*", "anything"));
        assert!(matches("a.b", "a.b"));
    }
}
