//! How lists merge and how their items are named ([`ListSemantics`]): atomic, a set, or a map
//! keyed by fields.
//!
//! Owns: the rule types, Kubernetes' built-in table ([`KUBERNETES_LIST_RULES`]) and the lookup.
//! Rules are `Cow<'static, _>` so the built-in table stays a constant while rules derived at
//! run time from the schemas a server publishes (`crate::schema`) own their strings. Rules a
//! server publishes come first; the built-in table is the fallback.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// A name in a rule: borrowed in the built-in table, owned when derived from a schema.
pub type Text = Cow<'static, str>;

/// How a list merges and how its items are named in a field set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced whole; owned as one field. What an API server does for CRD lists without
    /// `x-kubernetes-list-type`.
    Atomic,
    /// Items are scalars, merged as a set (`v:` elements).
    Set,
    /// Items are maps identified by key fields (`k:` elements).
    Map(Cow<'static, [KeyField]>),
}

/// A key field of an associative list, with the default the API server fills when it is
/// omitted (container ports' `protocol` is `TCP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyField {
    pub name: Text,
    pub default: Option<Text>,
}

impl KeyField {
    pub fn new(name: impl Into<Text>) -> Self {
        KeyField {
            name: name.into(),
            default: None,
        }
    }

    pub fn with_default(mut self, default: impl Into<Text>) -> Self {
        self.default = Some(default.into());
        self
    }
}

const fn key(name: &'static str) -> KeyField {
    KeyField {
        name: Cow::Borrowed(name),
        default: None,
    }
}

const fn key_or(name: &'static str, default: &'static str) -> KeyField {
    KeyField {
        name: Cow::Borrowed(name),
        default: Some(Cow::Borrowed(default)),
    }
}

const NAME: &[KeyField] = &[key("name")];
const CONTAINER_PORT: &[KeyField] = &[key("containerPort"), key_or("protocol", "TCP")];
const SERVICE_PORT: &[KeyField] = &[key("port"), key_or("protocol", "TCP")];
const MOUNT_PATH: &[KeyField] = &[key("mountPath")];
const UID: &[KeyField] = &[key("uid")];

/// Which objects a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleScope {
    /// Every kind (ObjectMeta is the same everywhere, CRDs included).
    AllKinds,
    /// Built-in workload groups (core, apps, batch), whose pod specs carry keyed lists.
    Workloads,
    /// One kind: (group, kind).
    Kind(Text, Text),
}

/// How to match a list's schema path (field names, `[]` for "inside a list item").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The whole path, e.g. `metadata.finalizers`.
    Exact(Text),
    /// The path ends with this (at a field boundary), e.g. `containers[].env`.
    Suffix(Text),
    /// The whole path, where each `*` stands for one map key of free-form maps (a schema's
    /// `additionalProperties`), e.g. `spec.routes.*.hosts`.
    Pattern(Text),
}

impl PathMatch {
    fn matches(&self, schema_path: &str) -> bool {
        match self {
            PathMatch::Exact(p) => schema_path == p,
            PathMatch::Suffix(p) => {
                schema_path == p
                    || (schema_path.ends_with(p.as_ref())
                        && schema_path[..schema_path.len() - p.len()].ends_with('.'))
            }
            PathMatch::Pattern(p) => glob(p, schema_path),
        }
    }
}

/// `*` matches one or more characters (a map key may itself contain dots); the rest literally.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (1..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRule {
    pub scope: RuleScope,
    pub path: PathMatch,
    pub list_type: ListType,
}

impl ListRule {
    /// A rule for one kind at one exact schema path (what a CRD's schema declares).
    pub fn for_kind(
        group: impl Into<Text>,
        kind: impl Into<Text>,
        path: impl Into<Text>,
        list_type: ListType,
    ) -> Self {
        ListRule {
            scope: RuleScope::Kind(group.into(), kind.into()),
            path: PathMatch::Exact(path.into()),
            list_type,
        }
    }
}

const fn rule(scope: RuleScope, path: PathMatch, list_type: ListType) -> ListRule {
    ListRule {
        scope,
        path,
        list_type,
    }
}

const fn exact(p: &'static str) -> PathMatch {
    PathMatch::Exact(Cow::Borrowed(p))
}

const fn suffix(p: &'static str) -> PathMatch {
    PathMatch::Suffix(Cow::Borrowed(p))
}

const fn keyed(keys: &'static [KeyField]) -> ListType {
    ListType::Map(Cow::Borrowed(keys))
}

use RuleScope::{AllKinds, Workloads};

/// Where Kubernetes' built-in types use keyed or set lists. Every other list is atomic. The
/// fallback when a server publishes nothing for a path.
pub const KUBERNETES_LIST_RULES: &[ListRule] = &[
    rule(AllKinds, exact("metadata.ownerReferences"), keyed(UID)),
    rule(AllKinds, exact("metadata.finalizers"), ListType::Set),
    rule(
        RuleScope::Kind(Cow::Borrowed(""), Cow::Borrowed("Service")),
        exact("spec.ports"),
        keyed(SERVICE_PORT),
    ),
    rule(Workloads, suffix("spec.containers"), keyed(NAME)),
    rule(Workloads, suffix("spec.initContainers"), keyed(NAME)),
    rule(Workloads, suffix("spec.ephemeralContainers"), keyed(NAME)),
    rule(Workloads, suffix("spec.volumes"), keyed(NAME)),
    rule(Workloads, suffix("spec.imagePullSecrets"), keyed(NAME)),
    rule(
        Workloads,
        suffix("containers[].ports"),
        keyed(CONTAINER_PORT),
    ),
    rule(
        Workloads,
        suffix("initContainers[].ports"),
        keyed(CONTAINER_PORT),
    ),
    rule(
        Workloads,
        suffix("ephemeralContainers[].ports"),
        keyed(CONTAINER_PORT),
    ),
    rule(Workloads, suffix("containers[].env"), keyed(NAME)),
    rule(Workloads, suffix("initContainers[].env"), keyed(NAME)),
    rule(Workloads, suffix("ephemeralContainers[].env"), keyed(NAME)),
    rule(
        Workloads,
        suffix("containers[].volumeMounts"),
        keyed(MOUNT_PATH),
    ),
    rule(
        Workloads,
        suffix("initContainers[].volumeMounts"),
        keyed(MOUNT_PATH),
    ),
    rule(
        Workloads,
        suffix("ephemeralContainers[].volumeMounts"),
        keyed(MOUNT_PATH),
    ),
];

const WORKLOAD_GROUPS: &[&str] = &["", "apps", "batch"];

static ATOMIC: ListType = ListType::Atomic;

/// The list-merge table in force.
///
/// Rules scoped to one kind are consulted before broader ones (a server's schema for a kind
/// is more specific than a table for every kind); within each, the first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSemantics {
    /// Kind-scoped rules by group, then kind: a lookup per list walked stays cheap with
    /// hundreds of CRDs installed.
    kinds: BTreeMap<String, BTreeMap<String, Vec<ListRule>>>,
    /// Rules for every kind or a family of groups.
    general: Vec<ListRule>,
}

impl Default for ListSemantics {
    fn default() -> Self {
        Self::kubernetes()
    }
}

impl ListSemantics {
    /// Kubernetes' built-in keyed lists ([`KUBERNETES_LIST_RULES`]); atomic elsewhere.
    pub fn kubernetes() -> Self {
        Self::atomic().with_rules(KUBERNETES_LIST_RULES.iter().cloned())
    }

    /// Every list atomic.
    pub fn atomic() -> Self {
        ListSemantics {
            kinds: BTreeMap::new(),
            general: Vec::new(),
        }
    }

    /// Rules a server published (e.g. derived from its CRDs), with the built-in table as
    /// the fallback for paths they do not cover.
    pub fn from_server(rules: impl IntoIterator<Item = ListRule>) -> Self {
        Self::atomic()
            .with_rules(rules)
            .with_rules(KUBERNETES_LIST_RULES.iter().cloned())
    }

    /// Add a rule; first match wins, so it is consulted after the rules already in (of its
    /// scope).
    pub fn with_rule(mut self, rule: ListRule) -> Self {
        match &rule.scope {
            RuleScope::Kind(group, kind) => self
                .kinds
                .entry(group.to_string())
                .or_default()
                .entry(kind.to_string())
                .or_default()
                .push(rule),
            RuleScope::AllKinds | RuleScope::Workloads => self.general.push(rule),
        }
        self
    }

    pub fn with_rules(self, rules: impl IntoIterator<Item = ListRule>) -> Self {
        rules.into_iter().fold(self, Self::with_rule)
    }

    /// How many rules are in force (for logs).
    pub fn rule_count(&self) -> usize {
        let scoped: usize = self
            .kinds
            .values()
            .flat_map(|kinds| kinds.values())
            .map(Vec::len)
            .sum();
        scoped + self.general.len()
    }

    /// The list type at `schema_path` (dotted field names, `[]` after a list's name inside its
    /// items, e.g. `spec.template.spec.containers[].ports`) of an object of `group`/`kind`.
    pub fn list_type(&self, group: &str, kind: &str, schema_path: &str) -> &ListType {
        let scoped = self
            .kinds
            .get(group)
            .and_then(|kinds| kinds.get(kind))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if let Some(rule) = scoped.iter().find(|r| r.path.matches(schema_path)) {
            return &rule.list_type;
        }
        for rule in &self.general {
            let in_scope = match &rule.scope {
                RuleScope::AllKinds => true,
                RuleScope::Workloads => WORKLOAD_GROUPS.contains(&group),
                RuleScope::Kind(g, k) => g == group && k == kind,
            };
            if in_scope && rule.path.matches(schema_path) {
                return &rule.list_type;
            }
        }
        &ATOMIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_keyed() -> ListType {
        ListType::Map(vec![KeyField::new("name")].into())
    }

    #[test]
    fn the_built_in_table_keeps_its_meaning() {
        let s = ListSemantics::kubernetes();
        let cases: &[(&str, &str, &str, ListType)] = &[
            ("", "Service", "spec.ports", keyed(SERVICE_PORT)),
            ("", "ConfigMap", "spec.ports", ListType::Atomic),
            (
                "apps",
                "Deployment",
                "spec.template.spec.containers",
                keyed(NAME),
            ),
            (
                "apps",
                "Deployment",
                "spec.template.spec.containers[].ports",
                keyed(CONTAINER_PORT),
            ),
            (
                "example.com",
                "W",
                "spec.template.spec.containers",
                ListType::Atomic,
            ),
            ("example.com", "W", "metadata.finalizers", ListType::Set),
            (
                "networking.istio.io",
                "ServiceEntry",
                "spec.ports",
                ListType::Atomic,
            ),
        ];
        for (group, kind, path, want) in cases {
            assert_eq!(
                s.list_type(group, kind, path),
                want,
                "{group}/{kind} {path}"
            );
        }
    }

    #[test]
    fn server_rules_come_first_and_the_table_is_the_fallback() {
        let s = ListSemantics::from_server([
            ListRule::for_kind(
                "networking.istio.io",
                "ServiceEntry",
                "spec.ports",
                name_keyed(),
            ),
            ListRule::for_kind("", "Service", "spec.ports", ListType::Atomic),
        ]);
        assert_eq!(
            s.list_type("networking.istio.io", "ServiceEntry", "spec.ports"),
            &name_keyed()
        );
        assert_eq!(s.list_type("", "Service", "spec.ports"), &ListType::Atomic);
        assert_eq!(
            s.list_type("networking.istio.io", "ServiceEntry", "metadata.finalizers"),
            &ListType::Set
        );
        assert_eq!(s.rule_count(), 2 + KUBERNETES_LIST_RULES.len());
    }

    #[test]
    fn suffixes_match_at_field_boundaries_only() {
        let p = suffix("spec.containers");
        assert!(p.matches("spec.containers"));
        assert!(p.matches("spec.template.spec.containers"));
        assert!(!p.matches("spec.template.xspec.containers"));
    }

    #[test]
    fn patterns_stand_for_map_keys() {
        let p = PathMatch::Pattern("spec.routes.*.hosts".into());
        assert!(p.matches("spec.routes.a.hosts"));
        assert!(p.matches("spec.routes.example.com.hosts"));
        assert!(!p.matches("spec.routes..hosts"));
        assert!(!p.matches("spec.routes.a.hostsx"));
        let items = PathMatch::Pattern("spec.m.*[].ports".into());
        assert!(items.matches("spec.m.k[].ports"));
        assert!(!items.matches("spec.m.k.ports"));
    }
}
