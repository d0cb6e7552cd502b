//! Which objects' cross-object findings a change of VirtualServices, DestinationRules and
//! Services can move, and which objects those findings read: the part of a revision that
//! incremental validation ([`super::incremental`]) runs the cross-object checks over again.
//!
//! What the checks read across objects, by kind (module by module):
//! - a VirtualService: the DestinationRules of its destination hosts (`vs-unknown-subset`),
//!   the Services and ServiceEntries of those hosts and every Service of their namespaces
//!   (the analyzers' registry: a "not found" message lists the namespace's Services), the
//!   VirtualServices claiming one of its hosts (`vs-host-conflict`), every Gateway (Istio's and
//!   the Gateway API's), every RolloutPolicy and veer configuration;
//! - a DestinationRule, a Service: nothing across objects;
//! - every other kind (Gateway, ServiceEntry, Sidecar, RolloutPolicy, …): not followed here.
//!
//! So a changed DestinationRule moves the findings of the VirtualServices routing to its host;
//! a changed Service those of the VirtualServices routing into its namespace; a changed
//! VirtualService its own and those of the VirtualServices sharing a host with it. Those
//! objects (the "touched"), and everything they read, are the neighbourhood; the objects
//! every VirtualService may read (Gateways, ServiceEntries, policies, …) are always in it.
//! Wildcard hosts (which overlap rather than equal), other kinds changed, Services whose
//! names are not plain labels: no neighbourhood (the caller validates whole).
//!
//! Why it suffices: an object outside the touched reads no changed object, so its findings
//! are the same before and after, wherever they are computed; an object among the touched
//! reads only objects of the neighbourhood, so its findings over the neighbourhood are its
//! findings over the revision. Hence whole(new) = whole(old) − part(old) + part(new), the
//! parts being the checks over the neighbourhood's objects before and after.

use std::collections::HashSet;
use std::sync::Arc;

use super::incremental::plain;
use crate::hosts;
use crate::manifest::{Manifest, TypedObject};

/// What an object is to the neighbourhood (kept by the validation for every object, so that
/// a change computes only the changed objects' again).
#[derive(Debug, Clone)]
pub(super) enum Role {
    /// Read by no cross-object check (nor checked by one).
    Plain,
    /// Read by every VirtualService, or not followed: always in the neighbourhood.
    Always,
    VirtualService {
        /// Its hosts, fully qualified.
        hosts: Vec<String>,
        /// Its destination hosts, fully qualified.
        destinations: Vec<String>,
        /// The namespaces its destination hosts may name a Service of.
        namespaces: Vec<String>,
        /// One of its hosts is a wildcard.
        wildcard: bool,
    },
    /// A DestinationRule for this exact host, fully qualified.
    DestinationRule(String),
    /// A Service of this namespace.
    Service(String),
}

/// Every `host` string under `value` (the destinations, mirrors, … of a VirtualService's
/// spec; more than the checks read is only more in the neighbourhood).
fn host_fields<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("host", serde_json::Value::String(host)) => out.push(host),
                    _ => host_fields(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                host_fields(v, out);
            }
        }
        serde_json::Value::Null
        | serde_json::Value::Bool(_)
        | serde_json::Value::Number(_)
        | serde_json::Value::String(_) => {}
    }
}

pub(super) fn role(m: &Manifest) -> Role {
    let namespace = m.namespace();
    match &m.typed {
        TypedObject::VirtualService(vs) => {
            let hosts: Vec<String> = (vs.spec.hosts.iter())
                .map(|h| hosts::fqdn(h, namespace))
                .collect();
            let mut written = Vec::new();
            if let Some(spec) = m.value.get("spec") {
                host_fields(spec, &mut written);
            }
            let mut namespaces = Vec::new();
            for host in &written {
                // `name.namespace[.svc.cluster.local]`, or a short name of the own namespace.
                match host.split('.').nth(1) {
                    Some(ns) => {
                        namespaces.push(ns.to_string());
                        namespaces.push(ns.to_ascii_lowercase());
                    }
                    None => namespaces.push(namespace.to_string()),
                }
            }
            Role::VirtualService {
                wildcard: hosts.iter().any(|h| h.starts_with('*')),
                hosts,
                destinations: written.iter().map(|h| hosts::fqdn(h, namespace)).collect(),
                namespaces,
            }
        }
        TypedObject::DestinationRule(dr) => {
            let host = hosts::fqdn(&dr.spec.host, namespace);
            if host.starts_with('*') {
                Role::Always
            } else {
                Role::DestinationRule(host)
            }
        }
        TypedObject::Generic if m.key.group.is_empty() && m.key.kind == "Service" => {
            let name = &m.key.name;
            if name.contains('.') || name.starts_with('*') {
                Role::Always
            } else {
                Role::Service(namespace.to_string())
            }
        }
        TypedObject::Generic
        | TypedObject::Gateway(_)
        | TypedObject::ServiceEntry(_)
        | TypedObject::Sidecar(_)
        | TypedObject::RolloutPolicy(_) => {
            if plain(m) {
                Role::Plain
            } else {
                Role::Always
            }
        }
    }
}

fn meets(values: &[String], set: &HashSet<&str>) -> bool {
    values.iter().any(|v| set.contains(v.as_str()))
}

/// The roles of `manifests`, in order.
pub(super) fn roles(manifests: &[Arc<Manifest>]) -> Vec<Role> {
    manifests.iter().map(|m| role(m)).collect()
}

/// The places of the neighbourhood of the objects at `changed` (sorted), sorted: `roles` are
/// the new revision's (the same identities at the same places as the old one), `before` the
/// old roles of the changed objects; `None`: none can be drawn (see the module header), or it
/// would be most of the revision.
pub(super) fn of(roles: &[Role], changed: &[usize], before: &[Role]) -> Option<Vec<usize>> {
    let changed_roles = || before.iter().chain(changed.iter().map(|&i| &roles[i]));
    // What the changed objects are read by.
    let (mut vs_hosts, mut dr_hosts, mut namespaces) =
        (HashSet::new(), HashSet::new(), HashSet::new());
    let mut vs_changed = false;
    for r in changed_roles() {
        match r {
            Role::Plain => {}
            Role::Always => return None,
            Role::VirtualService {
                hosts, wildcard, ..
            } => {
                if *wildcard {
                    return None;
                }
                vs_changed = true;
                vs_hosts.extend(hosts.iter().map(String::as_str));
            }
            Role::DestinationRule(host) => {
                dr_hosts.insert(host.as_str());
            }
            Role::Service(ns) => {
                namespaces.insert(ns.as_str());
            }
        }
    }
    let mut inside = vec![false; roles.len()];
    // The touched VirtualServices (both versions of a changed one).
    let mut touched: Vec<&Role> = Vec::new();
    let mut next_changed = changed.iter().peekable();
    for (i, r) in roles.iter().enumerate() {
        let is_changed = next_changed.next_if_eq(&&i).is_some();
        match r {
            Role::Plain => {}
            Role::Always => inside[i] = true,
            Role::DestinationRule(_) | Role::Service(_) => inside[i] |= is_changed,
            Role::VirtualService {
                hosts,
                destinations,
                namespaces: read,
                wildcard,
            } => {
                // A wildcard VirtualService overlaps claims rather than sharing them.
                if *wildcard && vs_changed {
                    return None;
                }
                if is_changed
                    || meets(hosts, &vs_hosts)
                    || meets(destinations, &dr_hosts)
                    || meets(read, &namespaces)
                {
                    if *wildcard {
                        return None;
                    }
                    inside[i] = true;
                    touched.push(r);
                }
            }
        }
    }
    touched.extend(before.iter());
    // What the touched read.
    let (mut claimed, mut routed, mut into) = (HashSet::new(), HashSet::new(), HashSet::new());
    for r in touched {
        if let Role::VirtualService {
            hosts,
            destinations,
            namespaces,
            ..
        } = r
        {
            claimed.extend(hosts.iter().map(String::as_str));
            routed.extend(destinations.iter().map(String::as_str));
            into.extend(namespaces.iter().map(String::as_str));
        }
    }
    for (i, r) in roles.iter().enumerate() {
        inside[i] |= match r {
            Role::Plain | Role::Always => false,
            Role::VirtualService { hosts, .. } => meets(hosts, &claimed),
            Role::DestinationRule(host) => routed.contains(host.as_str()),
            Role::Service(ns) => into.contains(ns.as_str()),
        };
    }
    let places: Vec<usize> = (0..roles.len()).filter(|&i| inside[i]).collect();
    // Two runs over the neighbourhood against one over the revision.
    (places.len() * 2 < roles.len()).then_some(places)
}
