//! Routes: a VirtualService has some (Istio refuses one with no http, tcp or tls route), and
//! route weights, which Istio reads as relative shares: only a negative weight, or a total of 0
//! across several destinations, is refused; a split that does not add up to 100 is a warning.

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::VirtualService;

/// Istio's `ValidateVirtualService`: "http, tcp or tls must be provided in virtual service",
/// for every VirtualService, delegates (without hosts) included.
pub fn check_routes(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    if vs.http.is_empty() && vs.tcp.is_empty() && vs.tls.is_empty() {
        out.push(
            m.error(
                "vs-no-routes",
                "/spec",
                "the VirtualService has no http, tcp or tls routes, so it routes nothing; Istio refuses it",
            )
            .fix("add routes under spec.http (or spec.tcp, spec.tls), or remove the VirtualService"),
        );
    }
}

/// Weights are not negative (Istio's `validateWeight`); several destinations do not all weigh
/// 0 (`validateHTTPRouteDestinations`: "total destination weight = 0"); and, as a warning,
/// several destinations add up to 100. A single destination takes all traffic whatever its
/// weight, as in Istio.
pub fn check_weights(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    let mut routes: Vec<(String, Vec<Option<i32>>)> = Vec::new();
    for (i, r) in vs.http.iter().enumerate() {
        routes.push((
            format!("/spec/http/{i}/route"),
            r.route.iter().map(|d| d.weight).collect(),
        ));
    }
    for (i, r) in vs.tcp.iter().enumerate() {
        routes.push((
            format!("/spec/tcp/{i}/route"),
            r.route.iter().map(|d| d.weight).collect(),
        ));
    }
    for (i, r) in vs.tls.iter().enumerate() {
        routes.push((
            format!("/spec/tls/{i}/route"),
            r.route.iter().map(|d| d.weight).collect(),
        ));
    }
    for (route, weights) in routes {
        let mut negative = false;
        for (j, w) in weights.iter().enumerate() {
            if let Some(w) = *w
                && w < 0
            {
                negative = true;
                let pointer = format!("{route}/{j}/weight");
                out.push(
                    m.error(
                        "vs-weight",
                        &pointer,
                        format!(
                            "{} is {w}; a weight cannot be negative",
                            display_path(&pointer)
                        ),
                    )
                    .fix("set the weight to 0 (no traffic) or more"),
                );
            }
        }
        if weights.len() < 2 || negative {
            continue;
        }
        // An unset weight is 0, as in Istio's proto.
        let sum: i64 = weights.iter().map(|w| i64::from(w.unwrap_or(0))).sum();
        let parts: Vec<String> = weights.iter().map(|w| w.unwrap_or(0).to_string()).collect();
        if sum == 0 {
            out.push(
                m.error(
                    "vs-weight-zero",
                    &route,
                    format!(
                        "every destination of {} weighs 0 ({}); Istio refuses a total weight of 0 when there are several destinations",
                        display_path(&route),
                        parts.join(" + ")
                    ),
                )
                .fix("give the destination that should take the traffic a weight, e.g. 100"),
            );
        } else if sum != 100 {
            let last = weights.len() - 1;
            let wanted = i64::from(weights[last].unwrap_or(0)) + 100 - sum;
            let fix = if (0..=100).contains(&wanted) {
                format!(
                    "set {}.weight to {wanted} (or change the others) so the weights add up to 100",
                    display_path(&format!("{route}/{last}"))
                )
            } else {
                "change the weights so they add up to 100".to_string()
            };
            out.push(
                m.warning(
                    "vs-weight-sum",
                    &route,
                    format!(
                        "the weights of {} add up to {sum} ({}), not 100; Istio reads them as relative shares, so the split is not the percentages written",
                        display_path(&route),
                        parts.join(" + ")
                    ),
                )
                .fix(fix),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::virtual_service::fixtures::{VS, run_index, table};

    /// Istio's `validateWeight` and `validateHTTPRouteDestinations`/`validateRouteDestinations`.
    #[test]
    fn weights() {
        table(
            check_weights,
            &[
                // Canary 90/10 is fine; so is a single destination without a weight.
                (
                    "  http:\n  - route:\n    - destination: {host: r, subset: v1}\n      weight: 90\n    - destination: {host: r, subset: v2}\n      weight: 10\n",
                    &[],
                ),
                ("  http:\n  - route:\n    - destination: {host: r}\n", &[]),
                // A single destination: any weight, 0 and over 100 included.
                (
                    "  tcp:\n  - route:\n    - destination: {host: r}\n      weight: 40\n",
                    &[],
                ),
                (
                    "  http:\n  - route:\n    - destination: {host: r}\n      weight: 0\n",
                    &[],
                ),
                (
                    "  http:\n  - route:\n    - destination: {host: r}\n      weight: 150\n",
                    &[],
                ),
                // Two destinations adding to 90: a warning at `route`.
                (
                    "  http:\n  - route:\n    - destination: {host: r, subset: v1}\n      weight: 80\n    - destination: {host: r, subset: v2}\n      weight: 10\n",
                    &[("vs-weight-sum", 7)],
                ),
                // Weights over 100 are relative shares to Istio: a warning only.
                (
                    "  http:\n  - route:\n    - destination: {host: a}\n      weight: 150\n    - destination: {host: b}\n      weight: 50\n",
                    &[("vs-weight-sum", 7)],
                ),
                // A missing weight counts as 0 when there are several destinations.
                (
                    "  tls:\n  - match: [{sniHosts: [a.com]}]\n    route:\n    - destination: {host: a}\n      weight: 50\n    - destination: {host: b}\n",
                    &[("vs-weight-sum", 8)],
                ),
                // Several destinations and a total of 0 (all unset here): Istio refuses it.
                (
                    "  http:\n  - route:\n    - destination: {host: a}\n    - destination: {host: b}\n",
                    &[("vs-weight-zero", 7)],
                ),
                (
                    "  tcp:\n  - route:\n    - destination: {host: a}\n      weight: 0\n    - destination: {host: b}\n      weight: 0\n",
                    &[("vs-weight-zero", 7)],
                ),
                // Negative: reported at the weight, no sum diagnostic piled on.
                (
                    "  tcp:\n  - route:\n    - destination: {host: a}\n      weight: 150\n    - destination: {host: b}\n      weight: -50\n",
                    &[("vs-weight", 11)],
                ),
            ],
        );
    }

    #[test]
    fn weight_sum_fix_names_the_weight_to_change() {
        let d = run_index(
            &format!(
                "{VS}  http:\n  - route:\n    - destination: {{host: r, subset: v1}}\n      weight: 80\n    - destination: {{host: r, subset: v2}}\n      weight: 10\n"
            ),
            |index, out| {
                for (m, vs) in &index.virtual_services {
                    check_weights(m, &vs.spec, out);
                }
            },
        );
        assert!(!d[0].is_error());
        assert!(d[0].message.contains("add up to 90 (80 + 10)"), "{}", d[0]);
        assert_eq!(
            d[0].fix.as_deref(),
            Some(
                "set spec.http[0].route[1].weight to 20 (or change the others) so the weights add up to 100"
            )
        );
    }

    /// Istio's `ValidateVirtualService`: "http, tcp or tls must be provided in virtual
    /// service", delegates included.
    #[test]
    fn routes_are_required() {
        table(
            check_routes,
            &[
                ("  hosts: [r]\n", &[("vs-no-routes", 5)]),
                // A delegate VirtualService (no hosts) needs routes too.
                ("  exportTo: [\".\"]\n", &[("vs-no-routes", 5)]),
                (
                    "  hosts: [r]\n  tcp:\n  - route:\n    - destination: {host: r}\n",
                    &[],
                ),
                ("  hosts: [r]\n  http:\n  - redirect: {uri: /v2}\n", &[]),
            ],
        );
    }
}
