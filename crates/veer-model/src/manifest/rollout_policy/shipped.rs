//! The policies shipped with veer, embedded in the binary, and the policies in force
//! (the config repo's first).

use super::RolloutPolicy;

/// The policies shipped with veer (`policies/*.yaml`), embedded in the binary. A policy of the
/// same name in the config repo takes precedence.
pub const SHIPPED_FILES: &[(&str, &str)] = &[
    (
        "policies/default-canary.yaml",
        include_str!("../../../../../policies/default-canary.yaml"),
    ),
    (
        "policies/conservative.yaml",
        include_str!("../../../../../policies/conservative.yaml"),
    ),
    (
        "policies/ab-testing.yaml",
        include_str!("../../../../../policies/ab-testing.yaml"),
    ),
    (
        "policies/mirror-then-shift.yaml",
        include_str!("../../../../../policies/mirror-then-shift.yaml"),
    ),
];

/// The shipped policies, parsed once. A test keeps every one of them valid.
pub fn shipped() -> &'static [RolloutPolicy] {
    static SHIPPED: std::sync::OnceLock<Vec<RolloutPolicy>> = std::sync::OnceLock::new();
    SHIPPED.get_or_init(|| {
        let options = crate::manifest::ReadOptions::default();
        SHIPPED_FILES
            .iter()
            .flat_map(|(path, text)| {
                crate::manifest::parse_file(path, text.as_bytes(), &options).manifests
            })
            .filter_map(|m| crate::manifest::policy::rollout_policy(&m).cloned())
            .collect()
    })
}

/// The policies in force: the config repo's, then shipped ones whose names it does not use.
pub fn effective(revision: &[RolloutPolicy]) -> Vec<RolloutPolicy> {
    let mut out = revision.to_vec();
    for p in shipped() {
        if !revision.iter().any(|r| r.name() == p.name()) {
            out.push(p.clone());
        }
    }
    out
}
