//! Gateway and server checks: the selector, that there are servers, port names unique
//! across servers, port numbers and protocols, and the server hosts' forms.

use std::collections::{BTreeMap, HashMap};

use super::{GATEWAY_PROTOCOLS, known_protocol, valid_port_number};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::gateway::{Gateway, Server};
use crate::validate::namespaced_host::{NamespacedHostError, check_namespace};

/// An empty selector matches every gateway workload in the mesh, which is rarely meant.
pub(super) fn check_selector(m: &Manifest, gw: &Gateway, out: &mut Vec<Diagnostic>) {
    if gw.selector.as_ref().is_none_or(BTreeMap::is_empty) {
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

pub(super) fn check_port(m: &Manifest, at: &str, server: &Server, out: &mut Vec<Diagnostic>) {
    let port = &server.port;
    if !valid_port_number(port.number) {
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
    if known_protocol(&port.protocol, GATEWAY_PROTOCOLS).is_none() {
        let p = format!("{at}/port/protocol");
        out.push(
            m.error(
                "gw-protocol",
                &p,
                format!(
                    "{}: `{}` is not a protocol a Gateway server accepts",
                    display_path(&p),
                    port.protocol
                ),
            )
            .fix(format!("use one of {}", GATEWAY_PROTOCOLS.join(", "))),
        );
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

/// A Gateway server host: `host` or `namespace/host`, where namespace is `*`, `.` or a
/// namespace name, and host is a DNS name with an optional leading `*.` (or `*`).
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
    Ok(hosts::check_host(name)?)
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
            (
                "{number: 80, name: http, protocol: UDP}",
                vec![("gw-protocol", 8)],
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
    }

    #[test]
    fn hosts_table() {
        let ok = [
            "a.com",
            "*",
            "*.example.com",
            "./a.com",
            "*/a.com",
            "shop/a.com",
            "shop/*",
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
