//! istioctl's `virtualservice.DestinationHostAnalyzer`: every route and mirror destination
//! names a known Service or ServiceEntry host (IST0101), on a port it has (IST0101
//! `host:port`), and names the port when the service has several (IST0112).
//!
//! A host not found is a warning wherever veer looked: istioctl reports it as an Error, but
//! Istio's webhook accepts such a VirtualService (the Service may come later), and veer is
//! never stricter than Istio by default (`validation.severity` can make it an error). Where
//! veer looked decides whether it is reported at all. With the cluster's Services consulted,
//! as istioctl sees them, every host found nowhere is (`vs-destination-host`). Without a
//! cluster the revision is rarely the whole registry (Services usually ship with the
//! applications), so a missing host is reported only where the revision defines Services in
//! the host's namespace, saying no cluster was consulted. A host that is found is checked
//! for its ports either way: the revision's own Service or ServiceEntry is what will be live.

use super::registry::{Entry, Origin, Registry, to_fqdn};
use crate::diagnostic::Diagnostic;
use crate::hosts::CLUSTER_SUFFIX;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::{Destination, VirtualService};
use crate::validate::Index;

/// A destination with the JSON pointer of its `destination` object and what it is.
struct Dest<'v> {
    pointer: String,
    destination: &'v Destination,
    /// `route destination` or `mirror`, for messages.
    role: &'static str,
}

/// Route destinations (TCP, TLS, HTTP) then mirrors, as istioctl lists them.
fn destinations(vs: &VirtualService) -> Vec<Dest<'_>> {
    let mut found = Vec::new();
    let mut route = |pointer: String, destination| {
        found.push(Dest {
            pointer,
            destination,
            role: "destination",
        })
    };
    for (i, r) in vs.tcp.iter().enumerate() {
        for (j, d) in r.route.iter().enumerate() {
            route(
                format!("/spec/tcp/{i}/route/{j}/destination"),
                &d.destination,
            );
        }
    }
    for (i, r) in vs.tls.iter().enumerate() {
        for (j, d) in r.route.iter().enumerate() {
            route(
                format!("/spec/tls/{i}/route/{j}/destination"),
                &d.destination,
            );
        }
    }
    for (i, r) in vs.http.iter().enumerate() {
        for (j, d) in r.route.iter().enumerate() {
            route(
                format!("/spec/http/{i}/route/{j}/destination"),
                &d.destination,
            );
        }
    }
    for (i, r) in vs.http.iter().enumerate() {
        if let Some(mirror) = &r.mirror {
            found.push(Dest {
                pointer: format!("/spec/http/{i}/mirror"),
                destination: mirror,
                role: "mirror",
            });
        }
        for (j, m) in r.mirrors.iter().enumerate() {
            found.push(Dest {
                pointer: format!("/spec/http/{i}/mirrors/{j}/destination"),
                destination: &m.destination,
                role: "mirror",
            });
        }
    }
    found
}

pub(super) fn check(index: &Index<'_>, registry: &Registry<'_>, out: &mut Vec<Diagnostic>) {
    for (m, vs) in &index.virtual_services {
        let vs = &vs.spec;
        for dest in destinations(vs) {
            let host = dest.destination.host.as_str();
            if host.is_empty() {
                continue;
            }
            match registry.lookup(m.namespace(), &vs.export_to, host) {
                Some(entry) => check_port(m, &dest, entry, out),
                None => {
                    if let Some(d) = not_found(m, &dest, registry) {
                        out.push(d);
                    }
                }
            }
        }
    }
}

/// Is `fqdn` a cluster-local Service name, and of which namespace?
fn service_namespace(fqdn: &str) -> Option<&str> {
    let rest = fqdn.strip_suffix(CLUSTER_SUFFIX)?.strip_suffix('.')?;
    let (_, namespace) = rest.split_once('.')?;
    (!namespace.contains('.')).then_some(namespace)
}

/// The report for a host found nowhere, at the severity where veer looked allows.
fn not_found(m: &Manifest, dest: &Dest<'_>, registry: &Registry<'_>) -> Option<Diagnostic> {
    let host = &dest.destination.host;
    let pointer = format!("{}/host", dest.pointer);
    let at = display_path(&pointer);
    let fqdn = to_fqdn(host, m.namespace());
    let shown = if fqdn == *host {
        format!("`{host}`")
    } else {
        format!("`{host}` ({fqdn})")
    };
    let fix = "correct the host: a Service name (`reviews`, or `reviews.shop.svc.cluster.local` in another namespace) or a ServiceEntry host; or add the Service or a ServiceEntry for it";
    if registry.cluster_consulted {
        return Some(
            m.warning(
                "vs-destination-host",
                &pointer,
                format!(
                    "{at}: {} host {shown} is not found among the revision's Services and ServiceEntries, nor the cluster's",
                    dest.role
                ),
            )
            .istio("IST0101")
            .fix(fix),
        );
    }
    // Without a cluster, only a namespace whose Services the revision carries is known well
    // enough to call a name missing.
    let namespace = service_namespace(&fqdn)?;
    let names = registry.revision_services.get(namespace)?;
    Some(
        m.warning(
            "vs-destination-host-no-cluster",
            &pointer,
            format!(
                "{at}: {} host {shown} is not found among the revision's Services and ServiceEntries (no cluster consulted); the revision's Services in namespace {namespace}: {}",
                dest.role,
                names.join(", ")
            ),
        )
        .istio("IST0101")
        .fix(fix),
    )
}

/// Where the entry was found, for messages.
fn found_in(entry: &Entry<'_>) -> String {
    match entry.origin {
        Origin::Revision(dm) => format!("{} ({}:{})", dm.key, dm.file, dm.line),
        Origin::Cluster => "the cluster".to_string(),
    }
}

/// The destination's port exists on the service, and is given when there are several.
fn check_port(m: &Manifest, dest: &Dest<'_>, entry: &Entry<'_>, out: &mut Vec<Diagnostic>) {
    let host = &dest.destination.host;
    let ports: Vec<String> = entry.ports.iter().map(u32::to_string).collect();
    match dest.destination.port.as_ref().and_then(|p| p.number) {
        None if entry.ports.len() > 1 => {
            let pointer = format!("{}/host", dest.pointer);
            out.push(
                m.error(
                    "vs-destination-port-required",
                    &pointer,
                    format!(
                        "{}: `{host}` exposes several ports ({}, per {}); the {} must say which",
                        display_path(&dest.pointer),
                        ports.join(", "),
                        found_in(entry),
                        dest.role
                    ),
                )
                .istio("IST0112")
                .fix(format!(
                    "add `port: {{number: {}}}` (or another of its ports) to the {}",
                    ports[0], dest.role
                )),
            );
        }
        None => {}
        Some(number) if !entry.ports.contains(&number) => {
            let pointer = format!("{}/port/number", dest.pointer);
            let has = if ports.is_empty() {
                "no ports".to_string()
            } else {
                format!("ports {}", ports.join(", "))
            };
            out.push(
                m.error(
                    "vs-destination-port",
                    &pointer,
                    format!(
                        "{}: `{host}:{number}` is not found: {} has {has}",
                        display_path(&pointer),
                        found_in(entry)
                    ),
                )
                .istio("IST0101")
                .fix("use one of the service's ports, or add the port to the Service or ServiceEntry"),
            );
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::analyze::tests::{doc, run_with};
    use crate::validate::analyze::{ClusterServices, KnownService};

    const SVC: &str = "  ports:\n  - {name: http, port: 9080}\n";
    const TWO_PORTS: &str =
        "  ports:\n  - {name: http, port: 9080}\n  - {name: grpc, port: 9090}\n";

    fn vs(ns: &str, body: &str) -> String {
        doc("VirtualService", "vs", ns, &format!("  hosts: [x]\n{body}"))
    }

    fn route(host: &str) -> String {
        format!("  http:\n  - route:\n    - destination:\n        host: {host}\n")
    }

    fn codes(text: &str, cluster: Option<&ClusterServices>) -> Vec<(&'static str, u32)> {
        run_with(text, cluster, check)
            .iter()
            .map(|d| (d.code, d.line))
            .collect()
    }

    /// Table after istioctl's DestinationHostAnalyzer tests
    /// (`virtualservice_destinationhosts*.yaml`).
    #[test]
    fn destination_hosts_table() {
        let cluster = ClusterServices {
            services: vec![KnownService::service("shop", "ratings", vec![9080], vec![])],
        };
        let reviews = doc("Service", "reviews", "shop", SVC);
        type Case<'a> = (String, Option<&'a ClusterServices>, Vec<(&'a str, u32)>);
        let cases: Vec<Case<'_>> = vec![
            // Found in the revision: short name in the VS's namespace, or fully qualified.
            (
                format!("{}{reviews}", vs("shop", &route("reviews"))),
                None,
                vec![],
            ),
            (
                format!(
                    "{}{reviews}",
                    vs("web", &route("reviews.shop.svc.cluster.local"))
                ),
                None,
                vec![],
            ),
            // An external host through a ServiceEntry, and a wildcard one.
            (
                format!(
                    "{}{}",
                    vs("shop", &route("api.example.com")),
                    doc(
                        "ServiceEntry",
                        "ext",
                        "egress",
                        "  hosts: [\"*.example.com\"]\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n"
                    )
                ),
                None,
                vec![],
            ),
            // Not in the revision, no cluster, and no Services of that namespace in the
            // revision: nothing is known, nothing is said.
            (vs("shop", &route("ratings")), None, vec![]),
            (vs("shop", &route("api.example.com")), None, vec![]),
            // The revision carries Services of `shop`: a missing one is a warning.
            (
                format!("{}{reviews}", vs("shop", &route("reviws"))),
                None,
                vec![("vs-destination-host-no-cluster", 12)],
            ),
            // With the cluster consulted: found there, or an error.
            (vs("shop", &route("ratings")), Some(&cluster), vec![]),
            (
                vs("shop", &route("ratngs")),
                Some(&cluster),
                vec![("vs-destination-host", 12)],
            ),
            (
                vs(
                    "shop",
                    "  http:\n  - mirror:\n      host: nowhere.example.com\n    route:\n    - destination: {host: ratings}\n",
                ),
                Some(&cluster),
                vec![("vs-destination-host", 11)],
            ),
        ];
        for (text, cluster, want) in cases {
            assert_eq!(codes(&text, cluster), want, "{text}");
        }
    }

    /// Ports, after istioctl's `virtualservice_destinationhosts_with_ports.yaml`.
    #[test]
    fn ports_table() {
        let two = doc("Service", "reviews", "shop", TWO_PORTS);
        let one = doc("Service", "reviews", "shop", SVC);
        let with_port = |n: u32| {
            format!(
                "  http:\n  - route:\n    - destination:\n        host: reviews\n        port: {{number: {n}}}\n"
            )
        };
        let cases = [
            (format!("{}{two}", vs("shop", &with_port(9090))), vec![]),
            (format!("{}{one}", vs("shop", &route("reviews"))), vec![]),
            (
                format!("{}{two}", vs("shop", &route("reviews"))),
                vec![("vs-destination-port-required", 12)],
            ),
            (
                format!("{}{one}", vs("shop", &with_port(8080))),
                vec![("vs-destination-port", 13)],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(codes(&text, None), want, "{text}");
        }
        let d = run_with(
            &format!("{}{two}", vs("shop", &route("reviews"))),
            None,
            check,
        );
        assert!(
            d[0].message
                .contains("several ports (9080, 9090, per Service shop/reviews (t.yaml:"),
            "{}",
            d[0]
        );
        assert_eq!(d[0].istio, Some("IST0112"));
    }

    #[test]
    fn messages_say_where_veer_looked() {
        let cluster = ClusterServices::default();
        let d = run_with(&vs("shop", &route("ratings")), Some(&cluster), check);
        assert!(
            d[0].message
                .ends_with("host `ratings` (ratings.shop.svc.cluster.local) is not found among the revision's Services and ServiceEntries, nor the cluster's"),
            "{}",
            d[0]
        );
        // A warning like the webhook's acceptance, not istioctl's Error.
        assert!(!d[0].is_error());
        assert_eq!(d[0].istio, Some("IST0101"));
        let reviews = doc("Service", "reviews", "shop", SVC);
        let d = run_with(
            &format!("{}{reviews}", vs("shop", &route("ratings"))),
            None,
            check,
        );
        assert!(d[0].message.contains("(no cluster consulted)"), "{}", d[0]);
        assert!(
            d[0].message.ends_with("namespace shop: reviews"),
            "{}",
            d[0]
        );
        assert!(!d[0].is_error());
    }
}
