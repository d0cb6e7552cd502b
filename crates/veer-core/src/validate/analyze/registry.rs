//! The service registry a destination host is looked up in, built as istioctl's
//! `util.InitServiceEntryHostMap` builds it: every ServiceEntry host and every Service, keyed
//! by the namespace it is visible in (`*` for all) and its fully qualified name; and looked
//! up as `util.GetDestinationHost` does (exported to all, then to the VirtualService's scope,
//! then wildcard ServiceEntry hosts).
//!
//! Entries come from the revision and, when one was consulted, the live cluster. The
//! revision's objects are inserted last so they win: they are what will be applied.

use std::collections::{BTreeMap, HashMap};

use super::ClusterServices;
use crate::manifest::Manifest;
use crate::manifest::istio::ServiceEntry;
use crate::validate::Index;

/// istioctl's "exported to every namespace" scope.
const ALL: &str = "*";
/// The Service annotation that plays `exportTo` for Kubernetes Services.
const EXPORT_TO_ANNOTATION: &str = "networking.istio.io/exportTo";

/// Where a registry entry comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin<'a> {
    /// A Service or ServiceEntry of the revision.
    Revision(&'a Manifest),
    /// The live cluster.
    Cluster,
}

/// One host of one Service or ServiceEntry.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub ports: Vec<u32>,
    pub origin: Origin<'a>,
}

/// The registry: entries by (scope, fully qualified host).
pub(crate) struct Registry<'a> {
    entries: Vec<Entry<'a>>,
    by_key: HashMap<(String, String), usize>,
    /// Wildcard hosts (`*.example.com`) as (scope, host, entry), in insertion order.
    wildcards: Vec<(String, String, usize)>,
    /// Whether a live cluster's Services were added.
    pub cluster_consulted: bool,
    /// Names of the revision's Kubernetes Services by namespace, for messages.
    pub revision_services: BTreeMap<String, Vec<String>>,
}

/// A host as istioctl's `ConvertHostToFQDN` qualifies it: a name without a dot (and not a
/// wildcard) is a Service of `namespace`; anything else is taken as written.
pub(crate) fn to_fqdn(host: &str, namespace: &str) -> String {
    if !host.starts_with('*') && !host.contains('.') {
        format!("{host}.{namespace}.{}", crate::hosts::CLUSTER_SUFFIX)
    } else {
        host.to_string()
    }
}

/// The scopes an `exportTo` list makes an object visible in (istioctl: empty or `*` is all
/// namespaces, `.` the object's own).
fn scopes(export_to: &[String], namespace: &str) -> Vec<String> {
    if export_to.is_empty() || export_to.iter().any(|e| e == ALL) {
        return vec![ALL.to_string()];
    }
    export_to
        .iter()
        .map(|e| {
            if e == "." {
                namespace.to_string()
            } else {
                e.clone()
            }
        })
        .collect()
}

/// The port numbers of a Kubernetes Service manifest (`spec.ports[].port`).
fn service_ports(m: &Manifest) -> Vec<u32> {
    m.value
        .pointer("/spec/ports")
        .and_then(|p| p.as_array())
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("port")?.as_u64())
                .filter_map(|n| u32::try_from(n).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn is_service(m: &Manifest) -> bool {
    m.key.group.is_empty() && m.key.kind == "Service"
}

impl<'a> Registry<'a> {
    pub fn new(index: &Index<'a>, cluster: Option<&ClusterServices>) -> Self {
        let mut registry = Registry {
            entries: Vec::new(),
            by_key: HashMap::new(),
            wildcards: Vec::new(),
            cluster_consulted: cluster.is_some(),
            revision_services: BTreeMap::new(),
        };
        for known in cluster.map(|c| c.services.as_slice()).unwrap_or_default() {
            registry.add(
                &known.namespace,
                &known.hosts,
                &known.export_to,
                known.ports.clone(),
                Origin::Cluster,
            );
        }
        for (m, se) in &index.service_entries {
            registry.add_service_entry(m, &se.spec);
        }
        for m in index.all.iter().filter(|m| is_service(m)) {
            let export_to: Vec<String> = m
                .annotation(EXPORT_TO_ANNOTATION)
                .map(|a| a.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default();
            registry.add(
                m.namespace(),
                std::slice::from_ref(&m.key.name),
                &export_to,
                service_ports(m),
                Origin::Revision(m),
            );
            registry
                .revision_services
                .entry(m.namespace().to_string())
                .or_default()
                .push(m.key.name.clone());
        }
        registry
    }

    fn add_service_entry(&mut self, m: &'a Manifest, se: &ServiceEntry) {
        let ports = se.ports.iter().map(|p| p.number).collect();
        self.add(
            m.namespace(),
            &se.hosts,
            &se.export_to,
            ports,
            Origin::Revision(m),
        );
    }

    fn add(
        &mut self,
        namespace: &str,
        hosts: &[String],
        export_to: &[String],
        ports: Vec<u32>,
        origin: Origin<'a>,
    ) {
        let i = self.entries.len();
        self.entries.push(Entry { ports, origin });
        for scope in scopes(export_to, namespace) {
            for host in hosts {
                let fqdn = to_fqdn(host, namespace);
                if fqdn.starts_with('*') {
                    self.wildcards.push((scope.clone(), fqdn.clone(), i));
                }
                self.by_key.insert((scope.clone(), fqdn), i);
            }
        }
    }

    /// The entry a destination `host` of a VirtualService in `namespace` with `export_to`
    /// resolves to, as istioctl's `GetDestinationHost` finds it.
    pub fn lookup(&self, namespace: &str, export_to: &[String], host: &str) -> Option<&Entry<'a>> {
        let fqdn = to_fqdn(host, namespace);
        let get = |scope: &str| self.by_key.get(&(scope.to_string(), fqdn.clone()));
        let mut found = get(ALL);
        if found.is_none() {
            if export_to.is_empty() {
                found = get(namespace);
            } else {
                found = export_to
                    .iter()
                    .map(|e| if e == "." { namespace } else { e.as_str() })
                    .find_map(get);
            }
        }
        if found.is_none() {
            // istioctl compares suffixes after dropping the leading `*` of both hosts.
            let bare = host.strip_prefix('*').unwrap_or(host);
            found = self
                .wildcards
                .iter()
                .filter(|(scope, _, _)| scope == ALL || scope == namespace)
                .find(|(_, pattern, _)| bare.ends_with(&pattern[1..]))
                .map(|(_, _, i)| i);
        }
        found.map(|i| &self.entries[*i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::analyze::KnownService;
    use crate::validate::analyze::tests::{doc, run_with};

    fn found(text: &str, cluster: Option<&ClusterServices>, ns: &str, host: &str) -> bool {
        let hit = std::cell::Cell::new(false);
        run_with(text, cluster, |_, registry, _| {
            hit.set(registry.lookup(ns, &[], host).is_some());
        });
        hit.get()
    }

    #[test]
    fn lookups_follow_istioctl_get_destination_host() {
        let svc = doc(
            "Service",
            "reviews",
            "shop",
            "  ports:\n  - {name: http, port: 9080}\n",
        );
        // A short name resolves in the VirtualService's namespace, a full name anywhere.
        assert!(found(&svc, None, "shop", "reviews"));
        assert!(found(&svc, None, "web", "reviews.shop.svc.cluster.local"));
        assert!(!found(&svc, None, "web", "reviews"));
        // istioctl does not qualify a name with a dot: `reviews.shop` is not the Service.
        assert!(!found(&svc, None, "shop", "reviews.shop"));
        // ServiceEntry hosts, exact and wildcard; exportTo `.` hides them elsewhere.
        let se = doc(
            "ServiceEntry",
            "ext",
            "shop",
            "  hosts: [api.example.com, \"*.wild.com\"]\n  exportTo: [\".\"]\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n",
        );
        assert!(found(&se, None, "shop", "api.example.com"));
        assert!(found(&se, None, "shop", "a.wild.com"));
        assert!(!found(&se, None, "web", "api.example.com"));
        assert!(!found(&se, None, "web", "a.wild.com"));
        // A Service hidden by its exportTo annotation.
        let hidden = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: db\n  namespace: data\n  annotations:\n    networking.istio.io/exportTo: \".\"\nspec:\n  ports:\n  - {port: 5432}\n";
        assert!(found(hidden, None, "data", "db"));
        assert!(!found(hidden, None, "web", "db.data.svc.cluster.local"));
        // The cluster's Services count when given.
        let cluster = ClusterServices {
            services: vec![KnownService::service("shop", "ratings", vec![9080], vec![])],
        };
        assert!(found(&svc, Some(&cluster), "shop", "ratings"));
        assert!(!found(&svc, None, "shop", "ratings"));
    }
}
