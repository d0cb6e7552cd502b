//! Server TLS checks: that TLS protocols have `tls` settings, that `httpsRedirect` sits on an
//! HTTP server, that terminating modes have certificates (and MUTUAL a CA), and that
//! passthrough modes are on a TLS port.

use super::{GATEWAY_PROTOCOLS, known_protocol};
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::gateway::{Server, ServerTlsMode, ServerTlsSettings};

pub(super) fn check_tls(m: &Manifest, at: &str, server: &Server, out: &mut Vec<Diagnostic>) {
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
}
