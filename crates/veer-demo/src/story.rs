//! The demo's story as data: the acts, the commit each one makes, how the synthetic traffic
//! behaves during it, and what it must show. Pure: the repository is a map of path → text,
//! built from the example repos embedded in the binary (`examples/`, never copies), and the
//! v2/v3 commits are derived from them by editing the route's weights.
//!
//! Parts: `edit` (a commit's changes applied to the tree) and `inspect` (what the committed
//! tree holds: manifests, VirtualServices, their faults, the policy bound to them).

use std::collections::BTreeMap;

use veer_devcluster::exporter::{Behaviour, ServiceKey, Split};

mod edit;
mod inspect;

pub use edit::{apply, set_route_weights};
pub use inspect::{
    FaultEffect, VirtualServiceInfo, fault_effect, manifests, policy_for, virtual_service,
};

/// One file of the demo's repository, embedded from `examples/` at the same relative path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoFile {
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! example {
    ($path:literal) => {
        RepoFile {
            path: $path,
            text: include_str!(concat!("../../../examples/", $path)),
        }
    };
}

/// `examples/reviews`, every manifest of it.
pub const REVIEWS: &[RepoFile] = &[
    example!("reviews/namespace.yaml"),
    example!("reviews/apps/reviews-service.yaml"),
    example!("reviews/apps/reviews-v1.yaml"),
    example!("reviews/apps/reviews-v2.yaml"),
    example!("reviews/apps/reviews-v3.yaml"),
    example!("reviews/egress/ratings-provider.yaml"),
    example!("reviews/traffic/gateway.yaml"),
    example!("reviews/traffic/ratings-destinationpolicy.yaml"),
    example!("reviews/traffic/reviews-destinationrule.yaml"),
    example!("reviews/traffic/reviews-virtualservice.yaml"),
];

/// `examples/demo`: the fast `default-canary` policy the demo adds.
pub const DEMO_POLICY: &[RepoFile] = &[example!("demo/default-canary.yaml")];

/// `examples/mirroring`.
pub const MIRRORING: &[RepoFile] = &[
    example!("mirroring/namespace.yaml"),
    example!("mirroring/httpbin.yaml"),
];

/// `examples/fault-injection`.
pub const FAULT_INJECTION: &[RepoFile] = &[example!("fault-injection/ratings.yaml")];

/// The VirtualService the canary acts change.
pub const REVIEWS_VS: &str = "reviews/traffic/reviews-virtualservice.yaml";
/// Its route the canaries shift.
pub const REVIEWS_ROUTE: &str = "primary";

/// The repository's files: path → content.
pub type Tree = BTreeMap<String, String>;

/// What a commit changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// Add these files as they are.
    Add(&'static [RepoFile]),
    /// Set the destinations and weights of the named HTTP route of the VirtualService in
    /// `file` (subset → weight; the host is the route's).
    Weights {
        file: &'static str,
        route: &'static str,
        weights: &'static [(&'static str, u32)],
    },
}

/// How one subset answers from the moment its live weight reaches `from_weight`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficRule {
    pub namespace: &'static str,
    pub service: &'static str,
    pub subset: &'static str,
    /// 0: from the start of the act.
    pub from_weight: u32,
    pub behaviour: Behaviour,
    /// Printed when the rule takes effect.
    pub note: &'static str,
}

impl TrafficRule {
    pub fn key(&self) -> ServiceKey {
        ServiceKey::new(self.namespace, self.service)
    }

    /// Does the rule apply to traffic split like `split`?
    pub fn applies(&self, split: Option<&Split>) -> bool {
        self.from_weight == 0
            || split
                .and_then(|s| s.weights.get(self.subset))
                .is_some_and(|w| *w >= self.from_weight)
    }
}

/// What an act must show before the next one starts. VirtualServices are named by the file
/// that holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// veer applies the commit.
    Applied,
    /// The commit's rollout fails its checks and is rolled back (and reverted in git when its
    /// policy says `revert: git`).
    RolledBack { vs: &'static str },
    /// The commit's rollout is promoted step by step.
    Promoted { vs: &'static str },
    /// The commit is applied and the mirror's copies reach the mirrored subset.
    Mirrored { vs: &'static str },
    /// The commit is applied with its faults; their effect is measured.
    FaultInjected { vs: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Act {
    pub title: &'static str,
    /// Printed under the title: what is about to happen.
    pub about: &'static [&'static str],
    pub commit: &'static str,
    pub changes: &'static [Change],
    pub traffic: &'static [TrafficRule],
    pub expect: Expect,
}

const fn behaves(error_rate: f64, latency_ms: f64) -> Behaviour {
    Behaviour {
        error_rate,
        latency_ms,
    }
}

/// The story `veer demo` plays.
pub const STORY: &[Act] = &[
    Act {
        title: "First deploy of reviews v1",
        about: &[
            "examples/reviews as it is (namespace, Deployments v1-v3, Service, DestinationRule,",
            "VirtualService with all traffic on v1, Gateway, ServiceEntry, a legacy",
            "DestinationPolicy) plus examples/demo's fast default-canary policy.",
        ],
        commit: "reviews: first deploy, all traffic to v1",
        changes: &[Change::Add(REVIEWS), Change::Add(DEMO_POLICY)],
        traffic: &[TrafficRule {
            namespace: "bookinfo",
            service: "reviews",
            subset: "v1",
            from_weight: 0,
            behaviour: behaves(0.0, 25.0),
            note: "reviews v1 answers every request in about 25 ms",
        }],
        expect: Expect::Applied,
    },
    Act {
        title: "Canary to reviews v2, which breaks under load",
        about: &[
            "A commit moves reviews' traffic from v1 to v2. The policy shifts it step by step,",
            "asking Prometheus about v2 after each step. v2 looks fine at 10 %, but once it",
            "takes 25 % of the traffic, 12 % of its requests fail: the next checks see it.",
        ],
        commit: "reviews: send all traffic to v2",
        changes: &[Change::Weights {
            file: REVIEWS_VS,
            route: REVIEWS_ROUTE,
            weights: &[("v1", 0), ("v2", 100)],
        }],
        traffic: &[
            TrafficRule {
                namespace: "bookinfo",
                service: "reviews",
                subset: "v2",
                from_weight: 0,
                behaviour: behaves(0.0, 30.0),
                note: "reviews v2 answers every request in about 30 ms (at low traffic)",
            },
            TrafficRule {
                namespace: "bookinfo",
                service: "reviews",
                subset: "v2",
                from_weight: 25,
                behaviour: behaves(0.12, 140.0),
                note: "reviews v2 is under load now: 12 % of its requests fail, 140 ms each",
            },
        ],
        expect: Expect::RolledBack { vs: REVIEWS_VS },
    },
    Act {
        title: "Canary to reviews v3, which is healthy",
        about: &[
            "A commit moves reviews' traffic to v3 (from the tip, where veer's revert put v1",
            "back). v3 answers every request in about 20 ms at any load.",
        ],
        commit: "reviews: send all traffic to v3",
        changes: &[Change::Weights {
            file: REVIEWS_VS,
            route: REVIEWS_ROUTE,
            weights: &[("v1", 0), ("v3", 100)],
        }],
        traffic: &[TrafficRule {
            namespace: "bookinfo",
            service: "reviews",
            subset: "v3",
            from_weight: 0,
            behaviour: behaves(0.0, 20.0),
            note: "reviews v3 answers every request in about 20 ms",
        }],
        expect: Expect::Promoted { vs: REVIEWS_VS },
    },
    Act {
        title: "Mirroring: httpbin v2 gets copies of v1's traffic",
        about: &[
            "examples/mirroring: all of httpbin's traffic is served by v1, and a copy of 25 %",
            "of it goes to v2, whose answers are thrown away.",
        ],
        commit: "httpbin: mirror 25 % of the traffic to v2",
        changes: &[Change::Add(MIRRORING)],
        traffic: &[],
        expect: Expect::Mirrored {
            vs: "mirroring/httpbin.yaml",
        },
    },
    Act {
        title: "Fault injection on ratings",
        about: &[
            "examples/fault-injection: requests of the test user (end-user: jason) to ratings",
            "are delayed 7 s, and 10 % of everyone else's are aborted with HTTP 500.",
        ],
        commit: "ratings: inject faults",
        changes: &[Change::Add(FAULT_INJECTION)],
        traffic: &[],
        expect: Expect::FaultInjected {
            vs: "fault-injection/ratings.yaml",
        },
    },
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoryError {
    #[error("demo story: {file} is not in the repository; the story's acts are out of order")]
    Missing { file: String },
    #[error("demo story: {file} is not a YAML VirtualService: {reason}; fix the embedded example")]
    NotVirtualService { file: String, reason: String },
    #[error(
        "demo story: {file} has no HTTP route named `{route}`; name the route in the example or change the story"
    )]
    NoRoute { file: String, route: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use veer_controller::manifest;
    use veer_controller::manifest::rollout_policy::Revert;
    use veer_controller::validate;

    fn embedded() -> Vec<RepoFile> {
        [REVIEWS, DEMO_POLICY, MIRRORING, FAULT_INJECTION].concat()
    }

    #[test]
    fn every_manifest_of_the_used_examples_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut on_disk = Vec::new();
        for repo in ["reviews", "demo", "mirroring", "fault-injection"] {
            let mut stack = vec![root.join(repo)];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if manifest::is_manifest_path(&path.to_string_lossy()) {
                        let rel = path.strip_prefix(&root).unwrap();
                        // The demo's repository has `bookinfo` from examples/reviews already;
                        // a second Namespace document for it would be a duplicate object.
                        if rel == std::path::Path::new("fault-injection/namespace.yaml") {
                            continue;
                        }
                        on_disk.push(rel.to_string_lossy().to_string());
                    }
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = embedded().iter().map(|f| f.path.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
        for f in embedded() {
            let disk = std::fs::read_to_string(root.join(f.path)).unwrap();
            assert_eq!(f.text, disk, "{} is embedded as it is", f.path);
        }
    }

    /// The trees the story commits, in order; after act 2 the VirtualService is back to act
    /// 1's, as veer's revert commit leaves it.
    fn trees() -> Vec<Tree> {
        let mut tree = Tree::new();
        let mut out = Vec::new();
        for act in STORY {
            let before = tree.clone();
            for c in act.changes {
                apply(&mut tree, c).unwrap();
            }
            out.push(tree.clone());
            if matches!(act.expect, Expect::RolledBack { .. }) {
                tree = before;
            }
        }
        out
    }

    fn route_weights(tree: &Tree) -> Vec<(String, u64)> {
        let vs = virtual_service(tree, REVIEWS_VS).unwrap();
        vs.value
            .pointer("/spec/http/0/route")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d.pointer("/destination/subset")
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string(),
                    d["weight"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn every_commit_of_the_story_is_a_valid_revision() {
        for (i, tree) in trees().iter().enumerate() {
            let report = validate::validate(&manifests(tree));
            assert!(report.is_ok(), "act {}:\n{}", i + 1, report.render_human());
        }
    }

    #[test]
    fn the_canary_commits_move_the_primary_route_only() {
        let trees = trees();
        let w = |i: usize| route_weights(&trees[i]);
        let pairs = |p: &[(&str, u64)]| -> Vec<(String, u64)> {
            p.iter().map(|(s, w)| (s.to_string(), *w)).collect()
        };
        assert_eq!(w(0), pairs(&[("v1", 100), ("v2", 0)]));
        assert_eq!(w(1), pairs(&[("v1", 0), ("v2", 100)]));
        assert_eq!(w(2), pairs(&[("v1", 0), ("v3", 100)]));
        // The route's other settings and the object's annotation survive the edit.
        let vs = virtual_service(&trees[2], REVIEWS_VS).unwrap();
        assert_eq!(
            vs.value.pointer("/spec/http/0/timeout"),
            Some(&json!("10s"))
        );
        assert_eq!(
            vs.value.pointer("/spec/http/0/retries/attempts"),
            Some(&json!(3))
        );
        assert_eq!(
            vs.value
                .pointer("/metadata/annotations/veer.io~1rollout-policy"),
            Some(&json!("default-canary"))
        );
    }

    #[test]
    fn the_canaries_run_under_the_demo_policy_which_reverts_in_git() {
        let tree = &trees()[1];
        let policy = policy_for(tree, REVIEWS_VS).unwrap().unwrap();
        assert_eq!(policy.name(), "default-canary");
        assert_eq!(
            policy.spec.interval, "3s",
            "the demo's, not the shipped one"
        );
        assert_eq!(policy.spec.revert, Revert::Git);
        assert_eq!(policy.spec.step_values(), vec![10, 25, 50]);
        // The mirroring example binds no policy: it applies at once.
        assert_eq!(
            policy_for(&trees()[3], "mirroring/httpbin.yaml").unwrap(),
            None
        );
    }

    #[test]
    fn mirror_and_faults_are_read_from_the_examples() {
        let trees = trees();
        let httpbin = virtual_service(&trees[3], "mirroring/httpbin.yaml").unwrap();
        assert_eq!(
            (httpbin.namespace.as_str(), httpbin.name.as_str()),
            ("demo", "httpbin")
        );
        let routes = &httpbin.routes()[&ServiceKey::new("demo", "httpbin")];
        let split = routes.plain.as_ref().unwrap();
        assert_eq!(split.weights.get("v1"), Some(&100));
        let mirror = split.mirror.as_ref().unwrap();
        assert_eq!((mirror.subset.as_str(), mirror.percent), ("v2", 25.0));

        let ratings = virtual_service(&trees[4], "fault-injection/ratings.yaml").unwrap();
        assert_eq!(
            ratings.faults(),
            vec![
                "test-user-delay: delay 7s for 100% of matching requests".to_string(),
                "everyone-else: abort with HTTP 500 for 10% of the requests no earlier route matches"
                    .to_string(),
            ]
        );
        let routes = &ratings.routes()[&ServiceKey::new("bookinfo", "ratings")];
        // 10 % carry the test user's header and wait 7 s; 10 % of the other 90 % fail.
        let effect = fault_effect(routes, 0.1);
        assert!((effect.aborted - 9.0).abs() < 1e-9, "{effect:?}");
        assert!((effect.delayed - 10.0).abs() < 1e-9, "{effect:?}");
        assert_eq!(effect.delay_ms, 7000.0);
        // Without an A/B share, only the abort shows.
        let effect = fault_effect(routes, 0.0);
        assert!((effect.aborted - 10.0).abs() < 1e-9, "{effect:?}");
        assert_eq!(effect.delayed, 0.0);
    }

    #[test]
    fn traffic_rules_apply_from_their_weight() {
        let rule = STORY[1].traffic[1];
        assert_eq!(rule.from_weight, 25);
        assert!(!rule.applies(None));
        assert!(!rule.applies(Some(&Split::weights([("v1", 90), ("v2", 10)]))));
        assert!(rule.applies(Some(&Split::weights([("v1", 75), ("v2", 25)]))));
        assert!(STORY[1].traffic[0].applies(None));
    }
}
