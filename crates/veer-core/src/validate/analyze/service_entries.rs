//! ServiceEntries across the revision:
//!
//! - istioctl's `serviceentry.ProtocolAddressesAnalyzer` (IST0134): a port with no protocol or
//!   `TCP` and no `addresses` matches all traffic on that port, whatever the host, unless the
//!   mesh allocates addresses (DNS auto-allocation, which veer cannot see: hence a warning, as
//!   istioctl's);
//! - istioctl's `serviceentry.ConflictingServiceEntryProtocolAnalyzer` (IST0177): ServiceEntries
//!   visible in one namespace that give one host and port different protocols.

use std::collections::{BTreeMap, BTreeSet};

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::validate::Index;

pub(super) fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    check_addresses(index, out);
    check_protocol_conflicts(index, out);
}

fn check_addresses(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, se) in &index.service_entries {
        if !se.spec.addresses.is_empty() {
            continue;
        }
        for (i, port) in se.spec.ports.iter().enumerate() {
            // istioctl compares the protocol as written: only unset and `TCP` count.
            let protocol = port.protocol.as_deref().unwrap_or("");
            if !(protocol.is_empty() || protocol == "TCP") {
                continue;
            }
            let pointer = format!("/spec/ports/{i}");
            let which = if protocol.is_empty() {
                "has no protocol".to_string()
            } else {
                "is TCP".to_string()
            };
            out.push(
                m.warning(
                    "se-addresses-required",
                    &pointer,
                    format!(
                        "{}: port {} {which} and the ServiceEntry has no `addresses`: all traffic to port {} is matched, whatever its host (unless the mesh auto-allocates addresses)",
                        display_path(&pointer),
                        port.number,
                        port.number
                    ),
                )
                .istio("IST0134")
                .fix("set `addresses` (the service's IPs or CIDRs), or a protocol the proxy can route by host (HTTP, HTTPS, TLS)"),
            );
        }
    }
}

fn check_protocol_conflicts(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    // (scope, host, port) → (protocol, ServiceEntry) in revision order.
    type Key = (String, String, u32);
    let mut by_key: BTreeMap<Key, Vec<(String, &Manifest)>> = BTreeMap::new();
    for (m, se) in &index.service_entries {
        let se = &se.spec;
        let scopes: BTreeSet<String> =
            if se.export_to.is_empty() || se.export_to.iter().any(|e| e == "*") {
                BTreeSet::from(["*".to_string()])
            } else {
                se.export_to
                    .iter()
                    .map(|e| {
                        if e == "." {
                            m.namespace().to_string()
                        } else {
                            e.clone()
                        }
                    })
                    .collect()
            };
        for scope in &scopes {
            for host in &se.hosts {
                for port in &se.ports {
                    let protocol = port
                        .protocol
                        .clone()
                        .unwrap_or_default()
                        .to_ascii_uppercase();
                    by_key
                        .entry((scope.clone(), host.clone(), port.number))
                        .or_default()
                        .push((protocol, m));
                }
            }
        }
    }
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for ((scope, host, port), entries) in &by_key {
        let mut entries: Vec<&(String, &Manifest)> = entries.iter().collect();
        if scope != "*"
            && let Some(public) = by_key.get(&("*".to_string(), host.clone(), *port))
        {
            entries.extend(public.iter());
        }
        let protocols: BTreeSet<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
        if protocols.len() < 2 {
            continue;
        }
        let names: BTreeSet<String> = entries
            .iter()
            .map(|(_, m)| format!("{}/{}", m.namespace(), m.key.name))
            .collect();
        let names: Vec<String> = names.into_iter().collect();
        let shown: Vec<&str> = protocols
            .iter()
            .map(|p| if p.is_empty() { "(unset)" } else { p })
            .collect();
        for (_, m) in entries {
            if !reported.insert(m.key.to_string()) {
                continue;
            }
            let who = match names.as_slice() {
                [one] => format!("ServiceEntry {one} defines"),
                _ => format!("ServiceEntries {} define", names.join(", ")),
            };
            out.push(
                m.warning(
                    "se-protocol-conflict",
                    "/metadata/name",
                    format!(
                        "{who} host {host} port {port} with conflicting protocols ({}); Istio uses only one",
                        shown.join(", ")
                    ),
                )
                .istio("IST0177")
                .fix("give the port the same protocol in every ServiceEntry, or keep the host in one ServiceEntry"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::analyze::tests::{doc, run};

    fn se(name: &str, spec: &str) -> String {
        doc(
            "ServiceEntry",
            name,
            "default",
            &format!("  hosts: [api.example.com]\n  resolution: DNS\n{spec}"),
        )
    }

    /// Table after istioctl's `serviceentry-missing-addresses-protocol.yaml`.
    #[test]
    fn addresses_table() {
        let cases = [
            (
                se(
                    "a",
                    "  ports:\n  - {number: 443, name: https, protocol: HTTPS}\n",
                ),
                vec![],
            ),
            (
                se("a", "  ports:\n  - {number: 443, name: https}\n"),
                vec![("se-addresses-required", 11)],
            ),
            (
                se(
                    "a",
                    "  ports:\n  - {number: 27017, name: db, protocol: TCP}\n",
                ),
                vec![("se-addresses-required", 11)],
            ),
            (
                se(
                    "a",
                    "  addresses: [10.0.0.1]\n  ports:\n  - {number: 27017, name: db, protocol: TCP}\n",
                ),
                vec![],
            ),
            // istioctl compares `TCP` as written.
            (
                se(
                    "a",
                    "  ports:\n  - {number: 27017, name: db, protocol: tcp}\n",
                ),
                vec![],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(run(&text, check_addresses), want, "{text}");
        }
    }

    /// Table after istio.io's IST0177 example.
    #[test]
    fn protocol_conflicts_table() {
        let http = "  ports:\n  - {number: 443, name: http, protocol: HTTP}\n";
        let tls = "  ports:\n  - {number: 443, name: tls, protocol: TLS}\n";
        let cases = [
            (format!("{}{}", se("a", http), se("b", http)), vec![]),
            (
                format!("{}{}", se("a", http), se("b", tls)),
                vec![("se-protocol-conflict", 5), ("se-protocol-conflict", 16)],
            ),
            // Each visible only in its own namespace: no conflict.
            (
                format!(
                    "{}{}",
                    se("a", &format!("  exportTo: [\".\"]\n{http}")),
                    doc(
                        "ServiceEntry",
                        "b",
                        "other",
                        &format!("  hosts: [api.example.com]\n  exportTo: [\".\"]\n{tls}")
                    )
                ),
                vec![],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(run(&text, check_protocol_conflicts), want, "{text}");
        }
    }
}
