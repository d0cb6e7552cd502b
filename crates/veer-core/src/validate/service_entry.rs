//! ServiceEntry checks: hosts, ports, addresses, and the consistency of resolution, location,
//! endpoints and workloadSelector.
//!
//! Each check is an error only where Istio refuses the entry (its CRD schema and CEL rules, or
//! its webhook's `ValidateServiceEntry`); what Istio accepts is at most a warning. The
//! workloadSelector check, which Sidecars share, is in [`selector`].

mod addresses;
mod selector;

use std::collections::HashMap;

use super::Index;
use super::catalog::Check;
use super::gateway::{SERVICE_PROTOCOLS, known_protocol, valid_port_number};
use super::k8s_names::name_problem;
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::ServiceEntry;
use crate::manifest::istio::display_path;
use crate::manifest::istio::service_entry::{Location, Resolution};
use crate::manifest::kinds::NameRule;
use crate::manifest::yaml::pointer_join;

pub use addresses::{AddressError, check_ip_or_cidr};
pub(crate) use selector::{SelectorCodes, check_workload_selector};

use addresses::check_static_address;

const KIND: &str = "ServiceEntry";

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[Check] = &[
    Check::error(
        "se-no-hosts",
        KIND,
        "CRD: spec.hosts is required, minItems 1",
    ),
    Check::error(
        "se-wildcard-host",
        KIND,
        "CRD CEL on hosts: self != \"*\" (\"hostname cannot be wildcard\")",
    ),
    Check::error(
        "se-invalid-host",
        KIND,
        "webhook ValidateServiceEntry: agent.ValidateWildcardDomain(host)",
    ),
    Check::error(
        "se-port-number",
        KIND,
        "CRD CEL on ports[].number and endpoints[].ports: 0 < self && self <= 65535",
    ),
    Check::error(
        "se-target-port",
        KIND,
        "CRD CEL on ports[].targetPort: 0 < self && self <= 65535",
    ),
    Check::error(
        "se-port-name",
        KIND,
        "webhook ValidatePortName: a port name is a DNS-1123 label (labels.IsDNS1123Label)",
    ),
    Check::error(
        "se-duplicate-port-number",
        KIND,
        "CRD CEL on ports: \"port number cannot be duplicated\"",
    ),
    Check::error(
        "se-duplicate-port-name",
        KIND,
        "CRD: ports is a list map keyed by name; webhook: \"service entry port name already defined\"",
    ),
    Check::error(
        "se-protocol",
        KIND,
        "webhook ValidateProtocol: protocol.Parse is not Unsupported; empty is allowed (protocol sniffing)",
    ),
    Check::error(
        "se-address",
        KIND,
        "webhook ValidateServiceEntry: agent.ValidateIPSubnet(address)",
    ),
    Check::error(
        "se-cidr-resolution",
        KIND,
        "CRD CEL: \"CIDR addresses are allowed only for NONE/STATIC resolution types\"",
    ),
    Check::error(
        "se-multiple-hosts-tcp",
        KIND,
        "webhook ValidateServiceEntry: \"multiple hosts provided with non-HTTP, non-TLS ports\" unless resolution is NONE",
    ),
    Check::warning(
        "se-static-no-endpoints",
        KIND,
        "none: Istio accepts resolution STATIC without endpoints; veer warns that nothing can receive the traffic",
    ),
    Check::error(
        "se-static-address",
        KIND,
        "webhook validateWorkloadEntry (STATIC): an IP address or a unix:// socket; CRD CEL UDS rules",
    ),
    Check::error(
        "se-dns-wildcard",
        KIND,
        "webhook ValidateServiceEntry: \"hosts must be FQDN if no endpoints are provided for resolution mode DNS\"",
    ),
    Check::error(
        "se-dns-round-robin-endpoints",
        KIND,
        "CRD CEL: \"DNS_ROUND_ROBIN mode cannot have multiple endpoints\"",
    ),
    Check::error(
        "se-none-endpoints",
        KIND,
        "CRD CEL: \"NONE mode cannot set endpoints\"",
    ),
    Check::error(
        "se-endpoints-and-selector",
        KIND,
        "CRD CEL: \"only one of WorkloadSelector or Endpoints can be set\"",
    ),
    Check::error(
        "se-endpoint-port",
        KIND,
        "webhook ValidateServiceEntry: \"endpoint port is not defined by the service entry\"",
    ),
    Check::error(
        "se-selector-wildcard",
        KIND,
        "CRD CEL on workloadSelector.labels: !self.contains(\"*\"); webhook ValidateAlphaWorkloadSelector: no `*`, no empty key",
    ),
    Check::warning(
        "se-empty-selector",
        KIND,
        "webhook ValidateAlphaWorkloadSelector warning: \"workload selector specified without labels\"",
    ),
    Check::warning(
        "se-external-no-ports",
        KIND,
        "none: Istio accepts it; veer warns that a MESH_EXTERNAL entry without ports gets no listener",
    ),
];

/// The workloadSelector codes of a ServiceEntry.
const SELECTOR_CODES: SelectorCodes = SelectorCodes {
    wildcard: "se-selector-wildcard",
    empty: "se-empty-selector",
};

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, se) in &index.service_entries {
        let se = &se.spec;
        check_hosts(m, se, out);
        check_ports(m, se, out);
        check_addresses(m, se, out);
        check_resolution(m, se, out);
        check_multiple_hosts(m, se, out);
        check_endpoints_or_selector(m, se, out);
        if let Some(selector) = &se.workload_selector {
            check_workload_selector(m, "/spec/workloadSelector", selector, SELECTOR_CODES, out);
        }
        check_endpoint_ports(m, se, out);
        check_external_ports(m, se, out);
    }
}

fn check_hosts(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    if se.hosts.is_empty() {
        out.push(
            m.error(
                "se-no-hosts",
                "/spec/hosts",
                "spec.hosts is empty; a ServiceEntry must name at least one host",
            )
            .fix("add the host names clients use, e.g. `hosts: [api.example.com]`"),
        );
    }
    for (i, host) in se.hosts.iter().enumerate() {
        let p = pointer_join("/spec/hosts", i);
        if host == "*" {
            out.push(
                m.error(
                    "se-wildcard-host",
                    &p,
                    format!("{}: `*` alone would capture every host", display_path(&p)),
                )
                .fix("name the hosts, or a domain wildcard such as `*.example.com`"),
            );
        } else if let Err(why) = hosts::check_host(host) {
            out.push(
                m.error(
                    "se-invalid-host",
                    &p,
                    format!("{}: {why}", display_path(&p)),
                )
                .fix("write a bare DNS name (no scheme, port or path) such as `api.example.com` or `*.example.com`"),
            );
        }
    }
}

fn check_ports(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut numbers: HashMap<u32, usize> = HashMap::new();
    for (i, port) in se.ports.iter().enumerate() {
        let at = pointer_join("/spec/ports", i);
        let number_at = format!("{at}/number");
        if !valid_port_number(port.number) {
            out.push(
                m.error(
                    "se-port-number",
                    &number_at,
                    format!(
                        "{}: {} is not a port number (1-65535)",
                        display_path(&number_at),
                        port.number
                    ),
                )
                .fix("use a port between 1 and 65535, e.g. 443"),
            );
        }
        if let Some(&first) = numbers.get(&port.number) {
            out.push(
                m.error(
                    "se-duplicate-port-number",
                    &number_at,
                    format!(
                        "{}: port {} is already declared by spec.ports[{first}]",
                        display_path(&number_at),
                        port.number
                    ),
                )
                .fix("declare each port number once"),
            );
        } else {
            numbers.insert(port.number, i);
        }
        if let Some(&first) = names.get(port.name.as_str()) {
            let p = format!("{at}/name");
            out.push(
                m.error(
                    "se-duplicate-port-name",
                    &p,
                    format!(
                        "{}: port name `{}` is already used by spec.ports[{first}]",
                        display_path(&p),
                        port.name
                    ),
                )
                .fix("give every port a unique name, e.g. `https` and `http`"),
            );
        } else {
            names.insert(&port.name, i);
        }
        if let Some(target) = port.target_port
            && !valid_port_number(target)
        {
            let p = format!("{at}/targetPort");
            out.push(
                m.error(
                    "se-target-port",
                    &p,
                    format!("{}: {target} is not a port number (1-65535)", display_path(&p)),
                )
                .fix("use the port the endpoints listen on, between 1 and 65535, or remove targetPort to use the port number"),
            );
        }
        if let Some(why) = name_problem(&port.name, NameRule::Label) {
            let p = format!("{at}/name");
            out.push(
                m.error(
                    "se-port-name",
                    &p,
                    format!(
                        "{}: `{}` {why}; Istio takes port names that are DNS-1123 labels (lowercase letters, digits and `-`, at most 63)",
                        display_path(&p),
                        port.name
                    ),
                )
                .fix("name the port in lowercase, e.g. `https` or `tcp-5432`"),
            );
        }
        // An empty protocol is Istio's "detect it" (protocol sniffing), not an unknown one.
        if let Some(protocol) = &port.protocol
            && !protocol.is_empty()
            && known_protocol(protocol, SERVICE_PROTOCOLS).is_none()
        {
            let p = format!("{at}/protocol");
            out.push(
                m.error(
                    "se-protocol",
                    &p,
                    format!(
                        "{}: `{protocol}` is not a protocol Istio knows",
                        display_path(&p)
                    ),
                )
                .fix(format!("use one of {}", SERVICE_PROTOCOLS.join(", "))),
            );
        }
    }
}

/// `addresses` are virtual IPs or CIDR ranges, never names; a range only with resolution
/// NONE or STATIC (a DNS-resolved service has no range of addresses to route).
fn check_addresses(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    let resolution = se.resolution();
    for (i, address) in se.addresses.iter().enumerate() {
        let p = pointer_join("/spec/addresses", i);
        if let Err(why) = check_ip_or_cidr(address) {
            out.push(
                m.error("se-address", &p, format!("{}: {why}", display_path(&p)))
                    .fix("write an IP address or a CIDR such as `10.0.0.0/24`; put host names in spec.hosts"),
            );
        } else if address.contains('/')
            && !matches!(resolution, Resolution::None | Resolution::Static)
        {
            out.push(
                m.error(
                    "se-cidr-resolution",
                    &p,
                    format!(
                        "{}: `{address}` is a CIDR range, which resolution {} cannot have; ranges are for NONE and STATIC",
                        display_path(&p),
                        resolution.as_str()
                    ),
                )
                .fix("use single IP addresses, or resolution NONE (or STATIC with endpoints)"),
            );
        }
    }
}

fn check_resolution(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    let resolution = se.resolution();
    let at = "/spec/resolution";
    match resolution {
        Resolution::Static => {
            // Istio accepts it (endpoints may come later); nothing receives the traffic.
            if se.endpoints.is_empty() && se.workload_selector.is_none() {
                out.push(
                    m.warning(
                        "se-static-no-endpoints",
                        at,
                        "resolution STATIC needs endpoints or a workloadSelector to take addresses from",
                    )
                    .fix("add spec.endpoints with IP addresses, or spec.workloadSelector, or use resolution DNS"),
                );
            }
            for (i, endpoint) in se.endpoints.iter().enumerate() {
                let Some(address) = &endpoint.address else {
                    continue;
                };
                if let Err(why) = check_static_address(address) {
                    let p = format!("/spec/endpoints/{i}/address");
                    out.push(
                        m.error("se-static-address", &p, format!("{}: {why}", display_path(&p)))
                            .fix("use the endpoint's IP address (or `unix:///path`), or switch to resolution DNS to use host names"),
                    );
                }
            }
        }
        Resolution::Dns | Resolution::DnsRoundRobin => {
            if resolution == Resolution::DnsRoundRobin && se.endpoints.len() > 1 {
                out.push(
                    m.error(
                        "se-dns-round-robin-endpoints",
                        "/spec/endpoints",
                        format!(
                            "resolution DNS_ROUND_ROBIN uses one endpoint, and spec.endpoints has {}",
                            se.endpoints.len()
                        ),
                    )
                    .fix("keep one endpoint, or use resolution DNS to balance over several"),
                );
            }
            // With endpoints, the proxy resolves the endpoint addresses instead of the hosts.
            if se.endpoints.is_empty() {
                for (i, host) in se.hosts.iter().enumerate() {
                    if host.starts_with('*') && host != "*" {
                        let p = pointer_join("/spec/hosts", i);
                        out.push(
                            m.error(
                                "se-dns-wildcard",
                                &p,
                                format!(
                                    "{}: `{host}` cannot be resolved by DNS (resolution {}), and there are no endpoints to resolve instead",
                                    display_path(&p),
                                    resolution.as_str()
                                ),
                            )
                            .fix("use resolution NONE (or DYNAMIC_DNS) for wildcard hosts, or name the hosts exactly"),
                        );
                    }
                }
            }
        }
        Resolution::None => {
            if !se.endpoints.is_empty() {
                out.push(
                    m.error(
                        "se-none-endpoints",
                        "/spec/endpoints",
                        "resolution NONE (the default) cannot have endpoints: traffic goes to the address the client dialed",
                    )
                    .fix("set resolution to STATIC (IP endpoints) or DNS (host-name endpoints), or remove spec.endpoints"),
                );
            }
        }
        Resolution::DynamicDns => {}
    }
}

/// Several hosts share one entry's ports; plain TCP carries no host name (HTTP has the
/// authority, TLS the SNI) to tell them apart, so Istio refuses it unless resolution is NONE,
/// where hosts are not used to route.
fn check_multiple_hosts(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    if se.resolution() == Resolution::None || se.hosts.len() < 2 {
        return;
    }
    let named = |protocol: &str| {
        known_protocol(protocol, SERVICE_PROTOCOLS).is_some_and(|p| {
            matches!(
                p,
                "HTTP" | "HTTP2" | "HTTP_PROXY" | "GRPC" | "GRPC-WEB" | "HTTPS" | "TLS"
            )
        })
    };
    if let Some(i) = se
        .ports
        .iter()
        .position(|p| !named(p.protocol.as_deref().unwrap_or("")))
    {
        let p = pointer_join("/spec/ports", i);
        let protocol = match se.ports[i].protocol.as_deref() {
            None | Some("") => "no protocol".to_string(),
            Some(other) => format!("protocol {other}"),
        };
        out.push(
            m.error(
                "se-multiple-hosts-tcp",
                &p,
                format!(
                    "{} has {protocol}, and spec.hosts has {} hosts with resolution {}: nothing in a TCP connection says which host it is for",
                    display_path(&p),
                    se.hosts.len(),
                    se.resolution().as_str()
                ),
            )
            .fix("give each host its own ServiceEntry, declare the port as HTTP, HTTPS or TLS, or use resolution NONE"),
        );
    }
}

fn check_endpoints_or_selector(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    if !se.endpoints.is_empty() && se.workload_selector.is_some() {
        out.push(
            m.error(
                "se-endpoints-and-selector",
                "/spec/workloadSelector",
                "spec.workloadSelector and spec.endpoints cannot both be set",
            )
            .fix("keep endpoints for fixed addresses, or workloadSelector to take the addresses of selected pods and WorkloadEntries, not both"),
        );
    }
}

/// Endpoint `ports` map service port names to endpoint ports.
fn check_endpoint_ports(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    for (i, endpoint) in se.endpoints.iter().enumerate() {
        for (name, number) in &endpoint.ports {
            let p = pointer_join(&format!("/spec/endpoints/{i}/ports"), name);
            if !se.ports.iter().any(|port| &port.name == name) {
                let names: Vec<&str> = se.ports.iter().map(|port| port.name.as_str()).collect();
                out.push(
                    m.error(
                        "se-endpoint-port",
                        &p,
                        format!(
                            "{}: `{name}` is not the name of a port in spec.ports ({})",
                            display_path(&p),
                            if names.is_empty() {
                                "there are none".to_string()
                            } else {
                                names.join(", ")
                            }
                        ),
                    )
                    .fix("key endpoint ports by the name of a port declared in spec.ports"),
                );
            }
            if !valid_port_number(*number) {
                out.push(
                    m.error(
                        "se-port-number",
                        &p,
                        format!(
                            "{}: {number} is not a port number (1-65535)",
                            display_path(&p)
                        ),
                    )
                    .fix("use a port between 1 and 65535"),
                );
            }
        }
    }
}

/// Without ports, an external service is reachable only through passthrough, if at all.
fn check_external_ports(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    if se.location() == Location::MeshExternal && se.ports.is_empty() {
        let implied = if se.location.is_none() {
            " (the default location)"
        } else {
            ""
        };
        out.push(
            m.warning(
                "se-external-no-ports",
                "/spec/location",
                format!("MESH_EXTERNAL{implied} ServiceEntry declares no ports, so Istio creates no listener for it"),
            )
            .fix("add spec.ports, e.g. `- {number: 443, name: https, protocol: TLS}`"),
        );
    }
}

#[cfg(test)]
mod tests;
