//! Conflicts between Gateways, as istioctl's ConflictingGatewayAnalyzer (IST0145) finds them:
//! servers of different Gateways on the same gateway workload (selector) and port whose hosts
//! overlap, of which the gateway can serve only one.

use std::collections::HashMap;

use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::{Labels, display_path};
use crate::validate::Index;

/// One host of one server: the Gateway, the server and host indexes, and the host.
type Bound<'a> = (&'a Manifest, usize, usize, &'a str);

/// A host of a server overlaps a host bound on the same selector and port by another Gateway.
/// Hosts are compared as written, with wildcards (istioctl's `host.Name.Matches`); servers of
/// one Gateway never conflict with each other, as in istioctl. Each later host is reported,
/// naming the first host it overlaps.
pub(super) fn check_conflicts(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let mut bound: HashMap<(Labels, u32), Vec<Bound<'_>>> = HashMap::new();
    for (m, gw) in &index.gateways {
        let selector = gw.spec.selector.clone().unwrap_or_default();
        for (i, server) in gw.spec.servers.iter().enumerate() {
            let claims = bound
                .entry((selector.clone(), server.port.number))
                .or_default();
            let mut mine = Vec::new();
            for (j, host) in server.hosts.iter().enumerate() {
                let first = claims.iter().find(|(other, _, _, other_host)| {
                    !other.key.same_object(&m.key) && hosts::overlaps(other_host, host)
                });
                if let Some((first, fi, fj, first_host)) = first {
                    let p = format!("/spec/servers/{i}/hosts/{j}");
                    out.push(
                        m.error(
                            "gw-conflict",
                            &p,
                            format!(
                                "{}: host `{host}` on port {} overlaps `{first_host}`, already bound by {} spec.servers[{fi}] ({}:{}) on the same gateway workload",
                                display_path(&p),
                                server.port.number,
                                first.key,
                                first.file,
                                first.locate(&format!("/spec/servers/{fi}/hosts/{fj}")).line
                            ),
                        )
                        .fix("serve each host and port from one Gateway only: merge the two servers, or change the host or port of one")
                        .istio("IST0145"),
                    );
                }
                mine.push((*m, i, j, host.as_str()));
            }
            claims.extend(mine);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{gateway, run};
    use super::*;

    #[test]
    fn conflicts_table() {
        let server = |port: u32, host: &str| {
            format!(
                "  - port: {{number: {port}, name: p{port}, protocol: HTTP}}\n    hosts: [{host}]\n"
            )
        };
        let two = |sel_a: &str, a: String, sel_b: &str, b: String| {
            format!(
                "{}---\n{}",
                gateway("a", sel_a, &a),
                gateway("b", sel_b, &b)
            )
        };
        let ig = "{istio: ingressgateway}";
        let eg = "{istio: egressgateway}";
        let cases = [
            (
                two(ig, server(80, "a.com"), ig, server(80, "b.com")),
                vec![],
            ),
            (
                two(ig, server(80, "a.com"), ig, server(8080, "a.com")),
                vec![],
            ),
            (
                two(ig, server(80, "a.com"), eg, server(80, "a.com")),
                vec![],
            ),
            // Second document starts at line 11; its first host is on line 19.
            (
                two(ig, server(80, "a.com"), ig, server(80, "a.com")),
                vec![("gw-conflict", 19)],
            ),
            // Wildcards overlap (host.Name.Matches).
            (
                two(ig, server(80, "'*.a.com'"), ig, server(80, "b.a.com")),
                vec![("gw-conflict", 19)],
            ),
            (
                two(ig, server(80, "'*'"), ig, server(80, "b.com")),
                vec![("gw-conflict", 19)],
            ),
            // istioctl compares hosts as written: `shop/a.com` is not `a.com` to it.
            (
                two(ig, server(80, "a.com"), ig, server(80, "shop/a.com")),
                vec![],
            ),
            // Servers of one Gateway do not conflict with each other (istioctl).
            (gateway("a", ig, &server(80, "a.com, a.com")), vec![]),
            (
                gateway(
                    "a",
                    ig,
                    &format!("{}{}", server(80, "a.com"), server(80, "a.com")),
                ),
                vec![],
            ),
        ];
        for (yaml, want) in cases {
            assert_eq!(run(&yaml, check_conflicts), want, "{yaml}");
        }
    }
}
