//! Gateway checks: servers, ports and protocols, host forms, TLS consistency, and servers of
//! different Gateways that claim the same port and host on the same gateway workload.
//!
//! Each check mirrors a rule of Istio's (its webhook's `ValidateGateway`, or an `istioctl
//! analyze` analyzer) and is an error only where Istio refuses the object or istioctl reports
//! an Error; `CHECKS` names the rule of each.
//!
//! Also home of the port-protocol and port-number rules that ServiceEntry and Sidecar share.
//!
//! This file runs the checks and holds the port rules; `servers` checks each Gateway and its
//! servers (selector, ports, hosts), `tls` the servers' TLS settings, `conflicts` servers of
//! different Gateways that bind the same port and host.

use super::catalog::Check;

const KIND: &str = "Gateway";

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[Check] = &[
    Check::warning(
        "gw-empty-selector",
        KIND,
        "none: Istio accepts an empty selector, which selects every gateway workload; veer warns",
    ),
    Check::error(
        "gw-no-servers",
        KIND,
        "ValidateGateway: \"gateway must have at least one server\"",
    ),
    Check::error(
        "gw-duplicate-port-name",
        KIND,
        "ValidateGateway: \"port names in servers must be unique\"",
    ),
    Check::error(
        "gw-port-number",
        KIND,
        "validateServerPort: agent.ValidatePort (1-65535; 0 with a unix:// bind)",
    ),
    Check::error(
        "gw-protocol",
        KIND,
        "validateServerPort: \"invalid protocol\" (protocol.Parse)",
    ),
    Check::warning(
        "gw-protocol-not-served",
        KIND,
        "none: protocol.Parse knows UDP, REDIS, MYSQL and HTTP_PROXY, which the Gateway reference \
         does not list for servers; veer warns",
    ),
    Check::error(
        "gw-no-hosts",
        KIND,
        "CRD (hosts required) and validateServer: \"server config must contain at least one host\"",
    ),
    Check::error(
        "gw-invalid-host",
        KIND,
        "validateServer: agent.ValidateNamespaceSlashWildcardHostname (namespace `*`, `.` or a \
         DNS label; host an FQDN or `*`, no partial wildcard, or an IP address)",
    ),
    Check::error(
        "gw-tls-required",
        KIND,
        "validateServer: \"server must have TLS settings for HTTPS/TLS protocols\"",
    ),
    Check::error(
        "gw-tls-not-allowed",
        KIND,
        "validateServer: \"server cannot have TLS settings for non HTTPS/TLS ports\" and \"... for \
         plain text HTTP ports\" (HTTP allows passthrough without certificate files)",
    ),
    Check::warning(
        "gw-passthrough-protocol",
        KIND,
        "none: Istio accepts PASSTHROUGH on an HTTP port and AUTO_PASSTHROUGH off a TLS port; veer \
         warns that TLS cannot pass through there",
    ),
    Check::warning(
        "gw-https-redirect",
        KIND,
        "ValidateGateway: warning \"tls.httpsRedirect should only be used with http servers\"",
    ),
    Check::error(
        "gw-tls-credential",
        KIND,
        "validateTLSOptions: SIMPLE/MUTUAL TLS without credentialName \"requires a server \
         certificate\" and \"requires a private key\"",
    ),
    Check::error(
        "gw-tls-ca",
        KIND,
        "validateTLSOptions: MUTUAL TLS without credentialName \"requires a client CA bundle\"",
    ),
    Check::error(
        "gw-conflict",
        KIND,
        "istioctl analyze gateway.ConflictingGatewayAnalyzer (ConflictingGateways): same selector, \
         port and overlapping hosts on different Gateways",
    )
    .istio("IST0145"),
];

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
