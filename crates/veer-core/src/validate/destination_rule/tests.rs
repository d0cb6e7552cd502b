//! Tables for the DestinationRule checks.

use super::*;
use crate::manifest::{ReadOptions, parse_file};

pub(super) type CheckFn = fn(&Manifest, &DestinationRule, &mut Vec<Diagnostic>);

const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n";

pub(super) fn run(check: CheckFn, body: &str) -> Vec<Diagnostic> {
    let f = parse_file(
        "t.yaml",
        format!("{DR}{body}").as_bytes(),
        &ReadOptions::default(),
    );
    assert!(
        f.diagnostics.is_empty(),
        "fixture does not read: {:?}",
        f.diagnostics
    );
    let index = Index::new(&f.manifests);
    let mut out = Vec::new();
    for (m, dr) in &index.destination_rules {
        check(m, &dr.spec, &mut out);
    }
    out
}

pub(super) fn table(check: CheckFn, cases: &[(&str, &[(&str, u32)])]) {
    for (body, expected) in cases {
        let got: Vec<_> = run(check, body).iter().map(|d| (d.code, d.line)).collect();
        assert_eq!(&got, expected, "for spec:\n{body}");
    }
}

#[test]
fn host() {
    table(
        check_host,
        &[
            ("  host: reviews\n", &[]),
            ("  host: \"*.example.com\"\n", &[]),
            ("  host: re..views\n", &[("dr-host", 6)]),
            ("  subsets: []\n", &[("dr-host", 5)]),
        ],
    );
}

#[test]
fn subset_names_are_unique() {
    table(
        check_subset_names,
        &[
            (
                "  host: r\n  subsets:\n  - {name: v1, labels: {v: \"1\"}}\n  - {name: v2, labels: {v: \"2\"}}\n",
                &[],
            ),
            (
                "  host: r\n  subsets:\n  - name: v1\n    labels: {v: \"1\"}\n  - name: v1\n    labels: {v: \"2\"}\n",
                &[("dr-duplicate-subset", 10)],
            ),
        ],
    );
    let d = run(
        check_subset_names,
        "  host: r\n  subsets:\n  - name: v1\n    labels: {v: \"1\"}\n  - name: v1\n    labels: {v: \"2\"}\n",
    );
    assert!(
        d[0].message
            .contains("already defined at line 8 (spec.subsets[0])"),
        "{}",
        d[0]
    );
}

#[test]
fn subset_names_are_dns_labels() {
    table(
        check_subset_names,
        &[
            (
                "  host: r\n  subsets:\n  - {name: v1-canary, labels: {v: \"1\"}}\n",
                &[],
            ),
            (
                "  host: r\n  subsets:\n  - name: V1\n    labels: {v: \"1\"}\n",
                &[("dr-subset-name", 8)],
            ),
            (
                "  host: r\n  subsets:\n  - name: v1.0\n    labels: {v: \"1\"}\n",
                &[("dr-subset-name", 8)],
            ),
            (
                "  host: r\n  subsets:\n  - name: \"\"\n    labels: {v: \"1\"}\n",
                &[("dr-subset-name", 8)],
            ),
        ],
    );
}

/// Istio accepts a subset without labels (egress gateway tasks use one), so it warns only.
#[test]
fn subsets_without_labels_are_warned() {
    table(
        check_subset_labels,
        &[
            (
                "  host: r\n  subsets:\n  - {name: v1, labels: {version: v1}}\n",
                &[],
            ),
            (
                "  host: r\n  subsets:\n  - name: v1\n",
                &[("dr-subset-labels", 8)],
            ),
            (
                "  host: r\n  subsets:\n  - name: v1\n    labels: {}\n",
                &[("dr-subset-labels", 8)],
            ),
        ],
    );
    let d = run(
        check_subset_labels,
        "  host: r\n  subsets:\n  - name: cnn\n",
    );
    assert!(!d[0].is_error(), "{}", d[0]);
}

#[test]
fn connection_pools() {
    table(
        check_connection_pools,
        &[
            (
                "  host: r\n  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 100, connectTimeout: 30ms}\n      http: {http1MaxPendingRequests: 10, maxRequestsPerConnection: 1, maxRetries: 0}\n",
                &[],
            ),
            (
                "  host: r\n  trafficPolicy:\n    connectionPool:\n      tcp:\n        maxConnections: -1\n",
                &[("dr-connection-pool", 10)],
            ),
            (
                "  host: r\n  trafficPolicy:\n    connectionPool:\n      http:\n        http2MaxRequests: 0\n        maxRetries: -2\n",
                &[("dr-connection-pool", 11), ("dr-connection-pool", 10)],
            ),
            // Per-port and per-subset policies are checked too.
            (
                "  host: r\n  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy:\n      portLevelSettings:\n      - port: {number: 80}\n        connectionPool:\n          tcp:\n            connectTimeout: soon\n",
                &[("dr-connection-pool", 15)],
            ),
        ],
    );
    let d = run(
        check_connection_pools,
        "  host: r\n  trafficPolicy:\n    connectionPool:\n      http:\n        http2MaxRequests: 0\n",
    );
    assert!(
        !d[0].is_error(),
        "zero is Istio's `unset`, so a warning: {}",
        d[0]
    );
}

#[test]
fn outlier_detection() {
    table(
        check_outlier_detection,
        &[
            (
                "  host: r\n  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m, maxEjectionPercent: 100, minHealthPercent: 0}\n",
                &[],
            ),
            (
                "  host: r\n  trafficPolicy:\n    outlierDetection:\n      maxEjectionPercent: 101\n      minHealthPercent: -1\n",
                &[("dr-outlier-detection", 9), ("dr-outlier-detection", 10)],
            ),
            (
                "  host: r\n  trafficPolicy:\n    outlierDetection:\n      interval: \"10\"\n      baseEjectionTime: 30x\n",
                &[("dr-outlier-detection", 9), ("dr-outlier-detection", 10)],
            ),
            // Istio only warns of the deprecated consecutiveErrors, whatever its value.
            (
                "  host: r\n  trafficPolicy:\n    outlierDetection:\n      consecutiveErrors: -3\n",
                &[],
            ),
            (
                "  host: r\n  trafficPolicy:\n    outlierDetection:\n      consecutiveLocalOriginFailures: 3\n",
                &[("dr-outlier-detection", 9)],
            ),
            (
                "  host: r\n  trafficPolicy:\n    outlierDetection:\n      splitExternalLocalOriginErrors: true\n      consecutiveLocalOriginFailures: 3\n",
                &[],
            ),
        ],
    );
}

#[test]
fn findings_on_a_converted_policy_name_the_original() {
    let text = "apiVersion: config.istio.io/v1alpha2\nkind: DestinationPolicy\nmetadata:\n  name: reviews-cb\nspec:\n  destination: {name: reviews}\n  circuitBreaker:\n    simpleCb:\n      httpMaxEjectionPercent: 120\n";
    let f = parse_file("dp.yaml", text.as_bytes(), &ReadOptions::default());
    let index = Index::new(&f.manifests);
    let mut out = Vec::new();
    check(&index, &mut out);
    assert_eq!((out[0].code, out[0].line), ("dr-outlier-detection", 9));
    assert_eq!(
        out[0].object.as_deref(),
        Some(
            "DestinationRule default/reviews-cb (converted from DestinationPolicy default/reviews-cb)"
        )
    );
}
