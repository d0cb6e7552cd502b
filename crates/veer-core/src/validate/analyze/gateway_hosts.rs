//! istioctl's `virtualservice.GatewayAnalyzer`, its host half (IST0132): a VirtualService
//! bound to a Gateway should have at least one host that one of the Gateway's servers serves
//! to the VirtualService's namespace; otherwise the gateway never routes to it.
//!
//! A Gateway the revision does not define is left alone: `vs-unknown-gateway` reports a
//! missing one, and a Gateway in the cluster or a Gateway API gateway is not visible here.

use crate::diagnostic::Diagnostic;
use crate::manifest::istio::display_path;
use crate::manifest::istio::gateway::Gateway;
use crate::validate::Index;

/// Istio's `host.Name.Matches`: two hosts match when one covers the other; `*` prefixes are
/// wildcards (compared by suffix), everything else compares exactly.
pub(crate) fn names_match(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(a), Some(b)) => {
            if a.len() < b.len() {
                b.ends_with(a)
            } else {
                a.ends_with(b)
            }
        }
        (Some(a), None) => b.ends_with(a),
        (None, Some(b)) => a.ends_with(b),
        (None, None) => a == b,
    }
}

/// The hosts a Gateway's servers offer to VirtualServices of `vs_namespace`, as istioctl's
/// `sanitizeServerHostNamespace` and `host.NamesForNamespace` compute them: `./h` is the
/// Gateway's namespace, `*/h` any namespace, `*/*` makes the server's hosts `*`; `ns/h` is
/// offered only to `ns`.
fn offered_hosts(gateway: &Gateway, gateway_namespace: &str, vs_namespace: &str) -> Vec<String> {
    let mut offered = Vec::new();
    for server in &gateway.servers {
        let mut hosts: Vec<String> = Vec::new();
        for h in &server.hosts {
            match h.split_once('/') {
                Some(("*", "*")) => {
                    hosts = vec!["*".to_string()];
                    break;
                }
                Some(("*", name)) => hosts.push(name.to_string()),
                Some((".", name)) => hosts.push(format!("{gateway_namespace}/{name}")),
                Some(_) | None => hosts.push(h.clone()),
            }
        }
        for h in hosts {
            match h.split_once('/') {
                Some((ns, name)) if ns == vs_namespace || ns == "*" => {
                    offered.push(name.to_string())
                }
                Some(_) => {}
                None => offered.push(h),
            }
        }
    }
    offered
}

pub(super) fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, vs) in &index.virtual_services {
        let vs_namespace = m.namespace();
        for (i, reference) in vs.spec.gateways.iter().enumerate() {
            if reference == crate::validate::virtual_service::MESH_GATEWAY {
                continue;
            }
            let (gw_namespace, gw_name) = reference
                .split_once('/')
                .unwrap_or((vs_namespace, reference.as_str()));
            let Some((gm, gw)) = index
                .gateways
                .iter()
                .find(|(gm, _)| gm.namespace() == gw_namespace && gm.key.name == gw_name)
            else {
                continue;
            };
            let offered = offered_hosts(&gw.spec, gw_namespace, vs_namespace);
            let served = offered
                .iter()
                .any(|g| vs.spec.hosts.iter().any(|h| names_match(g, h)));
            if served {
                continue;
            }
            let pointer = format!("/spec/gateways/{i}");
            let offered = if offered.is_empty() {
                format!("none to namespace {vs_namespace}")
            } else {
                offered.join(", ")
            };
            out.push(
                m.warning(
                    "vs-gateway-host",
                    &pointer,
                    format!(
                        "{}: none of the hosts [{}] is served by Gateway {gw_namespace}/{gw_name} ({}:{}), whose servers offer: {offered}",
                        display_path(&pointer),
                        vs.spec.hosts.join(", "),
                        gm.file,
                        gm.line
                    ),
                )
                .istio("IST0132")
                .fix("add the host to a server of the Gateway (`hosts`), or route a host the Gateway serves"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::analyze::tests::{doc, run};

    fn gateway(hosts: &str) -> String {
        doc(
            "Gateway",
            "gw",
            "edge",
            &format!(
                "  selector: {{istio: ingressgateway}}\n  servers:\n  - port: {{number: 80, name: http, protocol: HTTP}}\n    hosts: {hosts}\n"
            ),
        )
    }

    fn vs(ns: &str, hosts: &str, gateway: &str) -> String {
        doc(
            "VirtualService",
            "vs",
            ns,
            &format!(
                "  hosts: {hosts}\n  gateways: [{gateway}]\n  http:\n  - route:\n    - destination: {{host: web}}\n"
            ),
        )
    }

    /// Table after istioctl's `virtualservice_host_not_found_gateway*.yaml` tests.
    #[test]
    fn gateway_hosts_table() {
        let cases = [
            (
                gateway("[shop.example.com]"),
                vs("edge", "[shop.example.com]", "gw"),
                vec![],
            ),
            (
                gateway("[\"*.example.com\"]"),
                vs("shop", "[a.example.com]", "edge/gw"),
                vec![],
            ),
            (gateway("[\"*\"]"), vs("shop", "[web]", "edge/gw"), vec![]),
            // A wildcard VirtualService host that a gateway host falls under.
            (
                gateway("[a.example.com]"),
                vs("shop", "[\"*.example.com\"]", "edge/gw"),
                vec![],
            ),
            (
                gateway("[\"shop/*\"]"),
                vs("shop", "[a.example.com]", "edge/gw"),
                vec![],
            ),
            (
                gateway("[\"*/*\"]"),
                vs("shop", "[a.example.com]", "edge/gw"),
                vec![],
            ),
            // `./h` offers the host to the Gateway's own namespace only.
            (
                gateway("[\"./a.example.com\"]"),
                vs("edge", "[a.example.com]", "gw"),
                vec![],
            ),
            (
                gateway("[\"./a.example.com\"]"),
                vs("shop", "[a.example.com]", "edge/gw"),
                vec![("vs-gateway-host", 9)],
            ),
            (
                gateway("[\"other/a.example.com\"]"),
                vs("shop", "[a.example.com]", "edge/gw"),
                vec![("vs-gateway-host", 9)],
            ),
            (
                gateway("[shop.example.com]"),
                vs("edge", "[blog.example.com]", "gw"),
                vec![("vs-gateway-host", 9)],
            ),
            // A Gateway the revision does not define, and `mesh`, are not looked at.
            (
                gateway("[x.com]"),
                vs("shop", "[a.example.com]", "edge/other"),
                vec![],
            ),
            (
                gateway("[x.com]"),
                vs("shop", "[a.example.com]", "mesh"),
                vec![],
            ),
        ];
        for (gw, vs, want) in cases {
            // The VirtualService comes first, so its gateway reference is on line 9.
            assert_eq!(run(&format!("{vs}{gw}"), check), want, "{vs}{gw}");
        }
    }

    #[test]
    fn names_match_like_istio() {
        assert!(names_match("*", "anything.com"));
        assert!(names_match("*.a.com", "x.a.com"));
        assert!(names_match("x.a.com", "*.a.com"));
        assert!(names_match("*.a.com", "*.b.a.com"));
        assert!(!names_match("a.com", "b.com"));
        assert!(!names_match("*.a.com", "a.com"));
    }
}
