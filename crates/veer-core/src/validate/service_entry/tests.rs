//! Tables for the ServiceEntry checks.

use super::*;
use crate::validate::gateway::tests::{Found, run};

/// A ServiceEntry whose spec body (indented by two) starts on line 6.
fn se(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: ext\nspec:\n{spec}"
    )
}

fn each(
    f: fn(&Manifest, &ServiceEntry, &mut Vec<Diagnostic>),
) -> impl Fn(&Index<'_>, &mut Vec<Diagnostic>) {
    move |index, out| {
        for (m, se) in &index.service_entries {
            f(m, &se.spec, out);
        }
    }
}

fn table(f: fn(&Manifest, &ServiceEntry, &mut Vec<Diagnostic>), cases: &[(&str, Found)]) {
    for (spec, want) in cases {
        assert_eq!(&run(&se(spec), each(f)), want, "{spec}");
    }
}

#[test]
fn hosts_table() {
    table(
        check_hosts,
        &[
            (
                "  hosts: [api.github.com, '*.example.com', reviews]\n",
                vec![],
            ),
            ("  hosts: []\n", vec![("se-no-hosts", 6)]),
            ("  ports: []\n", vec![("se-no-hosts", 5)]),
            ("  hosts: ['*']\n", vec![("se-wildcard-host", 6)]),
            (
                "  hosts:\n  - ok.com\n  - bad_host.com\n",
                vec![("se-invalid-host", 8)],
            ),
        ],
    );
}

#[test]
fn ports_table() {
    table(
        check_ports,
        &[
            (
                "  hosts: [a.com]\n  ports:\n  - {number: 443, name: https, protocol: TLS}\n  - {number: 80, name: http, protocol: http}\n  - {number: 3306, name: db}\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  ports:\n  - {number: 0, name: https, protocol: TLS}\n",
                vec![("se-port-number", 8)],
            ),
            (
                "  hosts: [a.com]\n  ports:\n  - {number: 65536, name: https, protocol: TLS}\n",
                vec![("se-port-number", 8)],
            ),
            (
                "  hosts: [a.com]\n  ports:\n  - {number: 443, name: https, protocol: TLS}\n  - {number: 8443, name: https, protocol: TLS}\n",
                vec![("se-duplicate-port-name", 9)],
            ),
            (
                "  hosts: [a.com]\n  ports:\n  - {number: 443, name: https, protocol: TLS}\n  - {number: 443, name: tls, protocol: TLS}\n",
                vec![("se-duplicate-port-number", 9)],
            ),
            (
                "  hosts: [a.com]\n  ports:\n  - {number: 443, name: https, protocol: QUIC}\n",
                vec![("se-protocol", 8)],
            ),
            // An empty protocol is Istio's protocol sniffing.
            (
                "  hosts: [a.com]\n  ports:\n  - {number: 443, name: https, protocol: ''}\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  ports:\n  - number: 443\n    name: HTTPS\n  - number: 80\n    name: http_port\n",
                vec![("se-port-name", 9), ("se-port-name", 11)],
            ),
            (
                "  hosts: [a.com]\n  resolution: DNS\n  ports:\n  - {number: 443, name: https, targetPort: 8443}\n  - number: 80\n    name: http\n    targetPort: 70000\n  - number: 81\n    name: http2\n    targetPort: 0\n",
                vec![("se-target-port", 12), ("se-target-port", 15)],
            ),
        ],
    );
}

#[test]
fn multiple_hosts_table() {
    table(
        check_multiple_hosts,
        &[
            // Resolution NONE ignores hosts; HTTP and TLS carry the host.
            (
                "  hosts: [a.com, b.com]\n  ports: [{number: 5432, name: pg, protocol: TCP}]\n",
                vec![],
            ),
            (
                "  hosts: [a.com, b.com]\n  resolution: DNS\n  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: http}]\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  resolution: DNS\n  ports: [{number: 5432, name: pg, protocol: TCP}]\n",
                vec![],
            ),
            (
                "  hosts: [a.com, b.com]\n  resolution: DNS\n  ports:\n  - {number: 443, name: tls, protocol: TLS}\n  - {number: 5432, name: pg}\n",
                vec![("se-multiple-hosts-tcp", 10)],
            ),
        ],
    );
}

#[test]
fn workload_selector_table() {
    let selector = |f: &Manifest, se: &ServiceEntry, out: &mut Vec<Diagnostic>| {
        if let Some(s) = &se.workload_selector {
            check_workload_selector(f, "/spec/workloadSelector", s, SELECTOR_CODES, out);
        }
    };
    table(
        selector,
        &[
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  workloadSelector: {labels: {app: vm}}\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  workloadSelector:\n    labels:\n      app: vm\n      version: '*'\n",
                vec![("se-selector-wildcard", 11)],
            ),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  workloadSelector:\n    labels: {'app*': vm}\n",
                vec![("se-selector-wildcard", 9)],
            ),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  workloadSelector: {}\n",
                vec![("se-empty-selector", 8)],
            ),
        ],
    );
}

#[test]
fn addresses_table() {
    for ok in [
        "10.0.0.1",
        "10.0.0.0/24",
        "0.0.0.0/0",
        "2001:db8::1",
        "2001:db8::/32",
    ] {
        assert_eq!(check_ip_or_cidr(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "api.example.com",
        "10.0.0.0/33",
        "10.0.0.0/",
        "2001:db8::/129",
        "10.0.0.256",
    ] {
        assert!(check_ip_or_cidr(bad).is_err(), "{bad}");
    }
    table(
        check_addresses,
        &[
            (
                "  hosts: [a.com]\n  addresses: [240.0.0.1, 10.1.0.0/16]\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  addresses:\n  - 240.0.0.1\n  - a.com\n",
                vec![("se-address", 9)],
            ),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  addresses: [10.1.0.0/16]\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  resolution: DNS\n  addresses:\n  - 240.0.0.1\n  - 10.1.0.0/16\n",
                vec![("se-cidr-resolution", 10)],
            ),
        ],
    );
}

#[test]
fn static_without_endpoints_is_a_warning() {
    let found = run(
        &se("  hosts: [a.com]\n  resolution: STATIC\n"),
        |index, out| {
            for (m, s) in &index.service_entries {
                check_resolution(m, &s.spec, out);
            }
        },
    );
    assert_eq!(found, vec![("se-static-no-endpoints", 7)]);
    let parsed = crate::manifest::parse_file(
        "t.yaml",
        se("  hosts: [a.com]\n  resolution: STATIC\n").as_bytes(),
        &crate::manifest::ReadOptions::default(),
    );
    let report = crate::validate::validate(&{
        let mut set = crate::manifest::ManifestSet::default();
        set.extend(&parsed);
        set
    });
    assert!(report.is_ok(), "{}", report.render_human());
}

#[test]
fn resolution_table() {
    table(
        check_resolution,
        &[
            ("  hosts: ['*.example.com']\n", vec![]),
            ("  hosts: [a.com]\n  resolution: DNS\n", vec![]),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1}, {address: 'unix:///var/run/s.sock'}, {address: '2001:db8::1'}]\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  workloadSelector: {labels: {app: vm}}\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n",
                vec![("se-static-no-endpoints", 7)],
            ),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  endpoints:\n  - address: 10.0.0.1\n  - address: db.example.com\n",
                vec![("se-static-address", 10)],
            ),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  endpoints:\n  - address: unix://relative.sock\n",
                vec![("se-static-address", 9)],
            ),
            (
                "  hosts: [a.com, '*.example.com']\n  resolution: DNS\n",
                vec![("se-dns-wildcard", 6)],
            ),
            (
                "  hosts:\n  - '*.example.com'\n  resolution: DNS_ROUND_ROBIN\n",
                vec![("se-dns-wildcard", 7)],
            ),
            (
                "  hosts: ['*.example.com']\n  resolution: DNS\n  endpoints: [{address: proxy.example.com}]\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  endpoints: [{address: 10.0.0.1}]\n",
                vec![("se-none-endpoints", 7)],
            ),
            (
                "  hosts: ['*.example.com']\n  resolution: DYNAMIC_DNS\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  resolution: DNS_ROUND_ROBIN\n  endpoints: [{address: a1.example.com}]\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  resolution: DNS_ROUND_ROBIN\n  endpoints:\n  - address: a1.example.com\n  - address: a2.example.com\n",
                vec![("se-dns-round-robin-endpoints", 8)],
            ),
        ],
    );
}

#[test]
fn endpoints_or_selector_table() {
    table(
        check_endpoints_or_selector,
        &[
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1}]\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1}]\n  workloadSelector:\n    labels: {app: vm}\n",
                vec![("se-endpoints-and-selector", 9)],
            ),
        ],
    );
}

#[test]
fn endpoint_ports_table() {
    table(
        check_endpoint_ports,
        &[
            (
                "  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1, ports: {http: 8080}}]\n",
                vec![],
            ),
            (
                "  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints:\n  - address: 10.0.0.1\n    ports:\n      web: 8080\n",
                vec![("se-endpoint-port", 12)],
            ),
            (
                "  hosts: [a.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints:\n  - address: 10.0.0.1\n    ports:\n      http: 0\n",
                vec![("se-port-number", 12)],
            ),
        ],
    );
}

#[test]
fn external_ports_table() {
    table(
        check_external_ports,
        &[
            (
                "  hosts: [a.com]\n  ports: [{number: 443, name: tls}]\n",
                vec![],
            ),
            ("  hosts: [a.com]\n  location: MESH_INTERNAL\n", vec![]),
            ("  hosts: [a.com]\n", vec![("se-external-no-ports", 5)]),
            (
                "  hosts: [a.com]\n  location: MESH_EXTERNAL\n",
                vec![("se-external-no-ports", 7)],
            ),
        ],
    );
}
