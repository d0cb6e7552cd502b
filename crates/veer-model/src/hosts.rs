//! Host names and wildcards as Istio reads them, and their resolution to fully qualified
//! names (a short name `reviews` in namespace `shop` is `reviews.shop.svc.cluster.local`).
//!
//! The rules mirror Istio's `agent.ValidateWildcardDomain` (pkg/config/validation/agent) and
//! `host.Name.Matches` (pkg/config/host), so veer refuses no host Istio accepts.

use std::net::IpAddr;

/// The cluster's DNS suffix for services.
pub const CLUSTER_SUFFIX: &str = "svc.cluster.local";

/// Istio's limit on a whole host (`checkDNS1123Preconditions`).
const MAX_HOST_LEN: usize = 255;

/// Istio's limit on one label (`DNS1123LabelMaxLength`).
const MAX_LABEL_LEN: usize = 63;

/// Why a host is not one Istio accepts; the message quotes the host and names the rule it
/// breaks, so the writer knows what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the host is empty")]
    Empty,
    #[error("`{host}` is longer than 255 characters")]
    TooLong { host: String },
    #[error(
        "`{host}` has a wildcard out of place; only the first label may have one, at its start \
         (`*`, `*.example.com`, `*-api.example.com`)"
    )]
    InnerWildcard { host: String },
    #[error(
        "`{host}` has a partial wildcard; only `*` alone or a leading `*.` is allowed here \
         (`*.example.com`)"
    )]
    PartialWildcard { host: String },
    #[error("`{host}` has an empty label (two dots, or a dot at an end)")]
    EmptyLabel { host: String },
    #[error("`{host}` has a label longer than 63 characters")]
    LabelTooLong { host: String },
    #[error(
        "`{host}` is not a valid DNS name: `{label}` may hold only letters, digits and inner hyphens"
    )]
    BadLabel { host: String, label: String },
    #[error("`{host}` is not a valid DNS name: its top-level domain `{tld}` is all digits")]
    NumericTld { host: String, tld: String },
}

/// Check a host as Istio's `ValidateWildcardDomain` does for VirtualService, DestinationRule
/// and ServiceEntry hosts: at most 255 characters; a first label that is `*`, a DNS label, or
/// a DNS label after `*` or `*-` (`*x`, `*-api`); then DNS labels, the last of which may be
/// empty (a trailing dot, `istio.io.`).
///
/// Istio also refuses an all-digit top-level domain; this function leaves that to
/// [`check_wildcard_domain`], because callers that accept IP addresses check them first.
pub fn check_host(host: &str) -> Result<(), HostError> {
    if host.is_empty() {
        return Err(HostError::Empty);
    }
    if host.len() > MAX_HOST_LEN {
        return Err(HostError::TooLong {
            host: host.to_string(),
        });
    }
    let (first, rest) = match host.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (host, None),
    };
    check_first_label(host, first)?;
    let Some(rest) = rest else {
        return Ok(());
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let last = labels.len() - 1;
    for (i, label) in labels.iter().enumerate() {
        // Istio allows the last label to be empty, for unambiguous names like `istio.io.`.
        if i == last && label.is_empty() {
            return Ok(());
        }
        check_label(host, label)?;
    }
    Ok(())
}

/// [`check_host`] plus Istio's refusal of an all-digit top-level domain (`a.123`): exactly
/// `ValidateWildcardDomain`. An IP address fails it, so callers that allow IPs test
/// [`is_ip_address`] first, as Istio does.
pub fn check_wildcard_domain(host: &str) -> Result<(), HostError> {
    check_host(host)?;
    if let Some((_, rest)) = host.split_once('.') {
        let tld = rest.rsplit('.').next().unwrap_or_default();
        if !tld.is_empty() && tld.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HostError::NumericTld {
                host: host.to_string(),
                tld: tld.to_string(),
            });
        }
    }
    Ok(())
}

/// Istio's `ValidatePartialWildCard`, which Gateway server hosts and Sidecar egress hosts add
/// to [`check_host`]: a wildcard is `*` alone or a leading `*.`, never `*x` or `*-x`.
pub fn check_partial_wildcard(host: &str) -> Result<(), HostError> {
    if host.contains('*') && host != "*" && !host.starts_with("*.") {
        return Err(HostError::PartialWildcard {
            host: host.to_string(),
        });
    }
    Ok(())
}

/// Is `text` an IPv4 or IPv6 address (Istio's `netutil.IsValidIPAddress`)?
pub fn is_ip_address(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok()
}

/// The first label: `*`, or a DNS label optionally after `*` or `*-` (Istio's
/// `IsWildcardDNS1123Label`).
fn check_first_label(host: &str, label: &str) -> Result<(), HostError> {
    if label == "*" {
        return Ok(());
    }
    let bare = label
        .strip_prefix("*-")
        .or_else(|| label.strip_prefix('*'))
        .unwrap_or(label);
    if bare.contains('*') || (bare.is_empty() && label.starts_with('*')) {
        return Err(HostError::InnerWildcard {
            host: host.to_string(),
        });
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(HostError::LabelTooLong {
            host: host.to_string(),
        });
    }
    check_label(host, bare)
}

fn check_label(host: &str, label: &str) -> Result<(), HostError> {
    if label.is_empty() {
        return Err(HostError::EmptyLabel {
            host: host.to_string(),
        });
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(HostError::LabelTooLong {
            host: host.to_string(),
        });
    }
    if label.contains('*') {
        return Err(HostError::InnerWildcard {
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
/// names (no dot) are services of that namespace; names with a dot and wildcards are taken as
/// written (Istio's `ConvertHostToFQDN`).
pub fn fqdn(host: &str, namespace: &str) -> String {
    if host.contains('.') || host.starts_with('*') {
        host.to_ascii_lowercase()
    } else {
        format!("{}.{namespace}.{CLUSTER_SUFFIX}", host.to_ascii_lowercase())
    }
}

/// Does host pattern `pattern` (possibly `*.x`, `*x` or `*`) cover the fully qualified `host`?
pub fn matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => pattern == host,
    }
}

/// Do two hosts overlap: equal, or one wildcard covering the other or both (Istio's
/// `host.Name.Matches`: `*.com` overlaps `a.com` and `*.b.com`; `*.a.com` does not overlap
/// `*.b.com`).
pub fn overlaps(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => {
            if sa.len() < sb.len() {
                sb.ends_with(sa)
            } else {
                sa.ends_with(sb)
            }
        }
        (Some(sa), None) => b.ends_with(sa),
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases from Istio's `ValidateWildcardDomain` (pkg/config/validation/agent) and
    /// `IsWildcardDNS1123Label` (pkg/config/labels): what it accepts, veer accepts.
    #[test]
    fn valid_and_invalid_hosts() {
        for ok in [
            "reviews",
            "reviews.shop.svc.cluster.local",
            "*.example.com",
            "*",
            "a-b.c",
            // A first label may start with `*` or `*-` (`IsWildcardDNS1123Label`).
            "*x",
            "*x.example.com",
            "*-api.example.com",
            // The last label may be empty: a trailing dot.
            "istio.io.",
            "*.",
            "Reviews.Example.COM",
            "10.0.0.1",
        ] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "re_views", "a..b", "-a.b", "a*.b.com", "x.*.com", "a.b-", "**", "*-", "*--a.b",
            ".a.b", "a.b..",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
        let long = format!("{}.com", ["a"; 126].join("."));
        assert_eq!(long.len(), 255);
        assert!(check_host(&long).is_ok());
        assert!(check_host(&format!("a{long}")).is_err());
    }

    #[test]
    fn wildcard_domain_refuses_an_all_digit_top_level_domain() {
        assert_eq!(
            check_wildcard_domain("a.123").map_err(|e| e.to_string()),
            Err("`a.123` is not a valid DNS name: its top-level domain `123` is all digits".into())
        );
        assert!(check_wildcard_domain("10.0.0.1").is_err());
        assert!(check_wildcard_domain("123").is_ok());
        assert!(check_wildcard_domain("a.b1").is_ok());
        assert!(check_wildcard_domain("istio.io.").is_ok());
        assert!(is_ip_address("10.0.0.1") && is_ip_address("2001:db8::1"));
        assert!(!is_ip_address("a.b") && !is_ip_address("10.0.0.1/8"));
    }

    /// Istio's `ValidatePartialWildCard`, for Gateway and Sidecar hosts.
    #[test]
    fn partial_wildcards() {
        for ok in ["*", "*.example.com", "example.com"] {
            assert!(check_partial_wildcard(ok).is_ok(), "{ok}");
        }
        for bad in ["*x", "*-api.example.com", "*x.example.com"] {
            assert!(check_partial_wildcard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_refused_host_is_quoted_with_the_rule_it_breaks() {
        let long_label = "a".repeat(64);
        let cases = [
            ("", "the host is empty".to_string()),
            (
                "a*.b.com",
                "`a*.b.com` has a wildcard out of place; only the first label may have one, at \
                 its start (`*`, `*.example.com`, `*-api.example.com`)"
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
            Err(format!("`{long}` is longer than 255 characters"))
        );
    }

    #[test]
    fn short_names_resolve_in_their_namespace() {
        assert_eq!(fqdn("reviews", "shop"), "reviews.shop.svc.cluster.local");
        assert_eq!(fqdn("api.example.com", "shop"), "api.example.com");
        // Wildcards are never expanded (Istio's `ConvertHostToFQDN`).
        assert_eq!(fqdn("*x", "shop"), "*x");
        assert_eq!(fqdn("*", "shop"), "*");
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        assert!(matches("*.example.com", "api.example.com"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(matches("*", "anything"));
        assert!(matches("a.b", "a.b"));
        assert!(matches("*x.com", "ax.com"));
    }

    /// The examples of Istio's `host.Name.Matches`.
    #[test]
    fn overlaps_as_istio_matches() {
        let cases = [
            ("foo.com", "foo.com", true),
            ("foo.com", "bar.com", false),
            ("*.com", "foo.com", true),
            ("bar.com", "*.com", true),
            ("*.foo.com", "foo.com", false),
            ("*", "foo.com", true),
            ("*", "*.com", true),
            ("*.foo.com", "*.com", true),
            ("*.foo.com", "*.bar.com", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(overlaps(a, b), want, "{a} {b}");
            assert_eq!(overlaps(b, a), want, "{b} {a}");
        }
    }
}
