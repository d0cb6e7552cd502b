//! Deprecated fields, each a warning naming its replacement. Where istioctl reports one, the
//! code is its: the webhook's deprecation warnings surface as SchemaWarning (IST0133:
//! `mirrorPercent`, outlier detection `consecutiveErrors`, consistent hash
//! `minimumRingSize`), `deprecation.FieldAnalyzer` reports Deprecated (IST0002: fault delay
//! `percent`, a Sidecar's `egressProxy`). Fields Istio's API marks deprecated that istioctl
//! does not report (`corsPolicy.allowOrigin`, `LEAST_CONN`) are warnings without a code.

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::destination_rule::{
    DestinationRule, LoadBalancerSettings, OutlierDetection, SimpleLb, TrafficPolicy,
};
use crate::manifest::istio::display_path;
use crate::validate::Index;

pub(super) fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, vs) in &index.virtual_services {
        for (i, http) in vs.spec.http.iter().enumerate() {
            let base = format!("/spec/http/{i}");
            for (field, value) in [
                ("mirrorPercent", http.mirror_percent),
                ("mirror_percent", http.mirror_percent_snake),
            ] {
                if let Some(v) = value {
                    let p = format!("{base}/{field}");
                    out.push(
                        m.warning(
                            "vs-deprecated-mirror-percent",
                            &p,
                            format!(
                                "{}: `{field}` is deprecated; use `mirrorPercentage`",
                                display_path(&p)
                            ),
                        )
                        .istio("IST0133")
                        .fix(format!(
                            "replace `{field}: {v}` with `mirrorPercentage: {{value: {v}}}`"
                        )),
                    );
                }
            }
            // istioctl reports the integer percent only when it is set above zero.
            if let Some(v) = http
                .fault
                .as_ref()
                .and_then(|f| f.delay.as_ref())
                .and_then(|d| d.percent)
                .filter(|v| *v > 0)
            {
                let p = format!("{base}/fault/delay/percent");
                out.push(
                    m.warning(
                        "vs-deprecated-delay-percent",
                        &p,
                        format!(
                            "{}: `percent` is deprecated; use `percentage`",
                            display_path(&p)
                        ),
                    )
                    .istio("IST0002")
                    .fix(format!(
                        "replace `percent: {v}` with `percentage: {{value: {v}}}`"
                    )),
                );
            }
            if let Some(cors) = http
                .cors_policy
                .as_ref()
                .filter(|c| !c.allow_origin.is_empty())
            {
                let p = format!("{base}/corsPolicy/allowOrigin");
                let exact: Vec<String> = cors
                    .allow_origin
                    .iter()
                    .map(|o| format!("{{exact: {o:?}}}"))
                    .collect();
                out.push(
                    m.warning(
                        "vs-deprecated-allow-origin",
                        &p,
                        format!(
                            "{}: `allowOrigin` is deprecated; use `allowOrigins`",
                            display_path(&p)
                        ),
                    )
                    .fix(format!(
                        "replace it with `allowOrigins: [{}]`",
                        exact.join(", ")
                    )),
                );
            }
        }
    }
    for (m, dr) in &index.destination_rules {
        check_rule(m, &dr.spec, out);
    }
    for (m, sidecar) in &index.sidecars {
        if sidecar
            .spec
            .outbound_traffic_policy
            .as_ref()
            .is_some_and(|p| p.egress_proxy.is_some())
        {
            let p = "/spec/outboundTrafficPolicy/egressProxy";
            out.push(
                m.warning(
                    "sidecar-egress-proxy-ignored",
                    p,
                    format!("{}: egressProxy is ignored by Istio", display_path(p)),
                )
                .istio("IST0002")
                .fix("remove egressProxy; route outbound traffic through an egress gateway with a ServiceEntry and VirtualService instead"),
            );
        }
    }
}

/// One traffic policy's deprecated-field carriers, with the policy's pointer.
type Policy<'a> = (
    String,
    Option<&'a OutlierDetection>,
    Option<&'a LoadBalancerSettings>,
);

/// Every traffic policy of a rule (top level, per port, per subset) with its pointer.
fn policies(dr: &DestinationRule) -> Vec<Policy<'_>> {
    fn add<'a>(found: &mut Vec<Policy<'a>>, base: String, policy: &'a TrafficPolicy) {
        for (k, port) in policy.port_level_settings.iter().enumerate() {
            found.push((
                format!("{base}/portLevelSettings/{k}"),
                port.outlier_detection.as_deref(),
                port.load_balancer.as_deref(),
            ));
        }
        found.push((
            base,
            policy.outlier_detection.as_deref(),
            policy.load_balancer.as_deref(),
        ));
    }
    let mut found = Vec::new();
    if let Some(p) = &dr.traffic_policy {
        add(&mut found, "/spec/trafficPolicy".to_string(), p);
    }
    for (j, subset) in dr.subsets.iter().enumerate() {
        if let Some(p) = &subset.traffic_policy {
            add(&mut found, format!("/spec/subsets/{j}/trafficPolicy"), p);
        }
    }
    found
}

fn check_rule(m: &Manifest, dr: &DestinationRule, out: &mut Vec<Diagnostic>) {
    for (base, outlier, lb) in policies(dr) {
        if let Some(v) = outlier
            .and_then(|o| o.consecutive_errors)
            .filter(|v| *v != 0)
        {
            let p = format!("{base}/outlierDetection/consecutiveErrors");
            out.push(
                m.warning(
                    "dr-deprecated-consecutive-errors",
                    &p,
                    format!(
                        "{}: `consecutiveErrors` is deprecated; use `consecutive5xxErrors` or `consecutiveGatewayErrors`",
                        display_path(&p)
                    ),
                )
                .istio("IST0133")
                .fix(format!("replace `consecutiveErrors: {v}` with `consecutive5xxErrors: {v}`")),
            );
        }
        let Some(lb) = lb else {
            continue;
        };
        if let Some(v) = lb
            .consistent_hash
            .as_ref()
            .and_then(|c| c.minimum_ring_size)
            .filter(|v| *v != 0)
        {
            let p = format!("{base}/loadBalancer/consistentHash/minimumRingSize");
            out.push(
                m.warning(
                    "dr-deprecated-minimum-ring-size",
                    &p,
                    format!(
                        "{}: `minimumRingSize` is deprecated; use `ringHash.minimumRingSize`",
                        display_path(&p)
                    ),
                )
                .istio("IST0133")
                .fix(format!(
                    "replace it with `ringHash: {{minimumRingSize: {v}}}`"
                )),
            );
        }
        if lb.simple == Some(SimpleLb::LeastConn) {
            let p = format!("{base}/loadBalancer/simple");
            out.push(
                m.warning(
                    "dr-deprecated-least-conn",
                    &p,
                    format!(
                        "{}: LEAST_CONN is deprecated; use LEAST_REQUEST",
                        display_path(&p)
                    ),
                )
                .fix("write `simple: LEAST_REQUEST` (the same algorithm)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::analyze::tests::{doc, run};

    #[test]
    fn deprecated_fields_table() {
        let vs = |body: &str| {
            doc(
                "VirtualService",
                "vs",
                "default",
                &format!(
                    "  hosts: [web]\n  http:\n  - route:\n    - destination: {{host: web}}\n{body}"
                ),
            )
        };
        let dr = |body: &str| {
            doc(
                "DestinationRule",
                "dr",
                "default",
                &format!("  host: web\n{body}"),
            )
        };
        let cases = [
            (
                vs("    mirrorPercent: 5\n"),
                vec![("vs-deprecated-mirror-percent", 12)],
            ),
            (
                vs("    mirror_percent: 5\n"),
                vec![("vs-deprecated-mirror-percent", 12)],
            ),
            (vs("    mirrorPercentage: {value: 5}\n"), vec![]),
            (
                vs("    fault:\n      delay:\n        fixedDelay: 1s\n        percent: 10\n"),
                vec![("vs-deprecated-delay-percent", 15)],
            ),
            // istioctl only reports a percent above zero.
            (
                vs("    fault:\n      delay:\n        fixedDelay: 1s\n        percent: 0\n"),
                vec![],
            ),
            (
                vs("    corsPolicy:\n      allowOrigin: [\"https://a.com\"]\n"),
                vec![("vs-deprecated-allow-origin", 13)],
            ),
            (
                dr("  trafficPolicy:\n    outlierDetection:\n      consecutiveErrors: 5\n"),
                vec![("dr-deprecated-consecutive-errors", 11)],
            ),
            (
                dr(
                    "  subsets:\n  - name: v1\n    labels: {v: \"1\"}\n    trafficPolicy:\n      loadBalancer:\n        consistentHash:\n          httpHeaderName: x\n          minimumRingSize: 1024\n",
                ),
                vec![("dr-deprecated-minimum-ring-size", 16)],
            ),
            (
                dr(
                    "  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 80}\n      loadBalancer: {simple: LEAST_CONN}\n",
                ),
                vec![("dr-deprecated-least-conn", 12)],
            ),
            (
                doc(
                    "Sidecar",
                    "default",
                    "default",
                    "  outboundTrafficPolicy:\n    mode: ALLOW_ANY\n    egressProxy:\n      host: proxy.example.com\n      port: {number: 3128}\n",
                ),
                vec![("sidecar-egress-proxy-ignored", 10)],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(run(&text, check), want, "{text}");
        }
    }
}
