//! The phases before the traffic shift: mirror, A/B match and fault injection, each with
//! its iterations.

use super::check_duration;
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::rollout_policy::{FaultPhase, MatchPhase, MirrorPhase};
use crate::manifest::yaml::pointer_join;

fn check_iterations(m: &Manifest, at: &str, iterations: u32, out: &mut Vec<Diagnostic>) {
    if iterations == 0 {
        let p = pointer_join(at, "iterations");
        out.push(
            m.error(
                "rp-iterations",
                &p,
                format!("{}: 0 would skip the phase", display_path(&p)),
            )
            .fix("set how many passing checks the phase needs, at least 1, or remove the phase"),
        );
    }
}

pub(super) fn check_mirror(m: &Manifest, mirror: &MirrorPhase, out: &mut Vec<Diagnostic>) {
    if !(1..=100).contains(&mirror.weight) {
        out.push(
            m.error(
                "rp-mirror",
                "/spec/mirror/weight",
                format!("spec.mirror.weight: {} is not in 1..100", mirror.weight),
            )
            .fix("mirror a percentage of the traffic between 1 and 100"),
        );
    }
    check_iterations(m, "/spec/mirror", mirror.iterations, out);
}

pub(super) fn check_match(m: &Manifest, matching: &MatchPhase, out: &mut Vec<Diagnostic>) {
    match (&matching.cookie, matching.headers.is_empty()) {
        (None, true) => out.push(
            m.error(
                "rp-match",
                "/spec/match",
                "spec.match has neither headers nor cookie, so no request would reach the new version",
            )
            .fix("add `headers: {x-canary: {exact: always}}` or `cookie: canary=always`"),
        ),
        (Some(cookie), _) => {
            let ok = cookie
                .split_once('=')
                .is_some_and(|(k, v)| !k.trim().is_empty() && !v.is_empty() && !cookie.contains(';'));
            if !ok {
                out.push(
                    m.error(
                        "rp-match",
                        "/spec/match/cookie",
                        format!("spec.match.cookie: `{cookie}` is not `name=value`"),
                    )
                    .fix("write the cookie as `name=value`, e.g. `canary=always`"),
                );
            }
        }
        (None, false) => {}
    }
    for (name, m_) in &matching.headers {
        let set = [&m_.exact, &m_.prefix, &m_.regex]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if set != 1 {
            let p = pointer_join("/spec/match/headers", name);
            out.push(
                m.error(
                    "rp-match",
                    &p,
                    format!(
                        "{}: give exactly one of exact, prefix or regex",
                        display_path(&p)
                    ),
                )
                .fix("e.g. `exact: always`"),
            );
        }
    }
    check_iterations(m, "/spec/match", matching.iterations, out);
}

pub(super) fn check_fault(m: &Manifest, fault: &FaultPhase, out: &mut Vec<Diagnostic>) {
    match (&fault.delay, fault.abort) {
        (Some(_), Some(_)) | (None, None) => out.push(
            m.error(
                "rp-fault",
                "/spec/fault",
                "spec.fault needs exactly one of delay or abort",
            )
            .fix("inject either `delay: 200ms` or `abort: 503`"),
        ),
        (Some(delay), None) => check_duration(m, "/spec/fault/delay", delay, out),
        (None, Some(status)) => {
            if !(200..=599).contains(&status) {
                out.push(
                    m.error(
                        "rp-fault",
                        "/spec/fault/abort",
                        format!("spec.fault.abort: {status} is not an HTTP status (200..599)"),
                    )
                    .fix("abort with an HTTP status such as 503"),
                );
            }
        }
    }
    if !(fault.percent > 0.0 && fault.percent <= 100.0) {
        out.push(
            m.error(
                "rp-fault",
                "/spec/fault/percent",
                format!("spec.fault.percent: {} is not in (0, 100]", fault.percent),
            )
            .fix("inject the fault into a share of the new version's requests, e.g. 10"),
        );
    }
    check_iterations(m, "/spec/fault", fault.iterations, out);
}
