//! The catalog of checks: every code validation can report, the kind it concerns, its default
//! severity, the `istioctl analyze` code it corresponds to and the Istio rule it mirrors.
//!
//! Each check module declares its own rows (`CHECKS`) beside its code; this module gathers
//! them. The README's validation table, the severity overrides in `veer.yaml` and the test
//! summary all read this one list.

use crate::diagnostic::Severity;

/// One check veer can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// The code in every diagnostic of this check (`vs-weight-sum`).
    pub code: &'static str,
    /// The kind it concerns (`VirtualService`), or `any` for reading and metadata checks.
    pub kind: &'static str,
    /// Severity by default (before `--strict` or `validation.severity` in `veer.yaml`).
    pub severity: Severity,
    /// The `istioctl analyze` message code, when istioctl has one (`IST0101`).
    pub istio: Option<&'static str>,
    /// The Istio (or Kubernetes) rule it mirrors: the CRD schema or CEL rule, the webhook
    /// validation function, or the analyzer, so a reader can check we are not stricter.
    pub mirrors: &'static str,
}

impl Check {
    pub const fn error(code: &'static str, kind: &'static str, mirrors: &'static str) -> Self {
        Self {
            code,
            kind,
            severity: Severity::Error,
            istio: None,
            mirrors,
        }
    }

    pub const fn warning(code: &'static str, kind: &'static str, mirrors: &'static str) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, kind, mirrors)
        }
    }

    pub const fn istio(mut self, code: &'static str) -> Self {
        self.istio = Some(code);
        self
    }
}

/// Every check, module by module.
pub fn all() -> Vec<Check> {
    [
        super::READING_CHECKS,
        super::metadata::CHECKS,
        super::k8s_names::CHECKS,
        super::virtual_service::CHECKS,
        super::destination_rule::CHECKS,
        super::gateway::CHECKS,
        super::service_entry::CHECKS,
        super::sidecar::CHECKS,
        super::rollout_policy::CHECKS,
        super::analyze::CHECKS,
    ]
    .concat()
}

/// The check with this code.
pub fn find(code: &str) -> Option<Check> {
    all().into_iter().find(|c| c.code == code)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_and_istio_codes_well_formed() {
        let mut seen = HashSet::new();
        for c in all() {
            assert!(seen.insert(c.code), "{} is listed twice", c.code);
            assert!(!c.mirrors.is_empty(), "{} names no rule it mirrors", c.code);
            if let Some(ist) = c.istio {
                assert!(
                    ist.len() == 7
                        && ist.starts_with("IST")
                        && ist[3..].bytes().all(|b| b.is_ascii_digit()),
                    "{}: {ist} is not an istioctl code",
                    c.code
                );
            }
        }
    }
}
