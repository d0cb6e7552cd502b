//! What a VirtualService names must exist in the revision: subsets (istioctl's
//! DestinationRuleAnalyzer) and gateways (its GatewayAnalyzer), an Istio `Gateway` or a Gateway
//! API `Gateway` alike; references to the Gateways Istio generates internally are warned about.

use std::collections::HashSet;

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
        out.push(diagnostic.istio("IST0101"));
    }
}

/// The Gateway API `Gateway`s of the revision (`gateway.networking.k8s.io`, any version), as
/// `namespace/name`: istioctl's GatewayAnalyzer accepts them as a VirtualService's gateway.
pub struct GatewayApiGateways(HashSet<String>);

/// The API group of Kubernetes Gateway API objects.
const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

impl GatewayApiGateways {
    pub fn new(index: &Index<'_>) -> Self {
        Self(
            index
                .all
                .iter()
                .filter(|m| m.key.group == GATEWAY_API_GROUP && m.key.kind == "Gateway")
                .map(|m| format!("{}/{}", m.namespace(), m.key.name))
                .collect(),
        )
    }

    fn contains(&self, namespaced_name: &str) -> bool {
        self.0.contains(namespaced_name)
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.iter().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// Where a gateway reference was written: `spec.gateways`, which istioctl checks, or a
/// match's `gateways`, which nothing in Istio checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefSite {
    Spec,
    Match,
}

/// Gateway references (`name` in the VirtualService's namespace, or `namespace/name`).
fn gateway_refs(vs: &VirtualService) -> Vec<(String, &str, RefSite)> {
    let mut refs = Vec::new();
    for (i, g) in vs.gateways.iter().enumerate() {
        refs.push((format!("/spec/gateways/{i}"), g.as_str(), RefSite::Spec));
    }
    fn add<'a>(
        refs: &mut Vec<(String, &'a str, RefSite)>,
        kind: &str,
        i: usize,
        j: usize,
        gateways: &'a [String],
    ) {
        for (k, g) in gateways.iter().enumerate() {
            refs.push((
                format!("/spec/{kind}/{i}/match/{j}/gateways/{k}"),
                g.as_str(),
                RefSite::Match,
            ));
        }
    }
    for (i, http) in vs.http.iter().enumerate() {
        for (j, mr) in http.matches.iter().enumerate() {
            add(&mut refs, "http", i, j, &mr.gateways);
        }
    }
    for (i, tcp) in vs.tcp.iter().enumerate() {
        for (j, mr) in tcp.matches.iter().enumerate() {
            add(&mut refs, "tcp", i, j, &mr.gateways);
        }
    }
    for (i, tls) in vs.tls.iter().enumerate() {
        for (j, mr) in tls.matches.iter().enumerate() {
            add(&mut refs, "tls", i, j, &mr.gateways);
        }
    }
    refs
}

/// `namespace/name` of a gateway reference written in `namespace`; `mesh` stays `mesh`
/// (istioctl's `resource.NewShortOrFullName`).
pub(super) fn resolve_gateway(reference: &str, namespace: &str) -> String {
    if reference == MESH_GATEWAY || reference.contains('/') {
        reference.to_string()
    } else {
        format!("{namespace}/{reference}")
    }
}

/// The name Istio gives the Gateways it generates from a Gateway API Gateway contains this,
/// between `-` (current releases) or `~` (earlier ones).
const INTERNAL_GATEWAY_MARK: &str = "istio-autogenerated-k8s-gateway";

/// Is this a reference to a Gateway Istio generates internally (istioctl's
/// `IsInternalGatewayReference`)?
fn is_internal_gateway(reference: &str) -> bool {
    let name = reference.split_once('/').map_or(reference, |(_, n)| n);
    name.contains(&format!("-{INTERNAL_GATEWAY_MARK}-"))
        || name.contains(&format!("~{INTERNAL_GATEWAY_MARK}~"))
}

/// Referenced gateways exist in the revision, as an Istio `Gateway` or a Gateway API
/// `Gateway`; `mesh` is built in. As istioctl's GatewayAnalyzer: a missing gateway in
/// `spec.gateways` is an error (IST0101), a reference to an internal generated Gateway a
/// warning (IST0165); a missing gateway named only in a match is a warning.
pub fn check_gateways(
    index: &Index<'_>,
    gateway_api: &GatewayApiGateways,
    m: &Manifest,
    vs: &VirtualService,
    out: &mut Vec<Diagnostic>,
) {
    for (pointer, reference, site) in gateway_refs(vs) {
        let at = display_path(&pointer);
        if is_internal_gateway(reference) {
            out.push(
                m.warning(
                    "vs-internal-gateway",
                    &pointer,
                    format!("{at}: `{reference}` is a Gateway Istio generates from a Gateway API Gateway; its name is an implementation detail and can change"),
                )
                .fix("attach an HTTPRoute to the Gateway API Gateway, or create an Istio Gateway and name it here")
                .istio("IST0165"),
            );
            continue;
        }
        let resolved = resolve_gateway(reference, m.namespace());
        if resolved == MESH_GATEWAY
            || index.has_gateway(&resolved)
            || gateway_api.contains(&resolved)
        {
            continue;
        }
        let mut known: Vec<String> = index
            .gateway_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        known.extend(
            gateway_api
                .names()
                .into_iter()
                .map(|n| format!("{n} (Gateway API)")),
        );
        let defined = if known.is_empty() {
            "the revision defines no Gateway".to_string()
        } else {
            format!("gateways in the revision: {}", known.join(", "))
        };
        let fix = "name an existing Gateway as `name` (same namespace) or `namespace/name`, use `mesh` for sidecars, or add the Gateway";
        let diagnostic = match site {
            RefSite::Spec => m
                .error(
                    "vs-unknown-gateway",
                    &pointer,
                    format!("{at}: gateway `{resolved}` is not defined ({defined})"),
                )
                .istio("IST0101"),
            RefSite::Match => m.warning(
                "vs-match-gateway",
                &pointer,
                format!("{at}: gateway `{resolved}` is not defined ({defined}), so this match never applies"),
            ),
        };
        out.push(diagnostic.fix(fix));
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
        assert_eq!(d[0].istio, Some("IST0101"));
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

    /// A Gateway API Gateway in the VirtualService's namespace.
    const K8S_GW: &str = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: web\nspec:\n  gatewayClassName: istio\n  listeners: []\n";

    fn gateways(body: &str, others: &str) -> Vec<Diagnostic> {
        run_index(&format!("{VS}{body}{others}"), |index, out| {
            let gateway_api = GatewayApiGateways::new(index);
            for (m, vs) in &index.virtual_services {
                check_gateways(index, &gateway_api, m, &vs.spec, out);
            }
        })
    }

    /// istioctl's GatewayAnalyzer: ReferencedResourceNotFound (IST0101) for spec.gateways.
    #[test]
    fn gateways_must_exist() {
        let gw = |body: &str| gateways(body, GW);
        assert!(gw("  gateways: [mesh, edge/public]\n").is_empty());
        let d = gw("  gateways:\n  - mesh\n  - public\n");
        assert_eq!((d[0].code, d[0].line), ("vs-unknown-gateway", 8));
        assert!(d[0].is_error());
        assert_eq!(d[0].istio, Some("IST0101"));
        assert!(
            d[0].message.contains(
                "`default/public` is not defined (gateways in the revision: edge/public)"
            ),
            "{}",
            d[0]
        );
        // A gateway named only in a match: nothing in Istio checks it, so a warning.
        let d = gw("  http:\n  - match:\n    - gateways: [edge/private]\n");
        assert_eq!((d[0].code, d[0].line), ("vs-match-gateway", 8));
        assert!(!d[0].is_error());
    }

    /// istioctl's GatewayAnalyzer looks for a Gateway API Gateway too.
    #[test]
    fn a_gateway_api_gateway_counts() {
        assert!(gateways("  gateways: [web]\n", K8S_GW).is_empty());
        assert!(gateways("  gateways: [default/web]\n", K8S_GW).is_empty());
        let d = gateways("  gateways: [other/web]\n", K8S_GW);
        assert_eq!(d[0].code, "vs-unknown-gateway");
        assert!(
            d[0].message
                .contains("gateways in the revision: default/web (Gateway API)"),
            "{}",
            d[0]
        );
    }

    /// istioctl's GatewayAnalyzer: ReferencedInternalGateway (IST0165) is a warning.
    #[test]
    fn internal_gateways_are_a_warning() {
        for name in [
            "istio-ingress/gateway-istio-autogenerated-k8s-gateway-foo",
            "istio-system/gw~istio-autogenerated-k8s-gateway~http",
        ] {
            let d = gateways(&format!("  gateways: [\"{name}\"]\n"), "");
            assert_eq!(d.len(), 1, "{name}: {d:?}");
            assert_eq!(
                (d[0].code, d[0].is_error(), d[0].istio),
                ("vs-internal-gateway", false, Some("IST0165"))
            );
        }
    }
}
