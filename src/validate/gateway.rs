//! Gateway checks: servers, ports and protocols, host forms, TLS consistency, and servers of
//! different Gateways that claim the same port and host on the same gateway workload.
//!
//! Also home of the port-protocol and port-number rules that ServiceEntry and Sidecar share.

use std::collections::{BTreeMap, HashMap};

use super::Index;
use super::hosts;
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::gateway::{Gateway, Server, ServerTlsMode};
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
pub fn check_gateway_host(host: &str) -> Result<(), String> {
    let name = match host.split_once('/') {
        Some((ns, name)) => {
            if ns != "*" && ns != "." {
                check_namespace(host, ns)?;
            }
            name
        }
        None => host,
    };
    hosts::check_host(name)
}

/// A namespace name is a DNS-1123 label.
pub(crate) fn check_namespace(whole: &str, ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{ns}` in `{whole}` is not a namespace name (lowercase letters, digits and inner hyphens)"
        ))
    }
}

fn check_tls(m: &Manifest, at: &str, server: &Server, out: &mut Vec<Diagnostic>) {
    let protocol = known_protocol(&server.port.protocol, GATEWAY_PROTOCOLS);
    let terminates_tls = matches!(protocol, Some("HTTPS" | "TLS"));
    let tls_at = format!("{at}/tls");
    let Some(tls) = &server.tls else {
        if terminates_tls {
            out.push(
                m.error(
                    "gw-tls-required",
                    &format!("{at}/port/protocol"),
                    format!(
                        "{}: a {} server needs `tls` settings",
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
    match mode {
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {
            check_tls_credentials(m, &tls_at, server, mode, out)
        }
        // Istio's own examples forward TLS with PASSTHROUGH on HTTPS ports as well as TLS.
        ServerTlsMode::Passthrough if terminates_tls => {}
        ServerTlsMode::AutoPassthrough if protocol == Some("TLS") => {}
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough => {
            let needs = match mode {
                ServerTlsMode::AutoPassthrough => "TLS",
                _ => "TLS or HTTPS",
            };
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
        ServerTlsMode::IstioMutual => {}
    }
}

/// SIMPLE and MUTUAL terminate TLS, so the server needs a certificate: from a Secret
/// (`credentialName`), or as files (`serverCertificate` + `privateKey`). MUTUAL also needs
/// the CA that signs client certificates, which a Secret carries but files must name.
fn check_tls_credentials(
    m: &Manifest,
    tls_at: &str,
    server: &Server,
    mode: ServerTlsMode,
    out: &mut Vec<Diagnostic>,
) {
    let Some(tls) = &server.tls else {
        return;
    };
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
    type Claim<'a> = (&'a Manifest, usize);
    let mut claims: HashMap<(BTreeMap<String, String>, u32, String), Claim<'_>> = HashMap::new();
    for (m, gw) in &index.gateways {
        let selector = gw.spec.selector.clone().unwrap_or_default();
        for (i, server) in gw.spec.servers.iter().enumerate() {
            for (j, host) in server.hosts.iter().enumerate() {
                let key = (selector.clone(), server.port.number, bound_host(host));
                match claims.get(&key) {
                    // The same host twice in one server is harmless.
                    Some((first, fi)) if std::ptr::eq(*first, *m) && *fi == i => {}
                    Some((first, fi)) => {
                        let p = format!("/spec/servers/{i}/hosts/{j}");
                        out.push(
                            m.error(
                                "gw-conflict",
                                &p,
                                format!(
                                    "{}: host `{host}` on port {} is already bound by {} spec.servers[{fi}] ({}:{}) on the same gateway workload",
                                    display_path(&p),
                                    server.port.number,
                                    first.key,
                                    first.file,
                                    first.locate(&format!("/spec/servers/{fi}")).line
                                ),
                            )
                            .fix("serve each host and port from one server only: merge the two servers, or change the host or port of one"),
                        );
                    }
                    None => {
                        claims.insert(key, (m, i));
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
