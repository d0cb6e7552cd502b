//! VirtualService checks: route weights, subsets and gateways that must exist in the revision,
//! host names, fault-injection and mirror percentages, abort status codes, match regexes,
//! durations, retry attempts, and two VirtualServices claiming one host on one gateway.

use std::collections::HashMap;

use super::Index;
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::{Destination, StringMatch, VirtualService};
use crate::manifest::yaml::pointer_join;
use crate::{duration, hosts};

/// The gateway name meaning "every sidecar in the mesh"; always exists.
pub const MESH_GATEWAY: &str = "mesh";

pub fn check(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    for (m, vs) in &index.virtual_services {
        let vs = &vs.spec;
        check_hosts(m, vs, out);
        check_weights(m, vs, out);
        check_subsets(index, m, vs, out);
        check_gateways(index, m, vs, out);
        check_percentages(m, vs, out);
        check_abort_status(m, vs, out);
        check_regexes(m, vs, out);
        check_durations(m, vs, out);
        check_retry_attempts(m, vs, out);
    }
    check_host_conflicts(index, out);
}

/// Every destination of a VirtualService with the JSON pointer of its `destination` field.
fn destinations(vs: &VirtualService) -> Vec<(String, &Destination)> {
    let mut found = Vec::new();
    for (i, http) in vs.http.iter().enumerate() {
        let base = format!("/spec/http/{i}");
        for (j, r) in http.route.iter().enumerate() {
            found.push((format!("{base}/route/{j}/destination"), &r.destination));
        }
        if let Some(mirror) = &http.mirror {
            found.push((format!("{base}/mirror"), mirror));
        }
        for (j, mirror) in http.mirrors.iter().enumerate() {
            found.push((
                format!("{base}/mirrors/{j}/destination"),
                &mirror.destination,
            ));
        }
    }
    for (i, tcp) in vs.tcp.iter().enumerate() {
        for (j, r) in tcp.route.iter().enumerate() {
            found.push((
                format!("/spec/tcp/{i}/route/{j}/destination"),
                &r.destination,
            ));
        }
    }
    for (i, tls) in vs.tls.iter().enumerate() {
        for (j, r) in tls.route.iter().enumerate() {
            found.push((
                format!("/spec/tls/{i}/route/{j}/destination"),
                &r.destination,
            ));
        }
    }
    found
}

/// `spec.hosts` are names or wildcards (`*` alone not on the mesh gateway); destination hosts
/// are names without wildcards.
pub fn check_hosts(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    let on_mesh = vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == MESH_GATEWAY);
    for (i, host) in vs.hosts.iter().enumerate() {
        let pointer = format!("/spec/hosts/{i}");
        if let Err(why) = hosts::check_host(host) {
            out.push(
                m.error("vs-host", &pointer, format!("{}: {why}", display_path(&pointer)))
                    .fix("write a service name (`reviews`), a DNS name (`api.example.com`) or a wildcard (`*.example.com`)"),
            );
        } else if host == "*" && on_mesh {
            out.push(
                m.error(
                    "vs-host",
                    &pointer,
                    format!(
                        "{}: `*` is not allowed for a VirtualService bound to the `mesh` gateway",
                        display_path(&pointer)
                    ),
                )
                .fix("name the services this VirtualService is for, or bind it only to ingress gateways"),
            );
        }
    }
    for (pointer, d) in destinations(vs) {
        let pointer = pointer_join(&pointer, "host");
        let bad = if d.host.contains('*') {
            Err(format!(
                "`{}` is a wildcard; a destination is one service",
                d.host
            ))
        } else {
            hosts::check_host(&d.host)
        };
        if let Err(why) = bad {
            out.push(
                m.error("vs-host", &pointer, format!("{}: {why}", display_path(&pointer)))
                    .fix("name the destination service, e.g. `reviews` or `reviews.shop.svc.cluster.local`"),
            );
        }
    }
}

/// Weights are 0–100 and, when a route has more than one destination, add up to 100. A single
/// destination takes all traffic whatever its weight, as in Istio.
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
        let mut in_range = true;
        for (j, w) in weights.iter().enumerate() {
            if let Some(w) = *w
                && !(0..=100).contains(&w)
            {
                in_range = false;
                let pointer = format!("{route}/{j}/weight");
                out.push(
                    m.error(
                        "vs-weight",
                        &pointer,
                        format!(
                            "{} is {w}; a weight is a percentage from 0 to 100",
                            display_path(&pointer)
                        ),
                    )
                    .fix("set the weight between 0 and 100"),
                );
            }
        }
        if weights.len() < 2 || !in_range {
            continue;
        }
        let sum: i64 = weights.iter().map(|w| i64::from(w.unwrap_or(0))).sum();
        if sum != 100 {
            let parts: Vec<String> = weights.iter().map(|w| w.unwrap_or(0).to_string()).collect();
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
                m.error(
                    "vs-weight-sum",
                    &route,
                    format!(
                        "the weights of {} add up to {sum} ({}); with more than one destination they must add up to 100",
                        display_path(&route),
                        parts.join(" + ")
                    ),
                )
                .fix(fix),
            );
        }
    }
}

/// Every `subset` named by a destination is defined by a DestinationRule for that host.
pub fn check_subsets(
    index: &Index<'_>,
    m: &Manifest,
    vs: &VirtualService,
    out: &mut Vec<Diagnostic>,
) {
    for (pointer, d) in destinations(vs) {
        let Some(subset) = d.subset.as_deref() else {
            continue;
        };
        let host = hosts::fqdn(&d.host, m.namespace());
        let rules = index.destination_rules_for(&host);
        if rules
            .iter()
            .any(|(_, dr)| dr.spec.subsets.iter().any(|s| s.name == subset))
        {
            continue;
        }
        let pointer = pointer_join(&pointer, "subset");
        let at = display_path(&pointer);
        let diagnostic = if rules.is_empty() {
            m.error(
                "vs-unknown-subset",
                &pointer,
                format!("{at}: subset `{subset}` of {host} is not defined: no DestinationRule in this revision is for {host}"),
            )
            .fix(format!(
                "add a DestinationRule with `host: {}` and a subset named `{subset}`, or remove `subset`",
                d.host
            ))
        } else {
            let defined: Vec<String> = rules
                .iter()
                .flat_map(|(_, dr)| dr.spec.subsets.iter().map(|s| format!("`{}`", s.name)))
                .collect();
            let where_: Vec<String> = rules
                .iter()
                .map(|(dm, _)| format!("{} ({}:{})", dm.key, dm.file, dm.line))
                .collect();
            let defined = if defined.is_empty() {
                "none".to_string()
            } else {
                defined.join(", ")
            };
            m.error(
                "vs-unknown-subset",
                &pointer,
                format!(
                    "{at}: subset `{subset}` of {host} is not defined by {}; defined subsets: {defined}",
                    where_.join(", ")
                ),
            )
            .fix(format!(
                "use one of the defined subsets, or add a subset named `{subset}` to the DestinationRule"
            ))
        };
        out.push(diagnostic);
    }
}

/// Gateway references (`name` in the VirtualService's namespace, or `namespace/name`).
fn gateway_refs(vs: &VirtualService) -> Vec<(String, &str)> {
    let mut refs = Vec::new();
    for (i, g) in vs.gateways.iter().enumerate() {
        refs.push((format!("/spec/gateways/{i}"), g.as_str()));
    }
    for (i, http) in vs.http.iter().enumerate() {
        for (j, mr) in http.matches.iter().enumerate() {
            for (k, g) in mr.gateways.iter().enumerate() {
                refs.push((format!("/spec/http/{i}/match/{j}/gateways/{k}"), g.as_str()));
            }
        }
    }
    for (i, tcp) in vs.tcp.iter().enumerate() {
        for (j, mr) in tcp.matches.iter().enumerate() {
            for (k, g) in mr.gateways.iter().enumerate() {
                refs.push((format!("/spec/tcp/{i}/match/{j}/gateways/{k}"), g.as_str()));
            }
        }
    }
    for (i, tls) in vs.tls.iter().enumerate() {
        for (j, mr) in tls.matches.iter().enumerate() {
            for (k, g) in mr.gateways.iter().enumerate() {
                refs.push((format!("/spec/tls/{i}/match/{j}/gateways/{k}"), g.as_str()));
            }
        }
    }
    refs
}

/// `namespace/name` of a gateway reference written in `namespace`; `mesh` stays `mesh`.
fn resolve_gateway(reference: &str, namespace: &str) -> String {
    if reference == MESH_GATEWAY || reference.contains('/') {
        reference.to_string()
    } else {
        format!("{namespace}/{reference}")
    }
}

/// Referenced gateways exist in the revision; `mesh` is built in.
pub fn check_gateways(
    index: &Index<'_>,
    m: &Manifest,
    vs: &VirtualService,
    out: &mut Vec<Diagnostic>,
) {
    for (pointer, reference) in gateway_refs(vs) {
        let resolved = resolve_gateway(reference, m.namespace());
        if resolved == MESH_GATEWAY || index.has_gateway(&resolved) {
            continue;
        }
        let known = index.gateway_names();
        let defined = if known.is_empty() {
            "the revision defines no Gateway".to_string()
        } else {
            format!("gateways in the revision: {}", known.join(", "))
        };
        out.push(
            m.error(
                "vs-unknown-gateway",
                &pointer,
                format!("{}: gateway `{resolved}` is not defined ({defined})", display_path(&pointer)),
            )
            .fix("name an existing Gateway as `name` (same namespace) or `namespace/name`, use `mesh` for sidecars, or add the Gateway"),
        );
    }
}

/// Fault-injection and mirror percentages are 0–100.
pub fn check_percentages(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    for (i, http) in vs.http.iter().enumerate() {
        let base = format!("/spec/http/{i}");
        let mut values: Vec<(String, f64)> = Vec::new();
        if let Some(fault) = &http.fault {
            if let Some(delay) = &fault.delay {
                if let Some(v) = delay.percentage.as_ref().and_then(|p| p.value) {
                    values.push((format!("{base}/fault/delay/percentage/value"), v));
                }
                if let Some(v) = delay.percent {
                    values.push((format!("{base}/fault/delay/percent"), f64::from(v)));
                }
            }
            if let Some(v) = fault
                .abort
                .as_ref()
                .and_then(|a| a.percentage.as_ref())
                .and_then(|p| p.value)
            {
                values.push((format!("{base}/fault/abort/percentage/value"), v));
            }
        }
        if let Some(v) = http.mirror_percentage.as_ref().and_then(|p| p.value) {
            values.push((format!("{base}/mirrorPercentage/value"), v));
        }
        if let Some(v) = http.mirror_percent {
            values.push((format!("{base}/mirrorPercent"), f64::from(v)));
        }
        if let Some(v) = http.mirror_percent_snake {
            values.push((format!("{base}/mirror_percent"), f64::from(v)));
        }
        for (j, mirror) in http.mirrors.iter().enumerate() {
            if let Some(v) = mirror.percentage.as_ref().and_then(|p| p.value) {
                values.push((format!("{base}/mirrors/{j}/percentage/value"), v));
            }
        }
        for (pointer, v) in values {
            if !(0.0..=100.0).contains(&v) {
                out.push(
                    m.error(
                        "vs-percentage",
                        &pointer,
                        format!(
                            "{} is {v}; a percentage is from 0 to 100",
                            display_path(&pointer)
                        ),
                    )
                    .fix("set a percentage between 0 and 100"),
                );
            }
        }
    }
}

/// An abort returns something, and its `httpStatus` is an HTTP status Envoy can send.
pub fn check_abort_status(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    for (i, http) in vs.http.iter().enumerate() {
        let Some(abort) = http.fault.as_ref().and_then(|f| f.abort.as_ref()) else {
            continue;
        };
        let base = format!("/spec/http/{i}/fault/abort");
        match abort.http_status {
            Some(status) if !(200..=599).contains(&status) => {
                let pointer = format!("{base}/httpStatus");
                out.push(
                    m.error(
                        "vs-abort-status",
                        &pointer,
                        format!("{} is {status}, not an HTTP status from 200 to 599", display_path(&pointer)),
                    )
                    .fix("use the status the fault should return, e.g. 503"),
                );
            }
            Some(_) => {}
            None if abort.grpc_status.is_none() && abort.http2_error.is_none() => out.push(
                m.error(
                    "vs-abort-status",
                    &base,
                    format!("{} says neither httpStatus, grpcStatus nor http2Error: it has nothing to return", display_path(&base)),
                )
                .fix("add `httpStatus: 503` (or `grpcStatus`), or remove `abort`"),
            ),
            None => {}
        }
    }
}

/// Every regex in a match compiles as RE2 syntax (the `regex` crate's dialect).
pub fn check_regexes(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    fn add<'a>(found: &mut Vec<(String, &'a str)>, pointer: String, sm: &'a StringMatch) {
        if let Some(re) = &sm.regex {
            found.push((pointer_join(&pointer, "regex"), re));
        }
    }
    let mut found: Vec<(String, &str)> = Vec::new();
    for (i, http) in vs.http.iter().enumerate() {
        for (j, mr) in http.matches.iter().enumerate() {
            let base = format!("/spec/http/{i}/match/{j}");
            for (field, sm) in [
                ("uri", &mr.uri),
                ("scheme", &mr.scheme),
                ("method", &mr.method),
                ("authority", &mr.authority),
            ] {
                if let Some(sm) = sm {
                    add(&mut found, pointer_join(&base, field), sm);
                }
            }
            for (field, map) in [
                ("headers", &mr.headers),
                ("queryParams", &mr.query_params),
                ("withoutHeaders", &mr.without_headers),
            ] {
                for (name, sm) in map {
                    add(
                        &mut found,
                        pointer_join(&pointer_join(&base, field), name),
                        sm,
                    );
                }
            }
        }
        if let Some(cors) = &http.cors_policy {
            for (j, sm) in cors.allow_origins.iter().enumerate() {
                add(
                    &mut found,
                    format!("/spec/http/{i}/corsPolicy/allowOrigins/{j}"),
                    sm,
                );
            }
        }
        if let Some(re) = http
            .rewrite
            .as_ref()
            .and_then(|r| r.uri_regex_rewrite.as_ref())
            .and_then(|r| r.regex.as_deref())
        {
            found.push((format!("/spec/http/{i}/rewrite/uriRegexRewrite/match"), re));
        }
    }
    for (pointer, re) in found {
        if let Err(err) = regex::Regex::new(re) {
            // The crate's message draws the pattern and a caret; its last line says why.
            let why = err.to_string();
            let why = why
                .lines()
                .last()
                .unwrap_or("invalid regex")
                .trim()
                .to_string();
            out.push(
                m.error(
                    "vs-regex",
                    &pointer,
                    format!("{} `{re}` is not a valid RE2 regex: {why}", display_path(&pointer)),
                )
                .fix("correct the regex (RE2 syntax: no lookaround or backreferences), or use `exact`/`prefix`"),
            );
        }
    }
}

/// Timeouts and delays are durations of at least 1ms, as the CRD requires.
pub fn check_durations(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    for (i, http) in vs.http.iter().enumerate() {
        let base = format!("/spec/http/{i}");
        let mut fields: Vec<(String, &str)> = Vec::new();
        if let Some(t) = &http.timeout {
            fields.push((format!("{base}/timeout"), t));
        }
        if let Some(r) = &http.retries {
            if let Some(t) = &r.per_try_timeout {
                fields.push((format!("{base}/retries/perTryTimeout"), t));
            }
            if let Some(t) = &r.backoff {
                fields.push((format!("{base}/retries/backoff"), t));
            }
        }
        if let Some(delay) = http.fault.as_ref().and_then(|f| f.delay.as_ref()) {
            if let Some(t) = &delay.fixed_delay {
                fields.push((format!("{base}/fault/delay/fixedDelay"), t));
            }
            if let Some(t) = &delay.exponential_delay {
                fields.push((format!("{base}/fault/delay/exponentialDelay"), t));
            }
        }
        if let Some(t) = http.cors_policy.as_ref().and_then(|c| c.max_age.as_deref()) {
            fields.push((format!("{base}/corsPolicy/maxAge"), t));
        }
        for (pointer, text) in fields {
            if let Err(why) = duration_at_least_1ms(text) {
                out.push(
                    m.error(
                        "vs-duration",
                        &pointer,
                        format!("{}: {why}", display_path(&pointer)),
                    )
                    .fix("write a duration of at least 1ms, like 250ms, 10s or 1m30s"),
                );
            }
        }
    }
}

/// A duration Istio accepts for fields whose CRD rule is `duration(self) >= duration('1ms')`.
pub(crate) fn duration_at_least_1ms(text: &str) -> Result<(), String> {
    let d = duration::parse(text)?;
    if d < std::time::Duration::from_millis(1) {
        return Err(format!("`{text}` is shorter than the 1ms minimum"));
    }
    Ok(())
}

/// Retry attempts are not negative.
pub fn check_retry_attempts(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    for (i, http) in vs.http.iter().enumerate() {
        if let Some(attempts) = http.retries.as_ref().and_then(|r| r.attempts)
            && attempts < 0
        {
            let pointer = format!("/spec/http/{i}/retries/attempts");
            out.push(
                m.error(
                    "vs-retry-attempts",
                    &pointer,
                    format!(
                        "{} is {attempts}; attempts cannot be negative",
                        display_path(&pointer)
                    ),
                )
                .fix("set `attempts` to 0 (no retries) or more"),
            );
        }
    }
}

/// Two VirtualServices for the same host on the same gateway (the implicit `mesh` included):
/// Istio would merge or drop one of them unpredictably.
pub fn check_host_conflicts(index: &Index<'_>, out: &mut Vec<Diagnostic>) {
    let mut claimed: HashMap<(String, String), (&Manifest, String)> = HashMap::new();
    for (m, vs) in &index.virtual_services {
        let gateways: Vec<String> = if vs.spec.gateways.is_empty() {
            vec![MESH_GATEWAY.to_string()]
        } else {
            vs.spec
                .gateways
                .iter()
                .map(|g| resolve_gateway(g, m.namespace()))
                .collect()
        };
        for (i, host) in vs.spec.hosts.iter().enumerate() {
            let pointer = format!("/spec/hosts/{i}");
            let fqdn = hosts::fqdn(host, m.namespace());
            for gateway in &gateways {
                let key = (gateway.clone(), fqdn.clone());
                match claimed.get(&key) {
                    // The same object twice is reported as `duplicate-object`.
                    Some((other, _)) if other.key.same_object(&m.key) => {}
                    Some((other, other_pointer)) => {
                        let at = other.locate(other_pointer);
                        out.push(
                            m.error(
                                "vs-host-conflict",
                                &pointer,
                                format!(
                                    "host {fqdn} on gateway `{gateway}` is also claimed by {} at {}:{}",
                                    other.key, other.file, at.line
                                ),
                            )
                            .fix("merge the routes into one VirtualService, or use `delegate` to split them"),
                        );
                    }
                    None => {
                        claimed.insert(key, (m, pointer.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ReadOptions, parse_file};

    type Check = fn(&Manifest, &VirtualService, &mut Vec<Diagnostic>);

    const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n";

    /// Parse `text` (which must read cleanly) and run `check` over the whole revision.
    fn run_index(text: &str, check: impl Fn(&Index<'_>, &mut Vec<Diagnostic>)) -> Vec<Diagnostic> {
        let f = parse_file("t.yaml", text.as_bytes(), &ReadOptions::default());
        assert!(
            f.diagnostics.is_empty(),
            "fixture does not read: {:?}",
            f.diagnostics
        );
        let index = Index::new(&f.manifests);
        let mut out = Vec::new();
        check(&index, &mut out);
        out
    }

    /// Run a per-VirtualService check on the VirtualService whose spec body is `body`.
    fn run(check: Check, body: &str) -> Vec<(&'static str, u32)> {
        run_index(&format!("{VS}{body}"), |index, out| {
            for (m, vs) in &index.virtual_services {
                check(m, &vs.spec, out);
            }
        })
        .iter()
        .map(|d| (d.code, d.line))
        .collect()
    }

    fn table(check: Check, cases: &[(&str, &[(&str, u32)])]) {
        for (body, expected) in cases {
            let got = run(check, body);
            assert_eq!(&got, expected, "for spec:\n{body}");
        }
    }

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
                (
                    "  tcp:\n  - route:\n    - destination: {host: r}\n      weight: 40\n",
                    &[],
                ),
                // Two destinations adding to 90: reported at `route`.
                (
                    "  http:\n  - route:\n    - destination: {host: r, subset: v1}\n      weight: 80\n    - destination: {host: r, subset: v2}\n      weight: 10\n",
                    &[("vs-weight-sum", 7)],
                ),
                // A missing weight counts as 0 when there are several destinations.
                (
                    "  tls:\n  - match: [{sniHosts: [a.com]}]\n    route:\n    - destination: {host: a}\n      weight: 50\n    - destination: {host: b}\n",
                    &[("vs-weight-sum", 8)],
                ),
                // Out of range: reported at the weight, no sum error piled on.
                (
                    "  tcp:\n  - route:\n    - destination: {host: a}\n      weight: 150\n    - destination: {host: b}\n      weight: -50\n",
                    &[("vs-weight", 9), ("vs-weight", 11)],
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
        assert!(d[0].message.contains("add up to 90 (80 + 10)"), "{}", d[0]);
        assert_eq!(
            d[0].fix.as_deref(),
            Some(
                "set spec.http[0].route[1].weight to 20 (or change the others) so the weights add up to 100"
            )
        );
    }

    #[test]
    fn hosts() {
        table(
            check_hosts,
            &[
                (
                    "  hosts: [reviews, \"*.example.com\"]\n  gateways: [gw]\n",
                    &[],
                ),
                ("  hosts: [reviews, re_views]\n", &[("vs-host", 6)]),
                // `*` alone is refused on the mesh (also implicitly), allowed on a gateway.
                ("  hosts: [\"*\"]\n", &[("vs-host", 6)]),
                ("  hosts: [\"*\"]\n  gateways: [gw]\n", &[]),
                (
                    "  hosts: [r]\n  http:\n  - route:\n    - destination: {host: \"*.x.com\"}\n",
                    &[("vs-host", 9)],
                ),
            ],
        );
    }

    #[test]
    fn percentages() {
        table(
            check_percentages,
            &[
                (
                    "  http:\n  - fault:\n      delay: {fixedDelay: 5s, percentage: {value: 10}}\n      abort: {httpStatus: 500, percentage: {value: 100}}\n    mirrorPercentage: {value: 50.5}\n",
                    &[],
                ),
                (
                    "  http:\n  - fault:\n      delay: {fixedDelay: 5s, percentage: {value: 110}}\n",
                    &[("vs-percentage", 8)],
                ),
                (
                    "  http:\n  - fault:\n      delay:\n        percent: -1\n",
                    &[("vs-percentage", 9)],
                ),
                (
                    "  http:\n  - mirrorPercentage:\n      value: -0.5\n",
                    &[("vs-percentage", 8)],
                ),
                ("  http:\n  - mirrorPercent: 101\n", &[("vs-percentage", 7)]),
                (
                    "  http:\n  - mirror_percent: 200\n",
                    &[("vs-percentage", 7)],
                ),
                (
                    "  http:\n  - mirrors:\n    - destination: {host: a}\n      percentage: {value: 100.1}\n",
                    &[("vs-percentage", 9)],
                ),
            ],
        );
    }

    #[test]
    fn abort_status() {
        table(
            check_abort_status,
            &[
                ("  http:\n  - fault:\n      abort: {httpStatus: 503}\n", &[]),
                (
                    "  http:\n  - fault:\n      abort: {grpcStatus: UNAVAILABLE}\n",
                    &[],
                ),
                (
                    "  http:\n  - fault:\n      abort:\n        httpStatus: 99\n",
                    &[("vs-abort-status", 9)],
                ),
                (
                    "  http:\n  - fault:\n      abort:\n        httpStatus: 600\n",
                    &[("vs-abort-status", 9)],
                ),
                (
                    "  http:\n  - fault:\n      abort:\n        percentage: {value: 5}\n",
                    &[("vs-abort-status", 8)],
                ),
            ],
        );
    }

    #[test]
    fn regexes() {
        table(
            check_regexes,
            &[
                (
                    "  http:\n  - match:\n    - uri: {regex: \"^/api/v[0-9]+\"}\n      headers:\n        x: {regex: \"a|b\"}\n",
                    &[],
                ),
                (
                    "  http:\n  - match:\n    - uri: {regex: \"(unclosed\"}\n",
                    &[("vs-regex", 8)],
                ),
                // Lookahead is not RE2.
                (
                    "  http:\n  - match:\n    - scheme: {regex: \"(?=x)\"}\n",
                    &[("vs-regex", 8)],
                ),
                (
                    "  http:\n  - match:\n    - method: {regex: \"[\"}\n",
                    &[("vs-regex", 8)],
                ),
                (
                    "  http:\n  - match:\n    - authority: {regex: \"*a\"}\n",
                    &[("vs-regex", 8)],
                ),
                (
                    "  http:\n  - match:\n    - headers:\n        x-a:\n          regex: \"(\"\n",
                    &[("vs-regex", 10)],
                ),
                (
                    "  http:\n  - match:\n    - queryParams:\n        q:\n          regex: \"a{2,1}\"\n",
                    &[("vs-regex", 10)],
                ),
                (
                    "  http:\n  - match:\n    - withoutHeaders:\n        h:\n          regex: \"\\\\\"\n",
                    &[("vs-regex", 10)],
                ),
            ],
        );
    }

    #[test]
    fn durations() {
        table(
            check_durations,
            &[
                (
                    "  http:\n  - timeout: 2s\n    retries: {attempts: 2, perTryTimeout: 500ms}\n    fault:\n      delay: {fixedDelay: 1.5s}\n",
                    &[],
                ),
                ("  http:\n  - timeout: \"2\"\n", &[("vs-duration", 7)]),
                (
                    "  http:\n  - retries:\n      perTryTimeout: 1d\n",
                    &[("vs-duration", 8)],
                ),
                (
                    "  http:\n  - fault:\n      delay:\n        fixedDelay: 0s\n",
                    &[("vs-duration", 9)],
                ),
            ],
        );
    }

    #[test]
    fn retry_attempts() {
        table(
            check_retry_attempts,
            &[
                ("  http:\n  - retries: {attempts: 0}\n", &[]),
                (
                    "  http:\n  - retries:\n      attempts: -1\n",
                    &[("vs-retry-attempts", 8)],
                ),
            ],
        );
    }

    const DR: &str = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n";

    fn subsets(text: &str) -> Vec<Diagnostic> {
        run_index(text, |index, out| {
            for (m, vs) in &index.virtual_services {
                check_subsets(index, m, &vs.spec, out);
            }
        })
    }

    #[test]
    fn subsets_must_exist_for_the_host() {
        let route = |host: &str, subset: &str| {
            format!(
                "{VS}  http:\n  - route:\n    - destination: {{host: {host}, subset: {subset}}}\n"
            )
        };
        // Short and fully qualified names of the same service both find the rule.
        assert!(subsets(&format!("{}{DR}", route("reviews", "v1"))).is_empty());
        assert!(
            subsets(&format!(
                "{}{DR}",
                route("reviews.default.svc.cluster.local", "v1")
            ))
            .is_empty()
        );
        let d = subsets(&format!("{}{DR}", route("reviews", "v2")));
        assert_eq!((d[0].code, d[0].line), ("vs-unknown-subset", 8));
        assert!(d[0].message.contains("defined subsets: `v1`"), "{}", d[0]);
        assert!(
            d[0].message
                .contains("DestinationRule default/reviews (t.yaml:10)"),
            "{}",
            d[0]
        );
        // A rule for another host does not count.
        let d = subsets(&format!("{}{DR}", route("ratings", "v1")));
        assert!(
            d[0].message.contains(
                "no DestinationRule in this revision is for ratings.default.svc.cluster.local"
            ),
            "{}",
            d[0]
        );
        // Mirrors and TCP routes are checked too.
        let d = subsets(&format!(
            "{VS}  http:\n  - mirror: {{host: reviews, subset: v9}}\n  tcp:\n  - route:\n    - destination: {{host: reviews, subset: v8}}\n{DR}"
        ));
        let lines: Vec<_> = d.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![7, 10]);
    }

    const GW: &str = "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: public\n  namespace: edge\nspec: {}\n";

    #[test]
    fn gateways_must_exist() {
        let gw = |body: &str| {
            run_index(&format!("{VS}{body}{GW}"), |index, out| {
                for (m, vs) in &index.virtual_services {
                    check_gateways(index, m, &vs.spec, out);
                }
            })
        };
        assert!(gw("  gateways: [mesh, edge/public]\n").is_empty());
        let d = gw("  gateways:\n  - mesh\n  - public\n");
        assert_eq!((d[0].code, d[0].line), ("vs-unknown-gateway", 8));
        assert!(
            d[0].message.contains(
                "`default/public` is not defined (gateways in the revision: edge/public)"
            ),
            "{}",
            d[0]
        );
        let d = gw("  http:\n  - match:\n    - gateways: [edge/private]\n");
        assert_eq!(d[0].line, 8);
    }

    #[test]
    fn host_conflicts_name_the_other_object() {
        let other = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews-2\nspec:\n  hosts:\n  - reviews.default.svc.cluster.local\n";
        let conflicts = |text: &str| run_index(text, check_host_conflicts);
        // Both on the implicit mesh gateway, one short name, one full name.
        let d = conflicts(&format!("{VS}  hosts: [reviews]\n{other}"));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].code, d[0].line), ("vs-host-conflict", 14));
        assert!(
            d[0].message.contains(
                "gateway `mesh` is also claimed by VirtualService default/reviews at t.yaml:6"
            ),
            "{}",
            d[0]
        );
        // Different gateways do not conflict.
        assert!(
            conflicts(&format!(
                "{VS}  hosts: [reviews]\n  gateways: [edge/public]\n{other}"
            ))
            .is_empty()
        );
    }
}
