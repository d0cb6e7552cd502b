//! The traffic analyzers of `istioctl analyze` that look across objects (and, when a cluster
//! is reachable, at the live Services): each finding carries the istioctl code beside ours.
//!
//! Each analyzer decides as istioctl's does (`pkg/config/analysis/analyzers/...` in
//! istio/istio), with istioctl's severity: an error only where istioctl reports an Error,
//! everything else (Warning, Info) a warning; except a destination host not found, which
//! Istio's webhook accepts and so is a warning (see `destinations`). This file holds the
//! catalog rows and the plain data validation may be given besides the revision
//! ([`ValidationContext`]); the analyzers live in the submodules:
//!
//! - `registry`: the Services and ServiceEntries a destination may name, as istioctl indexes
//!   them (by `exportTo` scope and fully qualified host);
//! - `destinations`: destination host not found (IST0101) and port selector required (IST0112);
//! - `gateway_hosts`: a VirtualService host its Gateway does not serve (IST0132);
//! - `matches`: unreachable rules and ineffective matches (IST0130, IST0131);
//! - `certificates`: DestinationRule TLS without CA certificates (IST0128, IST0129) and one
//!   certificate on several Gateways (IST0138);
//! - `service_entries`: addresses required for the protocol (IST0134) and conflicting
//!   protocols (IST0177);
//! - `deprecated`: deprecated fields, with their replacement (IST0002, IST0133).

mod certificates;
mod deprecated;
mod destinations;
mod gateway_hosts;
mod matches;
mod registry;
mod service_entries;

use super::Index;
use super::catalog::Check;
use crate::diagnostic::Diagnostic;
use crate::manifest::rollout_policy::RolloutPolicy;

/// What validation knows besides the revision itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationContext<'a> {
    /// Rollout policies from outside the revision (`rollouts.policiesDir`).
    pub policies: &'a [RolloutPolicy],
    /// The live cluster's Services and ServiceEntries, when a cluster was consulted; `None`
    /// when validation sees the revision alone (then a destination host missing from the
    /// revision is no error: istioctl, run against the cluster, would see its Services).
    pub cluster: Option<&'a ClusterServices>,
}

/// The Services and ServiceEntries of a live cluster, in every namespace, as plain data (veer
/// core does not talk to clusters; the controller and `veer validate --cluster` list them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterServices {
    pub services: Vec<KnownService>,
}

/// A Service or ServiceEntry known from outside the revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownService {
    pub namespace: String,
    /// A ServiceEntry's hosts as written; a Service's name.
    pub hosts: Vec<String>,
    /// Port numbers (a Service's `port`, not its `targetPort`).
    pub ports: Vec<u32>,
    /// `spec.exportTo` of a ServiceEntry, or the `networking.istio.io/exportTo` annotation of
    /// a Service split at commas; empty means every namespace.
    pub export_to: Vec<String>,
}

impl KnownService {
    /// A Kubernetes Service `namespace/name`.
    pub fn service(namespace: &str, name: &str, ports: Vec<u32>, export_to: Vec<String>) -> Self {
        KnownService {
            namespace: namespace.to_string(),
            hosts: vec![name.to_string()],
            ports,
            export_to,
        }
    }

    /// A ServiceEntry in `namespace`.
    pub fn service_entry(
        namespace: &str,
        hosts: Vec<String>,
        ports: Vec<u32>,
        export_to: Vec<String>,
    ) -> Self {
        KnownService {
            namespace: namespace.to_string(),
            hosts,
            ports,
            export_to,
        }
    }
}

/// Run every analyzer over the revision.
pub fn check(index: &Index<'_>, ctx: &ValidationContext<'_>, out: &mut Vec<Diagnostic>) {
    let registry = registry::Registry::new(index, ctx.cluster);
    destinations::check(index, &registry, out);
    gateway_hosts::check(index, out);
    matches::check(index, out);
    certificates::check(index, out);
    service_entries::check(index, out);
    deprecated::check(index, out);
}

const VS: &str = "VirtualService";
const DR: &str = "DestinationRule";

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[Check] = &[
    Check::warning(
        "vs-destination-host",
        VS,
        "istioctl analyzer virtualservice.DestinationHostAnalyzer (ReferencedResourceNotFound, Error), with the cluster's Services and ServiceEntries; a warning here because Istio's webhook accepts the VirtualService (`validation.severity` makes it an error)",
    )
    .istio("IST0101"),
    Check::warning(
        "vs-destination-host-no-cluster",
        VS,
        "istioctl analyzer virtualservice.DestinationHostAnalyzer (ReferencedResourceNotFound); without a cluster only where the revision defines Services in the host's namespace",
    )
    .istio("IST0101"),
    Check::error(
        "vs-destination-port",
        VS,
        "istioctl analyzer virtualservice.DestinationHostAnalyzer (ReferencedResourceNotFound host:port, Error)",
    )
    .istio("IST0101"),
    Check::error(
        "vs-destination-port-required",
        VS,
        "istioctl analyzer virtualservice.DestinationHostAnalyzer (VirtualServiceDestinationPortSelectorRequired, Error)",
    )
    .istio("IST0112"),
    Check::warning(
        "vs-gateway-host",
        VS,
        "istioctl analyzer virtualservice.GatewayAnalyzer (VirtualServiceHostNotFoundInGateway, Warning)",
    )
    .istio("IST0132"),
    Check::warning(
        "vs-unreachable-rule",
        VS,
        "webhook ValidateVirtualService analyzeUnreachable*Rules, reported by istioctl schema validation (VirtualServiceUnreachableRule, Warning)",
    )
    .istio("IST0130"),
    Check::warning(
        "vs-ineffective-match",
        VS,
        "webhook ValidateVirtualService analyzeUnreachable*Rules, reported by istioctl schema validation (VirtualServiceIneffectiveMatch, Info)",
    )
    .istio("IST0131"),
    Check::warning(
        "dr-tls-no-ca",
        DR,
        "istioctl analyzer destinationrule.CaCertificateAnalyzer (NoServerCertificateVerificationDestinationLevel, Warning)",
    )
    .istio("IST0128"),
    Check::warning(
        "dr-port-tls-no-ca",
        DR,
        "istioctl analyzer destinationrule.CaCertificateAnalyzer (NoServerCertificateVerificationPortLevel, Warning)",
    )
    .istio("IST0129"),
    Check::warning(
        "gw-duplicate-certificate",
        "Gateway",
        "istioctl analyzer gateway.CertificateAnalyzer (GatewayDuplicateCertificate, Warning)",
    )
    .istio("IST0138"),
    Check::warning(
        "se-addresses-required",
        "ServiceEntry",
        "istioctl analyzer serviceentry.ProtocolAddressesAnalyzer (ServiceEntryAddressesRequired, Warning)",
    )
    .istio("IST0134"),
    Check::warning(
        "se-protocol-conflict",
        "ServiceEntry",
        "istioctl analyzer serviceentry.ConflictingServiceEntryProtocolAnalyzer (ConflictingServiceEntryProtocol, Warning)",
    )
    .istio("IST0177"),
    Check::warning(
        "vs-deprecated-mirror-percent",
        VS,
        "webhook validateHTTPRoute warning `using deprecated setting \"mirrorPercent\"`, reported by istioctl as SchemaWarning",
    )
    .istio("IST0133"),
    Check::warning(
        "vs-deprecated-delay-percent",
        VS,
        "istioctl analyzer deprecation.FieldAnalyzer (Deprecated: HTTPRoute.fault.delay.percent)",
    )
    .istio("IST0002"),
    Check::warning(
        "vs-deprecated-allow-origin",
        VS,
        "Istio API: CorsPolicy.allow_origin is deprecated=true in favour of allow_origins (istioctl does not report it)",
    ),
    Check::warning(
        "dr-deprecated-consecutive-errors",
        DR,
        "webhook validateOutlierDetection warning `consecutive errors is deprecated`, reported by istioctl as SchemaWarning",
    )
    .istio("IST0133"),
    Check::warning(
        "dr-deprecated-minimum-ring-size",
        DR,
        "webhook validateLoadBalancer warning `consistent hash MinimumRingSize is deprecated`, reported by istioctl as SchemaWarning",
    )
    .istio("IST0133"),
    Check::warning(
        "dr-deprecated-least-conn",
        DR,
        "Istio API: LoadBalancerSettings.SimpleLB LEAST_CONN is deprecated in favour of LEAST_REQUEST (istioctl does not report it)",
    ),
    Check::warning(
        "sidecar-egress-proxy-ignored",
        "Sidecar",
        "istioctl analyzer deprecation.FieldAnalyzer (Deprecated: OutboundTrafficPolicy.EgressProxy ignored)",
    )
    .istio("IST0002"),
];

/// Fixtures the analyzers' tests share.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::{ReadOptions, parse_file};

    /// Parse `text` (which must read cleanly), run `check` with `cluster`, and return the
    /// diagnostics in reading order.
    pub(crate) fn run_with(
        text: &str,
        cluster: Option<&ClusterServices>,
        check: impl Fn(&Index<'_>, &registry::Registry<'_>, &mut Vec<Diagnostic>),
    ) -> Vec<Diagnostic> {
        let f = parse_file("t.yaml", text.as_bytes(), &ReadOptions::default());
        assert!(
            f.diagnostics.is_empty(),
            "fixture does not read: {:?}",
            f.diagnostics
        );
        let index = Index::new(&f.manifests);
        let registry = registry::Registry::new(&index, cluster);
        let mut out = Vec::new();
        check(&index, &registry, &mut out);
        crate::diagnostic::sort(&mut out);
        out
    }

    /// [`run_with`] for analyzers that need no registry, as (code, line).
    pub(crate) fn run(
        text: &str,
        check: fn(&Index<'_>, &mut Vec<Diagnostic>),
    ) -> Vec<(&'static str, u32)> {
        run_with(text, None, |index, _, out| check(index, out))
            .iter()
            .map(|d| (d.code, d.line))
            .collect()
    }

    /// A `kind` document named `name` in namespace `ns` with `spec` (indented by two).
    pub(crate) fn doc(kind: &str, name: &str, ns: &str, spec: &str) -> String {
        let api = if kind == "Service" {
            "v1"
        } else {
            "networking.istio.io/v1"
        };
        format!(
            "---\napiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n{spec}"
        )
    }

    #[test]
    fn every_code_is_in_the_catalog_once_with_an_istio_code_or_a_reason() {
        for c in CHECKS {
            assert!(
                c.istio.is_some() || c.mirrors.contains("istioctl does not report"),
                "{}",
                c.code
            );
        }
    }
}
