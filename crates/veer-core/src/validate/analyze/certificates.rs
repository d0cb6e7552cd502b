//! Certificates across objects:
//!
//! - istioctl's `destinationrule.CaCertificateAnalyzer`: a DestinationRule originating TLS
//!   (`SIMPLE` or `MUTUAL`) without `caCertificates` does not verify the server it talks to
//!   (IST0128 for the rule's policy, IST0129 per port). A rule with a `workloadSelector` and
//!   a `credentialName` takes the CA from that Secret, so it is left alone, as istioctl does;
//! - istioctl's `gateway.CertificateAnalyzer`: two Gateways on the same workload with the same
//!   certificate let HTTP/2 clients reuse a connection for the other Gateway's hosts and get
//!   404s (IST0138).

use crate::diagnostic::Diagnostic;
use crate::manifest::istio::Labels;
use crate::manifest::istio::destination_rule::{ClientTlsSettings, TlsMode};
use crate::manifest::istio::display_path;
use crate::manifest::istio::gateway::ServerTlsSettings;
use crate::validate::Index;

pub(super) fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    check_ca_certificates(index, out);
    check_duplicate_certificates(index, out);
}

/// The mode, when it originates TLS without verifying the server.
fn unverified(tls: Option<&ClientTlsSettings>, selected: bool) -> Option<&'static str> {
    let tls = tls?;
    let mode = match tls.mode? {
        TlsMode::Simple => "SIMPLE",
        TlsMode::Mutual => "MUTUAL",
        TlsMode::Disable | TlsMode::IstioMutual => return None,
    };
    let has = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if has(&tls.ca_certificates) || (selected && has(&tls.credential_name)) {
        return None;
    }
    Some(mode)
}

fn check_ca_certificates(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let fix = "set `caCertificates` to the CA bundle that signs the server's certificate (or `credentialName` with a `workloadSelector` on a gateway); `insecureSkipVerify: true` says the lack of verification is meant";
    for (m, dr) in &index.destination_rules {
        let dr = &dr.spec;
        let Some(policy) = &dr.traffic_policy else {
            continue;
        };
        let selected = dr.workload_selector.is_some();
        if let Some(mode) = unverified(policy.tls.as_deref(), selected) {
            let pointer = "/spec/trafficPolicy/tls";
            out.push(
                m.warning(
                    "dr-tls-no-ca",
                    pointer,
                    format!(
                        "{}: TLS mode {mode} without caCertificates: the server's identity for host {} is not verified",
                        display_path(pointer),
                        dr.host
                    ),
                )
                .istio("IST0128")
                .fix(fix),
            );
        }
        for (i, port) in policy.port_level_settings.iter().enumerate() {
            if let Some(mode) = unverified(port.tls.as_deref(), selected) {
                let pointer = format!("/spec/trafficPolicy/portLevelSettings/{i}/tls");
                let number = port
                    .port
                    .as_ref()
                    .and_then(|p| p.number)
                    .map_or_else(|| "?".to_string(), |n| n.to_string());
                out.push(
                    m.warning(
                        "dr-port-tls-no-ca",
                        &pointer,
                        format!(
                            "{}: TLS mode {mode} without caCertificates: the server's identity for host {} at port {number} is not verified",
                            display_path(&pointer),
                            dr.host
                        ),
                    )
                    .istio("IST0129")
                    .fix(fix),
                );
            }
        }
    }
}

/// istioctl's `haveSameCertificate`: the same Secret, or the same certificate and key files.
fn same_certificate(a: &ServerTlsSettings, b: &ServerTlsSettings) -> bool {
    fn set(v: &Option<String>) -> Option<&str> {
        v.as_deref().filter(|s| !s.is_empty())
    }
    match (set(&a.credential_name), set(&b.credential_name)) {
        (Some(x), Some(y)) => x == y,
        (None, None) => match (
            set(&a.server_certificate),
            set(&b.server_certificate),
            set(&a.private_key),
            set(&b.private_key),
        ) {
            (Some(ca), Some(cb), Some(ka), Some(kb)) => ca == cb && ka == kb,
            _ => false,
        },
        _ => false,
    }
}

/// Is selector `x` a subset of `y` (every label of `x` in `y` with the same value)?
fn subset(x: &Labels, y: &Labels) -> bool {
    x.iter().all(|(k, v)| y.get(k) == Some(v))
}

fn check_duplicate_certificates(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let empty = Labels::default();
    for (i, (m, gw)) in index.gateways.iter().enumerate() {
        let selector = gw.spec.selector.as_ref().unwrap_or(&empty);
        for (j, (other_m, other)) in index.gateways.iter().enumerate() {
            if i == j {
                continue;
            }
            // An empty selector selects every gateway workload.
            let other_selector = other.spec.selector.as_ref().unwrap_or(&empty);
            if !subset(selector, other_selector) {
                continue;
            }
            let shared = gw.spec.servers.iter().any(|s| {
                other.spec.servers.iter().any(|o| match (&s.tls, &o.tls) {
                    (Some(a), Some(b)) => same_certificate(a, b),
                    _ => false,
                })
            });
            if !shared {
                continue;
            }
            out.push(
                m.warning(
                    "gw-duplicate-certificate",
                    "/metadata/name",
                    format!(
                        "uses the same certificate as {} ({}:{}) on the same gateway workload: HTTP/2 clients that reuse a connection across them may get 404s",
                        other_m.key,
                        other_m.file,
                        other_m.line
                    ),
                )
                .istio("IST0138")
                .fix("serve the hosts that share a certificate from one Gateway, or give each Gateway its own certificate"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::analyze::tests::{doc, run};

    fn dr(spec: &str) -> String {
        doc(
            "DestinationRule",
            "db",
            "default",
            &format!("  host: db.example.com\n{spec}"),
        )
    }

    /// Table after istioctl's `destinationrule-*` CaCertificateAnalyzer tests.
    #[test]
    fn ca_certificates_table() {
        let cases = [
            (
                dr("  trafficPolicy:\n    tls: {mode: SIMPLE}\n"),
                vec![("dr-tls-no-ca", 10)],
            ),
            (
                dr(
                    "  trafficPolicy:\n    tls: {mode: MUTUAL, clientCertificate: /c, privateKey: /k}\n",
                ),
                vec![("dr-tls-no-ca", 10)],
            ),
            (
                dr("  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: /ca.pem}\n"),
                vec![],
            ),
            (
                dr("  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n"),
                vec![],
            ),
            (
                dr(
                    "  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 443}\n      tls: {mode: SIMPLE}\n",
                ),
                vec![("dr-port-tls-no-ca", 12)],
            ),
            // credentialName counts only with a workloadSelector (a gateway's own rule).
            (
                dr("  trafficPolicy:\n    tls: {mode: SIMPLE, credentialName: db-ca}\n"),
                vec![("dr-tls-no-ca", 10)],
            ),
            (
                dr(
                    "  workloadSelector:\n    matchLabels: {app: gw}\n  trafficPolicy:\n    tls: {mode: SIMPLE, credentialName: db-ca}\n",
                ),
                vec![],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(run(&text, check_ca_certificates), want, "{text}");
        }
    }

    fn gateway(name: &str, selector: &str, tls: &str) -> String {
        doc(
            "Gateway",
            name,
            "edge",
            &format!(
                "  selector: {selector}\n  servers:\n  - port: {{number: 443, name: https, protocol: HTTPS}}\n    hosts: [{name}.example.com]\n    tls: {tls}\n"
            ),
        )
    }

    /// Table after istioctl's `gateway-duplicate-certificate.yaml`.
    #[test]
    fn duplicate_certificates_table() {
        let ig = "{istio: ingressgateway}";
        let cert = "{mode: SIMPLE, credentialName: wildcard}";
        let files = "{mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}";
        let cases = [
            (
                format!("{}{}", gateway("a", ig, cert), gateway("b", ig, cert)),
                vec![
                    ("gw-duplicate-certificate", 5),
                    ("gw-duplicate-certificate", 17),
                ],
            ),
            (
                format!("{}{}", gateway("a", ig, files), gateway("b", ig, files)),
                vec![
                    ("gw-duplicate-certificate", 5),
                    ("gw-duplicate-certificate", 17),
                ],
            ),
            (
                format!(
                    "{}{}",
                    gateway("a", ig, cert),
                    gateway("b", ig, "{mode: SIMPLE, credentialName: other}")
                ),
                vec![],
            ),
            // Different workloads do not share connections.
            (
                format!(
                    "{}{}",
                    gateway("a", ig, cert),
                    gateway("b", "{istio: other}", cert)
                ),
                vec![],
            ),
            // A narrower selector is a subset of a wider one: only it is reported.
            (
                format!(
                    "{}{}",
                    gateway("a", ig, cert),
                    gateway("b", "{istio: ingressgateway, zone: a}", cert)
                ),
                vec![("gw-duplicate-certificate", 5)],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(run(&text, check_duplicate_certificates), want, "{text}");
        }
    }
}
