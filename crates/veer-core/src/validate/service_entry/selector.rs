//! The `workloadSelector` of a ServiceEntry or a Sidecar (Istio's `ValidateAlphaWorkloadSelector`
//! for both): no wildcard and no empty key, which Istio refuses; no labels at all, which it
//! accepts with a warning (the selector then selects every workload of the namespace).

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::common::WorkloadSelector;
use crate::manifest::istio::display_path;
use crate::manifest::yaml::pointer_join;

/// The codes a kind reports selector findings under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SelectorCodes {
    /// A `*` in a key or value, or an empty key: an error.
    pub wildcard: &'static str,
    /// No labels: a warning.
    pub empty: &'static str,
}

/// Check the selector at `pointer` (`/spec/workloadSelector`).
pub(crate) fn check_workload_selector(
    m: &Manifest,
    pointer: &str,
    selector: &WorkloadSelector,
    codes: SelectorCodes,
    out: &mut Vec<Diagnostic>,
) {
    if selector.labels.is_empty() {
        out.push(
            m.warning(
                codes.empty,
                pointer,
                format!(
                    "{} has no labels, so it applies to every workload in the namespace",
                    display_path(pointer)
                ),
            )
            .fix("add labels that select the workloads, or remove workloadSelector"),
        );
    }
    let labels = format!("{pointer}/labels");
    for (key, value) in &selector.labels {
        let problem = if key.is_empty() {
            Some("has an empty key")
        } else if key.contains('*') || value.contains('*') {
            Some("has a wildcard `*`: selectors match label values exactly")
        } else {
            None
        };
        if let Some(why) = problem {
            let at = pointer_join(&labels, key);
            out.push(
                m.error(
                    codes.wildcard,
                    &at,
                    format!("{}: `{key}: {value}` {why}", display_path(&labels)),
                )
                .fix("select by exact label values, e.g. `app: ratings`; to select every workload of the namespace, remove workloadSelector"),
            );
        }
    }
}
