//! DestinationRule load balancer settings: the warmup ramp (and its deprecated predecessor
//! `warmupDurationSecs`) and consistent hashing. (The other deprecated fields istioctl reports,
//! `consecutiveErrors`, `minimumRingSize`, `LEAST_CONN`, are `validate::analyze`'s.)

use super::{Manifest, display_path, duration_at_least_1ms, policies};
use crate::diagnostic::Diagnostic;
use crate::manifest::istio::DestinationRule;
use crate::manifest::istio::destination_rule::{LoadBalancerSettings, Warmup};

/// Maglev's table size must stay below this (Envoy's limit, which Istio's webhook repeats).
const MAGLEV_TABLE_LIMIT: u64 = 5_000_011;

/// The warmup ramp and consistent hashing of every load balancer of the rule.
pub fn check_load_balancers(m: &Manifest, dr: &DestinationRule, out: &mut Vec<Diagnostic>) {
    for parts in policies(dr) {
        let Some(lb) = parts.load_balancer else {
            continue;
        };
        let base = format!("{}/loadBalancer", parts.pointer);
        if let Some(warmup) = &lb.warmup {
            check_warmup(m, &format!("{base}/warmup"), warmup, out);
        }
        if let Some(text) = &lb.warmup_duration_secs {
            let pointer = format!("{base}/warmupDurationSecs");
            if let Err(why) = duration_at_least_1ms(text) {
                out.push(
                    m.error(
                        "dr-warmup",
                        &pointer,
                        format!("{}: {why}", display_path(&pointer)),
                    )
                    .fix("write a duration of at least 1ms, like 60s"),
                );
            }
            // Deprecated in the CRD; istioctl does not report it, so it has no IST code.
            out.push(
                m.warning(
                    "dr-deprecated-warmup-duration-secs",
                    &pointer,
                    format!(
                        "{}: `warmupDurationSecs` is deprecated; use `warmup.duration`",
                        display_path(&pointer)
                    ),
                )
                .fix(format!("replace it with `warmup: {{duration: {text}}}`, which also takes minimumPercent and aggression")),
            );
        }
        check_consistent_hash(m, &base, lb, out);
    }
}

/// `minimumPercent` is a percentage, `aggression` positive (the CRD's minimum is 0, and
/// Istio's webhook refuses 0 itself: Envoy divides by it), `duration` at least 1ms.
fn check_warmup(m: &Manifest, base: &str, warmup: &Warmup, out: &mut Vec<Diagnostic>) {
    if let Err(why) = duration_at_least_1ms(&warmup.duration) {
        let pointer = format!("{base}/duration");
        out.push(
            m.error(
                "dr-warmup",
                &pointer,
                format!("{}: {why}", display_path(&pointer)),
            )
            .fix("write a duration of at least 1ms, like 60s"),
        );
    }
    if let Some(v) = warmup.minimum_percent
        && !(0.0..=100.0).contains(&v)
    {
        let pointer = format!("{base}/minimumPercent");
        out.push(
            m.error(
                "dr-warmup",
                &pointer,
                format!(
                    "{} is {v}; a percentage is from 0 to 100",
                    display_path(&pointer)
                ),
            )
            .fix("set the share of traffic a new endpoint starts with, from 0 to 100 (Envoy's default is 10)"),
        );
    }
    if let Some(v) = warmup.aggression
        && v.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    {
        let pointer = format!("{base}/aggression");
        out.push(
            m.error(
                "dr-warmup",
                &pointer,
                format!(
                    "{} is {v}; aggression must be greater than 0",
                    display_path(&pointer)
                ),
            )
            .fix("set a positive aggression: 1 ramps traffic up linearly, higher values faster at the end"),
        );
    }
}

/// The deprecated `minimumRingSize` and a hash algorithm cannot both be set; Maglev needs a
/// prime table size below Envoy's limit.
fn check_consistent_hash(
    m: &Manifest,
    base: &str,
    lb: &LoadBalancerSettings,
    out: &mut Vec<Diagnostic>,
) {
    let Some(hash) = &lb.consistent_hash else {
        return;
    };
    let base = format!("{base}/consistentHash");
    if hash.minimum_ring_size.is_some() && (hash.ring_hash.is_some() || hash.maglev.is_some()) {
        let pointer = format!("{base}/minimumRingSize");
        out.push(
            m.error(
                "dr-load-balancer",
                &pointer,
                format!(
                    "{} and {} cannot both be set",
                    display_path(&pointer),
                    if hash.ring_hash.is_some() {
                        "ringHash"
                    } else {
                        "maglev"
                    }
                ),
            )
            .fix("remove minimumRingSize; with ringHash, write `ringHash: {minimumRingSize: N}`"),
        );
    }
    if let Some(maglev) = &hash.maglev {
        let pointer = format!("{base}/maglev/tableSize");
        let why = match maglev.table_size.unwrap_or(0) {
            0 => Some("is not set; Maglev needs a table size".to_string()),
            n if n >= MAGLEV_TABLE_LIMIT => {
                Some(format!("is {n}; it must be less than {MAGLEV_TABLE_LIMIT}"))
            }
            n if !is_prime(n) => Some(format!("is {n}, which is not a prime number")),
            _ => None,
        };
        if let Some(why) = why {
            out.push(
                m.error(
                    "dr-load-balancer",
                    &pointer,
                    format!("{} {why}", display_path(&pointer)),
                )
                .fix("use a prime table size such as 65537 (Envoy's default)"),
            );
        }
    }
}

/// Envoy's primality test for Maglev table sizes (Istio copies it).
fn is_prime(n: u64) -> bool {
    if n < 4 {
        // Envoy counts 1 as prime; 0 is refused as "not set" before this.
        return n != 0;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let mut f = 3;
    while f * f <= n {
        if n.is_multiple_of(f) {
            return false;
        }
        f += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::tests::table;
    use super::*;

    #[test]
    fn warmup() {
        table(
            check_load_balancers,
            &[
                (
                    "  host: r\n  trafficPolicy:\n    loadBalancer:\n      warmup: {duration: 300s, minimumPercent: 5.0, aggression: 5.0}\n",
                    &[],
                ),
                // The CRD's minimum for aggression is 0; below 1 is fine since Istio 1.29.
                (
                    "  host: r\n  trafficPolicy:\n    loadBalancer:\n      warmup: {duration: 300s, minimumPercent: 0, aggression: 0.3}\n",
                    &[],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    loadBalancer:\n      warmup:\n        duration: 300s\n        minimumPercent: 150.0\n        aggression: -1\n",
                    &[("dr-warmup", 11), ("dr-warmup", 12)],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    loadBalancer:\n      warmup:\n        duration: 0s\n        aggression: 0\n",
                    &[("dr-warmup", 10), ("dr-warmup", 11)],
                ),
                // Per port and per subset too, and the deprecated warmupDurationSecs.
                (
                    "  host: r\n  subsets:\n  - name: v1\n    labels: {version: v1}\n    trafficPolicy:\n      portLevelSettings:\n      - port: {number: 80}\n        loadBalancer:\n          warmupDurationSecs: 10x\n",
                    &[
                        ("dr-warmup", 14),
                        ("dr-deprecated-warmup-duration-secs", 14),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn consistent_hash() {
        table(
            check_load_balancers,
            &[
                (
                    "  host: r\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}\n",
                    &[],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n        useSourceIp: true\n        minimumRingSize: 1024\n        ringHash: {minimumRingSize: 1024}\n",
                    &[("dr-load-balancer", 11)],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n        useSourceIp: true\n        maglev:\n          tableSize: 65536\n",
                    &[("dr-load-balancer", 12)],
                ),
                (
                    "  host: r\n  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n        useSourceIp: true\n        maglev: {}\n",
                    &[("dr-load-balancer", 11)],
                ),
            ],
        );
        assert!([2, 3, 5, 65537, 5_000_011].iter().all(|n| is_prime(*n)));
        assert!(![0, 4, 9, 65536, 5_000_001].iter().any(|n| is_prime(*n)));
    }

    #[test]
    fn warmup_duration_secs_is_deprecated_for_warmup() {
        let d = super::super::tests::run(
            check_load_balancers,
            "  host: r\n  trafficPolicy:\n    loadBalancer:\n      warmupDurationSecs: 60s\n",
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, "dr-deprecated-warmup-duration-secs");
        assert!(!d[0].is_error() && d[0].istio.is_none(), "{}", d[0]);
        assert!(d[0].message.contains("warmup.duration"), "{}", d[0]);
    }
}
