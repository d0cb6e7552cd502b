//! Gateway checks: servers, ports and protocols, host forms, TLS consistency, and servers of
//! different Gateways that claim the same port and host on the same gateway workload.
//!
//! Also home of the port-protocol and port-number rules that ServiceEntry and Sidecar share.

use std::collections::{BTreeMap, HashMap};

use super::Index;
use super::namespaced_host::{NamespacedHostError, check_namespace};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::gateway::{Gateway, Server, ServerTlsMode, ServerTlsSettings};
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

/// An empty selector matches every gateway workload in the mesh, which is rarely meant.
fn check_selector(m: &Manifest, gw: &Gateway, out: &mut Vec<Diagnostic>) {
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

fn check_servers(m: &Manifest, gw: &Gateway, out: &mut Vec<Diagnostic>) {
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
fn check_port_names(m: &Manifest, gw: &Gateway, out: &mut Vec<Diagnostic>) {
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

fn check_port(m: &Manifest, at: &str, server: &Server, out: &mut Vec<Diagnostic>) {
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

fn check_server_hosts(m: &Manifest, at: &str, server: &Server, out: &mut Vec<Diagnostic>) {
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

fn check_tls(m: &Manifest, at: &str, server: &Server, out: &mut Vec<Diagnostic>) {
    let protocol = known_protocol(&server.port.protocol, GATEWAY_PROTOCOLS);
    let tls_protocol = matches!(protocol, Some("HTTPS" | "TLS"));
    let tls_at = format!("{at}/tls");
    let Some(tls) = &server.tls else {
        if tls_protocol {
            out.push(
                m.error(
                    "gw-tls-required",
                    &format!("{at}/port/protocol"),
                    format!(
                        "{}: protocol {} needs `tls` settings",
                        display_path(at),
                        protocol.unwrap_or_default()
                    ),
                )
                .fix("add `tls: {mode: SIMPLE, credentialName: <secret>}`, or `tls: {mode: PASSTHROUGH}` to forward TLS as is"),
            );
        }
        return;
    };
    if tls.https_redirect == Some(true) && protocol != Some("HTTP") {
        let p = format!("{tls_at}/httpsRedirect");
        out.push(
            m.warning(
                "gw-https-redirect",
                &p,
                format!(
                    "{}: httpsRedirect only has an effect on HTTP servers, and this one is {}",
                    display_path(&p),
                    server.port.protocol
                ),
            )
            .fix(
                "remove httpsRedirect here, and put it on a separate HTTP server (usually port 80)",
            ),
        );
    }
    let Some(mode) = tls.mode else {
        return;
    };
    let mode_at = format!("{tls_at}/mode");
    // The port protocol a passthrough mode needs, when this one is not it.
    let needs = match mode {
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {
            check_tls_credentials(m, &tls_at, tls, mode, out);
            None
        }
        // Istio's own examples forward TLS with PASSTHROUGH on HTTPS ports as well as TLS.
        ServerTlsMode::Passthrough => (!tls_protocol).then_some("TLS or HTTPS"),
        ServerTlsMode::AutoPassthrough => (protocol != Some("TLS")).then_some("TLS"),
        ServerTlsMode::IstioMutual => None,
    };
    if let Some(needs) = needs {
        out.push(
            m.error(
                "gw-passthrough-protocol",
                &mode_at,
                format!(
                    "{}: {} needs a {needs} port, but the port protocol is {}",
                    display_path(&mode_at),
                    mode.as_str(),
                    server.port.protocol
                ),
            )
            .fix(format!(
                "set {} to TLS, or use mode SIMPLE to terminate TLS here",
                display_path(&format!("{at}/port/protocol"))
            )),
        );
    }
}

/// SIMPLE and MUTUAL terminate TLS, so the server needs a certificate: from a Secret
/// (`credentialName`), or as files (`serverCertificate` + `privateKey`). MUTUAL also needs
/// the CA that signs client certificates, which a Secret carries but files must name.
fn check_tls_credentials(
    m: &Manifest,
    tls_at: &str,
    tls: &ServerTlsSettings,
    mode: ServerTlsMode,
    out: &mut Vec<Diagnostic>,
) {
    if tls.has_credential() {
        return;
    }
    let missing: Vec<&str> = [
        ("serverCertificate", &tls.server_certificate),
        ("privateKey", &tls.private_key),
    ]
    .into_iter()
    .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
    .map(|(name, _)| name)
    .collect();
    let mode_at = format!("{tls_at}/mode");
    if !missing.is_empty() {
        out.push(
            m.error(
                "gw-tls-credential",
                &mode_at,
                format!(
                    "{}: {} TLS needs a certificate, but there is no credentialName and no {}",
                    display_path(tls_at),
                    mode.as_str(),
                    missing.join(" or ")
                ),
            )
            .fix("set `credentialName` to the Secret holding the certificate and key (in the gateway's namespace)"),
        );
    }
    let mutual = matches!(mode, ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual);
    let has_ca = [&tls.ca_certificates, &tls.ca_cert_credential_name]
        .iter()
        .any(|v| v.as_deref().is_some_and(|s| !s.is_empty()));
    if mutual && !has_ca {
        out.push(
            m.error(
                "gw-tls-ca",
                &mode_at,
                format!(
                    "{}: {} TLS without credentialName needs caCertificates to verify client certificates",
                    display_path(tls_at),
                    mode.as_str()
                ),
            )
            .fix("set `caCertificates` to the CA bundle file, or use `credentialName` with a Secret that holds `ca.crt`"),
        );
    }
}

/// Two servers on the same gateway workload (same selector), port and host: the gateway
/// cannot tell which one a connection is for, and one of them silently loses.
fn check_conflicts(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    type Claim<'a> = (&'a Manifest, usize, usize);
    let mut claims: HashMap<(BTreeMap<String, String>, u32, String), Claim<'_>> = HashMap::new();
    for (m, gw) in &index.gateways {
        let selector = gw.spec.selector.clone().unwrap_or_default();
        for (i, server) in gw.spec.servers.iter().enumerate() {
            for (j, host) in server.hosts.iter().enumerate() {
                let key = (selector.clone(), server.port.number, bound_host(host));
                match claims.get(&key) {
                    // The same host twice in one server is harmless.
                    Some((first, fi, _)) if std::ptr::eq(*first, *m) && *fi == i => {}
                    Some((first, fi, fj)) => {
                        let p = format!("/spec/servers/{i}/hosts/{j}");
                        out.push(
                            m.error(
                                "gw-conflict",
                                &p,
                                format!(
                                    "{}: host `{host}` on port {} is already bound by {} spec.servers[{fi}] ({}:{}), on the same gateway workload",
                                    display_path(&p),
                                    server.port.number,
                                    first.key,
                                    first.file,
                                    first.locate(&format!("/spec/servers/{fi}/hosts/{fj}")).line
                                ),
                            )
                            .fix("serve each host and port from one server only: merge the two servers, or change the host or port of one"),
                        );
                    }
                    None => {
                        claims.insert(key, (m, i, j));
                    }
                }
            }
        }
    }
}

/// The host a server binds on the listener: the namespace part only filters which
/// VirtualServices attach, so it is dropped; names compare case-insensitively.
/// Gateway hosts are matched as written (Istio does not expand short names there).
fn bound_host(host: &str) -> String {
    let name = host.split_once('/').map_or(host, |(_, h)| h);
    name.to_ascii_lowercase()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::manifest::{ReadOptions, parse_file};

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
    fn gateway(name: &str, selector: &str, servers: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: {name}\nspec:\n  selector: {selector}\n  servers:\n{servers}"
        )
    }

    fn each(
        f: fn(&Manifest, &Gateway, &mut Vec<Diagnostic>),
    ) -> impl Fn(&Index<'_>, &mut Vec<Diagnostic>) {
        move |index, out| {
            for (m, gw) in &index.gateways {
                f(m, &gw.spec, out);
            }
        }
    }

    fn each_server(
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

    #[test]
    fn tls_table() {
        // (protocol, tls, expected) for one server at line 8, with tls on line 10.
        let cases: Vec<(&str, Option<&str>, Found)> = vec![
            ("HTTP", None, vec![]),
            ("HTTP", Some("{httpsRedirect: true}"), vec![]),
            ("HTTPS", None, vec![("gw-tls-required", 8)]),
            ("TLS", None, vec![("gw-tls-required", 8)]),
            (
                "HTTPS",
                Some("{mode: SIMPLE, credentialName: shop-cert}"),
                vec![],
            ),
            (
                "HTTPS",
                Some("{mode: SIMPLE, credentialNames: [a, b]}"),
                vec![],
            ),
            (
                "HTTPS",
                Some("{mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}"),
                vec![],
            ),
            (
                "HTTPS",
                Some("{mode: SIMPLE}"),
                vec![("gw-tls-credential", 10)],
            ),
            (
                "HTTPS",
                Some("{mode: SIMPLE, serverCertificate: /c.pem}"),
                vec![("gw-tls-credential", 10)],
            ),
            (
                "HTTPS",
                Some("{mode: MUTUAL, credentialName: shop-cert}"),
                vec![],
            ),
            (
                "HTTPS",
                Some("{mode: MUTUAL, serverCertificate: /c, privateKey: /k, caCertificates: /ca}"),
                vec![],
            ),
            (
                "HTTPS",
                Some("{mode: MUTUAL, serverCertificate: /c, privateKey: /k}"),
                vec![("gw-tls-ca", 10)],
            ),
            (
                "HTTPS",
                Some("{mode: OPTIONAL_MUTUAL}"),
                vec![("gw-tls-ca", 10), ("gw-tls-credential", 10)],
            ),
            ("TLS", Some("{mode: PASSTHROUGH}"), vec![]),
            ("HTTPS", Some("{mode: PASSTHROUGH}"), vec![]),
            ("TLS", Some("{mode: AUTO_PASSTHROUGH}"), vec![]),
            (
                "HTTPS",
                Some("{mode: AUTO_PASSTHROUGH}"),
                vec![("gw-passthrough-protocol", 10)],
            ),
            (
                "TCP",
                Some("{mode: PASSTHROUGH}"),
                vec![("gw-passthrough-protocol", 10)],
            ),
            (
                "HTTP",
                Some("{mode: PASSTHROUGH}"),
                vec![("gw-passthrough-protocol", 10)],
            ),
            ("HTTPS", Some("{mode: ISTIO_MUTUAL}"), vec![]),
            (
                "HTTPS",
                Some("{mode: SIMPLE, credentialName: c, httpsRedirect: true}"),
                vec![("gw-https-redirect", 10)],
            ),
            (
                "TCP",
                Some("{httpsRedirect: true}"),
                vec![("gw-https-redirect", 10)],
            ),
        ];
        for (protocol, tls, want) in cases {
            let tls_line = tls.map(|t| format!("    tls: {t}\n")).unwrap_or_default();
            let servers = format!(
                "  - port: {{number: 443, name: p, protocol: {protocol}}}\n    hosts: [a.com]\n{tls_line}"
            );
            assert_eq!(
                run(&gateway("gw", "{a: b}", &servers), each_server(check_tls)),
                want,
                "{protocol} {tls:?}"
            );
        }
    }

    #[test]
    fn conflicts_table() {
        let server = |port: u32, host: &str| {
            format!(
                "  - port: {{number: {port}, name: p{port}, protocol: HTTP}}\n    hosts: [{host}]\n"
            )
        };
        let two = |sel_a: &str, a: String, sel_b: &str, b: String| {
            format!(
                "{}---\n{}",
                gateway("a", sel_a, &a),
                gateway("b", sel_b, &b)
            )
        };
        let ig = "{istio: ingressgateway}";
        let eg = "{istio: egressgateway}";
        let cases = [
            (
                two(ig, server(80, "a.com"), ig, server(80, "b.com")),
                vec![],
            ),
            (
                two(ig, server(80, "a.com"), ig, server(8080, "a.com")),
                vec![],
            ),
            (
                two(ig, server(80, "a.com"), eg, server(80, "a.com")),
                vec![],
            ),
            // Second document starts at line 11; its first host is on line 19.
            (
                two(ig, server(80, "a.com"), ig, server(80, "A.com")),
                vec![("gw-conflict", 19)],
            ),
            (
                two(ig, server(80, "a.com"), ig, server(80, "shop/a.com")),
                vec![("gw-conflict", 19)],
            ),
            // The same host twice in one server is not a conflict.
            (gateway("a", ig, &server(80, "a.com, a.com")), vec![]),
        ];
        for (yaml, want) in cases {
            assert_eq!(run(&yaml, check_conflicts), want, "{yaml}");
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
