//! Sidecar checks: egress host forms, ingress and egress listener ports, and one namespace
//! default (selector-less Sidecar) per namespace.

/// The checks of this module, for the catalog (`validate::catalog`).
pub const CHECKS: &[super::catalog::Check] = &[];

use std::collections::{BTreeMap, HashMap};

use super::Index;
use super::destination_rule::check_connection_pool;
use super::gateway::{SERVICE_PROTOCOLS, known_protocol, valid_port_number};
use super::namespaced_host::{NamespacedHostError, check_namespace};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::sidecar::{Sidecar, SidecarPort};
use crate::manifest::yaml::pointer_join;

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, sidecar) in &index.sidecars {
        check_selector(m, &sidecar.spec, out);
        check_egress_hosts(m, &sidecar.spec, out);
        check_ingress_ports(m, &sidecar.spec, out);
        check_egress_ports(m, &sidecar.spec, out);
        check_connection_pools(m, &sidecar.spec, out);
    }
    check_namespace_defaults(index, out);
}

/// The inbound pools have DestinationRule's shape and the same limits.
fn check_connection_pools(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    if let Some(pool) = &sidecar.inbound_connection_pool {
        check_connection_pool(
            m,
            "sidecar-connection-pool",
            "/spec/inboundConnectionPool",
            pool,
            out,
        );
    }
    for (i, listener) in sidecar.ingress.iter().enumerate() {
        if let Some(pool) = &listener.connection_pool {
            let base = format!("/spec/ingress/{i}/connectionPool");
            check_connection_pool(m, "sidecar-connection-pool", &base, pool, out);
        }
    }
}

/// Istio refuses a workloadSelector that selects nothing in particular.
fn check_selector(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    if sidecar
        .workload_selector
        .as_ref()
        .is_some_and(|s| s.labels.is_empty())
    {
        out.push(
            m.error(
                "sidecar-empty-selector",
                "/spec/workloadSelector",
                "spec.workloadSelector has no labels",
            )
            .fix("add labels that select the workload, or remove workloadSelector to make this the namespace default"),
        );
    }
}

fn check_egress_hosts(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    for (i, egress) in sidecar.egress.iter().enumerate() {
        let at = pointer_join("/spec/egress", i);
        if egress.hosts.is_empty() {
            out.push(
                m.error(
                    "sidecar-egress-host",
                    &format!("{at}/hosts"),
                    format!(
                        "{}: an egress listener needs at least one host",
                        display_path(&at)
                    ),
                )
                .fix("list the reachable hosts, e.g. `hosts: [\"./*\", \"istio-system/*\"]`"),
            );
        }
        for (j, host) in egress.hosts.iter().enumerate() {
            if let Err(why) = check_egress_host(host) {
                let p = format!("{at}/hosts/{j}");
                out.push(
                    m.error("sidecar-egress-host", &p, format!("{}: {why}", display_path(&p)))
                        .fix("write `namespace/host`: e.g. `./*` (this namespace), `istio-system/*`, `*/api.example.com`"),
                );
            }
        }
    }
}

/// An egress host is `namespace/host`: namespace is `*` (any), `.` (the Sidecar's own),
/// `~` (none) or a namespace name; host is `*` or a DNS name with an optional `*.` prefix.
pub fn check_egress_host(host: &str) -> Result<(), NamespacedHostError> {
    let Some((ns, name)) = host.split_once('/') else {
        return Err(NamespacedHostError::NoNamespace {
            host: host.to_string(),
        });
    };
    if !matches!(ns, "*" | "." | "~") {
        check_namespace(host, ns)?;
    }
    Ok(hosts::check_host(name)?)
}

fn check_ingress_ports(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<u32, usize> = HashMap::new();
    for (i, ingress) in sidecar.ingress.iter().enumerate() {
        let at = pointer_join("/spec/ingress", i);
        let Some(port) = &ingress.port else {
            out.push(
                m.error(
                    "sidecar-ingress-port",
                    &at,
                    format!("{}: an ingress listener needs a port", display_path(&at)),
                )
                .fix("add `port: {number: 9080, protocol: HTTP, name: http}`"),
            );
            continue;
        };
        let port_at = format!("{at}/port");
        if let Err((field, why, fix)) = check_port(port, true) {
            let p = format!("{port_at}/{field}");
            out.push(
                m.error(
                    "sidecar-ingress-port",
                    &p,
                    format!("{}: {why}", display_path(&p)),
                )
                .fix(fix),
            );
        }
        if let Some(number) = port.number {
            if let Some(first) = seen.get(&number) {
                let p = format!("{port_at}/number");
                out.push(
                    m.error(
                        "sidecar-duplicate-ingress-port",
                        &p,
                        format!(
                            "{}: port {number} already has a listener in spec.ingress[{first}]",
                            display_path(&p)
                        ),
                    )
                    .fix("declare each inbound port once"),
                );
            } else {
                seen.insert(number, i);
            }
        }
    }
}

/// The egress port is optional (all ports when unset), but must be valid when given.
fn check_egress_ports(m: &Manifest, sidecar: &Sidecar, out: &mut Vec<Diagnostic>) {
    for (i, egress) in sidecar.egress.iter().enumerate() {
        let Some(port) = &egress.port else {
            continue;
        };
        if let Err((field, why, fix)) = check_port(port, false) {
            let p = format!("/spec/egress/{i}/port/{field}");
            out.push(
                m.error(
                    "sidecar-egress-port",
                    &p,
                    format!("{}: {why}", display_path(&p)),
                )
                .fix(fix),
            );
        }
    }
}

/// The first problem of a listener port: (field, what is wrong, fix). Ingress ports need a
/// number and a protocol; egress ports only need them to be valid when written.
fn check_port(port: &SidecarPort, ingress: bool) -> Result<(), (&'static str, String, String)> {
    match port.number {
        Some(n) if !valid_port_number(n) => {
            return Err((
                "number",
                format!("{n} is not a port number (1-65535)"),
                "use a port between 1 and 65535".to_string(),
            ));
        }
        None if ingress => {
            return Err((
                "number",
                "the port has no number".to_string(),
                "add `number:` with the port the application listens on".to_string(),
            ));
        }
        Some(_) | None => {}
    }
    match &port.protocol {
        Some(p) if known_protocol(p, SERVICE_PROTOCOLS).is_none() => Err((
            "protocol",
            format!("`{p}` is not a protocol Istio knows"),
            format!("use one of {}", SERVICE_PROTOCOLS.join(", ")),
        )),
        None if ingress => Err((
            "protocol",
            "the port has no protocol".to_string(),
            format!("add `protocol:`, one of {}", SERVICE_PROTOCOLS.join(", ")),
        )),
        Some(_) | None => Ok(()),
    }
}

/// A namespace has at most one default Sidecar (one without workloadSelector); with two,
/// which one applies is undefined.
fn check_namespace_defaults(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let mut defaults: BTreeMap<&str, &Manifest> = BTreeMap::new();
    for (m, sidecar) in &index.sidecars {
        if sidecar.spec.workload_selector.is_some() {
            continue;
        }
        match defaults.get(m.namespace()) {
            Some(first) => out.push(
                m.error(
                    "sidecar-multiple-default",
                    "/metadata/name",
                    format!(
                        "namespace `{}` already has a default Sidecar (one without workloadSelector), `{}` at {}:{}; with two, which one applies is undefined",
                        m.namespace(),
                        first.key.name,
                        first.file,
                        first.line
                    ),
                )
                .fix("merge the two Sidecars, or add spec.workloadSelector to this one so it applies to specific workloads"),
            ),
            None => {
                defaults.insert(m.namespace(), m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::gateway::tests::{Found, run};

    /// A Sidecar in namespace `shop` whose spec body (indented by two) starts on line 7.
    fn sidecar(name: &str, spec: &str) -> String {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n{spec}"
        )
    }

    fn table(f: fn(&Manifest, &Sidecar, &mut Vec<Diagnostic>), cases: &[(&str, Found)]) {
        for (spec, want) in cases {
            let found = run(&sidecar("s", spec), |index, out| {
                for (m, s) in &index.sidecars {
                    f(m, &s.spec, out);
                }
            });
            assert_eq!(&found, want, "{spec}");
        }
    }

    #[test]
    fn selector_table() {
        table(
            check_selector,
            &[
                ("  workloadSelector: {labels: {app: ratings}}\n", vec![]),
                ("  egress: [{hosts: ['./*']}]\n", vec![]),
                (
                    "  workloadSelector: {}\n",
                    vec![("sidecar-empty-selector", 7)],
                ),
            ],
        );
    }

    #[test]
    fn egress_hosts_table() {
        for ok in [
            "./*",
            "*/*",
            "~/*",
            "istio-system/*",
            "*/api.example.com",
            "shop/*.example.com",
            "./reviews",
        ] {
            assert_eq!(check_egress_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "*",
            "api.example.com",
            "/a.com",
            "Shop/*",
            "./",
            "./a..b",
            "-x/*",
        ] {
            assert!(check_egress_host(bad).is_err(), "{bad}");
        }
        table(
            check_egress_hosts,
            &[
                ("  egress:\n  - hosts: ['./*', 'istio-system/*']\n", vec![]),
                (
                    "  egress:\n  - hosts:\n    - ./*\n    - reviews.shop.svc.cluster.local\n",
                    vec![("sidecar-egress-host", 10)],
                ),
                (
                    "  egress:\n  - hosts: []\n",
                    vec![("sidecar-egress-host", 8)],
                ),
            ],
        );
    }

    #[test]
    fn ingress_ports_table() {
        table(
            check_ingress_ports,
            &[
                (
                    "  ingress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    defaultEndpoint: 127.0.0.1:8080\n",
                    vec![],
                ),
                (
                    "  ingress:\n  - defaultEndpoint: 127.0.0.1:8080\n",
                    vec![("sidecar-ingress-port", 8)],
                ),
                (
                    "  ingress:\n  - port: {protocol: HTTP}\n",
                    vec![("sidecar-ingress-port", 8)],
                ),
                (
                    "  ingress:\n  - port: {number: 0, protocol: HTTP}\n",
                    vec![("sidecar-ingress-port", 8)],
                ),
                (
                    "  ingress:\n  - port: {number: 9080}\n",
                    vec![("sidecar-ingress-port", 8)],
                ),
                (
                    "  ingress:\n  - port: {number: 9080, protocol: SPDY}\n",
                    vec![("sidecar-ingress-port", 8)],
                ),
                (
                    "  ingress:\n  - port: {number: 9080, protocol: HTTP}\n  - port:\n      number: 9080\n      protocol: TCP\n",
                    vec![("sidecar-duplicate-ingress-port", 10)],
                ),
            ],
        );
    }

    #[test]
    fn egress_ports_table() {
        table(
            check_egress_ports,
            &[
                ("  egress:\n  - hosts: ['./*']\n", vec![]),
                (
                    "  egress:\n  - port: {number: 3306, protocol: MYSQL}\n    hosts: ['./*']\n",
                    vec![],
                ),
                (
                    "  egress:\n  - port: {number: 3306, protocol: SQL}\n    hosts: ['./*']\n",
                    vec![("sidecar-egress-port", 8)],
                ),
            ],
        );
    }

    #[test]
    fn namespace_defaults_table() {
        let default = |name: &str| sidecar(name, "  egress: [{hosts: ['./*']}]\n");
        let selected = |name: &str| {
            sidecar(
                name,
                "  workloadSelector: {labels: {app: a}}\n  egress: [{hosts: ['./*']}]\n",
            )
        };
        let other_ns = default("c").replace("namespace: shop", "namespace: other");
        let cases = [
            (format!("{}---\n{}", default("a"), selected("b")), vec![]),
            (format!("{}---\n{other_ns}", default("a")), vec![]),
            // The second document starts at line 9; its name is on line 12.
            (
                format!("{}---\n{}", default("a"), default("b")),
                vec![("sidecar-multiple-default", 12)],
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(run(&yaml, check_namespace_defaults), want, "{yaml}");
        }
    }

    #[test]
    fn typed_model_rejects_unknown_capture_mode_at_its_line() {
        let yaml = sidecar(
            "s",
            "  egress:\n  - hosts: ['./*']\n    captureMode: IPTABLE\n",
        );
        let parsed = crate::manifest::parse_file(
            "t.yaml",
            yaml.as_bytes(),
            &crate::manifest::ReadOptions::default(),
        );
        let d = &parsed.diagnostics[0];
        assert_eq!((d.code, d.line), ("invalid-field", 9), "{d}");
        assert!(d.message.contains("IPTABLES"), "{d}");
    }
}
