//! Gateway and server checks: the selector, that there are servers, port names unique
//! across servers, port numbers and protocols, and the server hosts' forms, as Istio's
//! `ValidateGateway` and `validateServer` check them.

use std::collections::HashMap;

use super::{GATEWAY_PROTOCOLS, SERVICE_PROTOCOLS, known_protocol, valid_port_number};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::gateway::{Gateway, Server};
use crate::manifest::istio::{Labels, display_path};
use crate::validate::namespaced_host::{NamespacedHostError, check_namespace};

/// An empty selector matches every gateway workload in the mesh, which is rarely meant.
pub(super) fn check_selector(m: &Manifest, gw: &Gateway, out: &mut Vec<Diagnostic>) {
    if gw.selector.as_ref().is_none_or(Labels::is_empty) {
        out.push(
            m.warning(
                "gw-empty-selector",
                "/spec/selector",
                "spec.selector is empty, so this Gateway applies to every gateway workload",
            )
            .fix("select the gateway pods by label, e.g. `selector: {istio: ingressgateway}`"),
        );
    }
}

pub(super) fn check_servers(m: &Manifest, gw: &Gateway, out: &mut Vec<Diagnostic>) {
    if gw.servers.is_empty() {
        out.push(
            m.error(
                "gw-no-servers",
                "/spec/servers",
                "the Gateway has no servers, so it exposes nothing",
            )
            .fix("add a server under spec.servers with a port and hosts"),
        );
    }
}

/// Istio names listeners after the port name, so two servers may not share one.
pub(super) fn check_port_names(m: &Manifest, gw: &Gateway, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, server) in gw.servers.iter().enumerate() {
        let name = server.port.name.as_str();
        if let Some(first) = seen.get(name) {
            let at = format!("/spec/servers/{i}/port/name");
            out.push(
                m.error(
                    "gw-duplicate-port-name",
                    &at,
                    format!(
                        "{}: port name `{name}` is already used by spec.servers[{first}]",
                        display_path(&at)
                    ),
                )
                .fix("give every server's port a unique name, e.g. `https-shop`"),
            );
        } else {
            seen.insert(name, i);
        }
    }
}

/// The prefix of a `bind` on a Unix domain socket, where the port number is 0.
const UNIX_BIND_PREFIX: &str = "unix://";

/// Istio's `validateServerPort`: a port from 1 to 65535 (0 when bound to a Unix socket), and a
/// protocol `protocol.Parse` knows (an error); a protocol Istio knows but documents for
/// services rather than Gateway servers (`UDP`, `REDIS`, ...) is a warning.
pub(super) fn check_port(m: &Manifest, at: &str, server: &Server, out: &mut Vec<Diagnostic>) {
    let port = &server.port;
    let unix = server
        .bind
        .as_deref()
        .is_some_and(|b| b.starts_with(UNIX_BIND_PREFIX));
    let port_ok = valid_port_number(port.number) || (unix && port.number == 0);
    if !port_ok {
        let p = format!("{at}/port/number");
        out.push(
            m.error(
                "gw-port-number",
                &p,
                format!(
                    "{}: {} is not a port number (1-65535)",
                    display_path(&p),
                    port.number
                ),
            )
            .fix("use a port between 1 and 65535, e.g. 80 or 443"),
        );
    }
    let p = format!("{at}/port/protocol");
    match known_protocol(&port.protocol, SERVICE_PROTOCOLS) {
        None => out.push(
            m.error(
                "gw-protocol",
                &p,
                format!(
                    "{}: `{}` is not a protocol Istio knows",
                    display_path(&p),
                    port.protocol
                ),
            )
            .fix(format!("use one of {}", GATEWAY_PROTOCOLS.join(", "))),
        ),
        Some(known) if known_protocol(known, GATEWAY_PROTOCOLS).is_none() => out.push(
            m.warning(
                "gw-protocol-not-served",
                &p,
                format!(
                    "{}: Istio accepts {known}, but documents only {} for Gateway servers; the gateway may not serve it as such",
                    display_path(&p),
                    GATEWAY_PROTOCOLS.join(", ")
                ),
            )
            .fix("use TCP for plain TCP traffic, or one of the Gateway protocols"),
        ),
        Some(_) => {}
    }
}

pub(super) fn check_server_hosts(
    m: &Manifest,
    at: &str,
    server: &Server,
    out: &mut Vec<Diagnostic>,
) {
    if server.hosts.is_empty() {
        let p = format!("{at}/hosts");
        out.push(
            m.error(
                "gw-no-hosts",
                &p,
                format!("{}: a server needs at least one host", display_path(at)),
            )
            .fix("add the hosts this server accepts, e.g. `hosts: [\"shop.example.com\"]`, or `\"*\"` for any"),
        );
    }
    for (j, host) in server.hosts.iter().enumerate() {
        if let Err(why) = check_gateway_host(host) {
            let p = format!("{at}/hosts/{j}");
            out.push(
                m.error("gw-invalid-host", &p, format!("{}: {why}", display_path(&p)))
                    .fix("write `host` or `namespace/host`, e.g. `shop.example.com`, `*.example.com` or `./shop.example.com`"),
            );
        }
    }
}

/// A Gateway server host, as Istio's `ValidateNamespaceSlashWildcardHostname` reads it for a
/// Gateway: `host` or `namespace/host`, where namespace is `*`, `.` or a namespace name, and
/// host is `*` or a fully qualified name (no short names), with an optional leading `*.`
/// (no partial wildcards such as `*x`), or an IP address.
pub fn check_gateway_host(host: &str) -> Result<(), NamespacedHostError> {
    let name = match host.split_once('/') {
        Some((ns, name)) => {
            if ns != "*" && ns != "." {
                check_namespace(host, ns)?;
            }
            name
        }
        None => host,
    };
    check_host_part(name)
}

/// The host part (`validateSidecarOrGatewayHostnamePart` with `isGateway`).
fn check_host_part(name: &str) -> Result<(), NamespacedHostError> {
    if hosts::is_ip_address(name) {
        return Ok(());
    }
    hosts::check_wildcard_domain(name)?;
    hosts::check_partial_wildcard(name)?;
    if name != "*" && !name.contains('.') {
        return Err(NamespacedHostError::ShortName {
            host: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{each, each_server, gateway, run};
    use super::*;

    const HTTP80: &str =
        "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [shop.example.com]\n";

    #[test]
    fn selector_table() {
        let cases = [
            ("{istio: ingressgateway}", vec![]),
            ("{}", vec![("gw-empty-selector", 6)]),
        ];
        for (selector, want) in cases {
            let yaml = gateway("gw", selector, HTTP80);
            assert_eq!(run(&yaml, each(check_selector)), want, "{selector}");
        }
        let no_selector = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n  servers: []\n";
        assert_eq!(
            run(no_selector, each(check_selector)),
            vec![("gw-empty-selector", 5)]
        );
    }

    #[test]
    fn servers_table() {
        let empty = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: gw\nspec:\n  selector: {istio: ingressgateway}\n";
        assert_eq!(run(empty, each(check_servers)), vec![("gw-no-servers", 5)]);
        let listed_empty =
            gateway("gw", "{a: b}", "  []\n").replace("  servers:\n  []", "  servers: []");
        assert_eq!(
            run(&listed_empty, each(check_servers)),
            vec![("gw-no-servers", 7)]
        );
        let one = gateway("gw", "{a: b}", HTTP80);
        assert_eq!(run(&one, each(check_servers)), vec![]);
    }

    #[test]
    fn port_names_table() {
        let cases = [
            (
                "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [a.com]\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [a.com]\n    tls: {mode: SIMPLE, credentialName: c}\n",
                vec![],
            ),
            (
                "  - port: {number: 80, name: web, protocol: HTTP}\n    hosts: [a.com]\n  - port: {number: 8080, name: web, protocol: HTTP}\n    hosts: [b.com]\n",
                vec![("gw-duplicate-port-name", 10)],
            ),
        ];
        for (servers, want) in cases {
            assert_eq!(
                run(&gateway("gw", "{a: b}", servers), each(check_port_names)),
                want,
                "{servers}"
            );
        }
    }

    #[test]
    fn port_table() {
        let cases = [
            ("{number: 80, name: http, protocol: HTTP}", vec![]),
            ("{number: 80, name: http, protocol: http}", vec![]),
            ("{number: 443, name: g, protocol: grpc-web}", vec![]),
            (
                "{number: 0, name: http, protocol: HTTP}",
                vec![("gw-port-number", 8)],
            ),
            (
                "{number: 70000, name: http, protocol: HTTP}",
                vec![("gw-port-number", 8)],
            ),
            // protocol.Parse knows UDP: Istio accepts it, veer warns.
            (
                "{number: 80, name: http, protocol: UDP}",
                vec![("gw-protocol-not-served", 8)],
            ),
            (
                "{number: 80, name: r, protocol: redis}",
                vec![("gw-protocol-not-served", 8)],
            ),
            (
                "{number: 80, name: http, protocol: HTTP/1.1}",
                vec![("gw-protocol", 8)],
            ),
        ];
        for (port, want) in cases {
            let servers = format!("  - port: {port}\n    hosts: [a.com]\n");
            assert_eq!(
                run(&gateway("gw", "{a: b}", &servers), each_server(check_port)),
                want,
                "{port}"
            );
        }
        // validateServerPort: port 0 is fine on a Unix domain socket.
        let unix = "  - port: {number: 0, name: uds, protocol: HTTP}\n    bind: unix:///var/run/gw.sock\n    hosts: [a.com]\n";
        assert_eq!(
            run(&gateway("gw", "{a: b}", unix), each_server(check_port)),
            vec![]
        );
    }

    #[test]
    fn hosts_table() {
        // ValidateNamespaceSlashWildcardHostname(host, isGateway=true).
        let ok = [
            "a.com",
            "*",
            "*.example.com",
            "./a.com",
            "*/a.com",
            "shop/a.com",
            "shop/*",
            "a.com.",
            // Gateways allow an IP address as the host.
            "10.0.0.1",
            "./2001:db8::1",
        ];
        for host in ok {
            assert_eq!(check_gateway_host(host), Ok(()), "{host}");
        }
        let bad = [
            "",
            "a..com",
            "Shop/a.com",
            "/a.com",
            "shop/",
            "~/a.com",
            "a.*.com",
            "x/y/z",
            // No short names, no partial wildcards, no all-digit top-level domain.
            "reviews",
            "shop/reviews",
            "*x.example.com",
            "*-api.example.com",
            "a.123",
        ];
        for host in bad {
            assert!(check_gateway_host(host).is_err(), "{host}");
        }
        let cases = [
            ("[a.com, './b.com']", vec![]),
            ("[a.com, 'a_b.com']", vec![("gw-invalid-host", 9)]),
            ("[]", vec![("gw-no-hosts", 9)]),
        ];
        for (hosts, want) in cases {
            let servers = format!(
                "  - port: {{number: 80, name: http, protocol: HTTP}}\n    hosts: {hosts}\n"
            );
            assert_eq!(
                run(
                    &gateway("gw", "{a: b}", &servers),
                    each_server(check_server_hosts)
                ),
                want,
                "{hosts}"
            );
        }
        // One diagnostic per bad host, each at its own line.
        let servers = "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts:\n    - ok.com\n    - bad_.com\n    - -x.com\n";
        assert_eq!(
            run(
                &gateway("gw", "{a: b}", servers),
                each_server(check_server_hosts)
            ),
            vec![("gw-invalid-host", 11), ("gw-invalid-host", 12)]
        );
    }
}
