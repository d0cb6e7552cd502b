//! VirtualServices that claim one host on the mesh gateway, as istioctl's
//! ConflictingMeshGatewayHostsAnalyzer (IST0109) finds them. Only the mesh counts: on a named
//! gateway Istio merges the VirtualServices of a host. `exportTo` scopes each claim: two
//! VirtualServices exported to disjoint namespaces never meet; a claim exported to some
//! namespaces also meets the claims exported everywhere whose host overlaps it (`*.x.com` and
//! `a.x.com`).

use std::collections::HashMap;

use super::{Index, applies_to_mesh};
use crate::diagnostic::Diagnostic;
use crate::hosts;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;

/// `exportTo` meaning every namespace (istioctl's `ExportToAllNamespaces`).
const ALL_NAMESPACES: &str = "*";

/// `exportTo` meaning the object's own namespace.
const OWN_NAMESPACE: &str = ".";

/// One host of one mesh VirtualService, in one namespace scope.
struct Claim<'a> {
    /// Index of the VirtualService in `Index::virtual_services`.
    vs: usize,
    /// Index of the host in its `spec.hosts`.
    host: usize,
    /// `*`, or the namespace the claim is exported to.
    scope: &'a str,
    /// The host, fully qualified (short names in the VirtualService's namespace).
    fqdn: String,
}

impl Claim<'_> {
    fn wildcard(&self) -> bool {
        self.fqdn.starts_with('*')
    }
}

/// The namespaces a VirtualService's hosts are visible in: `*` when `exportTo` is empty or
/// names `*`, else its entries with `.` read as the own namespace (istioctl's
/// `IsExportToAllNamespaces` and `initMeshGatewayHosts`).
fn scopes<'a>(export_to: &'a [String], namespace: &'a str) -> Vec<&'a str> {
    if export_to.is_empty() || export_to.iter().any(|e| e == ALL_NAMESPACES) {
        return vec![ALL_NAMESPACES];
    }
    let mut scopes: Vec<&str> = export_to
        .iter()
        .map(|e| {
            if e == OWN_NAMESPACE {
                namespace
            } else {
                e.as_str()
            }
        })
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

/// Two VirtualServices on the mesh gateway with the same host in a common scope (IST0109).
/// Each VirtualService involved is reported once, at its first conflicting host, naming the
/// others.
pub fn check_host_conflicts(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let mut claims: Vec<Claim<'_>> = Vec::new();
    for (vi, (m, vs)) in index.virtual_services.iter().enumerate() {
        if !applies_to_mesh(&vs.spec) {
            continue;
        }
        for scope in scopes(&vs.spec.export_to, m.namespace()) {
            for (hi, host) in vs.spec.hosts.iter().enumerate() {
                claims.push(Claim {
                    vs: vi,
                    host: hi,
                    scope,
                    fqdn: hosts::fqdn(host, m.namespace()),
                });
            }
        }
    }
    let lookup = Lookup::new(&claims);
    let mut reported = vec![false; index.virtual_services.len()];
    for claim in &claims {
        if reported[claim.vs] {
            continue;
        }
        let mut others: Vec<&Claim<'_>> = lookup
            .meeting(claim)
            .into_iter()
            .filter(|o| o.vs != claim.vs)
            .collect();
        if others.is_empty() {
            continue;
        }
        others.sort_by_key(|o| (o.vs, o.host));
        others.dedup_by_key(|o| o.vs);
        reported[claim.vs] = true;
        out.push(diagnostic(index, claim, &others));
    }
}

/// Claims by exact key, and the wildcard and exported-everywhere claims the overlap rule scans.
struct Lookup<'c, 'a> {
    claims: &'c [Claim<'a>],
    by_key: HashMap<(&'a str, &'c str), Vec<usize>>,
    /// Claims exported everywhere, by host.
    everywhere: HashMap<&'c str, Vec<usize>>,
    /// Claims exported to some namespaces, by host.
    scoped: HashMap<&'c str, Vec<usize>>,
    /// Wildcard claims, exported everywhere and to some namespaces (few, scanned).
    everywhere_wildcards: Vec<usize>,
    scoped_wildcards: Vec<usize>,
}

impl<'c, 'a> Lookup<'c, 'a> {
    fn new(claims: &'c [Claim<'a>]) -> Self {
        let mut lookup = Lookup {
            claims,
            by_key: HashMap::new(),
            everywhere: HashMap::new(),
            scoped: HashMap::new(),
            everywhere_wildcards: Vec::new(),
            scoped_wildcards: Vec::new(),
        };
        for (i, c) in claims.iter().enumerate() {
            lookup
                .by_key
                .entry((c.scope, c.fqdn.as_str()))
                .or_default()
                .push(i);
            let everywhere = c.scope == ALL_NAMESPACES;
            let (by_host, wildcards) = if everywhere {
                (&mut lookup.everywhere, &mut lookup.everywhere_wildcards)
            } else {
                (&mut lookup.scoped, &mut lookup.scoped_wildcards)
            };
            by_host.entry(c.fqdn.as_str()).or_default().push(i);
            if c.wildcard() {
                wildcards.push(i);
            }
        }
        lookup
    }

    /// The claims `claim` meets: the same scope and host; and, across a scoped and an
    /// exported-everywhere claim, hosts that overlap (istioctl's
    /// `getExportToAllNamespacesVSListForScopedHost`).
    fn meeting(&self, claim: &'c Claim<'a>) -> Vec<&'c Claim<'a>> {
        let mut found: Vec<usize> = self
            .by_key
            .get(&(claim.scope, claim.fqdn.as_str()))
            .cloned()
            .unwrap_or_default();
        let (by_host, wildcards) = if claim.scope == ALL_NAMESPACES {
            (&self.scoped, &self.scoped_wildcards)
        } else {
            (&self.everywhere, &self.everywhere_wildcards)
        };
        if claim.wildcard() {
            // A wildcard claim can cover any host of the other side: scan them all.
            found.extend(
                by_host
                    .iter()
                    .filter(|(host, _)| hosts::overlaps(&claim.fqdn, host))
                    .flat_map(|(_, ids)| ids.iter().copied()),
            );
        } else {
            found.extend(by_host.get(claim.fqdn.as_str()).into_iter().flatten());
            found.extend(
                wildcards
                    .iter()
                    .copied()
                    .filter(|&i| hosts::overlaps(&self.claims[i].fqdn, &claim.fqdn)),
            );
        }
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|i| &self.claims[i]).collect()
    }
}

fn diagnostic(index: &Index<'_>, claim: &Claim<'_>, others: &[&Claim<'_>]) -> Diagnostic {
    let (m, vs) = index.virtual_services[claim.vs];
    let pointer = format!("/spec/hosts/{}", claim.host);
    let named: Vec<String> = others
        .iter()
        .map(|o| {
            let (om, ovs): (&Manifest, _) = index.virtual_services[o.vs];
            let at = om.locate(&format!("/spec/hosts/{}", o.host));
            let host = &ovs.spec.hosts[o.host];
            format!("{} (`{host}`, {}:{})", om.key, om.file, at.line)
        })
        .collect();
    let scope = if claim.scope == ALL_NAMESPACES {
        String::new()
    } else {
        format!(" in namespace {}", claim.scope)
    };
    m.error(
        "vs-host-conflict",
        &pointer,
        format!(
            "{}: host {} on the mesh gateway{scope} is also claimed by {}; which one applies is undefined",
            display_path(&pointer),
            claim.fqdn,
            named.join(", "),
        ),
    )
    .fix(format!(
        "merge the routes into one VirtualService (or split them with `delegate`), or narrow `exportTo` so that `{}` and the others are not visible in the same namespaces",
        vs.spec.hosts[claim.host]
    ))
    .istio("IST0109")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::virtual_service::fixtures::run_index;

    /// A VirtualService `name` in `namespace` with the given spec body.
    fn vs(name: &str, namespace: &str, body: &str) -> String {
        format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{body}  http:\n  - route:\n    - destination: {{host: r}}\n"
        )
    }

    fn conflicts(docs: &[String]) -> Vec<(String, u32)> {
        run_index(&docs.concat(), check_host_conflicts)
            .iter()
            .map(|d| (d.object.clone().unwrap_or_default(), d.line))
            .collect()
    }

    /// Cases of istioctl's testdata virtualservice_conflictingmeshgatewayhosts(.yaml,
    /// _with_exportto.yaml) for ConflictingMeshGatewayHostsAnalyzer (IST0109).
    #[test]
    fn mesh_conflicts_as_istioctl() {
        // Both on the implicit mesh gateway, one by short name, one by full name: each is
        // reported, at its host.
        let d = conflicts(&[
            vs("productpage", "foo", "  hosts: [productpage]\n"),
            vs(
                "bogus",
                "foo",
                "  hosts: [productpage.foo.svc.cluster.local]\n",
            ),
        ]);
        assert_eq!(
            d,
            vec![
                ("VirtualService foo/productpage".to_string(), 8),
                ("VirtualService foo/bogus".to_string(), 19),
            ]
        );
        // `mesh` named among other gateways counts.
        let d = conflicts(&[
            vs("ratings", "foo", "  hosts: [ratings]\n  gateways: [mesh]\n"),
            vs(
                "ratings",
                "bar",
                "  hosts: [ratings.foo.svc.cluster.local]\n  gateways: [gw, mesh]\n",
            ),
        ]);
        assert_eq!(d.len(), 2);
        // A named gateway only: Istio merges, no conflict.
        assert!(
            conflicts(&[
                vs("a", "foo", "  hosts: [reviews]\n  gateways: [gw]\n"),
                vs("b", "foo", "  hosts: [reviews]\n  gateways: [gw]\n"),
            ])
            .is_empty()
        );
        // exportTo `.` in two namespaces: never visible together.
        assert!(
            conflicts(&[
                vs(
                    "ratings",
                    "team1",
                    "  hosts: [ratings]\n  exportTo: [\".\"]\n"
                ),
                vs(
                    "ratings",
                    "team2",
                    "  hosts: [ratings.team1.svc.cluster.local]\n  exportTo: [\".\"]\n",
                ),
            ])
            .is_empty()
        );
        // exportTo `.` against one exported everywhere (`*`, or no exportTo): a conflict.
        let d = conflicts(&[
            vs("a", "team2", "  hosts: [google.com]\n  exportTo: [\".\"]\n"),
            vs("b", "bar", "  hosts: [google.com]\n"),
        ]);
        assert_eq!(d.len(), 2);
        let d = conflicts(&[
            vs(
                "ratings",
                "team3",
                "  hosts: [ratings]\n  exportTo: [\"*\"]\n",
            ),
            vs(
                "ratings",
                "team4",
                "  hosts: [ratings.team3.svc.cluster.local]\n",
            ),
        ]);
        assert_eq!(d.len(), 2);
        // The same namespace named in both exportTo lists: a conflict.
        let d = conflicts(&[
            vs(
                "a",
                "foo",
                "  hosts: [a.example.com]\n  exportTo: [\".\", bar]\n",
            ),
            vs(
                "b",
                "bar",
                "  hosts: [a.example.com]\n  exportTo: [\".\"]\n",
            ),
        ]);
        assert_eq!(d.len(), 2);
    }

    /// Overlapping wildcards: istioctl compares a scoped claim with the claims exported
    /// everywhere by `host.Name.Matches`; claims exported everywhere meet only on the same host.
    #[test]
    fn wildcards_overlap_across_scopes_only() {
        let d = conflicts(&[
            vs(
                "a",
                "foo",
                "  hosts: [a.example.com]\n  exportTo: [\".\"]\n",
            ),
            vs("wild", "bar", "  hosts: [\"*.example.com\"]\n"),
        ]);
        assert_eq!(d.len(), 2);
        let d = conflicts(&[
            vs(
                "wild",
                "foo",
                "  hosts: [\"*.example.com\"]\n  exportTo: [\".\"]\n",
            ),
            vs("a", "bar", "  hosts: [a.example.com]\n"),
        ]);
        assert_eq!(d.len(), 2);
        assert!(
            conflicts(&[
                vs("a", "foo", "  hosts: [a.example.com]\n"),
                vs("wild", "bar", "  hosts: [\"*.example.com\"]\n"),
            ])
            .is_empty()
        );
    }

    #[test]
    fn the_message_names_the_other_object_and_istioctl_code() {
        let d = run_index(
            &[
                vs("reviews", "default", "  hosts: [reviews]\n"),
                vs(
                    "reviews-2",
                    "default",
                    "  hosts: [reviews.default.svc.cluster.local]\n",
                ),
            ]
            .concat(),
            check_host_conflicts,
        );
        assert_eq!(d[1].istio, Some("IST0109"));
        assert!(d[1].is_error());
        assert!(
            d[1].message.contains(
                "host reviews.default.svc.cluster.local on the mesh gateway is also claimed by VirtualService default/reviews (`reviews`, t.yaml:8)"
            ),
            "{}",
            d[1]
        );
    }
}
