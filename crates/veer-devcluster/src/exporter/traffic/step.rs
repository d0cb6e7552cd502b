//! Advancing the model by a step: the planned flows rounded to whole requests (carrying the
//! fractions), aborts, delays and errors drawn among them, and the batches each sidecar
//! reports.

use std::time::Duration;

use super::plan::Leg;
use super::{Batch, FAULT_ABORTED, FAULT_DELAYED, NO_FLAGS, Reporter, Traffic};

/// The fractions of a request each count of a flow carries to the next step.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Carry {
    requests: f64,
    aborts: f64,
    delays: f64,
    errors: f64,
    delayed_errors: f64,
}

/// `exact` plus what was carried, as whole requests; the rest is carried on.
fn whole(carry: &mut f64, exact: f64) -> u64 {
    let total = exact.max(0.0) + *carry;
    // The epsilon keeps 0.1 + 0.1 + … from landing a hair under a whole request.
    let n = (total + 1e-9).floor();
    *carry = (total - n).max(0.0);
    n as u64
}

impl Traffic {
    /// Generates the requests of the next `step`.
    pub fn advance(&mut self, step: Duration) -> Vec<Batch> {
        let plan = self.plan(step.as_secs_f64());
        let mut batches = Vec::new();
        for flow in plan {
            let behaviour = self.behaviour(&flow.key, &flow.subset);
            let state = self.service(&flow.key);
            let carry = state
                .carries
                .entry((flow.path, flow.leg, flow.subset.clone()))
                .or_default();
            let requests = whole(&mut carry.requests, flow.requests);
            let (abort, delay) = match &flow.fault {
                Some(f) => (f.abort.as_ref(), f.delay.as_ref()),
                None => (None, None),
            };
            let aborted = abort.map_or(0, |a| {
                whole(
                    &mut carry.aborts,
                    requests as f64 * a.percent.clamp(0.0, 100.0) / 100.0,
                )
                .min(requests)
            });
            let forwarded = requests - aborted;
            let delayed = delay.map_or(0, |d| {
                whole(
                    &mut carry.delays,
                    forwarded as f64 * d.percent.clamp(0.0, 100.0) / 100.0,
                )
                .min(forwarded)
            });
            let prompt = forwarded - delayed;
            let errors = whole(&mut carry.errors, prompt as f64 * behaviour.error_rate).min(prompt);
            let delayed_errors = whole(
                &mut carry.delayed_errors,
                delayed as f64 * behaviour.error_rate,
            )
            .min(delayed);
            let batch = |reporter, subset: Option<&str>, code, flags, count, duration_ms| Batch {
                key: flow.key.clone(),
                reporter,
                subset: subset.map(str::to_string),
                code,
                flags,
                count,
                duration_ms,
            };
            let subset = Some(flow.subset.as_str());
            let latency = behaviour.latency_ms;
            let extra = delay.map_or(0.0, |d| d.delay_ms.max(0.0));
            let mut out = Vec::new();
            if let Some(a) = abort {
                out.push(batch(
                    Reporter::Source,
                    None,
                    a.http_status,
                    FAULT_ABORTED,
                    aborted,
                    0.0,
                ));
            }
            for (count, code) in [(prompt - errors, 200), (errors, 500)] {
                if flow.leg == Leg::Routed {
                    out.push(batch(
                        Reporter::Source,
                        subset,
                        code,
                        NO_FLAGS,
                        count,
                        latency,
                    ));
                }
                out.push(batch(
                    Reporter::Destination,
                    subset,
                    code,
                    NO_FLAGS,
                    count,
                    latency,
                ));
            }
            for (count, code) in [(delayed - delayed_errors, 200), (delayed_errors, 500)] {
                out.push(batch(
                    Reporter::Source,
                    subset,
                    code,
                    FAULT_DELAYED,
                    count,
                    latency + extra,
                ));
                out.push(batch(
                    Reporter::Destination,
                    subset,
                    code,
                    NO_FLAGS,
                    count,
                    latency,
                ));
            }
            batches.extend(out.into_iter().filter(|b| b.count > 0));
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::Behaviour;
    use super::super::tests::key;
    use super::*;
    use crate::exporter::weights::{Fault, FaultAbort, FaultDelay, Mirror, Routes, Split};

    type Tally = BTreeMap<(Reporter, Option<String>, u16, &'static str), (u64, f64)>;

    /// Requests per (reporter, subset, code, flags), with the duration they were reported at.
    fn tally(traffic: &mut Traffic, steps: usize, step: Duration) -> Tally {
        let mut sums = Tally::new();
        for _ in 0..steps {
            for b in traffic.advance(step) {
                let e = sums
                    .entry((b.reporter, b.subset, b.code, b.flags))
                    .or_insert((0, b.duration_ms));
                assert_eq!(e.1, b.duration_ms, "one duration per kind of request");
                e.0 += b.count;
            }
        }
        sums
    }

    /// (ok, errors) the destination reported per subset.
    fn answered(tally: &Tally) -> BTreeMap<String, (u64, u64)> {
        let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for ((reporter, subset, code, _), (count, _)) in tally {
            if *reporter != Reporter::Destination {
                continue;
            }
            let e = out.entry(subset.clone().unwrap_or_default()).or_default();
            if *code >= 500 {
                e.1 += count;
            } else {
                e.0 += count;
            }
        }
        out
    }

    #[test]
    fn no_split_no_traffic() {
        let mut t = Traffic::new(100.0);
        t.set_behaviour(&key(), "v1", Behaviour::default());
        assert!(t.advance(Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn rate_follows_weights_with_fractions_carried() {
        let mut t = Traffic::new(10.0);
        let mut live = BTreeMap::new();
        live.insert(
            key(),
            Routes {
                plain: Some(Split::weights([("v1", 90), ("v2", 10)])),
                matched: None,
            },
        );
        t.set_live(live);
        // 10 rps for 10 s in 100 ms steps: v2 gets 0.1 request per step.
        let sums = answered(&tally(&mut t, 100, Duration::from_millis(100)));
        assert_eq!(sums["v1"], (90, 0));
        assert_eq!(sums["v2"], (10, 0));
    }

    #[test]
    fn errors_follow_the_error_rate() {
        let mut t = Traffic::new(100.0);
        t.set_override(&key(), Some(Split::weights([("v2", 100)])));
        t.set_behaviour(
            &key(),
            "v2",
            Behaviour {
                error_rate: 0.25,
                latency_ms: 5.0,
            },
        );
        let sums = answered(&tally(&mut t, 10, Duration::from_millis(100)));
        assert_eq!(sums["v2"], (75, 25));
    }

    #[test]
    fn rate_per_service() {
        let mut t = Traffic::new(10.0);
        t.set_override(&key(), Some(Split::weights([("v1", 100)])));
        t.set_rate(&key(), 0.0);
        assert!(t.advance(Duration::from_secs(5)).is_empty());
    }

    fn ab() -> Routes {
        Routes {
            plain: Some(Split::weights([("v1", 100)])),
            matched: Some(Split::weights([("v2", 100)])),
        }
    }

    fn one_route(split: Split) -> Routes {
        Routes {
            plain: Some(split),
            matched: None,
        }
    }

    fn faulty(delay: Option<(f64, f64)>, abort: Option<(u16, f64)>) -> Split {
        Split {
            fault: Some(Fault {
                delay: delay.map(|(delay_ms, percent)| FaultDelay { delay_ms, percent }),
                abort: abort.map(|(http_status, percent)| FaultAbort {
                    http_status,
                    percent,
                }),
            }),
            ..Split::weights([("v2", 100)])
        }
    }

    /// 100 requests per second for 10 s in 100 ms steps through each set of routes: what each
    /// sidecar reports. v1 answers in 20 ms; v2 in 50 ms with `v2_errors` of them 500.
    #[test]
    fn what_each_sidecar_reports() {
        use Reporter::{Destination as D, Source as S};
        let v = |s: &str| Some(s.to_string());
        type Row = (Reporter, Option<String>, u16, &'static str, u64, f64);
        // (name, routes, matched share, v2's error rate, what is reported)
        type Case = (&'static str, Routes, Option<f64>, f64, Vec<Row>);
        let table: Vec<Case> = vec![
            (
                "plain traffic: both sidecars report the same",
                one_route(Split::weights([("v1", 75), ("v2", 25)])),
                None,
                0.0,
                vec![
                    (S, v("v1"), 200, "-", 750, 20.0),
                    (S, v("v2"), 200, "-", 250, 50.0),
                    (D, v("v1"), 200, "-", 750, 20.0),
                    (D, v("v2"), 200, "-", 250, 50.0),
                ],
            ),
            (
                "A/B: the default 10 % of matched requests take the header route",
                ab(),
                None,
                0.0,
                vec![
                    (S, v("v1"), 200, "-", 900, 20.0),
                    (S, v("v2"), 200, "-", 100, 50.0),
                    (D, v("v1"), 200, "-", 900, 20.0),
                    (D, v("v2"), 200, "-", 100, 50.0),
                ],
            ),
            (
                "A/B with a matched share of 30 %",
                ab(),
                Some(0.3),
                0.0,
                vec![
                    (S, v("v1"), 200, "-", 700, 20.0),
                    (S, v("v2"), 200, "-", 300, 50.0),
                    (D, v("v1"), 200, "-", 700, 20.0),
                    (D, v("v2"), 200, "-", 300, 50.0),
                ],
            ),
            (
                "A/B with no matched requests: the new version gets nothing",
                ab(),
                Some(0.0),
                0.0,
                vec![
                    (S, v("v1"), 200, "-", 1000, 20.0),
                    (D, v("v1"), 200, "-", 1000, 20.0),
                ],
            ),
            (
                "mirror: the copies are reported by the destination only",
                one_route(Split {
                    mirror: Some(Mirror {
                        subset: "v2".into(),
                        percent: 40.0,
                    }),
                    ..Split::weights([("v1", 100)])
                }),
                None,
                0.5,
                vec![
                    (S, v("v1"), 200, "-", 1000, 20.0),
                    (D, v("v1"), 200, "-", 1000, 20.0),
                    (D, v("v2"), 200, "-", 200, 50.0),
                    (D, v("v2"), 500, "-", 200, 50.0),
                ],
            ),
            (
                "delay: the caller sees it, the destination does not",
                one_route(faulty(Some((1000.0, 25.0)), None)),
                None,
                0.0,
                vec![
                    (S, v("v2"), 200, "-", 750, 50.0),
                    (S, v("v2"), 200, "DI", 250, 1050.0),
                    (D, v("v2"), 200, "-", 1000, 50.0),
                ],
            ),
            (
                "delay with errors: errors among delayed and prompt requests alike",
                one_route(faulty(Some((300.0, 20.0)), None)),
                None,
                0.1,
                vec![
                    (S, v("v2"), 200, "-", 720, 50.0),
                    (S, v("v2"), 500, "-", 80, 50.0),
                    (S, v("v2"), 200, "DI", 180, 350.0),
                    (S, v("v2"), 500, "DI", 20, 350.0),
                    (D, v("v2"), 200, "-", 900, 50.0),
                    (D, v("v2"), 500, "-", 100, 50.0),
                ],
            ),
            (
                "abort: answered by the caller's sidecar, never forwarded",
                one_route(faulty(None, Some((503, 10.0)))),
                None,
                0.0,
                vec![
                    (S, None, 503, "FI", 100, 0.0),
                    (S, v("v2"), 200, "-", 900, 50.0),
                    (D, v("v2"), 200, "-", 900, 50.0),
                ],
            ),
            (
                "abort and delay: delays among the forwarded requests",
                one_route(faulty(Some((100.0, 50.0)), Some((500, 20.0)))),
                None,
                0.0,
                vec![
                    (S, None, 500, "FI", 200, 0.0),
                    (S, v("v2"), 200, "-", 400, 50.0),
                    (S, v("v2"), 200, "DI", 400, 150.0),
                    (D, v("v2"), 200, "-", 800, 50.0),
                ],
            ),
            (
                "an aborted request is not mirrored",
                one_route(Split {
                    mirror: Some(Mirror {
                        subset: "v1".into(),
                        percent: 100.0,
                    }),
                    ..faulty(None, Some((503, 50.0)))
                }),
                None,
                0.0,
                vec![
                    (S, None, 503, "FI", 500, 0.0),
                    (S, v("v2"), 200, "-", 500, 50.0),
                    (D, v("v1"), 200, "-", 500, 20.0),
                    (D, v("v2"), 200, "-", 500, 50.0),
                ],
            ),
        ];
        for (name, routes, share, v2_errors, want) in table {
            let mut t = Traffic::new(100.0);
            t.set_live([(key(), routes)].into_iter().collect());
            if let Some(share) = share {
                t.set_matched_share(&key(), share);
            }
            t.set_behaviour(
                &key(),
                "v2",
                Behaviour {
                    error_rate: v2_errors,
                    latency_ms: 50.0,
                },
            );
            let got = tally(&mut t, 100, Duration::from_millis(100));
            let want: Tally = want
                .into_iter()
                .map(|(r, s, c, f, n, d)| ((r, s, c, f), (n, d)))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
