//! What a VirtualService names must exist in the revision (subsets, gateways), and no two
//! VirtualServices may claim one host on one gateway.

use std::collections::HashMap;

use super::{Index, MESH_GATEWAY, destinations};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::VirtualService;
use crate::manifest::yaml::pointer_join;

/// Every `subset` named by a destination is defined by a DestinationRule for that host.
pub fn check_subsets(
    index: &Index<'_>,
    m: &Manifest,
    vs: &VirtualService,
    out: &mut Vec<Diagnostic>,
) {
    for (pointer, d) in destinations(vs) {
        let Some(subset) = d.subset.as_deref() else {
            continue;
        };
        let host = hosts::fqdn(&d.host, m.namespace());
        let rules = index.destination_rules_for(&host);
        if rules
            .iter()
            .any(|(_, dr)| dr.spec.subsets.iter().any(|s| s.name == subset))
        {
            continue;
        }
        let pointer = pointer_join(&pointer, "subset");
        let at = display_path(&pointer);
        let diagnostic = if rules.is_empty() {
            m.error(
                "vs-unknown-subset",
                &pointer,
                format!("{at}: subset `{subset}` of {host} is not defined: no DestinationRule in this revision is for {host}"),
            )
            .fix(format!(
                "add a DestinationRule with `host: {}` and a subset named `{subset}`, or remove `subset`",
                d.host
            ))
        } else {
            let defined: Vec<String> = rules
                .iter()
                .flat_map(|(_, dr)| dr.spec.subsets.iter().map(|s| format!("`{}`", s.name)))
                .collect();
            let where_: Vec<String> = rules
                .iter()
                .map(|(dm, _)| format!("{} ({}:{})", dm.key, dm.file, dm.line))
                .collect();
            let defined = if defined.is_empty() {
                "none".to_string()
            } else {
                defined.join(", ")
            };
            m.error(
                "vs-unknown-subset",
                &pointer,
                format!(
                    "{at}: subset `{subset}` of {host} is not defined by {}; defined subsets: {defined}",
                    where_.join(", ")
                ),
            )
            .fix(format!(
                "use one of the defined subsets, or add a subset named `{subset}` to the DestinationRule"
            ))
        };
        out.push(diagnostic);
    }
}

/// Gateway references (`name` in the VirtualService's namespace, or `namespace/name`).
fn gateway_refs(vs: &VirtualService) -> Vec<(String, &str)> {
    let mut refs = Vec::new();
    for (i, g) in vs.gateways.iter().enumerate() {
        refs.push((format!("/spec/gateways/{i}"), g.as_str()));
    }
    for (i, http) in vs.http.iter().enumerate() {
        for (j, mr) in http.matches.iter().enumerate() {
            for (k, g) in mr.gateways.iter().enumerate() {
                refs.push((format!("/spec/http/{i}/match/{j}/gateways/{k}"), g.as_str()));
            }
        }
    }
    for (i, tcp) in vs.tcp.iter().enumerate() {
        for (j, mr) in tcp.matches.iter().enumerate() {
            for (k, g) in mr.gateways.iter().enumerate() {
                refs.push((format!("/spec/tcp/{i}/match/{j}/gateways/{k}"), g.as_str()));
            }
        }
    }
    for (i, tls) in vs.tls.iter().enumerate() {
        for (j, mr) in tls.matches.iter().enumerate() {
            for (k, g) in mr.gateways.iter().enumerate() {
                refs.push((format!("/spec/tls/{i}/match/{j}/gateways/{k}"), g.as_str()));
            }
        }
    }
    refs
}

/// `namespace/name` of a gateway reference written in `namespace`; `mesh` stays `mesh`.
fn resolve_gateway(reference: &str, namespace: &str) -> String {
    if reference == MESH_GATEWAY || reference.contains('/') {
        reference.to_string()
    } else {
        format!("{namespace}/{reference}")
    }
}

/// Referenced gateways exist in the revision; `mesh` is built in.
pub fn check_gateways(
    index: &Index<'_>,
    m: &Manifest,
    vs: &VirtualService,
    out: &mut Vec<Diagnostic>,
) {
    for (pointer, reference) in gateway_refs(vs) {
        let resolved = resolve_gateway(reference, m.namespace());
        if resolved == MESH_GATEWAY || index.has_gateway(&resolved) {
            continue;
        }
        let known = index.gateway_names();
        let defined = if known.is_empty() {
            "the revision defines no Gateway".to_string()
        } else {
            format!("gateways in the revision: {}", known.join(", "))
        };
        out.push(
            m.error(
                "vs-unknown-gateway",
                &pointer,
                format!("{}: gateway `{resolved}` is not defined ({defined})", display_path(&pointer)),
            )
            .fix("name an existing Gateway as `name` (same namespace) or `namespace/name`, use `mesh` for sidecars, or add the Gateway"),
        );
    }
}

/// Two VirtualServices for the same host on the same gateway (the implicit `mesh` included):
/// Istio would merge or drop one of them unpredictably.
pub fn check_host_conflicts(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let mut claimed: HashMap<(String, String), (&Manifest, String)> = HashMap::new();
    for (m, vs) in &index.virtual_services {
        let gateways: Vec<String> = if vs.spec.gateways.is_empty() {
            vec![MESH_GATEWAY.to_string()]
        } else {
            vs.spec
                .gateways
                .iter()
                .map(|g| resolve_gateway(g, m.namespace()))
                .collect()
        };
        for (i, host) in vs.spec.hosts.iter().enumerate() {
            let pointer = format!("/spec/hosts/{i}");
            let fqdn = hosts::fqdn(host, m.namespace());
            for gateway in &gateways {
                let key = (gateway.clone(), fqdn.clone());
                match claimed.get(&key) {
                    // The same object twice is reported as `duplicate-object`.
                    Some((other, _)) if other.key.same_object(&m.key) => {}
                    Some((other, other_pointer)) => {
                        let at = other.locate(other_pointer);
                        out.push(
                            m.error(
                                "vs-host-conflict",
                                &pointer,
                                format!(
                                    "host {fqdn} on gateway `{gateway}` is also claimed by {} at {}:{}",
                                    other.key, other.file, at.line
                                ),
                            )
                            .fix("merge the routes into one VirtualService, or use `delegate` to split them"),
                        );
                    }
                    None => {
                        claimed.insert(key, (m, pointer.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::virtual_service::fixtures::{VS, run_index};

    const DR: &str = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n";

    fn subsets(text: &str) -> Vec<Diagnostic> {
        run_index(text, |index, out| {
            for (m, vs) in &index.virtual_services {
                check_subsets(index, m, &vs.spec, out);
            }
        })
    }

    #[test]
    fn subsets_must_exist_for_the_host() {
        let route = |host: &str, subset: &str| {
            format!(
                "{VS}  http:\n  - route:\n    - destination: {{host: {host}, subset: {subset}}}\n"
            )
        };
        // Short and fully qualified names of the same service both find the rule.
        assert!(subsets(&format!("{}{DR}", route("reviews", "v1"))).is_empty());
        assert!(
            subsets(&format!(
                "{}{DR}",
                route("reviews.default.svc.cluster.local", "v1")
            ))
            .is_empty()
        );
        let d = subsets(&format!("{}{DR}", route("reviews", "v2")));
        assert_eq!((d[0].code, d[0].line), ("vs-unknown-subset", 8));
        assert!(d[0].message.contains("defined subsets: `v1`"), "{}", d[0]);
        assert!(
            d[0].message
                .contains("DestinationRule default/reviews (t.yaml:10)"),
            "{}",
            d[0]
        );
        // A rule for another host does not count.
        let d = subsets(&format!("{}{DR}", route("ratings", "v1")));
        assert!(
            d[0].message.contains(
                "no DestinationRule in this revision is for ratings.default.svc.cluster.local"
            ),
            "{}",
            d[0]
        );
        // Mirrors and TCP routes are checked too.
        let d = subsets(&format!(
            "{VS}  http:\n  - mirror: {{host: reviews, subset: v9}}\n  tcp:\n  - route:\n    - destination: {{host: reviews, subset: v8}}\n{DR}"
        ));
        let lines: Vec<_> = d.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![7, 10]);
    }

    const GW: &str = "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: public\n  namespace: edge\nspec: {}\n";

    #[test]
    fn gateways_must_exist() {
        let gw = |body: &str| {
            run_index(&format!("{VS}{body}{GW}"), |index, out| {
                for (m, vs) in &index.virtual_services {
                    check_gateways(index, m, &vs.spec, out);
                }
            })
        };
        assert!(gw("  gateways: [mesh, edge/public]\n").is_empty());
        let d = gw("  gateways:\n  - mesh\n  - public\n");
        assert_eq!((d[0].code, d[0].line), ("vs-unknown-gateway", 8));
        assert!(
            d[0].message.contains(
                "`default/public` is not defined (gateways in the revision: edge/public)"
            ),
            "{}",
            d[0]
        );
        let d = gw("  http:\n  - match:\n    - gateways: [edge/private]\n");
        assert_eq!(d[0].line, 8);
    }

    #[test]
    fn host_conflicts_name_the_other_object() {
        let other = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews-2\nspec:\n  hosts:\n  - reviews.default.svc.cluster.local\n";
        let conflicts = |text: &str| run_index(text, check_host_conflicts);
        // Both on the implicit mesh gateway, one short name, one full name.
        let d = conflicts(&format!("{VS}  hosts: [reviews]\n{other}"));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].code, d[0].line), ("vs-host-conflict", 14));
        assert!(
            d[0].message.contains(
                "gateway `mesh` is also claimed by VirtualService default/reviews at t.yaml:6"
            ),
            "{}",
            d[0]
        );
        // Different gateways do not conflict.
        assert!(
            conflicts(&format!(
                "{VS}  hosts: [reviews]\n  gateways: [edge/public]\n{other}"
            ))
            .is_empty()
        );
    }
}
