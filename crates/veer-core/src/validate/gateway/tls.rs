//! Server TLS checks, as Istio's `validateServer` and `validateTLSOptions` make them: TLS
//! protocols have `tls` settings, other protocols have none (plain HTTP only passthrough, for
//! `httpsRedirect`), terminating modes have certificates (and MUTUAL a CA); `httpsRedirect`
//! off an HTTP server and passthrough modes on ports that cannot pass TLS through are
//! warnings, as Istio accepts them.

use super::{SERVICE_PROTOCOLS, known_protocol};
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::gateway::{Server, ServerTlsMode, ServerTlsSettings};

/// Istio's `protocol.IsTLS`.
fn is_tls(protocol: &str) -> bool {
    matches!(protocol, "HTTPS" | "TLS")
}

/// Istio's `protocol.IsHTTP`.
fn is_http(protocol: &str) -> bool {
    matches!(
        protocol,
        "HTTP" | "HTTP2" | "HTTP_PROXY" | "GRPC" | "GRPC-WEB"
    )
}

/// Istio's `gateway.IsPassThroughServer`. An unset mode is PASSTHROUGH, the proto's default.
fn is_passthrough(mode: Option<ServerTlsMode>) -> bool {
    match mode {
        None | Some(ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough) => true,
        Some(
            ServerTlsMode::Simple
            | ServerTlsMode::Mutual
            | ServerTlsMode::OptionalMutual
            | ServerTlsMode::IstioMutual,
        ) => false,
    }
}

fn has_file_certificates(tls: &ServerTlsSettings) -> bool {
    [
        &tls.ca_certificates,
        &tls.private_key,
        &tls.server_certificate,
    ]
    .iter()
    .any(|v| v.as_deref().is_some_and(|s| !s.is_empty()))
}

pub(super) fn check_tls(m: &Manifest, at: &str, server: &Server, out: &mut Vec<Diagnostic>) {
    // Istio checks the TLS settings against the port only when it knows the protocol.
    let protocol = known_protocol(&server.port.protocol, SERVICE_PROTOCOLS);
    let tls_at = format!("{at}/tls");
    let Some(tls) = &server.tls else {
        if let Some(p) = protocol
            && is_tls(p)
        {
            out.push(
                m.error(
                    "gw-tls-required",
                    &format!("{at}/port/protocol"),
                    format!("{}: protocol {p} needs `tls` settings", display_path(at)),
                )
                .fix("add `tls: {mode: SIMPLE, credentialName: <secret>}`, or `tls: {mode: PASSTHROUGH}` to forward TLS as is"),
            );
        }
        return;
    };
    if tls.https_redirect == Some(true) && !protocol.is_some_and(is_http) {
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
    if let Some(p) = protocol {
        check_tls_on_port(m, at, p, tls, out);
    }
    match tls.mode {
        Some(
            mode @ (ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual),
        ) => {
            check_tls_credentials(m, &tls_at, tls, mode, out);
        }
        Some(
            ServerTlsMode::Passthrough
            | ServerTlsMode::AutoPassthrough
            | ServerTlsMode::IstioMutual,
        )
        | None => {}
    }
}

/// TLS settings against the port protocol (Istio's `validateServer`): none on a port that is
/// neither HTTPS/TLS nor HTTP (an error); on an HTTP port only passthrough without certificate
/// files, which is how `httpsRedirect` is written (anything else an error); an explicit
/// passthrough mode on a port that cannot pass TLS through is a warning, as Istio accepts it.
fn check_tls_on_port(
    m: &Manifest,
    at: &str,
    protocol: &str,
    tls: &ServerTlsSettings,
    out: &mut Vec<Diagnostic>,
) {
    let tls_at = format!("{at}/tls");
    let mode_at = format!("{tls_at}/mode");
    let refused = if is_tls(protocol) {
        None
    } else if !is_http(protocol) {
        Some(format!(
            "{}: a {protocol} server cannot have `tls` settings; only HTTPS and TLS servers can (and HTTP servers, for httpsRedirect)",
            display_path(at)
        ))
    } else if !is_passthrough(tls.mode) || has_file_certificates(tls) {
        Some(format!(
            "{}: a plain-text {protocol} server cannot terminate TLS or carry certificates; its `tls` may only hold httpsRedirect",
            display_path(at)
        ))
    } else {
        None
    };
    if let Some(message) = refused {
        out.push(m.error("gw-tls-not-allowed", &tls_at, message).fix(format!(
            "set {} to HTTPS (or TLS) to terminate or pass TLS through, or remove `tls`",
            display_path(&format!("{at}/port/protocol"))
        )));
        return;
    }
    // The port takes these settings; warn where a passthrough mode cannot work on it.
    let needs = match tls.mode {
        Some(ServerTlsMode::Passthrough) if is_http(protocol) => Some("TLS or HTTPS"),
        Some(ServerTlsMode::AutoPassthrough) if protocol != "TLS" => Some("TLS"),
        Some(
            ServerTlsMode::Passthrough
            | ServerTlsMode::AutoPassthrough
            | ServerTlsMode::Simple
            | ServerTlsMode::Mutual
            | ServerTlsMode::OptionalMutual
            | ServerTlsMode::IstioMutual,
        )
        | None => None,
    };
    if let (Some(needs), Some(mode)) = (needs, tls.mode) {
        out.push(
            m.warning(
                "gw-passthrough-protocol",
                &mode_at,
                format!(
                    "{}: {} needs a {needs} port to pass TLS through, but the port protocol is {protocol}",
                    display_path(&mode_at),
                    mode.as_str(),
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

#[cfg(test)]
mod tests {
    use super::super::tests::{Found, each_server, gateway, run};
    use super::*;

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
            // Istio accepts AUTO_PASSTHROUGH on HTTPS and PASSTHROUGH on HTTP: warnings.
            (
                "HTTPS",
                Some("{mode: AUTO_PASSTHROUGH}"),
                vec![("gw-passthrough-protocol", 10)],
            ),
            (
                "HTTP",
                Some("{mode: PASSTHROUGH}"),
                vec![("gw-passthrough-protocol", 10)],
            ),
            // validateServer: "server cannot have TLS settings for non HTTPS/TLS ports".
            (
                "TCP",
                Some("{mode: PASSTHROUGH}"),
                vec![("gw-tls-not-allowed", 10)],
            ),
            // ... "for plain text HTTP ports", unless passthrough without certificate files.
            (
                "HTTP",
                Some("{mode: SIMPLE, credentialName: c}"),
                vec![("gw-tls-not-allowed", 10)],
            ),
            (
                "HTTP2",
                Some("{httpsRedirect: true, serverCertificate: /c.pem}"),
                vec![("gw-tls-not-allowed", 10)],
            ),
            ("GRPC", Some("{httpsRedirect: true}"), vec![]),
            // An unknown protocol is gw-protocol's; TLS is not checked against it.
            ("QUIC", Some("{mode: SIMPLE, credentialName: c}"), vec![]),
            ("HTTPS", Some("{mode: ISTIO_MUTUAL}"), vec![]),
            (
                "HTTPS",
                Some("{mode: SIMPLE, credentialName: c, httpsRedirect: true}"),
                vec![("gw-https-redirect", 10)],
            ),
            (
                "TCP",
                Some("{httpsRedirect: true}"),
                vec![("gw-tls-not-allowed", 10), ("gw-https-redirect", 10)],
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
}
