//! Conflicts between Gateways: servers on the same gateway workload, port and host, of which
//! the gateway can serve only one.

use std::collections::{BTreeMap, HashMap};

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::validate::Index;

/// Two servers on the same gateway workload (same selector), port and host: the gateway
/// cannot tell which one a connection is for, and one of them silently loses.
pub(super) fn check_conflicts(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    type Claim<'a> = (&'a Manifest, usize, usize);
    let mut claims: HashMap<(BTreeMap<String, String>, u32, String), Claim<'_>> = HashMap::new();
    for (m, gw) in &index.gateways {
        let selector = gw.spec.selector.clone().unwrap_or_default();
        for (i, server) in gw.spec.servers.iter().enumerate() {
            for (j, host) in server.hosts.iter().enumerate() {
                let key = (selector.clone(), server.port.number, bound_host(host));
                match claims.get(&key) {
                    // The same host twice in one server is harmless.
                    Some((first, fi, _)) if std::ptr::eq(*first, *m) && *fi == i => {}
                    Some((first, fi, fj)) => {
                        let p = format!("/spec/servers/{i}/hosts/{j}");
                        out.push(
                            m.error(
                                "gw-conflict",
                                &p,
                                format!(
                                    "{}: host `{host}` on port {} is already bound by {} spec.servers[{fi}] ({}:{}), on the same gateway workload",
                                    display_path(&p),
                                    server.port.number,
                                    first.key,
                                    first.file,
                                    first.locate(&format!("/spec/servers/{fi}/hosts/{fj}")).line
                                ),
                            )
                            .fix("serve each host and port from one server only: merge the two servers, or change the host or port of one"),
                        );
                    }
                    None => {
                        claims.insert(key, (m, i, j));
                    }
                }
            }
        }
    }
}

/// The host a server binds on the listener: the namespace part only filters which
/// VirtualServices attach, so it is dropped; names compare case-insensitively.
/// Gateway hosts are matched as written (Istio does not expand short names there).
fn bound_host(host: &str) -> String {
    let name = host.split_once('/').map_or(host, |(_, h)| h);
    name.to_ascii_lowercase()
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
                two(ig, server(80, "a.com"), ig, server(80, "A.com")),
                vec![("gw-conflict", 19)],
            ),
            (
                two(ig, server(80, "a.com"), ig, server(80, "shop/a.com")),
                vec![("gw-conflict", 19)],
            ),
            // The same host twice in one server is not a conflict.
            (gateway("a", ig, &server(80, "a.com, a.com")), vec![]),
        ];
        for (yaml, want) in cases {
            assert_eq!(run(&yaml, check_conflicts), want, "{yaml}");
        }
    }
}
