//! Validation: the checks `istioctl analyze` would make, over a whole revision, before
//! anything reaches a cluster. Pure: takes the manifest set, returns diagnostics.
//!
//! A revision with any error is rejected whole; warnings never block.

pub mod analyze;
pub mod catalog;
pub mod destination_rule;
mod finding;
pub mod gateway;
mod incremental;
pub mod k8s_names;
pub mod metadata;
pub mod namespaced_host;
mod neighbourhood;
pub mod rollout_policy;
pub mod service_entry;
pub mod severity;
pub mod sidecar;
pub mod virtual_service;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

pub use analyze::{ClusterServices, KnownService, ValidationContext};
pub use incremental::{Reuse, Validated};

use crate::diagnostic::{self, Diagnostic};
use crate::hosts;
use crate::manifest::istio::{
    DestinationRule, Gateway, IstioObject, ServiceEntry, Sidecar, VirtualService,
};
use crate::manifest::{Manifest, ManifestSet, ObjectKey, TypedObject};
use catalog::Check;

pub use severity::{Level, Severities, SeverityError};

/// Checks made while reading files (YAML, encoding, size, symlinks, required fields), before
/// any kind's checks; the codes come from `manifest` and the sources (symlinks,
/// `.veerignore`), and `duplicate-object` from [`check_duplicates`]. A file or object they
/// refuse is not read at all, so their severity cannot be lowered ([`severity`]).
pub const READING_CHECKS: &[Check] = &[
    Check::error(
        "yaml-syntax",
        "any",
        "kubectl: the file parses as YAML 1.1 as kubectl reads it; duplicate keys are refused",
    ),
    Check::error("not-utf8", "any", "kubectl: manifests are UTF-8"),
    Check::error(
        "file-too-large",
        "any",
        "veer: manifests.maxFileBytes (1 MiB), refused before the file is read",
    ),
    Check::error(
        "missing-field",
        "any",
        "Kubernetes API server: apiVersion, kind and metadata.name are required",
    ),
    Check::error(
        "not-an-object",
        "any",
        "Kubernetes: each YAML document is an object (a mapping)",
    ),
    Check::error(
        "unknown-api-version",
        "any",
        "Istio's CRDs serve networking.istio.io v1alpha3, v1beta1 and v1; veer.io serves v1alpha1",
    ),
    Check::error("unknown-kind", "any", "veer.io defines only RolloutPolicy"),
    Check::error(
        "kind-case",
        "any",
        "Kubernetes API server: kinds match exactly, case included",
    ),
    Check::error(
        "generate-name",
        "any",
        "Kubernetes server-side apply: the object needs metadata.name (generateName is for create)",
    ),
    Check::error(
        "unknown-field",
        "any",
        "Istio's CRD structural schemas: a field the schema does not have (kubectl --validate=strict refuses it)",
    ),
    Check::error(
        "invalid-field",
        "any",
        "Istio's CRD schemas: field types, enums and required fields",
    ),
    Check::error(
        "duplicate-object",
        "any",
        "Kubernetes API server: one object per group, kind, namespace and name",
    ),
    Check::warning(
        "legacy-destination-policy",
        "any",
        "Istio no longer serves config.istio.io/v1alpha2 DestinationPolicy: veer converts it to a DestinationRule (an error where it cannot do so faithfully)",
    ),
    Check::error(
        "symlink-outside-repo",
        "any",
        "veer: a symlink may not lead outside the repository",
    ),
    Check::error(
        "symlink-to-directory",
        "any",
        "veer: symlinks to directories are not followed",
    ),
    Check::error(
        "symlink-not-file",
        "any",
        "veer: a symlink must lead to a regular file",
    ),
    Check::error(
        "symlink-broken",
        "any",
        "veer: a symlink's target must exist",
    ),
    Check::error("symlink-loop", "any", "veer: symlinks may not loop"),
    Check::error(
        "veerignore-invalid",
        "any",
        "veer: `.veerignore` is gitignore syntax",
    ),
];

/// The outcome of validating a revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn new(mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostic::sort(&mut diagnostics);
        diagnostics.dedup();
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        Self {
            errors,
            warnings: diagnostics.len() - errors,
            diagnostics,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.errors == 0
    }

    /// The errors alone (the warnings left out and not counted): what is kept of a rejected
    /// revision's report once it was logged whole, for what reads it later.
    pub fn into_errors(self) -> Report {
        let mut diagnostics = self.diagnostics;
        diagnostics.retain(Diagnostic::is_error);
        diagnostics.shrink_to_fit();
        Report {
            errors: diagnostics.len(),
            warnings: 0,
            diagnostics,
        }
    }

    pub fn render_human(&self) -> String {
        diagnostic::render_human(&self.diagnostics)
    }

    pub fn render_json(&self) -> String {
        // Serializing plain data to a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// The revision's objects, grouped the way checks look them up.
pub struct Index<'a> {
    pub all: &'a [Arc<Manifest>],
    pub virtual_services: Vec<(&'a Manifest, &'a IstioObject<VirtualService>)>,
    pub destination_rules: Vec<(&'a Manifest, &'a IstioObject<DestinationRule>)>,
    pub gateways: Vec<(&'a Manifest, &'a IstioObject<Gateway>)>,
    pub service_entries: Vec<(&'a Manifest, &'a IstioObject<ServiceEntry>)>,
    pub sidecars: Vec<(&'a Manifest, &'a IstioObject<Sidecar>)>,
    /// DestinationRules by fully qualified host (exact hosts), so lookups stay O(1) in large
    /// revisions.
    rules_by_host: HashMap<String, Vec<usize>>,
    /// DestinationRules whose host is a wildcard: few, scanned.
    wildcard_rules: Vec<(String, usize)>,
    /// Gateways as `namespace/name`.
    gateway_names: HashSet<String>,
}

impl<'a> Index<'a> {
    pub fn new(all: &'a [Arc<Manifest>]) -> Self {
        let mut index = Index {
            all,
            virtual_services: Vec::new(),
            destination_rules: Vec::new(),
            gateways: Vec::new(),
            service_entries: Vec::new(),
            sidecars: Vec::new(),
            rules_by_host: HashMap::new(),
            wildcard_rules: Vec::new(),
            gateway_names: HashSet::new(),
        };
        for m in all {
            match &m.typed {
                TypedObject::VirtualService(o) => index.virtual_services.push((m, o)),
                TypedObject::DestinationRule(o) => index.destination_rules.push((m, o)),
                TypedObject::Gateway(o) => index.gateways.push((m, o)),
                TypedObject::ServiceEntry(o) => index.service_entries.push((m, o)),
                TypedObject::Sidecar(o) => index.sidecars.push((m, o)),
                TypedObject::RolloutPolicy(_) | TypedObject::Generic => {}
            }
        }
        for (i, (m, dr)) in index.destination_rules.iter().enumerate() {
            if dr.spec.host.is_empty() {
                continue;
            }
            let host = hosts::fqdn(&dr.spec.host, m.namespace());
            if host.starts_with('*') {
                index.wildcard_rules.push((host, i));
            } else {
                index.rules_by_host.entry(host).or_default().push(i);
            }
        }
        index.gateway_names = index
            .gateways
            .iter()
            .map(|(m, _)| format!("{}/{}", m.namespace(), m.key.name))
            .collect();
        index
    }

    /// DestinationRules whose host covers the fully qualified `host`, in revision order.
    pub fn destination_rules_for(
        &self,
        host: &str,
    ) -> Vec<(&'a Manifest, &'a IstioObject<DestinationRule>)> {
        let mut found: Vec<usize> = self.rules_by_host.get(host).cloned().unwrap_or_default();
        found.extend(
            self.wildcard_rules
                .iter()
                .filter(|(pattern, _)| hosts::matches(pattern, host))
                .map(|(_, i)| *i),
        );
        found.sort_unstable();
        found
            .into_iter()
            .map(|i| self.destination_rules[i])
            .collect()
    }

    /// Is there a Gateway `namespace/name` in the revision?
    pub fn has_gateway(&self, namespaced_name: &str) -> bool {
        self.gateway_names.contains(namespaced_name)
    }

    /// Every Gateway as `namespace/name`, sorted, for messages.
    pub fn gateway_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.gateway_names.iter().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// Validate a whole revision: reading problems plus every check.
pub fn validate(set: &ManifestSet) -> Report {
    validate_with_policies(set, &[])
}

/// [`validate`], with rollout policies from outside the revision (`rollouts.policiesDir`)
/// known besides the revision's and the shipped ones, so an annotation may name them.
pub fn validate_with_policies(
    set: &ManifestSet,
    policies: &[crate::manifest::rollout_policy::RolloutPolicy],
) -> Report {
    validate_with(
        set,
        &ValidationContext {
            policies,
            cluster: None,
        },
    )
}

/// [`validate`], with what is known besides the revision: rollout policies from outside it
/// and, when a cluster was consulted, its Services and ServiceEntries.
pub fn validate_with(set: &ManifestSet, ctx: &ValidationContext<'_>) -> Report {
    report_of(set, run_checks(&Index::new(&set.manifests), ctx))
}

/// What every check finds in the revision `index` holds (reading problems aside), in the
/// order the checks run.
fn run_checks(index: &Index<'_>, ctx: &ValidationContext<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    run_own_checks(index, &mut out);
    run_cross_checks(index, ctx, &mut out);
    out
}

/// The checks that read one object each (the duplicate check aside, which compares
/// identities only): they run first.
fn run_own_checks(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    check_duplicates(index, out);
    metadata::check(index, out);
}

/// The checks of kinds' specs, some of which read other objects (and the context); they run
/// after [`run_own_checks`].
fn run_cross_checks(index: &Index<'_>, ctx: &ValidationContext<'_>, out: &mut Vec<Diagnostic>) {
    virtual_service::check(index, out);
    destination_rule::check(index, out);
    gateway::check(index, out);
    service_entry::check(index, out);
    sidecar::check(index, out);
    rollout_policy::check(index, ctx.policies, out);
    analyze::check(index, ctx, out);
}

/// The report of a revision: its reading problems, then what the checks found.
fn report_of(set: &ManifestSet, checks: impl IntoIterator<Item = Diagnostic>) -> Report {
    let mut out = set.diagnostics.clone();
    out.extend(checks);
    Report::new(out)
}

/// The same object (any API version) defined twice.
fn check_duplicates(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let mut first: HashMap<(String, String, Option<String>, String), &Manifest> = HashMap::new();
    for m in index.all {
        let ObjectKey {
            group,
            kind,
            namespace,
            name,
            ..
        } = &m.key;
        let id = (group.clone(), kind.clone(), namespace.clone(), name.clone());
        match first.get(&id) {
            Some(earlier) => out.push(
                m.error(
                    "duplicate-object",
                    "/metadata/name",
                    format!(
                        "defined again; first defined at {}:{}",
                        earlier.file, earlier.line
                    ),
                )
                .fix("remove one of the two definitions, or give them different names"),
            ),
            None => {
                first.insert(id, m);
            }
        }
    }
}
