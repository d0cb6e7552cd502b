//! Gateway checks: servers, ports and protocols, host forms, TLS consistency, and servers of
//! different Gateways that claim the same port and host on the same gateway workload.
//!
//! Also home of the port-protocol and port-number rules that ServiceEntry and Sidecar share.
//!
//! This file runs the checks and holds the port rules; `servers` checks each Gateway and its
//! servers (selector, ports, hosts), `tls` the servers' TLS settings, `conflicts` servers of
//! different Gateways that bind the same port and host.

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[super::catalog::Check] = &[];

mod conflicts;
mod servers;
mod tls;

pub use servers::check_gateway_host;

use conflicts::check_conflicts;
use servers::{check_port, check_port_names, check_selector, check_server_hosts, check_servers};
use tls::check_tls;

use super::Index;
use crate::diagnostic::Diagnostic;
use crate::manifest::yaml::pointer_join;

/// Protocols a Gateway server port may use, in Istio's spelling.
pub const GATEWAY_PROTOCOLS: &[&str] = &[
    "HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS",
];

/// Protocols Istio recognises on service and sidecar ports.
pub const SERVICE_PROTOCOLS: &[&str] = &[
    "HTTP",
    "HTTPS",
    "GRPC",
    "GRPC-WEB",
    "HTTP2",
    "HTTP_PROXY",
    "MONGO",
    "MYSQL",
    "REDIS",
    "TCP",
    "TLS",
    "UDP",
];

/// `protocol` in Istio's canonical spelling, if it is one of `allowed` (case-insensitive, as
/// Istio reads it).
pub fn known_protocol(protocol: &str, allowed: &[&'static str]) -> Option<&'static str> {
    allowed
        .iter()
        .copied()
        .find(|p| p.eq_ignore_ascii_case(protocol))
}

/// Is `number` a usable TCP/UDP port?
pub fn valid_port_number(number: u32) -> bool {
    (1..=65535).contains(&number)
}

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, gw) in &index.gateways {
        check_selector(m, &gw.spec, out);
        check_servers(m, &gw.spec, out);
        check_port_names(m, &gw.spec, out);
        for (i, server) in gw.spec.servers.iter().enumerate() {
            let at = pointer_join("/spec/servers", i);
            check_port(m, &at, server, out);
            check_server_hosts(m, &at, server, out);
            check_tls(m, &at, server, out);
        }
    }
    check_conflicts(index, out);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::istio::gateway::{Gateway, Server};
    use crate::manifest::{Manifest, ReadOptions, parse_file};

    /// Diagnostics as (code, line).
    pub(crate) type Found = Vec<(&'static str, u32)>;

    /// Parse `yaml` (which must read cleanly), run `check` over it, and return the
    /// diagnostics as (code, line) in reading order.
    pub(crate) fn run(yaml: &str, check: impl Fn(&Index<'_>, &mut Vec<Diagnostic>)) -> Found {
        let parsed = parse_file("t.yaml", yaml.as_bytes(), &ReadOptions::default());
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let index = Index::new(&parsed.manifests);
        let mut out = Vec::new();
        check(&index, &mut out);
        crate::diagnostic::sort(&mut out);
        out.iter().map(|d| (d.code, d.line)).collect()
    }

    /// A Gateway named `name` whose servers (YAML list items indented by two) start on
    /// line 8.
    pub(super) fn gateway(name: &str, selector: &str, servers: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: {name}\nspec:\n  selector: {selector}\n  servers:\n{servers}"
        )
    }

    pub(super) fn each(
        f: fn(&Manifest, &Gateway, &mut Vec<Diagnostic>),
    ) -> impl Fn(&Index<'_>, &mut Vec<Diagnostic>) {
        move |index, out| {
            for (m, gw) in &index.gateways {
                f(m, &gw.spec, out);
            }
        }
    }

    pub(super) fn each_server(
        f: fn(&Manifest, &str, &Server, &mut Vec<Diagnostic>),
    ) -> impl Fn(&Index<'_>, &mut Vec<Diagnostic>) {
        move |index, out| {
            for (m, gw) in &index.gateways {
                for (i, server) in gw.spec.servers.iter().enumerate() {
                    f(m, &format!("/spec/servers/{i}"), server, out);
                }
            }
        }
    }

    #[test]
    fn typed_model_rejects_unknown_fields_and_modes_at_their_line() {
        let servers = "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]\n    tls:\n      mode: SIMPEL\n";
        let parsed = parse_file(
            "t.yaml",
            gateway("gw", "{a: b}", servers).as_bytes(),
            &ReadOptions::default(),
        );
        let d = &parsed.diagnostics[0];
        assert_eq!((d.code, d.line), ("invalid-field", 11), "{d}");
        assert!(
            d.message.contains("SIMPLE") && d.message.contains("MUTUAL"),
            "{d}"
        );
        let servers = "  - port: {number: 80, name: http, protocol: HTTP}\n    hostz: [a.com]\n";
        let parsed = parse_file(
            "t.yaml",
            gateway("gw", "{a: b}", servers).as_bytes(),
            &ReadOptions::default(),
        );
        let d = &parsed.diagnostics[0];
        assert_eq!((d.code, d.line), ("unknown-field", 9), "{d}");
    }
}
