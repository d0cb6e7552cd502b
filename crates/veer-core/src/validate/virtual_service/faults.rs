//! Fault injection and mirroring: percentages from 0 to 100, and aborts that return an
//! HTTP status Envoy can send.

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::VirtualService;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::virtual_service::fixtures::table;

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
}
