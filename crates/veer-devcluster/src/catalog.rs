//! The resource catalog: which kinds the dev cluster serves, under which group, versions,
//! plural and short names. One table line per built-in kind; applying a
//! `CustomResourceDefinition` adds a line at run time (and deleting it removes the line).
//! Also how each kind's lists merge under server-side apply: Kubernetes' table, what current
//! Istio CRDs declare for the Istio kinds served without a CRD, and the markers of each
//! applied CRD (which replace the built-in rules for its kind).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use veer_fields::fields::{ListRule, ListSemantics, RuleScope};

mod crd;
pub use crd::{CrdError, resource_type_of_crd};

/// One kind the server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Served versions, preferred first. Objects are stored once and served at any of them.
    pub versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Has a `/status` subresource: writes to the object ignore `.status`, and the other way.
    pub status_subresource: bool,
    /// The server keeps `metadata.generation` (bumped on spec changes), as real servers do for
    /// workloads and custom resources but not for plain core objects such as ConfigMaps.
    pub tracks_generation: bool,
}

impl ResourceType {
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    pub fn preferred_version(&self) -> &str {
        self.versions.first().map(String::as_str).unwrap_or("v1")
    }

    /// The `APIResource` entries of discovery for this kind (plus its `/status`).
    pub fn discovery_entries(&self) -> Vec<Value> {
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let mut entries = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
        })];
        if self.status_subresource {
            entries.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.group == "apps" && self.kind == "Deployment" {
            entries.push(json!({
                "name": format!("{}/scale", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        entries
    }
}

/// (group, versions, kind, plural, singular, namespaced, short names, status, generation)
type Line = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
    bool,
);

const ISTIO_VERSIONS: &[&str] = &["v1", "v1beta1", "v1alpha3"];

/// The built-in kinds. Namespaced kinds need their Namespace to exist, as on a real server.
const BUILTIN: &[Line] = &[
    (
        "",
        &["v1"],
        "Namespace",
        "namespaces",
        "namespace",
        false,
        &["ns"],
        true,
        false,
    ),
    (
        "",
        &["v1"],
        "Service",
        "services",
        "service",
        true,
        &["svc"],
        true,
        false,
    ),
    (
        "",
        &["v1"],
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        &["cm"],
        false,
        false,
    ),
    (
        "",
        &["v1"],
        "Secret",
        "secrets",
        "secret",
        true,
        &[],
        false,
        false,
    ),
    (
        "",
        &["v1"],
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        false,
        false,
    ),
    (
        "",
        &["v1"],
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        &["sa"],
        false,
        false,
    ),
    (
        "",
        &["v1"],
        "Pod",
        "pods",
        "pod",
        true,
        &["po"],
        true,
        false,
    ),
    (
        "apps",
        &["v1"],
        "Deployment",
        "deployments",
        "deployment",
        true,
        &["deploy"],
        true,
        true,
    ),
    (
        "coordination.k8s.io",
        &["v1"],
        "Lease",
        "leases",
        "lease",
        true,
        &[],
        false,
        false,
    ),
    (
        "apiextensions.k8s.io",
        &["v1"],
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        false,
        &["crd", "crds"],
        true,
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        &["v1"],
        "Role",
        "roles",
        "role",
        true,
        &[],
        false,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        &["v1"],
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        true,
        &[],
        false,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        &["v1"],
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        false,
        &[],
        false,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        &["v1"],
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
        &[],
        false,
        false,
    ),
    (
        "networking.istio.io",
        ISTIO_VERSIONS,
        "VirtualService",
        "virtualservices",
        "virtualservice",
        true,
        &["vs"],
        true,
        true,
    ),
    (
        "networking.istio.io",
        ISTIO_VERSIONS,
        "DestinationRule",
        "destinationrules",
        "destinationrule",
        true,
        &["dr"],
        true,
        true,
    ),
    (
        "networking.istio.io",
        ISTIO_VERSIONS,
        "Gateway",
        "gateways",
        "gateway",
        true,
        &["gw"],
        true,
        true,
    ),
    (
        "networking.istio.io",
        ISTIO_VERSIONS,
        "ServiceEntry",
        "serviceentries",
        "serviceentry",
        true,
        &["se"],
        true,
        true,
    ),
    (
        "networking.istio.io",
        ISTIO_VERSIONS,
        "Sidecar",
        "sidecars",
        "sidecar",
        true,
        &[],
        true,
        true,
    ),
];

/// The kinds served right now.
#[derive(Debug, Clone)]
pub struct Catalog {
    types: Vec<ResourceType>,
    /// List rules from each applied CRD, by (group, kind).
    crd_rules: BTreeMap<(String, String), Vec<ListRule>>,
    /// What server-side apply uses, rebuilt when a CRD comes or goes.
    semantics: ListSemantics,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Catalog {
    pub fn builtin() -> Self {
        let types = BUILTIN
            .iter()
            .map(
                |(
                    group,
                    versions,
                    kind,
                    plural,
                    singular,
                    namespaced,
                    short,
                    status,
                    generation,
                )| {
                    ResourceType {
                        group: group.to_string(),
                        versions: versions.iter().map(|v| v.to_string()).collect(),
                        kind: kind.to_string(),
                        plural: plural.to_string(),
                        singular: singular.to_string(),
                        namespaced: *namespaced,
                        short_names: short.iter().map(|s| s.to_string()).collect(),
                        status_subresource: *status,
                        tracks_generation: *generation,
                    }
                },
            )
            .collect();
        let mut catalog = Self {
            types,
            crd_rules: BTreeMap::new(),
            semantics: ListSemantics::kubernetes(),
        };
        catalog.rebuild_semantics();
        catalog
    }

    /// How lists merge, per kind, as this server's schemas say.
    pub fn semantics(&self) -> &ListSemantics {
        &self.semantics
    }

    /// Applied CRDs' rules first, then the Istio rules for kinds without a CRD, then
    /// Kubernetes' table: what a real server with those CRDs installed answers.
    fn rebuild_semantics(&mut self) {
        let builtin_istio = veer_fields::schema::istio_list_rules()
            .into_iter()
            .filter(|rule| match &rule.scope {
                RuleScope::Kind(group, kind) => !self
                    .crd_rules
                    .contains_key(&(group.to_string(), kind.to_string())),
                RuleScope::AllKinds | RuleScope::Workloads => true,
            });
        let from_crds = self.crd_rules.values().flatten().cloned();
        self.semantics = ListSemantics::from_server(from_crds.chain(builtin_istio));
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// The kind served at `group/version` under `plural`.
    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural && t.serves(version))
    }

    pub fn by_kind(&self, group: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
    }

    /// Groups in discovery order (core excluded), each with its versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            let entry = match groups.iter_mut().position(|(g, _)| *g == t.group) {
                Some(i) => &mut groups[i].1,
                None => {
                    groups.push((t.group.clone(), Vec::new()));
                    let last = groups.len() - 1;
                    &mut groups[last].1
                }
            };
            for v in &t.versions {
                if !entry.contains(v) {
                    entry.push(v.clone());
                }
            }
        }
        groups
    }

    /// Kinds served at `group/version`.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceType> + 'a {
        self.types
            .iter()
            .filter(move |t| t.group == group && t.serves(version))
    }

    /// Register (or re-register) the kind a CustomResourceDefinition describes, or say why the
    /// definition is unusable.
    pub fn register_crd(&mut self, crd: &Value) -> Result<ResourceType, CrdError> {
        let t = resource_type_of_crd(crd)?;
        let rules = veer_fields::schema::crd_list_rules(crd)?;
        self.types.retain(|old| {
            !(old.group == t.group && (old.plural == t.plural || old.kind == t.kind))
        });
        self.types.push(t.clone());
        self.crd_rules
            .insert((t.group.clone(), t.kind.clone()), rules);
        self.rebuild_semantics();
        Ok(t)
    }

    /// Forget the kind of a deleted CustomResourceDefinition.
    pub fn unregister_crd(&mut self, crd: &Value) -> Option<ResourceType> {
        let t = resource_type_of_crd(crd).ok()?;
        let pos = self
            .types
            .iter()
            .position(|old| old.group == t.group && old.plural == t.plural)?;
        self.crd_rules.remove(&(t.group.clone(), t.kind.clone()));
        self.rebuild_semantics();
        Some(self.types.remove(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_kinds_are_served_at_three_versions() {
        let c = Catalog::builtin();
        for v in ["v1", "v1beta1", "v1alpha3"] {
            let t = c
                .by_plural("networking.istio.io", v, "virtualservices")
                .unwrap();
            assert_eq!(t.kind, "VirtualService");
        }
        assert!(
            c.by_plural("networking.istio.io", "v2", "virtualservices")
                .is_none()
        );
    }

    #[test]
    fn a_crd_registers_and_unregisters_its_kind() {
        let mut c = Catalog::builtin();
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}}}
                ]
            }
        });
        let t = c.register_crd(&crd).unwrap();
        assert_eq!(t.versions, ["v1", "v1beta1"]);
        assert!(t.status_subresource);
        assert_eq!(t.singular, "widget");
        assert!(c.by_plural("example.com", "v1beta1", "widgets").is_some());
        assert!(c.groups().iter().any(|(g, _)| g == "example.com"));
        c.unregister_crd(&crd).unwrap();
        assert!(c.by_plural("example.com", "v1", "widgets").is_none());
    }

    #[test]
    fn list_rules_follow_the_istio_crds_and_applied_crds() {
        use veer_fields::fields::{KeyField, ListType};
        let by_name = ListType::Map(vec![KeyField::new("name")].into());
        let mut c = Catalog::builtin();
        let se = |c: &Catalog| {
            c.semantics()
                .list_type("networking.istio.io", "ServiceEntry", "spec.ports")
                .clone()
        };
        assert_eq!(se(&c), by_name);
        assert_eq!(
            c.semantics().list_type("", "Service", "spec.ports"),
            &ListType::Map(
                vec![
                    KeyField::new("port"),
                    KeyField::new("protocol").with_default("TCP")
                ]
                .into()
            )
        );
        // An applied CRD's markers replace the built-in rules of its kind (here: none).
        let crd = json!({
            "metadata": {"name": "serviceentries.networking.istio.io"},
            "spec": {
                "group": "networking.istio.io",
                "names": {"kind": "ServiceEntry", "plural": "serviceentries"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {
                            "hosts": {"type": "array", "items": {"type": "string"},
                                      "x-kubernetes-list-type": "set"},
                            "ports": {"type": "array", "items": {"type": "object"}}}}}}}}]
            }
        });
        c.register_crd(&crd).unwrap();
        assert_eq!(se(&c), ListType::Atomic);
        assert_eq!(
            c.semantics()
                .list_type("networking.istio.io", "ServiceEntry", "spec.hosts"),
            &ListType::Set
        );
        c.unregister_crd(&crd).unwrap();
        assert_eq!(se(&c), by_name);
    }

    #[test]
    fn a_crd_without_scope_is_refused() {
        let mut c = Catalog::builtin();
        let crd = json!({"spec": {"group": "g", "names": {"kind": "K", "plural": "ks"},
                                  "versions": [{"name": "v1"}]}});
        assert_eq!(c.register_crd(&crd), Err(CrdError::Scope));
    }
}
