//! ServiceEntry checks: hosts, ports, addresses, and the consistency of resolution, location,
//! endpoints and workloadSelector.

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[super::catalog::Check] = &[];

use std::collections::HashMap;
use std::net::IpAddr;

use super::Index;
use super::gateway::{SERVICE_PROTOCOLS, known_protocol, valid_port_number};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::ServiceEntry;
use crate::manifest::istio::display_path;
use crate::manifest::istio::service_entry::{Location, Resolution};
use crate::manifest::yaml::pointer_join;

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, se) in &index.service_entries {
        let se = &se.spec;
        check_hosts(m, se, out);
        check_ports(m, se, out);
        check_addresses(m, se, out);
        check_resolution(m, se, out);
        check_endpoints_or_selector(m, se, out);
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
        if let Some(protocol) = &port.protocol
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

/// `addresses` are virtual IPs or CIDR ranges, never names.
fn check_addresses(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    for (i, address) in se.addresses.iter().enumerate() {
        if let Err(why) = check_ip_or_cidr(address) {
            let p = pointer_join("/spec/addresses", i);
            out.push(
                m.error("se-address", &p, format!("{}: {why}", display_path(&p)))
                    .fix("write an IP address or a CIDR such as `10.0.0.0/24`; put host names in spec.hosts"),
            );
        }
    }
}

/// Why a ServiceEntry address or STATIC endpoint address is refused; the message quotes it
/// and says what may be written there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("`{text}` is not an IP address or CIDR")]
    NotAnIpOrCidr { text: String },
    #[error("`{text}` has prefix length `{prefix}`; it must be 0-{max}")]
    PrefixLength {
        text: String,
        prefix: String,
        max: u8,
    },
    /// A `unix://` endpoint whose path is neither absolute nor abstract.
    #[error(
        "`{address}` must name an absolute socket path (`unix:///...`) or an abstract socket (`unix://@...`)"
    )]
    SocketPath { address: String },
    /// A host name where STATIC resolution needs an address.
    #[error("`{address}` is not an IP address, and resolution STATIC does not resolve names")]
    NotAnIp { address: String },
}

/// An IP address, or a CIDR range `ip/prefix`.
pub fn check_ip_or_cidr(text: &str) -> Result<(), AddressError> {
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (text, None),
    };
    let ip: IpAddr = ip.parse().map_err(|_| AddressError::NotAnIpOrCidr {
        text: text.to_string(),
    })?;
    if let Some(prefix) = prefix {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match prefix.parse::<u8>() {
            Ok(n) if n <= max => {}
            _ => {
                return Err(AddressError::PrefixLength {
                    text: text.to_string(),
                    prefix: prefix.to_string(),
                    max,
                });
            }
        }
    }
    Ok(())
}

fn check_resolution(m: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>) {
    let resolution = se.resolution();
    let at = "/spec/resolution";
    match resolution {
        Resolution::Static => {
            if se.endpoints.is_empty() && se.workload_selector.is_none() {
                out.push(
                    m.error(
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

/// A STATIC endpoint is an IP address or a Unix socket.
fn check_static_address(address: &str) -> Result<(), AddressError> {
    if let Some(path) = address.strip_prefix("unix://") {
        if !(path.starts_with('/') || path.starts_with('@')) || path.ends_with('/') {
            return Err(AddressError::SocketPath {
                address: address.to_string(),
            });
        }
        return Ok(());
    }
    address
        .parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| AddressError::NotAnIp {
            address: address.to_string(),
        })
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
mod tests {
    use super::*;
    use crate::validate::gateway::tests::{Found, run};

    /// A ServiceEntry whose spec body (indented by two) starts on line 6.
    fn se(spec: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: ext\nspec:\n{spec}"
        )
    }

    fn each(
        f: fn(&Manifest, &ServiceEntry, &mut Vec<Diagnostic>),
    ) -> impl Fn(&Index<'_>, &mut Vec<Diagnostic>) {
        move |index, out| {
            for (m, se) in &index.service_entries {
                f(m, &se.spec, out);
            }
        }
    }

    fn table(f: fn(&Manifest, &ServiceEntry, &mut Vec<Diagnostic>), cases: &[(&str, Found)]) {
        for (spec, want) in cases {
            assert_eq!(&run(&se(spec), each(f)), want, "{spec}");
        }
    }

    #[test]
    fn hosts_table() {
        table(
            check_hosts,
            &[
                (
                    "  hosts: [api.github.com, '*.example.com', reviews]\n",
                    vec![],
                ),
                ("  hosts: []\n", vec![("se-no-hosts", 6)]),
                ("  ports: []\n", vec![("se-no-hosts", 5)]),
                ("  hosts: ['*']\n", vec![("se-wildcard-host", 6)]),
                (
                    "  hosts:\n  - ok.com\n  - bad_host.com\n",
                    vec![("se-invalid-host", 8)],
                ),
            ],
        );
    }

    #[test]
    fn ports_table() {
        table(
            check_ports,
            &[
                (
                    "  hosts: [a.com]\n  ports:\n  - {number: 443, name: https, protocol: TLS}\n  - {number: 80, name: http, protocol: http}\n  - {number: 3306, name: db}\n",
                    vec![],
                ),
                (
                    "  hosts: [a.com]\n  ports:\n  - {number: 0, name: https, protocol: TLS}\n",
                    vec![("se-port-number", 8)],
                ),
                (
                    "  hosts: [a.com]\n  ports:\n  - {number: 65536, name: https, protocol: TLS}\n",
                    vec![("se-port-number", 8)],
                ),
                (
                    "  hosts: [a.com]\n  ports:\n  - {number: 443, name: https, protocol: TLS}\n  - {number: 8443, name: https, protocol: TLS}\n",
                    vec![("se-duplicate-port-name", 9)],
                ),
                (
                    "  hosts: [a.com]\n  ports:\n  - {number: 443, name: https, protocol: TLS}\n  - {number: 443, name: tls, protocol: TLS}\n",
                    vec![("se-duplicate-port-number", 9)],
                ),
                (
                    "  hosts: [a.com]\n  ports:\n  - {number: 443, name: https, protocol: QUIC}\n",
                    vec![("se-protocol", 8)],
                ),
            ],
        );
    }

    #[test]
    fn addresses_table() {
        for ok in [
            "10.0.0.1",
            "10.0.0.0/24",
            "0.0.0.0/0",
            "2001:db8::1",
            "2001:db8::/32",
        ] {
            assert_eq!(check_ip_or_cidr(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "api.example.com",
            "10.0.0.0/33",
            "10.0.0.0/",
            "2001:db8::/129",
            "10.0.0.256",
        ] {
            assert!(check_ip_or_cidr(bad).is_err(), "{bad}");
        }
        table(
            check_addresses,
            &[
                (
                    "  hosts: [a.com]\n  addresses: [240.0.0.1, 10.1.0.0/16]\n",
                    vec![],
                ),
                (
                    "  hosts: [a.com]\n  addresses:\n  - 240.0.0.1\n  - a.com\n",
                    vec![("se-address", 9)],
                ),
            ],
        );
    }

    #[test]
    fn resolution_table() {
        table(
            check_resolution,
            &[
                ("  hosts: ['*.example.com']\n", vec![]),
                ("  hosts: [a.com]\n  resolution: DNS\n", vec![]),
                (
                    "  hosts: [a.com]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1}, {address: 'unix:///var/run/s.sock'}, {address: '2001:db8::1'}]\n",
                    vec![],
                ),
                (
                    "  hosts: [a.com]\n  resolution: STATIC\n  workloadSelector: {labels: {app: vm}}\n",
                    vec![],
                ),
                (
                    "  hosts: [a.com]\n  resolution: STATIC\n",
                    vec![("se-static-no-endpoints", 7)],
                ),
                (
                    "  hosts: [a.com]\n  resolution: STATIC\n  endpoints:\n  - address: 10.0.0.1\n  - address: db.example.com\n",
                    vec![("se-static-address", 10)],
                ),
                (
                    "  hosts: [a.com]\n  resolution: STATIC\n  endpoints:\n  - address: unix://relative.sock\n",
                    vec![("se-static-address", 9)],
                ),
                (
                    "  hosts: [a.com, '*.example.com']\n  resolution: DNS\n",
                    vec![("se-dns-wildcard", 6)],
                ),
                (
                    "  hosts:\n  - '*.example.com'\n  resolution: DNS_ROUND_ROBIN\n",
                    vec![("se-dns-wildcard", 7)],
                ),
                (
                    "  hosts: ['*.example.com']\n  resolution: DNS\n  endpoints: [{address: proxy.example.com}]\n",
                    vec![],
                ),
                (
                    "  hosts: [a.com]\n  endpoints: [{address: 10.0.0.1}]\n",
                    vec![("se-none-endpoints", 7)],
                ),
                (
                    "  hosts: ['*.example.com']\n  resolution: DYNAMIC_DNS\n",
                    vec![],
                ),
            ],
        );
    }

    #[test]
    fn endpoints_or_selector_table() {
        table(
            check_endpoints_or_selector,
            &[
                (
                    "  hosts: [a.com]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1}]\n",
                    vec![],
                ),
                (
                    "  hosts: [a.com]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1}]\n  workloadSelector:\n    labels: {app: vm}\n",
                    vec![("se-endpoints-and-selector", 9)],
                ),
            ],
        );
    }

    #[test]
    fn endpoint_ports_table() {
        table(
            check_endpoint_ports,
            &[
                (
                    "  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1, ports: {http: 8080}}]\n",
                    vec![],
                ),
                (
                    "  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints:\n  - address: 10.0.0.1\n    ports:\n      web: 8080\n",
                    vec![("se-endpoint-port", 12)],
                ),
                (
                    "  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints:\n  - address: 10.0.0.1\n    ports:\n      http: 0\n",
                    vec![("se-port-number", 12)],
                ),
            ],
        );
    }

    #[test]
    fn external_ports_table() {
        table(
            check_external_ports,
            &[
                (
                    "  hosts: [a.com]\n  ports: [{number: 443, name: tls}]\n",
                    vec![],
                ),
                ("  hosts: [a.com]\n  location: MESH_INTERNAL\n", vec![]),
                ("  hosts: [a.com]\n", vec![("se-external-no-ports", 5)]),
                (
                    "  hosts: [a.com]\n  location: MESH_EXTERNAL\n",
                    vec![("se-external-no-ports", 7)],
                ),
            ],
        );
    }
}
