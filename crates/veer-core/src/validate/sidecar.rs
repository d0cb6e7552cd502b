//! Sidecar checks: a configuration that says something, a workloadSelector Istio accepts,
//! egress host forms, connection pools (the deprecated `egressProxy` is `validate::analyze`'s);
//! listener ports and endpoints are in
//! [`listeners`], which Sidecars apply to a workload (one default per namespace, no two on the
//! same pods) in [`selectors`].
//!
//! Each check is an error only where Istio refuses the Sidecar (its CRD schema, its webhook's
//! `ValidateSidecar`) or where istioctl analyze reports an Error (IST0110, IST0111); what
//! Istio accepts is at most a warning.

mod listeners;
mod selectors;

use super::Index;
use super::catalog::Check;
use super::destination_rule::check_connection_pool;
use super::namespaced_host::{NamespacedHostError, check_namespace};
use super::service_entry::{SelectorCodes, check_workload_selector};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::sidecar::Sidecar;
use crate::manifest::yaml::pointer_join;

const KIND: &str = "Sidecar";

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[Check] = &[
    Check::error(
        "sidecar-empty",
        KIND,
        "webhook ValidateSidecar: \"sidecar: empty configuration provided\" (no ingress, egress, outboundTrafficPolicy or inboundConnectionPool)",
    ),
    Check::error(
        "sidecar-selector-wildcard",
        KIND,
        "CRD CEL on workloadSelector.labels: !self.contains(\"*\"); webhook ValidateAlphaWorkloadSelector: no `*`, no empty key",
    ),
    Check::warning(
        "sidecar-empty-selector",
        KIND,
        "webhook ValidateSidecar warning: \"workload selector specified without labels, will be applied to all services in namespace\"",
    ),
    Check::error(
        "sidecar-egress-host",
        KIND,
        "CRD: egress[].hosts required; webhook agent.ValidateNamespaceSlashWildcardHostname: namespace/dnsName, no short names, no partial wildcards",
    ),
    Check::error(
        "sidecar-ingress-port",
        KIND,
        "webhook ValidateSidecar: port required, validateSidecarIngressPortAndBind (ValidatePort, ValidateProtocol, ValidatePortName, bind an IP), targetPort refused; no protocol is allowed (sniffing)",
    ),
    Check::error(
        "sidecar-duplicate-ingress-port",
        KIND,
        "webhook ValidateSidecar: \"ports on IP bound listeners must be unique\"",
    ),
    Check::error(
        "sidecar-egress-port",
        KIND,
        "webhook validateSidecarEgressPortBindAndCaptureMode (ValidatePort or a unix:// bind, ValidateProtocol, ValidatePortName), unique ports and sockets, one port-less listener, last",
    ),
    Check::error(
        "sidecar-default-endpoint",
        KIND,
        "webhook ValidateSidecar: defaultEndpoint is 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT or unix://PATH",
    ),
    Check::error(
        "sidecar-connection-pool",
        KIND,
        "webhook validateConnectionPool (as DestinationRule's); CRD CEL durations >= 1ms; a limit of 0 (Istio's `unset`) is a warning",
    ),
    Check::error(
        "sidecar-multiple-default",
        KIND,
        "istioctl sidecar.DefaultSelectorAnalyzer: MultipleSidecarsWithoutWorkloadSelectors (Error)",
    )
    .istio("IST0111"),
    Check::error(
        "sidecar-selector-conflict",
        KIND,
        "istioctl sidecar.SelectorAnalyzer: ConflictingSidecarWorkloadSelectors (Error), over the pod templates of the revision's workloads",
    )
    .istio("IST0110"),
];

/// The workloadSelector codes of a Sidecar.
const SELECTOR_CODES: SelectorCodes = SelectorCodes {
    wildcard: "sidecar-selector-wildcard",
    empty: "sidecar-empty-selector",
};

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, sidecar) in &index.sidecars {
        let sidecar = &sidecar.spec;
        check_empty(m, sidecar, out);
        if let Some(selector) = &sidecar.workload_selector {
            check_workload_selector(m, "/spec/workloadSelector", selector, SELECTOR_CODES, out);
        }
        check_egress_hosts(m, sidecar, out);
        listeners::check_ingress(m, sidecar, out);
        listeners::check_egress(m, sidecar, out);
        check_connection_pools(m, sidecar, out);
    }
    selectors::check_namespace_defaults(index, out);
    selectors::check_conflicts(index, out);
}

/// Istio refuses a Sidecar that configures nothing.
fn check_empty(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    if sidecar.ingress.is_empty()
        && sidecar.egress.is_empty()
        && sidecar.outbound_traffic_policy.is_none()
        && sidecar.inbound_connection_pool.is_none()
    {
        out.push(
            m.error(
                "sidecar-empty",
                "/spec",
                "the Sidecar configures nothing: no ingress, egress, outboundTrafficPolicy or inboundConnectionPool",
            )
            .fix("add what it should change, e.g. `egress: [{hosts: [\"./*\", \"istio-system/*\"]}]`, or remove the Sidecar"),
        );
    }
}

/// The inbound pools have DestinationRule's shape and the same limits.
fn check_connection_pools(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    if let Some(pool) = &sidecar.inbound_connection_pool {
        check_connection_pool(
            m,
            "sidecar-connection-pool",
            "/spec/inboundConnectionPool",
            pool,
            out,
        );
    }
    for (i, listener) in sidecar.ingress.iter().enumerate() {
        if let Some(pool) = &listener.connection_pool {
            let base = format!("/spec/ingress/{i}/connectionPool");
            check_connection_pool(m, "sidecar-connection-pool", &base, pool, out);
        }
    }
}

fn check_egress_hosts(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    for (i, egress) in sidecar.egress.iter().enumerate() {
        let at = pointer_join("/spec/egress", i);
        if egress.hosts.is_empty() {
            out.push(
                m.error(
                    "sidecar-egress-host",
                    &format!("{at}/hosts"),
                    format!(
                        "{}: an egress listener needs at least one host",
                        display_path(&at)
                    ),
                )
                .fix("list the reachable hosts, e.g. `hosts: [\"./*\", \"istio-system/*\"]`"),
            );
        }
        for (j, host) in egress.hosts.iter().enumerate() {
            let why = match check_egress_host(host) {
                Err(e) => Some(e.to_string()),
                Ok(()) => egress_host_form(host),
            };
            if let Some(why) = why {
                let p = format!("{at}/hosts/{j}");
                out.push(
                    m.error("sidecar-egress-host", &p, format!("{}: {why}", display_path(&p)))
                        .fix("write `namespace/host` with a full DNS name: e.g. `./*` (this namespace), `istio-system/*`, `*/api.example.com`, `./reviews.shop.svc.cluster.local`"),
                );
            }
        }
    }
}

/// An egress host is `namespace/host`: namespace is `*` (any), `.` (the Sidecar's own),
/// `~` (none) or a namespace name; host is `*` or a DNS name with an optional `*.` prefix.
pub fn check_egress_host(host: &str) -> Result<(), NamespacedHostError> {
    let Some((ns, name)) = host.split_once('/') else {
        return Err(NamespacedHostError::NoNamespace {
            host: host.to_string(),
        });
    };
    if !matches!(ns, "*" | "." | "~") {
        check_namespace(host, ns)?;
    }
    Ok(hosts::check_host(name)?)
}

/// What Istio's webhook refuses in the host part beyond a valid name: a short name
/// (`./reviews`: the egress listener matches full names only) and a partial wildcard
/// (`./*reviews.com`).
fn egress_host_form(host: &str) -> Option<String> {
    let (_, name) = host.split_once('/')?;
    if name == "*" {
        None
    } else if name.strip_prefix("*.").unwrap_or(name).contains('*') {
        Some(format!(
            "`{name}` is a partial wildcard; a wildcard is `*` alone or a `*.` prefix"
        ))
    } else if !name.contains('.') {
        Some(format!(
            "`{name}` is a short name; egress hosts are full DNS names (`{name}.<namespace>.svc.cluster.local`) or `*`"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
