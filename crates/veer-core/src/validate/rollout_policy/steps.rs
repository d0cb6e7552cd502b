//! The progress deadline against the interval, and the step weights (`stepWeight` with
//! `maxWeight`, or `stepWeights`).

use crate::diagnostic::Diagnostic;
use crate::duration;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::rollout_policy::RolloutPolicySpec;
use crate::manifest::yaml::pointer_join;

/// A step must be able to get its first check before the deadline.
pub(super) fn check_deadline(m: &Manifest, spec: &RolloutPolicySpec, out: &mut Vec<Diagnostic>) {
    let (Ok(interval), Some(Ok(deadline))) = (
        duration::parse(&spec.interval),
        spec.progress_deadline.as_deref().map(duration::parse),
    ) else {
        return;
    };
    if !deadline.is_zero() && deadline <= interval {
        out.push(
            m.error(
                "rp-progress-deadline",
                "/spec/progressDeadline",
                format!(
                    "spec.progressDeadline ({}) is not longer than spec.interval ({}): every step would miss its deadline before its first check",
                    spec.progress_deadline.as_deref().unwrap_or(""),
                    spec.interval
                ),
            )
            .fix("make progressDeadline several intervals long (e.g. interval × (threshold + 2))"),
        );
    }
}

pub(super) fn check_steps(m: &Manifest, spec: &RolloutPolicySpec, out: &mut Vec<Diagnostic>) {
    match (spec.step_weight, spec.step_weights.is_empty()) {
        (Some(_), false) => out.push(
            m.error(
                "rp-steps",
                "/spec/stepWeights",
                "spec sets both stepWeight and stepWeights",
            )
            .fix("keep one: stepWeight + maxWeight for equal steps, or stepWeights for a list"),
        ),
        (None, true) => out.push(
            m.error(
                "rp-steps",
                "/spec",
                "spec sets neither stepWeight nor stepWeights",
            )
            .fix("add `stepWeight: 10` with `maxWeight: 50`, or `stepWeights: [5, 10, 25, 50]`"),
        ),
        (Some(step), true) => {
            if !(1..=99).contains(&step) {
                out.push(
                    m.error(
                        "rp-step-weight",
                        "/spec/stepWeight",
                        format!("spec.stepWeight: {step} is not in 1..99"),
                    )
                    .fix("use a step between 1 and 99, e.g. 10"),
                );
            }
            match spec.max_weight {
                None => out.push(
                    m.error(
                        "rp-max-weight",
                        "/spec/stepWeight",
                        "spec.stepWeight needs spec.maxWeight",
                    )
                    .fix("add `maxWeight: 50` (the new version's highest weight before promotion)"),
                ),
                Some(max) if !(1..=100).contains(&max) => out.push(
                    m.error(
                        "rp-max-weight",
                        "/spec/maxWeight",
                        format!("spec.maxWeight: {max} is not in 1..100"),
                    )
                    .fix("use a weight between 1 and 100, e.g. 50"),
                ),
                Some(max) if max < step => out.push(
                    m.error(
                        "rp-max-weight",
                        "/spec/maxWeight",
                        format!("spec.maxWeight ({max}) is below spec.stepWeight ({step})"),
                    )
                    .fix("raise maxWeight to at least stepWeight"),
                ),
                Some(_) => {}
            }
        }
        (None, false) => {
            if spec.max_weight.is_some() {
                out.push(
                    m.error(
                        "rp-max-weight",
                        "/spec/maxWeight",
                        "spec.maxWeight goes with stepWeight; with stepWeights the last value is the highest weight",
                    )
                    .fix("remove maxWeight, or end stepWeights at the weight you want"),
                );
            }
            let mut last = 0;
            for (i, w) in spec.step_weights.iter().enumerate() {
                let at = pointer_join("/spec/stepWeights", i);
                if !(1..=99).contains(w) {
                    out.push(
                        m.error(
                            "rp-step-weights",
                            &at,
                            format!("{}: {w} is not in 1..99", display_path(&at)),
                        )
                        .fix("list weights between 1 and 99; promotion moves to the final weights"),
                    );
                } else if *w <= last {
                    out.push(
                        m.error(
                            "rp-step-weights",
                            &at,
                            format!(
                                "{}: {w} does not increase (the previous step is {last})",
                                display_path(&at)
                            ),
                        )
                        .fix("list the weights in strictly increasing order, e.g. [5, 10, 25, 50]"),
                    );
                }
                last = last.max(*w);
            }
        }
    }
}
