//! Route hosts (names or wildcards; destinations name one service) and route weights
//! (0–100, adding up to 100 when a route splits traffic).

use super::{MESH_GATEWAY, destinations};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::VirtualService;
use crate::manifest::yaml::pointer_join;

/// `spec.hosts` are names or wildcards (`*` alone not on the mesh gateway); destination hosts
/// are names without wildcards.
pub fn check_hosts(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    let on_mesh = vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == MESH_GATEWAY);
    for (i, host) in vs.hosts.iter().enumerate() {
        let pointer = format!("/spec/hosts/{i}");
        if let Err(why) = hosts::check_host(host) {
            out.push(
                m.error("vs-host", &pointer, format!("{}: {why}", display_path(&pointer)))
                    .fix("write a service name (`reviews`), a DNS name (`api.example.com`) or a wildcard (`*.example.com`)"),
            );
        } else if host == "*" && on_mesh {
            out.push(
                m.error(
                    "vs-host",
                    &pointer,
                    format!(
                        "{}: `*` is not allowed for a VirtualService bound to the `mesh` gateway",
                        display_path(&pointer)
                    ),
                )
                .fix("name the services this VirtualService is for, or bind it only to ingress gateways"),
            );
        }
    }
    for (pointer, d) in destinations(vs) {
        let pointer = pointer_join(&pointer, "host");
        let bad = if d.host.contains('*') {
            Err(format!(
                "`{}` is a wildcard; a destination is one service",
                d.host
            ))
        } else {
            hosts::check_host(&d.host).map_err(|e| e.to_string())
        };
        if let Err(why) = bad {
            out.push(
                m.error("vs-host", &pointer, format!("{}: {why}", display_path(&pointer)))
                    .fix("name the destination service, e.g. `reviews` or `reviews.shop.svc.cluster.local`"),
            );
        }
    }
}

/// Weights are 0–100 and, when a route has more than one destination, add up to 100. A single
/// destination takes all traffic whatever its weight, as in Istio.
pub fn check_weights(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    let mut routes: Vec<(String, Vec<Option<i32>>)> = Vec::new();
    for (i, r) in vs.http.iter().enumerate() {
        routes.push((
            format!("/spec/http/{i}/route"),
            r.route.iter().map(|d| d.weight).collect(),
        ));
    }
    for (i, r) in vs.tcp.iter().enumerate() {
        routes.push((
            format!("/spec/tcp/{i}/route"),
            r.route.iter().map(|d| d.weight).collect(),
        ));
    }
    for (i, r) in vs.tls.iter().enumerate() {
        routes.push((
            format!("/spec/tls/{i}/route"),
            r.route.iter().map(|d| d.weight).collect(),
        ));
    }
    for (route, weights) in routes {
        let mut in_range = true;
        for (j, w) in weights.iter().enumerate() {
            if let Some(w) = *w
                && !(0..=100).contains(&w)
            {
                in_range = false;
                let pointer = format!("{route}/{j}/weight");
                out.push(
                    m.error(
                        "vs-weight",
                        &pointer,
                        format!(
                            "{} is {w}; a weight is a percentage from 0 to 100",
                            display_path(&pointer)
                        ),
                    )
                    .fix("set the weight between 0 and 100"),
                );
            }
        }
        if weights.len() < 2 || !in_range {
            continue;
        }
        let sum: i64 = weights.iter().map(|w| i64::from(w.unwrap_or(0))).sum();
        if sum != 100 {
            let parts: Vec<String> = weights.iter().map(|w| w.unwrap_or(0).to_string()).collect();
            let last = weights.len() - 1;
            let wanted = i64::from(weights[last].unwrap_or(0)) + 100 - sum;
            let fix = if (0..=100).contains(&wanted) {
                format!(
                    "set {}.weight to {wanted} (or change the others) so the weights add up to 100",
                    display_path(&format!("{route}/{last}"))
                )
            } else {
                "change the weights so they add up to 100".to_string()
            };
            out.push(
                m.error(
                    "vs-weight-sum",
                    &route,
                    format!(
                        "the weights of {} add up to {sum} ({}); with more than one destination they must add up to 100",
                        display_path(&route),
                        parts.join(" + ")
                    ),
                )
                .fix(fix),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::virtual_service::fixtures::{VS, run_index, table};

    #[test]
    fn weights() {
        table(
            check_weights,
            &[
                // Canary 90/10 is fine; so is a single destination without a weight.
                (
                    "  http:\n  - route:\n    - destination: {host: r, subset: v1}\n      weight: 90\n    - destination: {host: r, subset: v2}\n      weight: 10\n",
                    &[],
                ),
                ("  http:\n  - route:\n    - destination: {host: r}\n", &[]),
                (
                    "  tcp:\n  - route:\n    - destination: {host: r}\n      weight: 40\n",
                    &[],
                ),
                // Two destinations adding to 90: reported at `route`.
                (
                    "  http:\n  - route:\n    - destination: {host: r, subset: v1}\n      weight: 80\n    - destination: {host: r, subset: v2}\n      weight: 10\n",
                    &[("vs-weight-sum", 7)],
                ),
                // A missing weight counts as 0 when there are several destinations.
                (
                    "  tls:\n  - match: [{sniHosts: [a.com]}]\n    route:\n    - destination: {host: a}\n      weight: 50\n    - destination: {host: b}\n",
                    &[("vs-weight-sum", 8)],
                ),
                // Out of range: reported at the weight, no sum error piled on.
                (
                    "  tcp:\n  - route:\n    - destination: {host: a}\n      weight: 150\n    - destination: {host: b}\n      weight: -50\n",
                    &[("vs-weight", 9), ("vs-weight", 11)],
                ),
            ],
        );
    }

    #[test]
    fn weight_sum_fix_names_the_weight_to_change() {
        let d = run_index(
            &format!(
                "{VS}  http:\n  - route:\n    - destination: {{host: r, subset: v1}}\n      weight: 80\n    - destination: {{host: r, subset: v2}}\n      weight: 10\n"
            ),
            |index, out| {
                for (m, vs) in &index.virtual_services {
                    check_weights(m, &vs.spec, out);
                }
            },
        );
        assert!(d[0].message.contains("add up to 90 (80 + 10)"), "{}", d[0]);
        assert_eq!(
            d[0].fix.as_deref(),
            Some(
                "set spec.http[0].route[1].weight to 20 (or change the others) so the weights add up to 100"
            )
        );
    }

    #[test]
    fn hosts() {
        table(
            check_hosts,
            &[
                (
                    "  hosts: [reviews, \"*.example.com\"]\n  gateways: [gw]\n",
                    &[],
                ),
                ("  hosts: [reviews, re_views]\n", &[("vs-host", 6)]),
                // `*` alone is refused on the mesh (also implicitly), allowed on a gateway.
                ("  hosts: [\"*\"]\n", &[("vs-host", 6)]),
                ("  hosts: [\"*\"]\n  gateways: [gw]\n", &[]),
                (
                    "  hosts: [r]\n  http:\n  - route:\n    - destination: {host: \"*.x.com\"}\n",
                    &[("vs-host", 9)],
                ),
            ],
        );
    }
}
