//! Fault injection and mirroring: percentages in Istio's ranges, and aborts that return a
//! status Istio accepts (`validateHTTPFaultInjectionAbort`).

use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::manifest::istio::display_path;
use crate::manifest::istio::virtual_service::VirtualService;

/// The smallest fault percentage above 0 Istio accepts (`validatePercentage`).
const MIN_FAULT_PERCENT: f64 = 0.0001;

/// The gRPC status names Istio accepts in an abort (`grpc.SupportedGRPCStatus`).
const GRPC_STATUSES: &[&str] = &[
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Which of Istio's percentage rules a value falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// `validatePercentage`: 0, or from 0.0001 to 100 (fault delay and abort).
    Fault,
    /// 0 to 100 (mirrorPercentage, mirrors[].percentage).
    Mirror,
    /// At most 100 (the deprecated mirrorPercent, unsigned).
    MirrorPercent,
}

impl Rule {
    fn accepts(self, v: f64) -> bool {
        match self {
            Rule::Fault => v == 0.0 || (MIN_FAULT_PERCENT..=100.0).contains(&v),
            Rule::Mirror => (0.0..=100.0).contains(&v),
            Rule::MirrorPercent => v <= 100.0,
        }
    }
}

/// Fault-injection and mirror percentages are in Istio's ranges (errors), and the deprecated
/// `fault.delay.percent`, which Istio no longer checks, is 0-100 (a warning).
pub fn check_percentages(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    for (i, http) in vs.http.iter().enumerate() {
        let base = format!("/spec/http/{i}");
        let mut values: Vec<(String, f64, Rule)> = Vec::new();
        if let Some(fault) = &http.fault {
            if let Some(delay) = &fault.delay {
                if let Some(v) = delay.percentage.as_ref().and_then(|p| p.value) {
                    values.push((
                        format!("{base}/fault/delay/percentage/value"),
                        v,
                        Rule::Fault,
                    ));
                }
                if let Some(v) = delay.percent
                    && !(0..=100).contains(&v)
                {
                    let pointer = format!("{base}/fault/delay/percent");
                    out.push(
                        m.warning(
                            "vs-delay-percent",
                            &pointer,
                            format!(
                                "{} is {v}; a percentage is from 0 to 100 (Istio no longer checks this deprecated field)",
                                display_path(&pointer)
                            ),
                        )
                        .fix("use `percentage: {value: <0-100>}` instead of the deprecated `percent`"),
                    );
                }
            }
            if let Some(v) = fault
                .abort
                .as_ref()
                .and_then(|a| a.percentage.as_ref())
                .and_then(|p| p.value)
            {
                values.push((
                    format!("{base}/fault/abort/percentage/value"),
                    v,
                    Rule::Fault,
                ));
            }
        }
        if let Some(v) = http.mirror_percentage.as_ref().and_then(|p| p.value) {
            values.push((format!("{base}/mirrorPercentage/value"), v, Rule::Mirror));
        }
        if let Some(v) = http.mirror_percent {
            values.push((
                format!("{base}/mirrorPercent"),
                f64::from(v),
                Rule::MirrorPercent,
            ));
        }
        if let Some(v) = http.mirror_percent_snake {
            values.push((
                format!("{base}/mirror_percent"),
                f64::from(v),
                Rule::MirrorPercent,
            ));
        }
        for (j, mirror) in http.mirrors.iter().enumerate() {
            if let Some(v) = mirror.percentage.as_ref().and_then(|p| p.value) {
                values.push((
                    format!("{base}/mirrors/{j}/percentage/value"),
                    v,
                    Rule::Mirror,
                ));
            }
        }
        for (pointer, v, rule) in values {
            if rule.accepts(v) {
                continue;
            }
            let range = if rule == Rule::Fault {
                "0, or from 0.0001 to 100"
            } else {
                "from 0 to 100"
            };
            out.push(
                m.error(
                    "vs-percentage",
                    &pointer,
                    format!("{} is {v}; a percentage is {range}", display_path(&pointer)),
                )
                .fix("set a percentage between 0 and 100"),
            );
        }
    }
}

/// An abort returns a status Istio accepts: an `httpStatus` from 200 to 600, a `grpcStatus`
/// name, and no `http2Error` (not supported yet); an abort with none of them is a warning, as
/// in Istio.
pub fn check_abort_status(m: &Manifest, vs: &VirtualService, out: &mut Vec<Diagnostic>) {
    for (i, http) in vs.http.iter().enumerate() {
        let Some(abort) = http.fault.as_ref().and_then(|f| f.abort.as_ref()) else {
            continue;
        };
        let base = format!("/spec/http/{i}/fault/abort");
        if let Some(status) = abort.http_status
            && !(200..=600).contains(&status)
        {
            let pointer = format!("{base}/httpStatus");
            out.push(
                m.error(
                    "vs-abort-status",
                    &pointer,
                    format!(
                        "{} is {status}, outside the HTTP statuses Istio accepts (200 to 600)",
                        display_path(&pointer)
                    ),
                )
                .fix("use the status the fault should return, e.g. 503"),
            );
        }
        if let Some(status) = &abort.grpc_status
            && !GRPC_STATUSES.contains(&status.as_str())
        {
            let pointer = format!("{base}/grpcStatus");
            out.push(
                m.error(
                    "vs-abort-status",
                    &pointer,
                    format!("{} `{status}` is not a gRPC status name", display_path(&pointer)),
                )
                .fix("use a gRPC status name such as UNAVAILABLE or NOT_FOUND (see grpc/doc/statuscodes.md)"),
            );
        }
        if abort.http2_error.is_some() {
            let pointer = format!("{base}/http2Error");
            out.push(
                m.error(
                    "vs-abort-status",
                    &pointer,
                    format!(
                        "{}: Istio does not support HTTP/2 error aborts yet",
                        display_path(&pointer)
                    ),
                )
                .fix("abort with `httpStatus` (or `grpcStatus`) instead"),
            );
        }
        if abort.http_status.is_none() && abort.grpc_status.is_none() && abort.http2_error.is_none()
        {
            out.push(
                m.warning(
                    "vs-abort-no-status",
                    &base,
                    format!(
                        "{} says neither httpStatus nor grpcStatus: it has nothing to return",
                        display_path(&base)
                    ),
                )
                .fix("add `httpStatus: 503` (or `grpcStatus`), or remove `abort`"),
            );
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
                // The deprecated delay.percent: Istio no longer checks it, so a warning.
                (
                    "  http:\n  - fault:\n      delay:\n        percent: -1\n",
                    &[("vs-delay-percent", 9)],
                ),
                // validatePercentage: between 0 and 0.0001 is refused, 0 accepted.
                (
                    "  http:\n  - fault:\n      abort: {httpStatus: 500, percentage: {value: 0}}\n",
                    &[],
                ),
                (
                    "  http:\n  - fault:\n      abort:\n        httpStatus: 500\n        percentage: {value: 0.00001}\n",
                    &[("vs-percentage", 10)],
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
                // validateHTTPStatus accepts 200 to 600.
                ("  http:\n  - fault:\n      abort: {httpStatus: 600}\n", &[]),
                (
                    "  http:\n  - fault:\n      abort:\n        httpStatus: 601\n",
                    &[("vs-abort-status", 9)],
                ),
                // validateGRPCStatus: a status name.
                (
                    "  http:\n  - fault:\n      abort:\n        grpcStatus: BROKEN\n",
                    &[("vs-abort-status", 9)],
                ),
                // "HTTP/2 abort fault injection not supported yet".
                (
                    "  http:\n  - fault:\n      abort:\n        http2Error: PROTOCOL_ERROR\n",
                    &[("vs-abort-status", 9)],
                ),
                // "abort configured, but error type not set" is a warning in Istio.
                (
                    "  http:\n  - fault:\n      abort:\n        percentage: {value: 5}\n",
                    &[("vs-abort-no-status", 8)],
                ),
            ],
        );
    }
}
