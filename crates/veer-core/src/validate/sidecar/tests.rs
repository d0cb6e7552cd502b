//! Tables for the Sidecar checks.

use super::*;
use crate::validate::gateway::tests::{Found, run};

/// A Sidecar in namespace `shop` whose spec body (indented by two) starts on line 7.
fn sidecar(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n{spec}"
    )
}

fn table(f: fn(&Manifest, &Sidecar, &mut Vec<Diagnostic>), cases: &[(&str, Found)]) {
    for (spec, want) in cases {
        let found = run(&sidecar("s", spec), |index, out| {
            for (m, s) in &index.sidecars {
                f(m, &s.spec, out);
            }
        });
        assert_eq!(&found, want, "{spec}");
    }
}

#[test]
fn empty_and_selector_table() {
    let each = |m: &Manifest, s: &Sidecar, out: &mut Vec<Diagnostic>| {
        check_empty(m, s, out);
        if let Some(selector) = &s.workload_selector {
            check_workload_selector(m, "/spec/workloadSelector", selector, SELECTOR_CODES, out);
        }
    };
    table(
        each,
        &[
            (
                "  workloadSelector: {labels: {app: ratings}}\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
                vec![],
            ),
            ("  egress: [{hosts: ['./*']}]\n", vec![]),
            (
                "  inboundConnectionPool: {tcp: {maxConnections: 10}}\n",
                vec![],
            ),
            // Istio takes a selector without labels, with a warning.
            (
                "  workloadSelector: {}\n  egress: [{hosts: ['./*']}]\n",
                vec![("sidecar-empty-selector", 7)],
            ),
            (
                "  workloadSelector:\n    labels: {app: '*'}\n  egress: [{hosts: ['./*']}]\n",
                vec![("sidecar-selector-wildcard", 8)],
            ),
            (
                "  workloadSelector: {labels: {app: ratings}}\n",
                vec![("sidecar-empty", 6)],
            ),
        ],
    );
    let found = run(
        &sidecar(
            "s",
            "  workloadSelector: {}\n  egress: [{hosts: ['./*']}]\n",
        ),
        |i, o| {
            for (m, s) in &i.sidecars {
                each(m, &s.spec, o);
            }
            assert!(o.iter().all(|d| !d.is_error()), "{o:?}");
        },
    );
    assert_eq!(found.len(), 1);
}

#[test]
fn egress_hosts_table() {
    for ok in [
        "./*",
        "*/*",
        "~/*",
        "istio-system/*",
        "*/api.example.com",
        "shop/*.example.com",
        "./reviews",
    ] {
        assert_eq!(check_egress_host(ok), Ok(()), "{ok}");
    }
    for bad in [
        "*",
        "api.example.com",
        "/a.com",
        "Shop/*",
        "./",
        "./a..b",
        "-x/*",
    ] {
        assert!(check_egress_host(bad).is_err(), "{bad}");
    }
    for (host, refused) in [
        ("./*", false),
        ("./*.example.com", false),
        ("./reviews.shop.svc.cluster.local", false),
        ("./reviews", true),
        ("*/*example.com", true),
        ("*/*.*.example.com", true),
    ] {
        assert_eq!(egress_host_form(host).is_some(), refused, "{host}");
    }
    table(
        check_egress_hosts,
        &[
            ("  egress:\n  - hosts: ['./*', 'istio-system/*']\n", vec![]),
            (
                "  egress:\n  - hosts:\n    - ./*\n    - reviews.shop.svc.cluster.local\n",
                vec![("sidecar-egress-host", 10)],
            ),
            (
                "  egress:\n  - hosts:\n    - ./reviews\n",
                vec![("sidecar-egress-host", 9)],
            ),
            (
                "  egress:\n  - hosts: []\n",
                vec![("sidecar-egress-host", 8)],
            ),
        ],
    );
}

#[test]
fn ingress_ports_table() {
    table(
        listeners::check_ingress,
        &[
            (
                "  ingress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    defaultEndpoint: 127.0.0.1:8080\n",
                vec![],
            ),
            // No protocol: Istio sniffs it.
            (
                "  ingress:\n  - port: {number: 9080}\n    defaultEndpoint: '[::1]:8080'\n  - port: {number: 9081, protocol: ''}\n    defaultEndpoint: unix:///var/run/app.sock\n",
                vec![],
            ),
            (
                "  ingress:\n  - defaultEndpoint: 127.0.0.1:8080\n",
                vec![("sidecar-ingress-port", 8)],
            ),
            (
                "  ingress:\n  - port: {protocol: HTTP}\n",
                vec![("sidecar-ingress-port", 8)],
            ),
            (
                "  ingress:\n  - port: {number: 0, protocol: HTTP}\n",
                vec![("sidecar-ingress-port", 8)],
            ),
            (
                "  ingress:\n  - port: {number: 9080, protocol: SPDY}\n",
                vec![("sidecar-ingress-port", 8)],
            ),
            (
                "  ingress:\n  - port:\n      number: 9080\n      name: HTTP\n      targetPort: 8080\n    bind: localhost\n",
                vec![
                    ("sidecar-ingress-port", 10),
                    ("sidecar-ingress-port", 11),
                    ("sidecar-ingress-port", 12),
                ],
            ),
            (
                "  ingress:\n  - port: {number: 9080}\n    defaultEndpoint: 10.0.0.1:8080\n  - port: {number: 9081}\n    defaultEndpoint: 127.0.0.1\n",
                vec![
                    ("sidecar-default-endpoint", 9),
                    ("sidecar-default-endpoint", 11),
                ],
            ),
            (
                "  ingress:\n  - port: {number: 9080, protocol: HTTP}\n  - port:\n      number: 9080\n      protocol: TCP\n",
                vec![("sidecar-duplicate-ingress-port", 10)],
            ),
        ],
    );
}

#[test]
fn egress_ports_table() {
    table(
        listeners::check_egress,
        &[
            ("  egress:\n  - hosts: ['./*']\n", vec![]),
            (
                "  egress:\n  - port: {number: 3306, protocol: MYSQL}\n    hosts: ['./*']\n  - port: {number: 0}\n    bind: unix:///var/run/egress.sock\n    hosts: ['./*']\n  - hosts: ['*/*']\n",
                vec![],
            ),
            (
                "  egress:\n  - port: {number: 3306, protocol: SQL}\n    hosts: ['./*']\n",
                vec![("sidecar-egress-port", 8)],
            ),
            (
                "  egress:\n  - port: {protocol: HTTP}\n    hosts: ['./*']\n",
                vec![("sidecar-egress-port", 8)],
            ),
            (
                "  egress:\n  - port: {number: 80}\n    hosts: ['./*']\n  - port:\n      number: 80\n    hosts: ['*/*']\n",
                vec![("sidecar-egress-port", 11)],
            ),
            (
                "  egress:\n  - hosts: ['./*']\n  - hosts: ['*/*']\n",
                vec![("sidecar-egress-port", 8), ("sidecar-egress-port", 9)],
            ),
        ],
    );
}

#[test]
fn selector_conflicts_over_the_revisions_workloads() {
    let selected = |name: &str, labels: &str| {
        sidecar(
            name,
            &format!("  workloadSelector: {{labels: {labels}}}\n  egress: [{{hosts: ['./*']}}]\n"),
        )
    };
    let deployment = |ns: &str, labels: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ratings\n  namespace: {ns}\nspec:\n  template:\n    metadata:\n      labels: {labels}\n"
        )
    };
    let cases = [
        // Different workloads, or no workload both select.
        (
            format!(
                "{}---\n{}---\n{}",
                selected("a", "{app: ratings}"),
                selected("b", "{app: reviews}"),
                deployment("shop", "{app: ratings, version: v1}")
            ),
            vec![],
        ),
        (
            format!(
                "{}---\n{}",
                selected("a", "{app: ratings}"),
                selected("b", "{app: ratings}")
            ),
            vec![],
        ),
        // Another namespace's pods are not this namespace's Sidecars' business.
        (
            format!(
                "{}---\n{}---\n{}",
                selected("a", "{app: ratings}"),
                selected("b", "{version: v1}"),
                deployment("other", "{app: ratings, version: v1}")
            ),
            vec![],
        ),
        // Both select the pods of one Deployment: each Sidecar is reported.
        (
            format!(
                "{}---\n{}---\n{}",
                selected("a", "{app: ratings}"),
                selected("b", "{version: v1}"),
                deployment("shop", "{app: ratings, version: v1}")
            ),
            vec![
                ("sidecar-selector-conflict", 7),
                ("sidecar-selector-conflict", 16),
            ],
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(run(&yaml, selectors::check_conflicts), want, "{yaml}");
    }
}

#[test]
fn namespace_defaults_table() {
    let default = |name: &str| sidecar(name, "  egress: [{hosts: ['./*']}]\n");
    let selected = |name: &str| {
        sidecar(
            name,
            "  workloadSelector: {labels: {app: a}}\n  egress: [{hosts: ['./*']}]\n",
        )
    };
    let other_ns = default("c").replace("namespace: shop", "namespace: other");
    let cases = [
        (format!("{}---\n{}", default("a"), selected("b")), vec![]),
        (format!("{}---\n{other_ns}", default("a")), vec![]),
        // The second document starts at line 9; its name is on line 12.
        (
            format!("{}---\n{}", default("a"), default("b")),
            vec![("sidecar-multiple-default", 12)],
        ),
    ];
    for (yaml, want) in cases {
        assert_eq!(
            run(&yaml, selectors::check_namespace_defaults),
            want,
            "{yaml}"
        );
    }
}

#[test]
fn typed_model_rejects_unknown_capture_mode_at_its_line() {
    let yaml = sidecar(
        "s",
        "  egress:\n  - hosts: ['./*']\n    captureMode: IPTABLE\n",
    );
    let parsed = crate::manifest::parse_file(
        "t.yaml",
        yaml.as_bytes(),
        &crate::manifest::ReadOptions::default(),
    );
    let d = &parsed.diagnostics[0];
    assert_eq!((d.code, d.line), ("invalid-field", 9), "{d}");
    assert!(d.message.contains("IPTABLES"), "{d}");
}
