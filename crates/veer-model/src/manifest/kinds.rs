//! The kinds veer knows by name: their exact spelling (the API server matches `kind`
//! case-sensitively, so `virtualservice` is "no matches for kind") and the rule the API server
//! applies to their `metadata.name`. Kinds not listed (CRDs veer does not know) get the rule the
//! API server applies to every custom resource: a DNS-1123 subdomain.
//!
//! Name rules follow Kubernetes' `pkg/apis/*/validation` (`ValidateServiceName`,
//! `ValidateNamespaceName`, `ValidateRBACName`, ...). Pure data; the checks are in
//! `validate::k8s_names`.

/// How the API server validates the `metadata.name` of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// A DNS-1123 subdomain (`[a-z0-9]([-a-z0-9]*[a-z0-9])?` labels joined by `.`) of at most
    /// `max` characters: 253 for most kinds, less where the name becomes part of another name.
    Subdomain { max: usize },
    /// A DNS-1123 label: at most 63 characters, lowercase alphanumerics and `-`, no dots.
    Label,
    /// An RFC 1035 label: a DNS-1123 label that starts with a letter (Service names).
    Rfc1035Label,
    /// Anything that can be one segment of a URL path: not `.` or `..`, no `/` or `%` (RBAC
    /// names such as `system:controller:foo`).
    PathSegment,
}

/// The rule for most kinds and for every custom resource.
pub const SUBDOMAIN: NameRule = NameRule::Subdomain { max: 253 };

/// A kind veer recognises: its API group, its exact spelling, and its name rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownKind {
    pub group: &'static str,
    pub kind: &'static str,
    pub name_rule: NameRule,
}

const fn known(group: &'static str, kind: &'static str, name_rule: NameRule) -> KnownKind {
    KnownKind {
        group,
        kind,
        name_rule,
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";
const ISTIO_NETWORKING: &str = "networking.istio.io";
const GATEWAY_API: &str = "gateway.networking.k8s.io";

/// Every kind veer knows by name.
pub const KNOWN_KINDS: &[KnownKind] = &[
    // Core (`v1`).
    known("", "Namespace", NameRule::Label),
    known("", "Service", NameRule::Rfc1035Label),
    known("", "ConfigMap", SUBDOMAIN),
    known("", "Secret", SUBDOMAIN),
    known("", "ServiceAccount", SUBDOMAIN),
    known("", "Pod", SUBDOMAIN),
    known("", "PodTemplate", SUBDOMAIN),
    known("", "Endpoints", SUBDOMAIN),
    known("", "PersistentVolume", SUBDOMAIN),
    known("", "PersistentVolumeClaim", SUBDOMAIN),
    known("", "LimitRange", SUBDOMAIN),
    known("", "ResourceQuota", SUBDOMAIN),
    known("", "ReplicationController", SUBDOMAIN),
    known("", "Node", SUBDOMAIN),
    // Workloads. StatefulSet names become pod host names, so current Kubernetes requires a
    // label; the Job controller puts the Job's name in a label (at most 63 characters); the
    // CronJob controller appends 11 characters to make a Job name.
    known("apps", "Deployment", SUBDOMAIN),
    known("apps", "ReplicaSet", SUBDOMAIN),
    known("apps", "DaemonSet", SUBDOMAIN),
    known("apps", "StatefulSet", NameRule::Label),
    known("apps", "ControllerRevision", SUBDOMAIN),
    known("batch", "Job", NameRule::Subdomain { max: 63 }),
    known("batch", "CronJob", NameRule::Subdomain { max: 52 }),
    known("autoscaling", "HorizontalPodAutoscaler", SUBDOMAIN),
    known("policy", "PodDisruptionBudget", SUBDOMAIN),
    // Networking, RBAC and cluster configuration.
    known("networking.k8s.io", "Ingress", SUBDOMAIN),
    known("networking.k8s.io", "IngressClass", SUBDOMAIN),
    known("networking.k8s.io", "NetworkPolicy", SUBDOMAIN),
    known("discovery.k8s.io", "EndpointSlice", SUBDOMAIN),
    known(RBAC, "Role", NameRule::PathSegment),
    known(RBAC, "RoleBinding", NameRule::PathSegment),
    known(RBAC, "ClusterRole", NameRule::PathSegment),
    known(RBAC, "ClusterRoleBinding", NameRule::PathSegment),
    known("storage.k8s.io", "StorageClass", SUBDOMAIN),
    known("scheduling.k8s.io", "PriorityClass", SUBDOMAIN),
    known("coordination.k8s.io", "Lease", SUBDOMAIN),
    known(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        SUBDOMAIN,
    ),
    known(
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        SUBDOMAIN,
    ),
    known(
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        SUBDOMAIN,
    ),
    // Istio.
    known(ISTIO_NETWORKING, "VirtualService", SUBDOMAIN),
    known(ISTIO_NETWORKING, "DestinationRule", SUBDOMAIN),
    known(ISTIO_NETWORKING, "Gateway", SUBDOMAIN),
    known(ISTIO_NETWORKING, "ServiceEntry", SUBDOMAIN),
    known(ISTIO_NETWORKING, "Sidecar", SUBDOMAIN),
    known(ISTIO_NETWORKING, "WorkloadEntry", SUBDOMAIN),
    known(ISTIO_NETWORKING, "WorkloadGroup", SUBDOMAIN),
    known(ISTIO_NETWORKING, "EnvoyFilter", SUBDOMAIN),
    known(ISTIO_NETWORKING, "ProxyConfig", SUBDOMAIN),
    known("security.istio.io", "AuthorizationPolicy", SUBDOMAIN),
    known("security.istio.io", "PeerAuthentication", SUBDOMAIN),
    known("security.istio.io", "RequestAuthentication", SUBDOMAIN),
    known("telemetry.istio.io", "Telemetry", SUBDOMAIN),
    known("extensions.istio.io", "WasmPlugin", SUBDOMAIN),
    known("config.istio.io", "DestinationPolicy", SUBDOMAIN),
    // Gateway API.
    known(GATEWAY_API, "Gateway", SUBDOMAIN),
    known(GATEWAY_API, "GatewayClass", SUBDOMAIN),
    known(GATEWAY_API, "HTTPRoute", SUBDOMAIN),
    known(GATEWAY_API, "GRPCRoute", SUBDOMAIN),
    known(GATEWAY_API, "TCPRoute", SUBDOMAIN),
    known(GATEWAY_API, "TLSRoute", SUBDOMAIN),
    known(GATEWAY_API, "UDPRoute", SUBDOMAIN),
    known(GATEWAY_API, "ReferenceGrant", SUBDOMAIN),
    // veer's own.
    known("veer.io", "RolloutPolicy", SUBDOMAIN),
];

/// The known kind spelt exactly `kind` in `group`.
pub fn lookup(group: &str, kind: &str) -> Option<&'static KnownKind> {
    KNOWN_KINDS
        .iter()
        .find(|k| k.group == group && k.kind == kind)
}

/// The name rule for `kind` in `group`: the known kind's, else a DNS-1123 subdomain.
pub fn name_rule(group: &str, kind: &str) -> NameRule {
    lookup(group, kind).map_or(SUBDOMAIN, |k| k.name_rule)
}

/// When `kind` is a known kind of `group` spelt with the wrong case, its right spelling.
pub fn right_case(group: &str, kind: &str) -> Option<&'static str> {
    if lookup(group, kind).is_some() {
        return None;
    }
    KNOWN_KINDS
        .iter()
        .find(|k| k.group == group && k.kind.eq_ignore_ascii_case(kind))
        .map(|k| k.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_once() {
        for (i, a) in KNOWN_KINDS.iter().enumerate() {
            for b in &KNOWN_KINDS[i + 1..] {
                assert!(
                    !(a.group == b.group && a.kind.eq_ignore_ascii_case(b.kind)),
                    "{}/{} listed twice",
                    a.group,
                    a.kind
                );
            }
        }
    }

    #[test]
    fn wrong_case_finds_the_right_spelling_in_the_same_group_only() {
        let table: &[(&str, &str, Option<&str>)] = &[
            (
                "networking.istio.io",
                "virtualservice",
                Some("VirtualService"),
            ),
            (
                "networking.istio.io",
                "Virtualservice",
                Some("VirtualService"),
            ),
            ("networking.istio.io", "VirtualService", None),
            ("apps", "deployment", Some("Deployment")),
            ("", "configmap", Some("ConfigMap")),
            ("", "SERVICE", Some("Service")),
            ("gateway.networking.k8s.io", "HttpRoute", Some("HTTPRoute")),
            // Right case, wrong group: not this check's business.
            ("", "deployment", None),
            ("example.com", "widget", None),
        ];
        for (group, kind, want) in table {
            assert_eq!(right_case(group, kind), *want, "{group} {kind}");
        }
    }

    #[test]
    fn name_rules_follow_the_api_server() {
        assert_eq!(name_rule("", "Service"), NameRule::Rfc1035Label);
        assert_eq!(name_rule("", "Namespace"), NameRule::Label);
        assert_eq!(name_rule("", "ConfigMap"), SUBDOMAIN);
        assert_eq!(name_rule(RBAC, "ClusterRole"), NameRule::PathSegment);
        assert_eq!(
            name_rule("batch", "CronJob"),
            NameRule::Subdomain { max: 52 }
        );
        assert_eq!(name_rule("example.com", "Widget"), SUBDOMAIN);
    }
}
