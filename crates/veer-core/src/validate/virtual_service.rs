//! VirtualService checks: host names, routes and their weights, subsets and gateways that must
//! exist in the revision, VirtualServices that claim one host on the mesh, fault-injection and
//! mirror percentages, abort statuses, match regexes, durations and retry attempts.
//!
//! Each check mirrors a rule of Istio's (its webhook's `ValidateVirtualService`, a CRD rule,
//! or an `istioctl analyze` analyzer) and is an error only where Istio refuses the object or
//! istioctl reports an Error; anything Istio accepts is at most a warning (`CHECKS` names the
//! rule of each).
//!
//! This file runs the checks and holds what they share (the destinations and the `mesh`
//! gateway); `hosts` checks host names, `routes` that there are routes and their weights,
//! `references` what must exist in the revision, `conflicts` hosts claimed twice on the mesh,
//! `faults` fault-injection and mirror settings, `http` regexes, durations and retries.

use super::catalog::Check;

const KIND: &str = "VirtualService";

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[Check] = &[
    Check::error(
        "vs-host",
        KIND,
        "ValidateVirtualService: each host passes agent.ValidateWildcardDomain or is an IP \
         address, and `*` is refused on the mesh gateway; validateDestination: a destination host \
         is not `*` and passes ValidateWildcardDomain",
    ),
    Check::error(
        "vs-duplicate-host",
        KIND,
        "ValidateVirtualService: \"duplicate hosts in virtual service\" (host.Name.Matches)",
    ),
    Check::error(
        "vs-no-routes",
        KIND,
        "ValidateVirtualService: \"http, tcp or tls must be provided in virtual service\"",
    ),
    Check::error("vs-weight", KIND, "validateWeight: \"weight < 0\""),
    Check::error(
        "vs-weight-zero",
        KIND,
        "validateHTTPRouteDestinations, validateRouteDestinations: \"total destination weight = \
         0\" with more than one destination",
    ),
    Check::warning(
        "vs-weight-sum",
        KIND,
        "none: Istio accepts any total above 0 (weights are relative shares); veer warns when a \
         split does not add up to 100",
    ),
    Check::error(
        "vs-unknown-subset",
        KIND,
        "istioctl analyze virtualservice.DestinationRuleAnalyzer (ReferencedResourceNotFound)",
    )
    .istio("IST0101"),
    Check::error(
        "vs-unknown-gateway",
        KIND,
        "istioctl analyze virtualservice.GatewayAnalyzer (ReferencedResourceNotFound): \
         spec.gateways names no Istio Gateway and no Gateway API Gateway",
    )
    .istio("IST0101"),
    Check::warning(
        "vs-match-gateway",
        KIND,
        "none: neither Istio nor istioctl checks the gateways a match names; veer warns when the \
         revision defines no such Gateway",
    ),
    Check::warning(
        "vs-internal-gateway",
        KIND,
        "istioctl analyze virtualservice.GatewayAnalyzer (ReferencedInternalGateway)",
    )
    .istio("IST0165"),
    Check::error(
        "vs-host-conflict",
        KIND,
        "istioctl analyze virtualservice.ConflictingMeshGatewayHostsAnalyzer \
         (ConflictingMeshGatewayVirtualServiceHosts): the mesh gateway only, scoped by exportTo",
    )
    .istio("IST0109"),
    Check::error(
        "vs-percentage",
        KIND,
        "validatePercentage (fault percentages 0, or 0.0001 to 100); validateHTTPRoute and \
         validateHTTPMirrors (mirrorPercentage and mirrors[].percentage 0 to 100, mirrorPercent \
         at most 100)",
    ),
    Check::warning(
        "vs-delay-percent",
        KIND,
        "none: Istio no longer checks the deprecated fault.delay.percent; veer warns outside 0-100",
    ),
    Check::error(
        "vs-abort-status",
        KIND,
        "validateHTTPFaultInjectionAbort: validateHTTPStatus (200-600), validateGRPCStatus, \
         \"HTTP/2 abort fault injection not supported yet\"",
    ),
    Check::warning(
        "vs-abort-no-status",
        KIND,
        "validateHTTPFaultInjectionAbort: warning \"abort configured, but error type not set\"",
    ),
    Check::error(
        "vs-regex",
        KIND,
        "validateStringMatchRegexp, validateStringRegexp, validateAllowOrigins, \
         validateURIRegexRewrite: RE2, not empty, at most 1024 characters; istioctl's \
         RegexAnalyzer (InvalidRegexp)",
    )
    .istio("IST0122"),
    Check::warning(
        "vs-without-headers-regex",
        KIND,
        "none: Istio checks no withoutHeaders regex (istioctl's RegexAnalyzer skips them too); \
         veer warns when one is not RE2",
    ),
    Check::error(
        "vs-duration",
        KIND,
        "CRD rule `duration(self) >= duration('1ms')` on timeout, retries.perTryTimeout, \
         retries.backoff, fault.delay.fixedDelay/exponentialDelay and corsPolicy.maxAge",
    ),
    Check::error(
        "vs-retry-attempts",
        KIND,
        "validateHTTPRetry: \"attempts cannot be negative\"",
    ),
];

mod conflicts;
mod faults;
mod hosts;
mod http;
mod references;
mod routes;

pub use conflicts::check_host_conflicts;
pub use faults::{check_abort_status, check_percentages};
pub use hosts::check_hosts;
pub(crate) use http::duration_at_least_1ms;
pub use http::{check_durations, check_regexes, check_retry_attempts};
pub use references::{GatewayApiGateways, check_gateways, check_subsets};
pub use routes::{check_routes, check_weights};

use super::Index;
use crate::diagnostic::Diagnostic;
use crate::manifest::istio::virtual_service::{Destination, VirtualService};

/// The gateway name meaning "every sidecar in the mesh"; always exists.
pub const MESH_GATEWAY: &str = "mesh";

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let gateway_api = GatewayApiGateways::new(index);
    for (m, vs) in &index.virtual_services {
        let vs = &vs.spec;
        check_hosts(m, vs, out);
        check_routes(m, vs, out);
        check_weights(m, vs, out);
        check_subsets(index, m, vs, out);
        check_gateways(index, &gateway_api, m, vs, out);
        check_percentages(m, vs, out);
        check_abort_status(m, vs, out);
        check_regexes(m, vs, out);
        check_durations(m, vs, out);
        check_retry_attempts(m, vs, out);
    }
    check_host_conflicts(index, out);
}

/// Does the VirtualService apply to the mesh? As Istio decides it: no gateways, or `mesh`
/// among them.
fn applies_to_mesh(vs: &VirtualService) -> bool {
    vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == MESH_GATEWAY)
}

/// Every destination of a VirtualService with the JSON pointer of its `destination` field.
fn destinations(vs: &VirtualService) -> Vec<(String, &Destination)> {
    let mut found = Vec::new();
    for (i, http) in vs.http.iter().enumerate() {
        let base = format!("/spec/http/{i}");
        for (j, r) in http.route.iter().enumerate() {
            found.push((format!("{base}/route/{j}/destination"), &r.destination));
        }
        if let Some(mirror) = &http.mirror {
            found.push((format!("{base}/mirror"), mirror));
        }
        for (j, mirror) in http.mirrors.iter().enumerate() {
            found.push((
                format!("{base}/mirrors/{j}/destination"),
                &mirror.destination,
            ));
        }
    }
    for (i, tcp) in vs.tcp.iter().enumerate() {
        for (j, r) in tcp.route.iter().enumerate() {
            found.push((
                format!("/spec/tcp/{i}/route/{j}/destination"),
                &r.destination,
            ));
        }
    }
    for (i, tls) in vs.tls.iter().enumerate() {
        for (j, r) in tls.route.iter().enumerate() {
            found.push((
                format!("/spec/tls/{i}/route/{j}/destination"),
                &r.destination,
            ));
        }
    }
    found
}

/// Fixtures the submodules' tests share.
#[cfg(test)]
mod fixtures {
    use super::*;
    use crate::manifest::{Manifest, ReadOptions, parse_file};

    pub(super) type Check = fn(&Manifest, &VirtualService, &mut Vec<Diagnostic>);

    pub(super) const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n";

    /// Parse `text` (which must read cleanly) and run `check` over the whole revision.
    pub(super) fn run_index(
        text: &str,
        check: impl Fn(&Index<'_>, &mut Vec<Diagnostic>),
    ) -> Vec<Diagnostic> {
        let f = parse_file("t.yaml", text.as_bytes(), &ReadOptions::default());
        assert!(
            f.diagnostics.is_empty(),
            "fixture does not read: {:?}",
            f.diagnostics
        );
        let index = Index::new(&f.manifests);
        let mut out = Vec::new();
        check(&index, &mut out);
        out
    }

    /// Run a per-VirtualService check on the VirtualService whose spec body is `body`.
    pub(super) fn run(check: Check, body: &str) -> Vec<(&'static str, u32)> {
        run_index(&format!("{VS}{body}"), |index, out| {
            for (m, vs) in &index.virtual_services {
                check(m, &vs.spec, out);
            }
        })
        .iter()
        .map(|d| (d.code, d.line))
        .collect()
    }

    pub(super) fn table(check: Check, cases: &[(&str, &[(&str, u32)])]) {
        for (body, expected) in cases {
            let got = run(check, body);
            assert_eq!(&got, expected, "for spec:\n{body}");
        }
    }
}
